// The bench's modes. Each reads its own flags and returns the process exit
// code: 0 done, 1 the run failed, 2 usage error.
#pragma once

#include "common/flags.h"

namespace commitd::bench {

// Concurrent transfers through a coordinator (POST /v1/transactions).
int RunTransfers(const Flags& flags);
// Prepare + commit straight to one agent (its group commit, no coordinator).
int RunAgentLoad(const Flags& flags);
// One-row SQLite WAL synchronous=FULL commits in series: the baseline.
int RunSqliteCommit(const Flags& flags);
// Creates the example bank schema and N accounts in one database file.
int RunSetupBank(const Flags& flags);
// What a bare hand-off costs here: round trips between two processes over
// loopback TCP, and between two threads through a condition variable.
int RunHops(const Flags& flags);
// A coordinator group's state machine snapshot: its size, and the time and
// peak memory of serializing and restoring it.
int RunStateSnapshot(const Flags& flags);

}  // namespace commitd::bench
