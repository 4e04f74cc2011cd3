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

}  // namespace commitd::commitctl
