#include "coordinator/api_render.h"

#include <string>

namespace commitd::coordinator::api {
namespace {

nlohmann::json ErrorBody(std::string_view code, std::string_view message) {
  return {{"error", {{"code", code}, {"message", message}}}};
}

bool Staging(const DecisionRecord& r) {  // staging recorded, no decision yet
  return r.outcome == Outcome::kPending;
}

const char* RecordState(const DecisionRecord& r) {
  if (r.finished) return "finished";
  return Staging(r) ? "preparing" : "delivering";
}

nlohmann::json TransactionJson(const std::variant<TxView, DecisionRecord>& tx, int64_t now_ms) {
  if (const auto* v = std::get_if<TxView>(&tx)) return ViewJson(*v, now_ms);
  return RecordJson(std::get<DecisionRecord>(tx), now_ms);
}

}  // namespace

nlohmann::json ViewJson(const TxView& v, int64_t now_ms) {
  nlohmann::json branches = nlohmann::json::array();
  for (const auto& b : v.branches) {
    nlohmann::json jb = {{"participant", b.participant}, {"state", b.state}, {"attempts", b.attempts}};
    if (!b.last_error.empty()) jb["last_error"] = b.last_error;
    branches.push_back(std::move(jb));
  }
  nlohmann::json out = {{"txid", v.txid},
                        {"protocol", wire::ProtocolName(v.protocol)},
                        {"state", TxStateName(v.state)},
                        {"outcome", OutcomeName(v.outcome)},
                        {"branches", std::move(branches)},
                        {"age_ms", now_ms - v.started_ms},
                        {"timeline", {{"started_ms", v.started_ms}}}};
  if (v.decided_ms != 0) out["timeline"]["decided_ms"] = v.decided_ms;
  if (!v.reason.empty()) out["reason"] = v.reason;
  if (v.heuristic) out["heuristic"] = true;
  if (v.in_doubt) out["in_doubt"] = true;
  return out;
}

nlohmann::json RecordJson(const DecisionRecord& r, int64_t now_ms) {
  nlohmann::json branches = nlohmann::json::array();
  for (const auto& p : r.participants) {
    std::string state = r.finished   ? std::string(OutcomeName(r.outcome))
                        : Staging(r) ? "preparing"
                                     : "delivering";
    branches.push_back({{"participant", p.name}, {"state", state}});
  }
  nlohmann::json timeline = {{"created_ms", r.created_ms}, {"decided_ms", r.decided_ms}};
  if (r.finished) timeline["finished_ms"] = r.finished_ms;
  nlohmann::json out = {{"txid", r.txid},
                        {"protocol", wire::ProtocolName(r.protocol)},
                        {"state", RecordState(r)},
                        {"outcome", OutcomeName(r.outcome)},
                        {"branches", std::move(branches)},
                        {"age_ms", now_ms - r.created_ms},
                        {"timeline", std::move(timeline)}};
  if (!r.reason.empty()) out["reason"] = r.reason;
  if (r.heuristic) out["heuristic"] = true;
  return out;
}

nlohmann::json ListEntryJson(const TxView& v, int64_t now_ms) {
  nlohmann::json j = {{"txid", v.txid},
                      {"protocol", wire::ProtocolName(v.protocol)},
                      {"state", TxStateName(v.state)},
                      {"outcome", OutcomeName(v.outcome)},
                      {"age_ms", now_ms - v.started_ms}};
  if (v.in_doubt) j["in_doubt"] = true;
  return j;
}

nlohmann::json ListEntryJson(const DecisionRecord& r, int64_t now_ms) {
  nlohmann::json j = {{"txid", r.txid},
                      {"protocol", wire::ProtocolName(r.protocol)},
                      {"state", RecordState(r)},
                      {"outcome", OutcomeName(r.outcome)},
                      {"age_ms", now_ms - r.created_ms}};
  if (r.heuristic) j["heuristic"] = true;
  return j;
}

Rendered Error(const NodeError& error) {
  switch (error.kind) {
    case NodeErrorKind::kInvalidRequest:
      return {400, ErrorBody("invalid_request", error.message)};
    case NodeErrorKind::kOverloaded:
      return {429, ErrorBody("overloaded", error.message), true};
    case NodeErrorKind::kStopping:
      return {503, ErrorBody("stopping", error.message), true};
    case NodeErrorKind::kStorage:
      return {503, ErrorBody("storage_error", error.message)};
    case NodeErrorKind::kInProgress:
      return {503, ErrorBody("in_progress", error.message), true};
    case NodeErrorKind::kLeadershipLost:
      return {503, ErrorBody("leadership_lost", error.message), true};
    case NodeErrorKind::kUndecided:
      return {409, ErrorBody("undecided", error.message)};
    case NodeErrorKind::kDecisionConflict:
      return {409, ErrorBody("decision_conflict", error.message)};
    case NodeErrorKind::kUnknownLog:
      return {404, ErrorBody("unknown_log", error.message)};
    case NodeErrorKind::kNotFound:
      return {404, ErrorBody("not_found", error.message)};
    case NodeErrorKind::kParticipantInUse:
      return {409, ErrorBody("participant_in_use", error.message)};
    case NodeErrorKind::kForgotten:
      return {404, ErrorBody("forgotten", error.message)};
    case NodeErrorKind::kRecovering:
      return {503, ErrorBody("recovering", error.message), true};
    case NodeErrorKind::kKeyForgotten:
      return {409, ErrorBody("forgotten", error.message)};
    case NodeErrorKind::kParticipantUnavailable:
      return {503, ErrorBody("participant_unavailable", error.message), true};
    case NodeErrorKind::kNotContradicted:
      return {409, ErrorBody("not_contradicted", error.message)};
    case NodeErrorKind::kStillDelivering:
      return {409, ErrorBody("still_delivering", error.message)};
  }
  return {500, ErrorBody("internal", error.message)};
}

Rendered Submit(SubmitResult result) {
  if (const auto* e = std::get_if<NodeError>(&result)) return Error(*e);
  TxReply& reply = std::get<TxReply>(result);
  // A 503 without an outcome: not known yet, ask again later. With one (an
  // abort that could not be recorded) a retry would run the transaction anew.
  const bool retry_later = reply.status == 503 && !reply.outcome;
  return {reply.status, std::move(reply.body), retry_later};
}

Rendered Lookup(const TxLookup& lookup, int64_t now_ms) {
  if (const auto* e = std::get_if<NodeError>(&lookup)) return Error(*e);
  if (const auto* v = std::get_if<TxView>(&lookup)) return {200, ViewJson(*v, now_ms)};
  if (const auto* r = std::get_if<DecisionRecord>(&lookup)) return {200, RecordJson(*r, now_ms)};
  const PresumedAbort& p = std::get<PresumedAbort>(lookup);
  nlohmann::json body = ErrorBody("not_found", "no transaction " + p.txid +
                                                   " is known here; under presumed abort it did not commit");
  body["txid"] = p.txid;
  body["outcome"] = "aborted";
  if (!p.group.empty()) body["group"] = p.group;
  return {404, std::move(body)};
}

Rendered List(const TxList& list, int64_t now_ms) {
  if (const auto* e = std::get_if<NodeError>(&list)) return Error(*e);
  nlohmann::json out = nlohmann::json::array();
  if (const auto* views = std::get_if<std::vector<TxView>>(&list)) {
    for (const auto& v : *views) out.push_back(ListEntryJson(v, now_ms));
  } else {
    for (const auto& r : std::get<std::vector<DecisionRecord>>(list)) out.push_back(ListEntryJson(r, now_ms));
  }
  return {200, nlohmann::json{{"transactions", std::move(out)}}};
}

Rendered Force(const std::string& txid, const ForceAnswer& answer, int64_t now_ms) {
  if (const auto* e = std::get_if<NodeError>(&answer)) return Error(*e);
  const ForceResult& r = std::get<ForceResult>(answer);
  nlohmann::json tx = TransactionJson(r.transaction, now_ms);
  switch (r.kind) {
    case ForceResult::Kind::kForced:
      return {200, nlohmann::json{{"txid", tx["txid"]},
                                  {"outcome", tx["outcome"]},
                                  {"forced", true},
                                  {"heuristic", true},
                                  {"transaction", std::move(tx)}}};
    case ForceResult::Kind::kAlreadyDecided:
      return {200, nlohmann::json{{"txid", txid},
                                  {"outcome", OutcomeName(r.outcome)},
                                  {"forced", false},
                                  {"transaction", std::move(tx)}}};
    case ForceResult::Kind::kConflict:
      break;
    case ForceResult::Kind::kParticipantDecided: {
      const std::string did(OutcomeName(r.outcome));
      nlohmann::json body = ErrorBody("participant_decided",
                                      r.participant + " " + did + " " + txid + " already: nothing was recorded; force " +
                                          (r.outcome == Outcome::kCommitted ? "commit" : "abort") + " to finish it");
      body["txid"] = txid;
      body["outcome"] = did;
      body["participant"] = r.participant;
      body["transaction"] = std::move(tx);
      return {409, std::move(body)};
    }
  }
  nlohmann::json body =
      ErrorBody("decision_conflict", txid + " is already decided " + std::string(OutcomeName(r.outcome)) +
                                         "; a heuristic decision may only stand in for a decision that was lost");
  body["txid"] = txid;
  body["outcome"] = OutcomeName(r.outcome);
  return {409, std::move(body)};
}

}  // namespace commitd::coordinator::api
