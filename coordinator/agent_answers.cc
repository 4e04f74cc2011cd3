#include "coordinator/agent_answers.h"

#include <nlohmann/json.hpp>
#include <string>

#include "common/http_types.h"
#include "common/json_parse.h"

namespace commitd::coordinator {
namespace {

std::string MessageOf(int status, std::string_view body) {
  http::Response r;
  r.status = status;
  r.body = std::string(body);
  return "HTTP " + std::to_string(status) + ": " + http::ErrorMessageOf(r);
}

}  // namespace

std::string ErrorCodeOf(std::string_view body) {
  auto json = ParseJson(body);
  if (!json.is_object() || !json.contains("error")) return "";
  const auto& error = json["error"];
  if (!error.is_object() || !error.contains("code") || !error["code"].is_string()) return "";
  return error["code"].get<std::string>();
}

Result<wire::Vote> VoteOf(int status, std::string_view body, wire::BodySyntax syntax) {
  if (status != 200) return Status::InvalidArgument(MessageOf(status, body));
  return wire::ParseVote(body, syntax);
}

Result<DecisionAck> DecisionAckOf(int status, std::string_view body) {
  if (status == 200) return DecisionAck::kAcked;
  const std::string code = ErrorCodeOf(body);
  if (status == 404 && code == "unknown_transaction") return DecisionAck::kUnknownTransaction;
  if (status == 409 && (code == "already_committed" || code == "already_committing")) {
    return DecisionAck::kFoundCommitted;
  }
  if (status == 409 && code == "already_aborted") return DecisionAck::kFoundAborted;
  return Status::Unavailable(MessageOf(status, body));
}

std::string_view DecisionAckName(DecisionAck ack) {
  switch (ack) {
    case DecisionAck::kAcked: return "acked";
    case DecisionAck::kUnknownTransaction: return "unknown_transaction";
    case DecisionAck::kFoundCommitted: return "found_committed";
    case DecisionAck::kFoundAborted: return "found_aborted";
  }
  return "unknown_transaction";
}

Result<PrecommitAnswer> PrecommitAnswerOf(int status, std::string_view body) {
  if (status == 200) {
    // {"txid","state":"precommitted"}, or "committed" from an agent that finished it.
    auto json = ParseJson(body);
    auto state = json.is_object() ? json.find("state") : json.end();
    if (state != json.end() && state->is_string()) {
      if (*state == "precommitted") return PrecommitAnswer::kAcked;
      if (*state == "committed") return PrecommitAnswer::kCommitted;
    }
    return Status::Unavailable("HTTP 200 without a precommit state: " + std::string(body.substr(0, 200)));
  }
  const std::string code = ErrorCodeOf(body);
  if (status == 409 && code == "already_aborted") return PrecommitAnswer::kAborted;
  if (status == 404 && code == "unknown_transaction") return PrecommitAnswer::kUnknownTransaction;
  return Status::Unavailable(MessageOf(status, body));
}

Result<FenceAnswer> FenceAnswerOf(int status, std::string_view body) {
  if (status == 200) {
    auto json = ParseJson(body);
    auto state = json.is_object() ? json.find("state") : json.end();
    if (state != json.end() && state->is_string() && *state == "aborted") return FenceAnswer::kFenced;
    return Status::Unavailable("HTTP 200 without state aborted: " + std::string(body.substr(0, 200)));
  }
  const std::string code = ErrorCodeOf(body);
  if (status == 409 && code == "abort_not_from_coordinator") return FenceAnswer::kPrepared;
  if (status == 409 && (code == "already_committed" || code == "already_committing")) return FenceAnswer::kCommitted;
  return Status::Unavailable(MessageOf(status, body));
}

Result<AdoptReply> AdoptAnswerOf(int status, std::string_view body) {
  if (status == 200) {
    auto json = ParseJson(body);
    auto listed = json.is_object() ? json.find("participants") : json.end();
    if (listed == json.end()) return AdoptReply{};
    auto participants = wire::ParticipantsOf(*listed);
    if (!participants.ok()) {
      return Status::Unavailable("HTTP 200 with unreadable participants: " + participants.status().message());
    }
    return AdoptReply{AdoptAnswer::kAdopted, std::move(participants).value()};
  }
  const std::string code = ErrorCodeOf(body);
  auto answer = [](AdoptAnswer a) { return AdoptReply{a, {}}; };
  if (status == 409 && (code == "already_committed" || code == "already_committing")) {
    return answer(AdoptAnswer::kCommitted);
  }
  if (status == 409 && code == "already_aborted") return answer(AdoptAnswer::kAborted);
  if (status == 404 && code == "unknown_transaction") return answer(AdoptAnswer::kUnknown);
  return Status::Unavailable(MessageOf(status, body));
}

std::string_view AdoptAnswerName(AdoptAnswer answer) {
  switch (answer) {
    case AdoptAnswer::kAdopted: return "adopted";
    case AdoptAnswer::kCommitted: return "committed";
    case AdoptAnswer::kAborted: return "aborted";
    case AdoptAnswer::kUnknown: return "unknown";
  }
  return "unknown";
}

Result<StateAnswer> StateAnswerOf(int status, std::string_view body) {
  // An agent without the route (older than 3PC) cannot tell: for the rule
  // that reads these answers, not knowing is what unknown means.
  if (status == 404 && ErrorCodeOf(body) == "not_found") return StateAnswer::kUnknown;
  if (status != 200) return Status::Unavailable(MessageOf(status, body));
  auto json = ParseJson(body);
  auto state = json.is_object() ? json.find("state") : json.end();
  if (state == json.end() || !state->is_string()) {
    return Status::Unavailable("HTTP 200 without a state: " + std::string(body.substr(0, 200)));
  }
  const std::string& name = state->get_ref<const std::string&>();
  const std::optional<wire::AgentTxState> parsed = wire::ParseAgentTxState(name);
  if (!parsed) return Status::Unavailable("unexpected transaction state '" + name.substr(0, 40) + "'");
  switch (*parsed) {
    case wire::AgentTxState::kPreparing:
    case wire::AgentTxState::kPrepared:
    case wire::AgentTxState::kPrecommitted: return StateAnswer::kHolds;
    case wire::AgentTxState::kCommitted: return StateAnswer::kCommitted;
    case wire::AgentTxState::kAborted: return StateAnswer::kAborted;
    case wire::AgentTxState::kUnknown: return StateAnswer::kUnknown;
  }
  return StateAnswer::kUnknown;
}

Result<AgentCatalog> CatalogOf(int status, std::string_view body) {
  if (status != 200) return Status::Unavailable("HTTP " + std::to_string(status));
  auto json = ParseJson(body);
  if (!json.is_object() || !json.contains("procedures") || !json["procedures"].is_array()) {
    return Status::InvalidArgument("catalog: expected {\"procedures\": [...]}");
  }
  AgentCatalog catalog;
  for (const auto& n : json["procedures"]) {
    if (n.is_string()) catalog.procedures.insert(n.get<std::string>());
  }
  const auto raw = json.find("allow_raw_sql");
  catalog.allow_raw_sql = raw != json.end() && raw->is_boolean() && raw->get<bool>();
  const auto retention = json.find("outcome_retention_ms");
  if (retention != json.end() && retention->is_number_unsigned()) {
    // A value too large for int64_t is as long as any: nothing to warn of.
    const uint64_t ms = retention->get<uint64_t>();
    catalog.outcome_retention_ms = ms > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(ms);
  }
  return catalog;
}

Result<std::vector<PreparedAtAgent>> PreparedListOf(int status, std::string_view body) {
  if (status != 200) return Status::Unavailable(MessageOf(status, body));
  auto json = ParseJson(body);
  if (!json.is_object() || !json.contains("transactions") || !json["transactions"].is_array()) {
    return Status::InvalidArgument("prepared list: expected {\"transactions\": [...]}");
  }
  std::vector<PreparedAtAgent> out;
  for (const auto& t : json["transactions"]) {
    if (!t.is_object()) continue;
    auto text = [&t](const char* key) {
      auto it = t.find(key);
      return it != t.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (text("state") != "prepared" || text("txid").empty()) continue;
    out.push_back({text("txid"), text("coordinator"), text("log_id")});
  }
  return out;
}

}  // namespace commitd::coordinator
