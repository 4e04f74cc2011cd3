#include <cstdio>

#include "tools/commitctl/commands.h"
#include "tools/commitctl/transaction_view.h"

namespace commitd::commitctl {

Result<std::vector<Participant>> ParticipantsToAsk(Context& ctx) {
  if (!ctx.participants.empty()) return ctx.participants;
  auto reply = ctx.client->Call(ctx.Coordinator(), "GET", "/v1/participants");
  if (!reply.ok()) {
    return Status(reply.status().code(),
                  reply.status().message() + " (or name the agents with --participant NAME=URL)");
  }
  if (reply->status != 200) {
    return Status::Unavailable("the coordinator answered GET /v1/participants with HTTP " +
                               std::to_string(reply->status) + ": " + ErrorMessage(*reply) +
                               " (or name the agents with --participant NAME=URL)");
  }
  std::vector<Participant> out;
  for (const auto& p : ArrayOf(reply->body, "participants")) {
    out.push_back({Str(p, "name"), Str(p, "url")});
  }
  return out;
}

namespace {

// What the coordinator says about txid, for one table cell.
std::string CoordinatorOutcome(Context& ctx, const std::string& txid) {
  auto tx = GetTransaction(ctx, txid);
  if (!tx.ok()) return "unknown (coordinator unreachable)";
  if (tx->status == 404) return "aborted (no record)";
  std::string outcome = Str(tx->body, "outcome");
  if (!IsFinished(*tx)) outcome += " (" + Str(tx->body, "state") + ")";
  return outcome;
}

}  // namespace

int RunInDoubt(Context& ctx) {
  auto participants = ParticipantsToAsk(ctx);
  if (!participants.ok()) {
    PrintError(participants.status().message());
    return kExitTrouble;
  }
  if (participants->empty()) {
    PrintError("no participants to ask: pass --participant NAME=URL (the coordinator has none registered)");
    return kExitTrouble;
  }

  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::string> failures;
  for (const Participant& p : *participants) {
    auto reply = ctx.client->Call(ctx.Agent(p), "GET", "/v1/transactions?state=prepared");
    if (!reply.ok()) {
      failures.push_back(reply.status().message());
      continue;
    }
    if (reply->status != 200) {
      failures.push_back("participant " + p.name + " answered HTTP " + std::to_string(reply->status) + ": " +
                         ErrorMessage(*reply));
      continue;
    }
    for (const auto& t : ArrayOf(reply->body, "transactions")) {
      const std::string txid = Str(t, "txid");
      rows.push_back({{"txid", txid},
                      {"participant", p.name},
                      {"age_ms", IntOr(t, "age_ms", 0)},
                      {"state", Str(t, "state")},
                      {"coordinator_outcome", CoordinatorOutcome(ctx, txid)},
                      {"last_error", Str(t, "last_error")}});
    }
  }

  if (ctx.json) {
    PrintJson({{"in_doubt", rows}, {"errors", failures}});
  } else {
    for (const auto& f : failures) PrintError(f);
    if (rows.empty()) {
      std::printf("no prepared transactions held by %zu participant(s)%s\n",
                  participants->size() - failures.size(), failures.empty() ? "" : " that answered");
    } else {
      std::printf("%-40s %-12s %-8s %-12s %-26s %s\n", "TXID", "PARTICIPANT", "AGE", "STATE", "COORDINATOR SAYS",
                  "LAST ERROR");
      for (const auto& r : rows) {
        std::printf("%-40s %-12s %-8s %-12s %-26s %s\n", Str(r, "txid").c_str(), Str(r, "participant").c_str(),
                    FormatAge(IntOr(r, "age_ms", 0)).c_str(), Str(r, "state").c_str(),
                    Str(r, "coordinator_outcome").c_str(), Str(r, "last_error").c_str());
      }
      std::printf("%zu prepared transaction(s) held in doubt.\n"
                  "next: `commitctl resolve TXID` pushes a decided one to its participants; a record that stays "
                  "after its decision is known cannot be applied (see LAST ERROR: rows changed behind the agent?)\n",
                  rows.size());
    }
  }
  return rows.empty() && failures.empty() ? kExitOk : kExitTrouble;
}

}  // namespace commitd::commitctl
