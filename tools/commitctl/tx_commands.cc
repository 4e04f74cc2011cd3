#include <cstdio>

#include "tools/commitctl/commands.h"
#include "tools/commitctl/transaction_view.h"

namespace commitd::commitctl {

int RunTxList(Context& ctx) {
  std::string target = "/v1/transactions";
  std::string sep = "?";
  if (auto state = ctx.flags->Get("state")) {
    target += sep + "state=" + http::PercentEncode(*state);
    sep = "&";
  }
  if (auto limit = ctx.flags->Get("limit")) target += sep + "limit=" + http::PercentEncode(*limit);

  auto reply = ctx.client->Call(ctx.Coordinator(), "GET", target);
  if (!reply.ok()) {
    PrintError(reply.status().message());
    return kExitTrouble;
  }
  if (reply->status == 400) {
    PrintError("coordinator refused the listing: " + ErrorMessage(*reply));
    return kExitUsage;
  }
  if (reply->status != 200 || !reply->body.is_object()) {
    PrintError("coordinator answered GET " + target + " with HTTP " + std::to_string(reply->status) + ": " +
               ErrorMessage(*reply));
    return kExitTrouble;
  }
  const nlohmann::json list = ArrayOf(reply->body, "transactions");
  if (ctx.json) {
    PrintJson(reply->body);
    return kExitOk;
  }
  if (list.empty()) {
    std::printf("no transactions%s\n",
                ctx.flags->Has("state") ? (" in state " + *ctx.flags->Get("state")).c_str() : "");
    return kExitOk;
  }
  std::printf("%-40s %-8s %-12s %-10s %s\n", "TXID", "PROTOCOL", "STATE", "OUTCOME", "AGE");
  for (const auto& t : list) {
    std::printf("%-40s %-8s %-12s %-10s %s\n", Str(t, "txid").c_str(), Str(t, "protocol").c_str(),
                Str(t, "state").c_str(), Str(t, "outcome").c_str(), FormatAge(IntOr(t, "age_ms", 0)).c_str());
  }
  std::printf("%zu transaction(s); `commitctl tx show TXID` for details\n", list.size());
  return kExitOk;
}

int RunTxShow(Context& ctx) {
  if (ctx.args.size() != 1) {
    PrintError("tx show needs exactly one TXID (see commitctl tx show --help)");
    return kExitUsage;
  }
  const std::string& txid = ctx.args[0];
  auto tx = GetTransaction(ctx, txid);
  if (!tx.ok()) {
    PrintError(tx.status().message());
    return kExitTrouble;
  }
  if (ctx.json) {
    PrintJson(tx->body);
  } else if (tx->status == 404) {
    std::printf("commitd has no record of %s: under presumed abort it did not commit (outcome aborted).\n"
                "check the txid; a participant still holding it prepared aborts when it asks.\n",
                txid.c_str());
  } else {
    PrintTransaction(tx->body);
    if (Str(tx->body, "outcome") == "pending") {
      std::printf("next: not decided yet; it aborts by itself at its prepare deadline\n");
    } else if (IsContradicted(*tx)) {
      PrintContradictedNext(txid);
    } else if (!IsFinished(*tx)) {
      std::printf("next: decided, still being delivered; `commitctl resolve %s` pushes it\n", txid.c_str());
    }
  }
  return tx->status == 404 || Str(tx->body, "outcome") == "pending" ? kExitTrouble : kExitOk;
}

}  // namespace commitd::commitctl
