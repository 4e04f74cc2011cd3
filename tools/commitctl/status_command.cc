#include <algorithm>
#include <cstdio>

#include "tools/commitctl/commands.h"

namespace commitd::commitctl {
namespace {

constexpr int kCountLimit = 10000;

// GET target from the coordinator; a 2xx JSON object or an error for the user.
Result<nlohmann::json> GetObject(Context& ctx, const std::string& target) {
  auto reply = ctx.client->Call(ctx.Coordinator(), "GET", target);
  if (!reply.ok()) return reply.status();
  if (reply->status / 100 != 2 || !reply->body.is_object()) {
    return Status::Unavailable("coordinator answered GET " + target + " with HTTP " + std::to_string(reply->status) +
                               ": " + ErrorMessage(*reply));
  }
  return std::move(reply->body);
}

std::string CountText(std::size_t n) {
  return n >= static_cast<std::size_t>(kCountLimit) ? std::to_string(n) + "+" : std::to_string(n);
}

}  // namespace

int RunStatus(Context& ctx) {
  const std::string limit = "&limit=" + std::to_string(kCountLimit);
  auto cluster = GetObject(ctx, "/v1/cluster");
  if (!cluster.ok()) {
    PrintError(cluster.status().message());
    return kExitTrouble;
  }
  auto participants = GetObject(ctx, "/v1/participants");
  auto pending = GetObject(ctx, "/v1/transactions?state=pending" + limit);
  auto in_doubt = GetObject(ctx, "/v1/transactions?state=in_doubt" + limit);
  for (const auto* r : {&participants, &pending, &in_doubt}) {
    if (!r->ok()) {
      PrintError(r->status().message());
      return kExitTrouble;
    }
  }

  const nlohmann::json parts = ArrayOf(*participants, "participants");
  std::size_t n_pending = 0;  // an undecided 3PC transaction in doubt is counted as in doubt only
  for (const auto& t : ArrayOf(*pending, "transactions")) n_pending += IsTrue(t, "in_doubt") ? 0 : 1;
  const nlohmann::json doubtful = ArrayOf(*in_doubt, "transactions");
  const std::size_t n_in_doubt = doubtful.size();
  int64_t oldest_in_doubt_ms = 0;
  for (const auto& t : doubtful) oldest_in_doubt_ms = std::max(oldest_in_doubt_ms, IntOr(t, "age_ms", 0));
  const auto contradicted = std::count_if(doubtful.begin(), doubtful.end(),
                                          [](const nlohmann::json& t) { return Str(t, "state") == "contradicted"; });
  int unhealthy = 0;
  for (const auto& p : parts) unhealthy += IsTrue(p, "healthy") ? 0 : 1;
  const bool trouble = unhealthy > 0 || n_in_doubt > 0;

  if (ctx.json) {
    PrintJson({{"cluster", *cluster},
               {"participants", parts},
               {"pending", n_pending},
               {"in_doubt", n_in_doubt},
               {"contradicted", contradicted},
               {"oldest_in_doubt_ms", oldest_in_doubt_ms},
               {"ok", !trouble}});
    return trouble ? kExitTrouble : kExitOk;
  }

  std::printf("coordinator %s at %s: %s, term %s, leader %s\n", Str(*cluster, "id").c_str(),
              ctx.coordinator_url.c_str(), Str(*cluster, "role").c_str(), Str(*cluster, "term").c_str(),
              Str(*cluster, "leader").c_str());
  if (cluster->contains("members") && (*cluster)["members"].size() > 1) {
    for (const auto& m : (*cluster)["members"]) {
      std::printf("  member %-8s %-10s %s\n", Str(m, "id").c_str(), Str(m, "role").c_str(), Str(m, "url").c_str());
    }
  }
  std::printf("participants: %zu registered, %d unhealthy\n", parts.size(), unhealthy);
  const int64_t now = WallNowMs();
  for (const auto& p : parts) {
    const int64_t seen = IntOr(p, "last_seen_ms", 0);
    std::string when = seen > 0 ? "last seen " + FormatAge(now - seen) + " ago" : "never reached";
    std::printf("  %-12s %-9s %-28s %s", Str(p, "name").c_str(), IsTrue(p, "healthy") ? "healthy" : "UNHEALTHY",
                Str(p, "url").c_str(), when.c_str());
    if (!Str(p, "last_error").empty()) std::printf("  (%s)", Str(p, "last_error").c_str());
    std::printf("\n");
  }
  std::printf("transactions: %s pending (not yet decided), %s in doubt (not yet acknowledged by all, or waiting "
              "for an operator)",
              CountText(n_pending).c_str(), CountText(n_in_doubt).c_str());
  if (n_in_doubt > 0) std::printf(", oldest %s", FormatAge(oldest_in_doubt_ms).c_str());
  std::printf("\n");

  if (unhealthy > 0) {
    std::printf("next: start or fix the unhealthy participant agents; commitd keeps retrying them\n");
  }
  if (n_in_doubt > 0) {
    std::printf("next: `commitctl tx list --state in_doubt` to see them, `commitctl retry-now` to push the "
                "decisions, `commitctl in-doubt --participant NAME=URL` to see the agents' side\n");
  }
  if (contradicted > 0) {
    std::printf("next: %lld transaction(s) contradicted by a participant (state contradicted): the data disagrees; "
                "reconcile it by hand, then `commitctl close TXID --yes`\n",
                static_cast<long long>(contradicted));
  }
  if (!trouble) std::printf("ok: nothing in doubt, every participant healthy\n");
  return trouble ? kExitTrouble : kExitOk;
}

}  // namespace commitd::commitctl
