// commitctl cluster status | transfer-leader: the coordinator group (design B.5).
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "tools/commitctl/commands.h"

namespace commitd::commitctl {
namespace {

Endpoint Member(const std::string& id, const std::string& url) {
  return {"coordinator " + id, url, "is that commitd running?"};
}

// /v1/cluster of one coordinator, or an error for the user.
Result<nlohmann::json> ClusterOf(Context& ctx, const Endpoint& at) {
  auto reply = ctx.client->Call(at, "GET", "/v1/cluster");
  if (!reply.ok()) return reply.status();
  if (reply->status != 200 || !reply->body.is_object()) {
    return Status::Unavailable(at.url + " answered /v1/cluster with HTTP " + std::to_string(reply->status) + ": " +
                               ErrorMessage(*reply));
  }
  return std::move(reply->body);
}

}  // namespace

int RunClusterStatus(Context& ctx) {
  auto first = ClusterOf(ctx, ctx.Coordinator());
  if (!first.ok()) {
    PrintError(first.status().message());
    return kExitTrouble;
  }
  nlohmann::json rows = nlohmann::json::array();
  bool trouble = false;
  std::string leader;
  const nlohmann::json members = first->value("members", nlohmann::json::array());
  for (const auto& m : members) {
    const std::string id = Str(m, "id"), url = Str(m, "url");
    auto info = ClusterOf(ctx, Member(id, url));
    if (!info.ok()) {
      rows.push_back({{"id", id}, {"url", url}, {"error", info.status().message()}});
      trouble = true;
      continue;
    }
    nlohmann::json row = {{"id", id},
                          {"url", url},
                          {"role", Str(*info, "role")},
                          {"term", (*info)["term"]},
                          {"leader", Str(*info, "leader")},
                          {"commit_index", (*info)["commit_index"]},
                          {"applied_index", info->value("applied_index", nlohmann::json())},
                          {"membership", Str(m, "membership")}};
    if (Str(*info, "role") == "leader") leader = id;
    rows.push_back(std::move(row));
  }
  if (members.size() <= 1 && first->value("role", "") == "leader") leader = Str(*first, "id");
  if (leader.empty()) trouble = true;
  if (ctx.json) {
    PrintJson({{"leader", leader}, {"members", rows}});
  } else {
    std::printf("leader: %s\n", leader.empty() ? "NONE (no member leads; writes wait)" : leader.c_str());
    std::printf("%-6s %-28s %-14s %-6s %-8s %-10s %-10s %s\n", "id", "url", "role", "term", "leader", "commit",
                "applied", "membership");
    for (const auto& r : rows) {
      if (r.contains("error")) {
        std::printf("%-6s %-28s UNREACHABLE: %s\n", Str(r, "id").c_str(), Str(r, "url").c_str(),
                    Str(r, "error").c_str());
        continue;
      }
      std::printf("%-6s %-28s %-14s %-6s %-8s %-10s %-10s %s\n", Str(r, "id").c_str(), Str(r, "url").c_str(),
                  Str(r, "role").c_str(), Str(r, "term").c_str(), Str(r, "leader").c_str(),
                  Str(r, "commit_index").c_str(), Str(r, "applied_index").c_str(), Str(r, "membership").c_str());
    }
  }
  return trouble ? kExitTrouble : kExitOk;
}

int RunClusterTransferLeader(Context& ctx) {
  const auto to = ctx.flags->Get("to");
  if (!to || to->empty() || !ctx.args.empty()) {
    PrintError("cluster transfer-leader needs --to ID (see commitctl cluster transfer-leader --help)");
    return kExitUsage;
  }
  auto reply = ctx.client->Call(ctx.Coordinator(), "POST", "/v1/cluster/transfer-leader",
                                nlohmann::json{{"to", *to}}.dump());
  if (!reply.ok()) {
    PrintError(reply.status().message());
    return kExitTrouble;
  }
  if (reply->status / 100 != 2) {
    PrintError("transfer refused: " + ErrorMessage(*reply));
    return reply->status == 400 ? kExitUsage : kExitTrouble;
  }
  // Wait (up to 5 s) until the group says the new leader leads.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    auto info = ClusterOf(ctx, ctx.Coordinator());
    std::optional<nlohmann::json> at_leader;
    if (info.ok() && Str(*info, "leader") == *to) {
      auto own = ClusterOf(ctx, Member(*to, Str(*info, "leader_url")));
      if (own.ok()) at_leader = std::move(own).value();
    }
    if (at_leader && at_leader->value("leader_ready", false)) {
      if (ctx.json) {
        PrintJson({{"leader", *to}});
      } else {
        std::printf("leader is now %s\n", to->c_str());
      }
      return kExitOk;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  PrintError("the transfer to " + *to + " did not complete within 5 s (the group may have elected another leader; "
             "see commitctl cluster status)");
  return kExitTrouble;
}

}  // namespace commitd::commitctl
