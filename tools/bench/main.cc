// commitd-bench: load generator for commitd and the SQLite baseline it is compared to.
#include <cstdio>
#include <cstring>
#include <set>
#include <string>

#include "common/flags.h"
#include "tools/bench/modes.h"

namespace {

constexpr const char* kUsage = R"(usage: commitd-bench MODE [flags]

modes:
  transfers      --coordinator URL --clients N --duration-s S [--warmup-s W]
                 [--accounts-a alice,carol --accounts-b bob,dave | --account-prefix acct --accounts N]
                 [--participant-a bank-a --participant-b bank-b] [--amount 1]
                 [--protocol 2pc|3pc] [--token SECRET] [--json]
                 N concurrent clients each loop POST /v1/transactions with a transfer
                 (debit+journal on A, credit+journal on B); client i takes rows i, i+N, ... in turn.
                 Defaults: --clients 1 --duration-s 10 --warmup-s 1 --account-prefix acct --accounts 256.
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
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  Mode mode;
  if (name == "transfers") {
    mode = {RunTransfers,
            {"coordinator", "clients", "duration-s", "warmup-s", "accounts-a", "accounts-b", "account-prefix",
             "accounts", "participant-a", "participant-b", "amount", "protocol", "token"},
            {"json", "help"}};
  } else if (name == "agent") {
    mode = {RunAgentLoad,
            {"agent", "participant", "clients", "duration-s", "warmup-s", "account-prefix", "accounts",
             "max-in-flight", "max-batch"},
            {"json", "unbatched", "help"}};
  } else if (name == "sqlite-commit") {
    mode = {RunSqliteCommit, {"db", "count", "duration-s"}, {"json", "help"}};
  } else if (name == "setup-bank") {
    mode = {RunSetupBank, {"db", "prefix", "accounts", "balance"}, {"help"}};
  } else {
    std::fprintf(stderr, "commitd-bench: unknown mode '%s'\n\n%s", name.c_str(), kUsage);
    return 2;
  }
  auto flags = commitd::Flags::Parse(argc - 1, argv + 1, mode.valued, mode.switches);
  if (!flags.ok()) {
    std::fprintf(stderr, "commitd-bench %s: %s (see commitd-bench --help)\n", name.c_str(),
                 flags.status().message().c_str());
    return 2;
  }
  if (flags->Has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!flags->positional().empty()) {
    std::fprintf(stderr, "commitd-bench %s: unexpected argument '%s'\n", name.c_str(),
                 flags->positional().front().c_str());
    return 2;
  }
  return mode.run(*flags);
}
