// commitd-sim: the deterministic simulator of commitd.
//
//   commitd-sim --seed N [--trace]            one seed; on a violation, the trace that led to it
//   commitd-sim --seeds N [--start S]         N seeds from S; stops at the first violation
//   commitd-sim --seeds N --soak-seeds M      M seeds instead when COMMITD_SOAK=1
//   --bug NAME                                a deliberate bug (commit-on-timeout, ack-before-durable,
//                                             abort-ack-before-durable, forget-decision,
//                                             presume-without-record); with
//                                             --expect-violation, exit 0 iff caught
//   --check-determinism                       run every seed twice and compare the traces
//   --protocol 2pc|3pc                        what the client asks for
//   --scenario chaos|coordinator-loss|partition|power-loss   see tests/sim/world.h
//                                             (power-loss bug: commit-without-fsync)
//   --coordinators 1|3                        one coordinator (default) or a Raft group of three
//                                             (chaos and power-loss only; group bugs: group-no-resume, group-stale-read,
//                                             group-presume-without-record, group-overwrite-decision,
//                                             group-send-before-sync, group-reply-before-durable;
//                                             with --transfer-leader: group-no-retake)
//   --isolate-leader                          group, 3PC: also cut the ready leader off from the other
//                                             members (2PC always does; participants keep every link)
//   --transfer-leader                         group: the ready leader hands over its leadership at random
//                                             moments, half the time to a member cut off from it
//   --participants 2|3                        banks in the run; with 3, a third of the transfers have three
//                                             branches (one debit, two credits)
//   --connection-resets                       chaos: a crash resets the connections of the requests the node
//                                             was handling; their callers fail at once instead of timing out
//   --client-retries                          single coordinator: each transfer carries an Idempotency-Key and
//                                             is retried with it on no answer or an error, as with a group;
//                                             a share of answers (drawn per seed) is lost on its way
//                                             (bug: replay-as-abort)
//   --refuse-marks                            single coordinator: its log refuses finished marks until the
//                                             faults end; records let go of are taken over again
//                                             (bug: no-let-go-retake)
//   --adversary                               hostile callers in every seed (tests/sim/adversary.h);
//                                             --adversary-outsider adds the agent messages no rule refuses
//                                             yet; --adversary-only ACTOR keeps one actor
//   --prepares-without-log                    the coordinators' prepares name no decision log (as before
//                                             prepares carried it): agents ask without naming one
//   --expect-blocking                         coordinator-loss: exit 0 iff some seed left a transaction
//                                             in doubt while the coordinator was down (and none broke
//                                             an invariant)
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/program.h"
#include "common/wire.h"
#include "tests/sim/options.h"
#include "tests/sim/world.h"

#ifndef COMMITD_SOURCE_DIR
#define COMMITD_SOURCE_DIR "."
#endif

