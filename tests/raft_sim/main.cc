// commitd-raft-sim: runs the pure Raft core under a deterministic simulator
// and checks Raft's safety properties after every step (docs/raft.md).
//
//   commitd-raft-sim --seed 42 [--trace]        one seed; on a violation, the trace that led to it
//   commitd-raft-sim --seeds 2000 --start 1     seeds 1..2000; stops at the first violation
//   commitd-raft-sim --seeds 1000 --soak-seeds 20000   20,000 seeds when COMMITD_SOAK=1
//   commitd-raft-sim --bug commit-old-term --seeds 1000 --expect-violation   exit 0 iff caught
//   commitd-raft-sim --seeds 20 --check-determinism
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/program.h"
#include "tests/raft_sim/world.h"

using namespace commitd::raft_sim;

namespace {

constexpr const char* kUsage =
    "usage: commitd-raft-sim (--seed N | --seeds N [--start S] [--soak-seeds M]) [--steps K]\n"
    "                        [--trace] [--trace-tail N] [--bug NAME] [--expect-violation]\n"
    "                        [--check-determinism]\n"
    "       commitd-raft-sim --version | --help\n"
    "\n"
    "Runs the Raft core under the deterministic simulator and checks Raft's safety\n"
    "properties after every step (docs/raft.md).\n"
    "bugs: commit-old-term no-vote-persist ack-before-durable stale-read\n"
    "\n"
    "exit: 0 every seed passed (with --expect-violation: a violation was found),\n"
    "      1 a violation (or, with --expect-violation, none), 2 usage error\n";

const commitd::Program kProgram("commitd-raft-sim", kUsage);

void PrintViolation(const SimOptions& base, uint64_t seed, uint64_t seeds_run, const RunResult& result,
                    std::size_t tail_lines) {
  if (tail_lines > 0) {
    // Determinism makes a second run of the seed the same run; only now pay for the trace.
    SimOptions again = base;
    again.seed = seed;
    again.trace = false;
    again.trace_tail = tail_lines;
    RunResult traced = RunSeed(again, false);
    for (const std::string& line : traced.tail) std::printf("%s\n", line.c_str());
  }
  std::printf("VIOLATION at seed %llu (after %llu seed(s)): %s\n", (unsigned long long)seed,
              (unsigned long long)seeds_run, result.violation->c_str());
  std::printf("  profile: %s\n", result.profile.c_str());
  std::printf("replay: commitd-raft-sim --seed %llu --steps %llu%s%s --trace\n", (unsigned long long)seed,
              (unsigned long long)base.fault_steps, base.bug == Bug::kNone ? "" : " --bug ",
              base.bug == Bug::kNone ? "" : std::string(BugName(base.bug)).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  SimOptions options;
  uint64_t seeds = 0, start = 1, soak_seeds = 0;
  bool single = false, expect_violation = false, check_determinism = false;
  std::size_t tail_lines = 60;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) std::exit(kProgram.UsageError(arg + " needs a value"));
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("%s\n", kProgram.VersionLine().c_str());
      return 0;
    } else if (arg == "--seed") {
      options.seed = std::strtoull(value(), nullptr, 10);
      single = true;
    } else if (arg == "--seeds") {
      seeds = std::strtoull(value(), nullptr, 10);
    } else if (arg == "--start") {
      start = std::strtoull(value(), nullptr, 10);
    } else if (arg == "--soak-seeds") {
      soak_seeds = std::strtoull(value(), nullptr, 10);
    } else if (arg == "--steps") {
      options.fault_steps = std::strtoull(value(), nullptr, 10);
    } else if (arg == "--trace") {
      options.trace = true;
    } else if (arg == "--trace-tail") {
      tail_lines = std::strtoull(value(), nullptr, 10);
    } else if (arg == "--bug") {
      auto bug = ParseBug(value());
      if (!bug) return kProgram.UsageError("unknown --bug " + std::string(argv[i]));
      options.bug = *bug;
    } else if (arg == "--expect-violation") {
      expect_violation = true;
    } else if (arg == "--check-determinism") {
      check_determinism = true;
    } else {
      return kProgram.UsageError((arg.rfind("-", 0) == 0 ? "unknown flag " : "unexpected argument ") + arg);
    }
  }
  if (!single && seeds == 0) return kProgram.UsageError("--seed N or --seeds N is needed");
  if (single) {
    start = options.seed;
    seeds = 1;
  }
  if (const char* soak = std::getenv("COMMITD_SOAK"); soak && std::strcmp(soak, "1") == 0 && soak_seeds > 0) {
    seeds = soak_seeds;
  }

  auto began = std::chrono::steady_clock::now();
  RunStats total;
  int64_t worst_heal_ms = 0;
  uint64_t worst_heal_seed = 0;
  for (uint64_t n = 0; n < seeds; ++n) {
    options.seed = start + n;
    RunResult result = RunSeed(options, check_determinism);
    if (check_determinism && !result.violation) {
      RunResult again = RunSeed(options, true);
      if (again.trace_hash != result.trace_hash || again.stats.steps != result.stats.steps) {
        std::printf("NONDETERMINISM at seed %llu: two runs differ\n", (unsigned long long)options.seed);
        return 1;
      }
    }
    const RunStats& s = result.stats;
    total.steps += s.steps;
    total.virtual_ms += s.virtual_ms;
    total.messages += s.messages;
    total.crashes += s.crashes;
    total.partitions += s.partitions;
    total.leaders += s.leaders;
    total.committed += s.committed;
    total.conf_changes += s.conf_changes;
    total.transfers += s.transfers;
    total.reads += s.reads;
    total.snapshots_taken += s.snapshots_taken;
    total.snapshots_installed += s.snapshots_installed;
    if (s.heal_to_commit_ms > worst_heal_ms) {
      worst_heal_ms = s.heal_to_commit_ms;
      worst_heal_seed = options.seed;
    }
    if (single && !result.violation) {
      std::printf("seed %llu: ok, %llu steps, %.1f s virtual, %llu messages, %llu leaders (max term %llu), %llu "
                  "committed, %llu crashes, %llu partitions, %llu conf changes, %llu transfers, %llu reads, %llu/%llu "
                  "snapshots taken/installed, healed->commit %lld ms\n  profile: %s\n",
                  (unsigned long long)options.seed, (unsigned long long)s.steps, s.virtual_ms / 1000.0,
                  (unsigned long long)s.messages, (unsigned long long)s.leaders, (unsigned long long)s.max_term,
                  (unsigned long long)s.committed, (unsigned long long)s.crashes, (unsigned long long)s.partitions,
                  (unsigned long long)s.conf_changes, (unsigned long long)s.transfers,
                  (unsigned long long)s.reads, (unsigned long long)s.snapshots_taken, (unsigned long long)s.snapshots_installed,
                  (long long)s.heal_to_commit_ms, result.profile.c_str());
    }
    if (result.violation) {
      PrintViolation(options, options.seed, n + 1, result, options.trace ? 0 : tail_lines);
      if (expect_violation) {
        std::printf("caught: bug %s found after %llu seed(s)\n", std::string(BugName(options.bug)).c_str(),
                    (unsigned long long)(n + 1));
        return 0;
      }
      return 1;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  std::printf("%llu seed(s) from %llu ok in %.2f s (%.0f seeds/s): %llu steps, %llu messages, %llu leaders, %llu "
              "committed, %llu crashes, %llu partitions, %llu conf changes, %llu transfers, %llu reads, %llu/%llu "
              "snapshots taken/installed; slowest heal->commit %lld ms (seed %llu)%s\n",
              (unsigned long long)seeds, (unsigned long long)start, secs, seeds / secs,
              (unsigned long long)total.steps, (unsigned long long)total.messages,
              (unsigned long long)total.leaders, (unsigned long long)total.committed,
              (unsigned long long)total.crashes, (unsigned long long)total.partitions,
              (unsigned long long)total.conf_changes, (unsigned long long)total.transfers,
              (unsigned long long)total.reads, (unsigned long long)total.snapshots_taken, (unsigned long long)total.snapshots_installed,
              (long long)worst_heal_ms, (unsigned long long)worst_heal_seed, check_determinism ? "; every seed ran twice identically" : "");
  if (expect_violation) {
    std::printf("NOT CAUGHT: bug %s survived %llu seed(s)\n", std::string(BugName(options.bug)).c_str(),
                (unsigned long long)seeds);
    return 1;
  }
  return 0;
}
