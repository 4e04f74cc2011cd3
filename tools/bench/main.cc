// commitd-bench: load generator for commitd and the SQLite baseline it is compared to.
#include <cstdio>
#include <set>
#include <string>

#include "common/flags.h"
#include "common/program.h"
#include "tools/bench/modes.h"

namespace {

constexpr const char* kUsage = R"(usage: commitd-bench MODE [flags]
       commitd-bench --version | --help

modes:
  transfers      --coordinator URL --clients N --duration-s S [--warmup-s W]
                 [--accounts-a alice,carol --accounts-b bob,dave | --account-prefix acct --accounts N]
                 [--participant-a bank-a --participant-b bank-b] [--amount 1]
                 [--protocol 2pc|3pc] [--idempotency-keys] [--token-file FILE] [--tls-ca FILE] [--json]
                 N concurrent clients each loop POST /v1/transactions with a transfer
                 (debit+journal on A, credit+journal on B); client i takes rows i, i+N, ... in turn.
                 --idempotency-keys: each request carries an Idempotency-Key of its own.
                 Defaults: --clients 1 --duration-s 10 --warmup-s 1 --account-prefix acct --accounts 256.
                 The token is --token-file's content, else $COMMITD_TOKEN (--token SECRET
                 also works, for tests: other local users can read it).
  agent          --agent URL [--participant bank-a] [--clients 64] [--duration-s 10] [--warmup-s 1]
                 [--account-prefix acct] [--accounts 256] [--max-in-flight 8] [--max-batch 16]
                 [--unbatched] [--json]
                 N concurrent clients each loop POST /v1/prepare (debit+journal on a row of its
                 own) then POST /v1/commit straight to one agent: its group-commit throughput.
                 Txids are one sequence, shaped like a coordinator's. Messages share
                 POST /v1/batch exchanges through the coordinator's batching client, at most
                 --max-in-flight at once and --max-batch messages each (the coordinator's own
                 cap is 256; see docs/benchmarking.md); --unbatched sends each alone.
  sqlite-commit  --db FILE [--count N | --duration-s S] [--json]
                 One-row commits in series, WAL + synchronous=FULL (default --duration-s 5).
  setup-bank     --db FILE [--prefix acct] [--accounts 256] [--balance 1000000000]
                 Creates the example bank schema and accounts PREFIX0..PREFIX{N-1}.
  hops           [--count 20000] [--json]
                 What a hand-off costs with no work attached: round trips of one byte to a child
                 process over loopback TCP (each side sleeps in recv), and to another thread
                 through a condition variable (as a job goes to a storage thread and back),
                 with the CPU time both ends take per round trip.

  snapshot       --dir DIR [--decisions 100000] [--format lines|document] [--json]
                 A coordinator group's state machine snapshot (what a leader sends a member
                 behind its log's base): fills DIR/leader.db with N finished transfers, serializes
                 the snapshot, restores it into DIR/member.db, and prints its bytes and each
                 step's time and peak resident memory. --format document: the version-1
                 snapshot (one JSON document) older members sent, for comparison.

transfers and agent print a progress line each second on stderr (committed/s, p50, p99,
errors) and stop early, exit 1, when nothing has answered for 5 s.

exit: 0 done, 1 the run failed, 2 usage error. See docs/benchmarking.md.
)";

struct Mode {
  int (*run)(const commitd::Flags&);
  std::set<std::string> valued;
  std::set<std::string> switches;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace commitd::bench;
  const commitd::Program program("commitd-bench", kUsage);
  if (argc < 2 || argv[1][0] == '-') {
    commitd::Flags flags;
    if (auto exit_code = program.Parse(argc, argv, {}, {}, &flags)) return *exit_code;
    return program.UsageError(argc < 2 ? "a mode is needed" : "unexpected argument " + flags.positional().front());
  }
  const std::string name = argv[1];
  Mode mode;
  if (name == "transfers") {
    mode = {RunTransfers,
            {"coordinator", "clients", "duration-s", "warmup-s", "accounts-a", "accounts-b", "account-prefix",
             "accounts", "participant-a", "participant-b", "amount", "protocol", "token", "token-file", "tls-ca"},
            {"json", "idempotency-keys"}};
  } else if (name == "agent") {
    mode = {RunAgentLoad,
            {"agent", "participant", "clients", "duration-s", "warmup-s", "account-prefix", "accounts",
             "max-in-flight", "max-batch"},
            {"json", "unbatched"}};
  } else if (name == "sqlite-commit") {
    mode = {RunSqliteCommit, {"db", "count", "duration-s"}, {"json"}};
  } else if (name == "setup-bank") {
    mode = {RunSetupBank, {"db", "prefix", "accounts", "balance"}, {}};
  } else if (name == "hops") {
    mode = {RunHops, {"count"}, {"json"}};
  } else if (name == "snapshot") {
    mode = {RunStateSnapshot, {"decisions", "dir", "format"}, {"json"}};
  } else {
    return program.UsageError("unknown mode '" + name + "'");
  }
  commitd::Flags flags;
  if (auto exit_code = program.Parse(argc - 1, argv + 1, mode.valued, mode.switches, &flags)) return *exit_code;
  if (!flags.positional().empty()) return program.UsageError("unexpected argument '" + flags.positional().front() + "'");
  return mode.run(flags);
}