namespace {

using commitd::sim::Bug;
using commitd::sim::RunResult;
using commitd::sim::SimOptions;

constexpr const char* kUsage =
    "usage: commitd-sim (--seed N | --seeds N [--start S] [--soak-seeds M]) [--protocol 2pc|3pc]\n"
    "                   [--scenario chaos|coordinator-loss|partition|power-loss] [--expect-blocking]\n"
    "                   [--bug commit-on-timeout|ack-before-durable|abort-ack-before-durable|forget-decision|\n"
    "                    presume-without-record]\n"
    "                   [--expect-violation]\n"
    "                   [--coordinators 1|3] [--bug group-no-resume|group-stale-read|\n"
    "                    group-presume-without-record|group-overwrite-decision|group-send-before-sync|\n"
    "                    group-reply-before-durable|group-no-retake (with --transfer-leader)]\n"
    "                   [--isolate-leader] [--transfer-leader] [--trace] [--trace-lines N] [--check-determinism]\n"
    "                   [--refuse-marks [--bug no-let-go-retake]] [--participants 2|3] [--connection-resets]\n"
    "                   [--client-retries [--bug replay-as-abort]]\n"
    "                   [--adversary [--adversary-outsider] [--adversary-only ACTOR]]\n"
    "                   [--bug accept-404-from-non-owner (with --adversary)] [--prepares-without-log]\n"
    "                   [--bug commit-without-fsync (caught with --scenario power-loss)]\n"
    "                   [--bug fenced-as-prepared|answer-before-staging|force-without-adoption]\n"
    "                   [--bug fence-too-old (caught with --scenario coordinator-loss)]\n"
    "                   [--focus NAME]\n"
    "       commitd-sim --version | --help\n"
    "\n"
    "Runs the coordinator and agents under the deterministic simulator and checks\n"
    "the invariants after every step (docs/simulation.md).\n"
    "\n"
    "exit: 0 every seed passed (with --expect-violation: a violation was found;\n"
    "      with --expect-blocking: a seed blocked), 1 a violation (or the expected\n"
    "      one was not found), 2 usage error\n";

const commitd::Program kProgram("commitd-sim", kUsage);

int Usage(const std::string& error) { return kProgram.UsageError(error); }

bool ParseU64(const char* text, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return false;
  *out = v;
  return true;
}

std::string TempDir() {
  std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
  std::string dir = base + "/commitd-sim-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  return dir;
}

// The txid a violation message names: "atomicity: c1-1-4-<hex> committed at ..." -> "c1-1-4-<hex>".
std::string TxidOf(const std::string& violation) {
  const std::size_t colon = violation.find(": ");
  if (colon == std::string::npos) return "";
  std::size_t begin = colon + 2;
  if (violation.compare(begin, 4, "the ") == 0) {  // "the client was told c1.1.4 ..."
    const std::size_t told = violation.find("told ", begin);
    if (told == std::string::npos) return "";
    begin = told + 5;
  }
  const std::size_t end = violation.find(' ', begin);
  std::string txid = violation.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  return commitd::wire::IsValidTxid(txid) && txid.find('-') != std::string::npos ? txid : "";
}

}  // namespace

