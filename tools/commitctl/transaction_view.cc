#include "tools/commitctl/transaction_view.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>

namespace commitd::commitctl {
namespace {

std::string WallTime(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03lldZ", static_cast<long long>(ms % 1000));
  return buf;
}

}  // namespace

Result<JsonReply> GetTransaction(Context& ctx, const std::string& txid) {
  const std::string target = "/v1/transactions/" + http::PercentEncode(txid);
  auto reply = ctx.client->Call(ctx.Coordinator(), "GET", target);
  if (!reply.ok()) return reply.status();
  if (reply->status != 200 && reply->status != 404) {
    return Status::Unavailable("coordinator answered GET " + target + " with HTTP " + std::to_string(reply->status) +
                               ": " + ErrorMessage(*reply));
  }
  return reply;
}

bool IsFinished(const JsonReply& tx) { return tx.status == 404 || Str(tx.body, "state") == "finished"; }

bool IsContradicted(const JsonReply& tx) { return tx.status == 200 && Str(tx.body, "state") == "contradicted"; }

void PrintContradictedNext(const std::string& txid) {
  std::printf("next: a participant had finished %s the other way (its state above differs from the outcome), so "
              "the decision is not sent there again: reconcile the data by hand, then `commitctl close %s --yes`\n",
              txid.c_str(), txid.c_str());
}

void PrintTransaction(const nlohmann::json& tx) {
  std::printf("txid      %s\n", Str(tx, "txid").c_str());
  std::printf("protocol  %s\n", Str(tx, "protocol").c_str());
  std::printf("state     %s\n", Str(tx, "state").c_str());
  std::printf("outcome   %s\n", Str(tx, "outcome").c_str());
  if (!Str(tx, "reason").empty()) std::printf("reason    %s\n", Str(tx, "reason").c_str());
  if (IsTrue(tx, "heuristic")) std::printf("decision  HEURISTIC: forced by an operator, not by the protocol\n");
  if (IsTrue(tx, "in_doubt")) {
    std::printf("decision  IN DOUBT: a participant no longer knows it (state unknown); an operator settles it "
                "(commitctl resolve TXID --force)\n");
  }
  if (tx.is_object() && tx.contains("age_ms")) std::printf("age       %s\n", FormatAge(IntOr(tx, "age_ms", 0)).c_str());

  const nlohmann::json branches = ArrayOf(tx, "branches");
  std::printf("participants (%zu):\n", branches.size());
  for (const auto& b : branches) {
    char head[64];
    std::snprintf(head, sizeof head, "  %-12s %-12s", Str(b, "participant").c_str(), Str(b, "state").c_str());
    std::string line = head;
    if (!Str(b, "vote").empty()) line += " vote " + Str(b, "vote");
    if (!Str(b, "attempts").empty()) line += " attempts " + Str(b, "attempts");
    if (!Str(b, "last_error").empty()) line += " last_error: " + Str(b, "last_error");
    line.erase(line.find_last_not_of(' ') + 1);
    std::printf("%s\n", line.c_str());
  }

  const nlohmann::json timeline =
      tx.is_object() && tx.contains("timeline") && tx["timeline"].is_object() ? tx["timeline"] : nlohmann::json::object();
  std::vector<std::pair<int64_t, std::string>> events;
  for (const auto& [key, value] : timeline.items()) {
    if (!value.is_number_integer() || value.get<int64_t>() <= 0) continue;
    std::string name = key.size() > 3 && key.ends_with("_ms") ? key.substr(0, key.size() - 3) : key;
    events.emplace_back(value.get<int64_t>(), name);
  }
  std::sort(events.begin(), events.end());
  if (events.empty()) return;
  std::printf("timeline:\n");
  for (const auto& [ms, name] : events) {
    std::printf("  %-10s %s  +%s\n", name.c_str(), WallTime(ms).c_str(), FormatAge(ms - events.front().first).c_str());
  }
}

}  // namespace commitd::commitctl
