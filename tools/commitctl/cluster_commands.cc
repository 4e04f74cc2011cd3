// commitctl cluster status | transfer-leader: the coordinator group.
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
  PrintWaiting(5, *to + " to lead");
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

namespace {

// Waits up to `seconds` until member `id` has membership `want` ("voter", or
// "" for gone) in the view of the --coordinator member.
// Prints each membership id passes through on the way, on stderr.
bool WaitForMembership(Context& ctx, const std::string& id, const std::string& want, int seconds) {
  PrintWaiting(seconds, want.empty() ? "the group to commit the removal of " + id
                                     : id + " to catch up with the leader's log and become a " + want);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::string reported = "?";
  while (std::chrono::steady_clock::now() < deadline) {
    auto info = ClusterOf(ctx, ctx.Coordinator());
    if (info.ok()) {
      std::string have;
      for (const auto& m : info->value("members", nlohmann::json::array())) {
        if (Str(m, "id") == id) have = Str(m, "membership");
      }
      if (have == want) return true;
      if (have != reported) {
        std::fprintf(stderr, "commitctl: %s is %s\n", id.c_str(), have.empty() ? "not a member yet" : have.c_str());
        reported = have;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace

int RunClusterAdd(Context& ctx) {
  if (ctx.args.size() != 1 || ctx.args[0].find('=') == std::string::npos) {
    PrintError("cluster add needs ID=http://HOST:PORT (see commitctl cluster add --help)");
    return kExitUsage;
  }
  const std::string id = ctx.args[0].substr(0, ctx.args[0].find('='));
  const std::string url = ctx.args[0].substr(ctx.args[0].find('=') + 1);
  auto reply = ctx.client->Call(ctx.Coordinator(), "POST", "/v1/cluster/members",
                                nlohmann::json{{"id", id}, {"url", url}}.dump());
  if (!reply.ok()) {
    PrintError(reply.status().message());
    return kExitTrouble;
  }
  if (reply->status / 100 != 2) {
    PrintError("add refused: " + ErrorMessage(*reply));
    return reply->status == 400 ? kExitUsage : kExitTrouble;
  }
  if (!WaitForMembership(ctx, id, "voter", 30)) {
    PrintError(id + " was added as a learner but is not a voter after 30 s: is it running with --join, and can "
               "the leader reach " + url + "? (commitctl cluster status)");
    return kExitTrouble;
  }
  if (ctx.json) {
    PrintJson({{"added", id}, {"membership", "voter"}});
  } else {
    std::printf("%s caught up and is a voter\n", id.c_str());
  }
  return kExitOk;
}

int RunClusterRemove(Context& ctx) {
  if (ctx.args.size() != 1) {
    PrintError("cluster remove needs the member ID (see commitctl cluster remove --help)");
    return kExitUsage;
  }
  const std::string id = ctx.args[0];
  auto reply = ctx.client->Call(ctx.Coordinator(), "DELETE", "/v1/cluster/members/" + id);
  if (!reply.ok()) {
    PrintError(reply.status().message());
    return kExitTrouble;
  }
  if (reply->status / 100 != 2) {
    PrintError("remove refused: " + ErrorMessage(*reply));
    return reply->status == 400 ? kExitUsage : kExitTrouble;
  }
  if (!WaitForMembership(ctx, id, "", 10)) {
    PrintError("the removal of " + id + " did not commit within 10 s (commitctl cluster status)");
    return kExitTrouble;
  }
  if (ctx.json) {
    PrintJson({{"removed", id}});
  } else {
    std::printf("%s is no longer a member; stop its process\n", id.c_str());
  }
  return kExitOk;
}

}  // namespace commitd::commitctl