int main(int argc, char** argv) {
  // The nodes' own logs: the trace says what happened, in virtual time.
  commitd::log::SetMinLevel(commitd::log::Level::kOff);
  SimOptions options;
  options.source_dir = COMMITD_SOURCE_DIR;
  uint64_t single = 0, seeds = 0, start = 1, soak_seeds = 0;
  bool have_single = false, expect_violation = false, expect_blocking = false, determinism = false;
  std::string protocol = "2pc";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](uint64_t* out) {
      if (i + 1 >= argc || !ParseU64(argv[i + 1], out)) return false;
      ++i;
      return true;
    };
    auto text = [&]() -> const char* {
      if (i + 1 >= argc) std::exit(Usage(arg + " needs a value"));
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("%s\n", kProgram.VersionLine().c_str());
      return 0;
    } else if (arg == "--seed") {
      if (!value(&single)) return Usage("--seed needs a number");
      have_single = true;
    } else if (arg == "--seeds") {
      if (!value(&seeds)) return Usage("--seeds needs a number");
    } else if (arg == "--start") {
      if (!value(&start)) return Usage("--start needs a number");
    } else if (arg == "--soak-seeds") {
      if (!value(&soak_seeds)) return Usage("--soak-seeds needs a number");
    } else if (arg == "--trace-lines") {
      uint64_t n = 0;
      if (!value(&n)) return Usage("--trace-lines needs a number");
      options.trace_lines = n;
    } else if (arg == "--protocol") {
      protocol = text();
    } else if (arg == "--scenario") {
      auto scenario = commitd::sim::ParseScenario(text());
      if (!scenario) return Usage("unknown --scenario " + std::string(argv[i]));
      options.scenario = *scenario;
    } else if (arg == "--focus") {
      options.focus = text();
    } else if (arg == "--expect-blocking") {
      expect_blocking = true;
    } else if (arg == "--bug") {
      auto bug = commitd::sim::ParseBug(text());
      if (!bug) return Usage("unknown --bug " + std::string(argv[i]));
      options.bug = *bug;
    } else if (arg == "--coordinators") {
      uint64_t n = 0;
      if (!value(&n) || (n != 1 && n != 3)) return Usage("--coordinators must be 1 or 3");
      options.coordinators = static_cast<int>(n);
    } else if (arg == "--isolate-leader") {
      options.isolate_leader = true;
    } else if (arg == "--transfer-leader") {
      options.transfer_leader = true;
    } else if (arg == "--refuse-marks") {
      options.refuse_marks = true;
    } else if (arg == "--connection-resets") {
      options.connection_resets = true;
    } else if (arg == "--client-retries") {
      options.client_retries = true;
    } else if (arg == "--participants") {
      uint64_t n = 0;
      if (!value(&n) || (n != 2 && n != 3)) return Usage("--participants must be 2 or 3");
      options.participants = static_cast<int>(n);
    } else if (arg == "--adversary") {
      options.adversary = true;
    } else if (arg == "--adversary-outsider") {
      options.adversary = true;
      options.adversary_outsider = true;
    } else if (arg == "--adversary-only") {
      options.adversary = true;
      options.adversary_only = text();
    } else if (arg == "--prepares-without-log") {
      options.prepares_without_log = true;
    } else if (arg == "--trace") {
      options.trace = true;
    } else if (arg == "--expect-violation") {
      expect_violation = true;
    } else if (arg == "--check-determinism") {
      determinism = true;
    } else {
      return Usage((arg.rfind("-", 0) == 0 ? "unknown flag " : "unexpected argument ") + arg);
    }
  }
  if (protocol != "2pc" && protocol != "3pc") return Usage("--protocol must be 2pc or 3pc");
  options.protocol = protocol;
  if (expect_blocking && options.scenario != commitd::sim::Scenario::kCoordinatorLoss) {
    return Usage("--expect-blocking needs --scenario coordinator-loss");
  }
  if (options.isolate_leader && options.coordinators == 1) return Usage("--isolate-leader needs --coordinators 3");
  if (options.transfer_leader && options.coordinators == 1) return Usage("--transfer-leader needs --coordinators 3");
  if (options.refuse_marks && options.coordinators != 1) return Usage("--refuse-marks needs --coordinators 1");
  if (options.refuse_marks && options.scenario != commitd::sim::Scenario::kChaos &&
      options.scenario != commitd::sim::Scenario::kPowerLoss) {
    return Usage("--refuse-marks runs the chaos and power-loss scenarios only");
  }
  if (options.connection_resets && options.scenario != commitd::sim::Scenario::kChaos) {
    return Usage("--connection-resets runs the chaos scenario only (a power loss resets nothing)");
  }
  if (options.client_retries && options.coordinators != 1) {
    return Usage("--client-retries needs --coordinators 1 (a group's client always retries)");
  }
  if (options.client_retries && options.scenario != commitd::sim::Scenario::kChaos &&
      options.scenario != commitd::sim::Scenario::kPowerLoss) {
    return Usage("--client-retries runs the chaos and power-loss scenarios only");
  }
  if (options.client_retries && options.adversary) {
    return Usage(
        "--client-retries runs without --adversary (its restarts replace the log, which forgets the client's keys)");
  }
  if (options.refuse_marks && options.adversary) {
    return Usage("--refuse-marks runs without --adversary (its coordinators would refuse marks too)");
  }
  if (options.bug == Bug::kReplayAsAbort && !options.client_retries) {
    return Usage("--bug replay-as-abort needs --client-retries (only its client retries a single coordinator)");
  }
  if (options.bug == Bug::kNoLetGoRetake && !options.refuse_marks) {
    return Usage("--bug no-let-go-retake needs --refuse-marks (marks must be let go of first)");
  }
  if (options.coordinators > 1 && options.scenario != commitd::sim::Scenario::kChaos &&
      options.scenario != commitd::sim::Scenario::kPowerLoss) {
    return Usage("--coordinators 3 runs the chaos and power-loss scenarios only");
  }
  if (options.adversary && options.scenario != commitd::sim::Scenario::kChaos) {
    return Usage("--adversary runs the chaos scenario only");
  }
  if (options.bug == Bug::kAccept404FromNonOwner && !options.adversary) {
    return Usage("--bug accept-404-from-non-owner needs --adversary (its coordinator that owns nothing)");
  }
  if (have_single == (seeds != 0)) return Usage("give exactly one of --seed N and --seeds N");
  const char* soak = std::getenv("COMMITD_SOAK");
  if (soak_seeds != 0 && soak != nullptr && std::string(soak) == "1") seeds = soak_seeds;
  if (have_single) {
    start = single;
    seeds = 1;
  }
  options.tmp_dir = TempDir();

  std::string replay_flags;
  if (protocol != "2pc") replay_flags += " --protocol " + protocol;
  if (options.scenario != commitd::sim::Scenario::kChaos) {
    replay_flags += " --scenario " + std::string(commitd::sim::ScenarioName(options.scenario));
  }
  if (options.isolate_leader) replay_flags += " --isolate-leader";
  if (options.transfer_leader) replay_flags += " --transfer-leader";
  if (options.refuse_marks) replay_flags += " --refuse-marks";
  if (options.connection_resets) replay_flags += " --connection-resets";
  if (options.client_retries) replay_flags += " --client-retries";
  if (options.participants != 2) replay_flags += " --participants " + std::to_string(options.participants);
  if (options.coordinators > 1) replay_flags += " --coordinators " + std::to_string(options.coordinators);
  if (options.adversary_outsider) {
    replay_flags += " --adversary-outsider";
  } else if (options.adversary) {
    replay_flags += " --adversary";
  }
  if (options.prepares_without_log) replay_flags += " --prepares-without-log";
  if (!options.adversary_only.empty()) replay_flags += " --adversary-only " + options.adversary_only;
  if (options.bug != Bug::kNone) replay_flags += " --bug " + std::string(commitd::sim::BugName(options.bug));

  const auto t0 = std::chrono::steady_clock::now();
  uint64_t ran = 0, transactions = 0, committed = 0, aborted = 0, crashes = 0, power_losses = 0, events = 0;
  int64_t max_settle = 0;
  uint64_t blocked_seeds = 0, blocked_transactions = 0;
  uint64_t first_blocked_seed = 0;
  std::vector<int64_t> decided_after_loss;  // per seed, ms
  int exit_code = 0;
  bool found = false;
  for (uint64_t seed = start; seed < start + seeds; ++seed) {
    options.seed = seed;
    RunResult r = commitd::sim::RunSeed(options);
    ++ran;
    transactions += r.transactions;
    committed += r.committed;
    aborted += r.aborted;
    crashes += r.crashes;
    power_losses += r.power_losses;
    events += r.events;
    if (r.settle_ms > max_settle) max_settle = r.settle_ms;
    if (r.in_doubt_after_loss == 0) decided_after_loss.push_back(r.decided_after_loss_ms);
    if (r.in_doubt_after_loss > 0) {
      if (blocked_seeds++ == 0) first_blocked_seed = seed;
      blocked_transactions += static_cast<uint64_t>(r.in_doubt_after_loss);
    }
    if (have_single) {
      std::printf("seed %llu: %s\n  profile: %s\n  %llu transactions (%llu committed, %llu aborted answers), "
                  "%llu crashes, %llu messages, %llu events, %.1f s virtual, settled %.1f s after the last fault, "
                  "trace hash %016llx\n",
                  static_cast<unsigned long long>(seed), r.ok ? "ok" : "VIOLATION", r.profile.c_str(),
                  static_cast<unsigned long long>(r.transactions), static_cast<unsigned long long>(r.committed),
                  static_cast<unsigned long long>(r.aborted), static_cast<unsigned long long>(r.crashes),
                  static_cast<unsigned long long>(r.messages), static_cast<unsigned long long>(r.events),
                  static_cast<double>(r.virtual_ms) / 1000, static_cast<double>(r.settle_ms) / 1000,
                  static_cast<unsigned long long>(r.trace_hash));
    }
    if (determinism) {
      RunResult again = commitd::sim::RunSeed(options);
      if (again.trace_hash != r.trace_hash || again.trace_lines != r.trace_lines || again.ok != r.ok) {
        std::printf("NONDETERMINISM: seed %llu gave two different traces\n", static_cast<unsigned long long>(seed));
        exit_code = 1;
        break;
      }
    }
    if (!r.ok) {
      found = true;
      std::printf("VIOLATION at seed %llu (after %llu seed(s)): %s\n  profile: %s\nreplay: commitd-sim --seed %llu%s\n",
                  static_cast<unsigned long long>(seed), static_cast<unsigned long long>(ran), r.violation.c_str(),
                  r.profile.c_str(), static_cast<unsigned long long>(seed), replay_flags.c_str());
      // The schedule that did it: the same seed again (deterministic), printing
      // every line about the transaction the violation names.
      const std::string txid = TxidOf(r.violation);
      if (!txid.empty() && options.focus.empty() && !determinism) {
        SimOptions again = options;
        again.focus = txid;
        again.trace_lines = 0;
        commitd::sim::RunSeed(again);
        std::printf("(replay with: commitd-sim --seed %llu%s --focus %s)\n", static_cast<unsigned long long>(seed),
                    replay_flags.c_str(), txid.c_str());
      }
      exit_code = 1;
      break;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%llu seed(s) in %.2f s: %.1f seeds/s, %.0f simulated tx/s (%llu tx: %llu committed, %llu aborted "
              "answers), %llu crashes, %.0f events/s, max settle %.1f s\n",
              static_cast<unsigned long long>(ran), secs, static_cast<double>(ran) / secs,
              static_cast<double>(transactions) / secs, static_cast<unsigned long long>(transactions),
              static_cast<unsigned long long>(committed), static_cast<unsigned long long>(aborted),
              static_cast<unsigned long long>(crashes), static_cast<double>(events) / secs,
              static_cast<double>(max_settle) / 1000);
  if (options.scenario == commitd::sim::Scenario::kPowerLoss) {
    std::printf("power loss: %llu of the %llu crashes\n", static_cast<unsigned long long>(power_losses),
                static_cast<unsigned long long>(crashes));
  }
  if (options.scenario == commitd::sim::Scenario::kCoordinatorLoss) {
    std::printf("coordinator loss (%s): %llu of %llu seed(s) left %llu transaction(s) in doubt %lld ms after the "
                "coordinator died%s\n",
                protocol.c_str(), static_cast<unsigned long long>(blocked_seeds), static_cast<unsigned long long>(ran),
                static_cast<unsigned long long>(blocked_transactions),
                static_cast<long long>(commitd::sim::kNonBlockingBoundMs),
                blocked_seeds != 0 ? (" (first: seed " + std::to_string(first_blocked_seed) + ")").c_str() : "");
    if (!decided_after_loss.empty()) {
      std::sort(decided_after_loss.begin(), decided_after_loss.end());
      std::printf("  seeds where every participant decided without the coordinator: %zu; time from the crash to the "
                  "last decision: median %.2f s, max %.2f s\n",
                  decided_after_loss.size(),
                  static_cast<double>(decided_after_loss[decided_after_loss.size() / 2]) / 1000,
                  static_cast<double>(decided_after_loss.back()) / 1000);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(options.tmp_dir, ec);
  if (expect_blocking) {
    if (exit_code != 0) return exit_code;
    if (blocked_seeds == 0) {
      std::printf("expected %s to block in some seed, but every participant decided without the coordinator\n",
                  protocol.c_str());
      return 1;
    }
    return 0;
  }
  if (expect_violation) {
    if (found) {
      std::printf("expected violation found (bug%s)\n", replay_flags.c_str());
      return 0;
    }
    std::printf("expected a violation%s, found none in %llu seed(s)\n", replay_flags.c_str(),
                static_cast<unsigned long long>(ran));
    return 1;
  }
  return exit_code;
}
