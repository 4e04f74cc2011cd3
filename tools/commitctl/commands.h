// commitctl's commands. Each returns the exit code (kExitOk, kExitTrouble, kExitUsage).
#pragma once

#include "tools/commitctl/cli.h"

namespace commitd::commitctl {

int RunStatus(Context& ctx);
int RunTxList(Context& ctx);
int RunTxShow(Context& ctx);
int RunInDoubt(Context& ctx);
int RunRetryNow(Context& ctx);
int RunResolve(Context& ctx);
int RunForce(Context& ctx);  // resolve TXID --force commit|abort
int RunClose(Context& ctx);
int RunInspect(Context& ctx);
int RunRecover(Context& ctx);
int RunLogDump(Context& ctx);
int RunClusterStatus(Context& ctx);
int RunClusterTransferLeader(Context& ctx);
int RunClusterAdd(Context& ctx);
int RunClusterRemove(Context& ctx);

// The participants to ask: --participant flags, else the coordinator's registry.
Result<std::vector<Participant>> ParticipantsToAsk(Context& ctx);

}  // namespace commitd::commitctl
