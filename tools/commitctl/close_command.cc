// commitctl close TXID [--yes]: marks finished a transaction whose decision a
// participant contradicted (it had done the other outcome), once an operator
// reconciled the data by hand.
#include <cstdio>

#include "common/http_types.h"
#include "tools/commitctl/commands.h"
#include "tools/commitctl/transaction_view.h"

namespace commitd::commitctl {

int RunClose(Context& ctx) {
  if (ctx.args.size() != 1) {
    PrintError("close needs exactly one TXID (see commitctl close --help)");
    return kExitUsage;
  }
  const std::string& txid = ctx.args[0];
  auto tx = GetTransaction(ctx, txid);
  if (!tx.ok()) {
    PrintError(tx.status().message());
    return kExitTrouble;
  }
  const std::string state = tx->status == 200 ? Str(tx->body, "state") : "unknown (no record)";
  if (state != "contradicted") {
    PrintError(txid + " is " + state + ": only a transaction a participant contradicted is closed by hand");
    return kExitTrouble;
  }
  const bool confirmed = ctx.flags->Has("yes");
  if (!ctx.json) {
    PrintTransaction(tx->body);
    std::printf("\nthe decision was %s, and the participants above whose state differs had finished the transaction "
                "the other way: the data disagrees. Reconcile it by hand first (e.g. a compensating transaction); "
                "closing marks %s finished and the coordinator stops tracking it.\n",
                Str(tx->body, "outcome").c_str(), txid.c_str());
  }
  if (!confirmed) {
    if (ctx.json) {
      PrintJson({{"transaction", tx->body}, {"closed", false}});
    } else {
      std::printf("nothing changed: run again with --yes once the data is reconciled\n");
    }
    return kExitUsage;
  }
  auto reply = ctx.client->Call(ctx.Coordinator(), "POST",
                                "/v1/admin/transactions/" + http::PercentEncode(txid) + "/close", "{}");
  if (!reply.ok()) {
    PrintError(reply.status().message());
    return kExitTrouble;
  }
  if (reply->status != 200) {
    PrintError("coordinator refused to close " + txid + " (HTTP " + std::to_string(reply->status) +
               "): " + ErrorMessage(*reply));
    return kExitTrouble;
  }
  if (ctx.json) {
    PrintJson({{"transaction", reply->body}, {"closed", true}});
  } else {
    std::printf("closed: %s is marked finished\n", txid.c_str());
  }
  return kExitOk;
}

}  // namespace commitd::commitctl
