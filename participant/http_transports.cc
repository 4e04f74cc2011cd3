#include "participant/http_transports.h"

#include <nlohmann/json.hpp>

#include "common/failpoint.h"
#include "common/json_parse.h"

namespace commitd::participant {
namespace {

// error.code of a JSON error body ({"error":{"code":...}}), or "".
std::string ErrorCodeOf(const nlohmann::json& body) {
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object()) return "";
  const auto& error = body["error"];
  return error.contains("code") && error["code"].is_string() ? error["code"].get<std::string>() : "";
}

std::string StringField(const nlohmann::json& body, const char* name) {
  return body.is_object() && body.contains(name) && body[name].is_string() ? body[name].get<std::string>() : "";
}

void AddToken(http::ClientRequest& cr, const std::string& token) {
  if (!token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + token);
}

}  // namespace

DecisionAnswer DecisionAnswerOf(const Result<http::Response>& r) {
  DecisionAnswer answer;
  if (!r.ok()) {
    answer.error = r.status().message();
    return answer;
  }
  const auto body = ParseJson(r->body);
  const std::string outcome = StringField(body, "outcome");
  if (r->status == 200) {
    if (outcome == "committed") answer.kind = DecisionAnswer::Kind::kCommitted;
    if (outcome == "aborted") answer.kind = DecisionAnswer::Kind::kAborted;
    if (outcome == "pending") answer.kind = DecisionAnswer::Kind::kPending;
  } else if (r->status == 404 && ErrorCodeOf(body) == "unknown_log") {
    answer.kind = DecisionAnswer::Kind::kUnknownLog;
  } else if (r->status == 503 && ErrorCodeOf(body) == "recovering") {
    answer.kind = DecisionAnswer::Kind::kRecovering;
  } else if (r->status == 404 && ErrorCodeOf(body) == "forgotten") {
    answer.kind = DecisionAnswer::Kind::kForgotten;
  } else if (r->status == 404 && ErrorCodeOf(body) == "not_found" && outcome == "aborted") {
    answer.kind = DecisionAnswer::Kind::kNotKnown;
    if (body.contains("group") && body["group"].is_array()) {
      for (const auto& u : body["group"]) {
        if (u.is_string()) answer.group.push_back(u.get<std::string>());
      }
    }
  }
  if (answer.kind == DecisionAnswer::Kind::kError) {
    answer.error = "unexpected answer HTTP " + std::to_string(r->status) + ": " + http::ErrorMessageOf(*r);
  }
  return answer;
}

Result<std::vector<std::string>> GroupMembersOf(const Result<http::Response>& r) {
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return Status::Unavailable("GET /v1/cluster: HTTP " + std::to_string(r->status) + ": " + http::ErrorMessageOf(*r));
  }
  const auto body = ParseJson(r->body);
  if (!body.is_object() || !body.contains("members") || !body["members"].is_array()) {
    return Status::Unavailable("GET /v1/cluster: no members list in the answer");
  }
  std::vector<std::string> urls;
  for (const auto& m : body["members"]) {
    const std::string url = StringField(m, "url");
    if (!url.empty()) urls.push_back(url);
  }
  return urls;
}

PeerReply PeerReplyOf(const Result<http::Response>& r) {
  PeerReply reply;
  if (!r.ok()) {
    reply.error = r.status().message();
    return reply;
  }
  const auto body = ParseJson(r->body);
  const std::string code = ErrorCodeOf(body);
  if (r->status == 200 && body.is_object() && body.contains("state") && body["state"].is_string()) {
    reply.kind = PeerReply::Kind::kState;
    reply.state = body["state"].get<std::string>();
  } else if (r->status == 404 && code == "unknown_transaction") {
    reply.kind = PeerReply::Kind::kUnknownTransaction;
  } else if (r->status == 409 && code == "already_aborted") {
    reply.kind = PeerReply::Kind::kAlreadyAborted;
  } else {
    reply.error = "HTTP " + std::to_string(r->status) + ": " + http::ErrorMessageOf(*r);
  }
  return reply;
}

void HttpCoordinatorTransport::QueryDecision(DecisionQuery query, std::function<void(DecisionAnswer)> done) {
  if (failpoint::Active("agent.ignore_decisions")) {
    DecisionAnswer none;
    none.error = "agent.ignore_decisions is set";
    done(std::move(none));
    return;
  }
  http::ClientRequest cr;
  cr.base_url = query.coordinator_url;
  cr.target = "/v1/transactions/" + query.txid;
  std::string sep = "?";
  if (!query.asking_participant.empty()) {
    cr.target += sep + "participant=" + http::PercentEncode(query.asking_participant);
    sep = "&";
  }
  if (!query.log_id.empty()) cr.target += sep + "log_id=" + http::PercentEncode(query.log_id);
  AddToken(cr, token_);
  client_.Send(std::move(cr), [done = std::move(done)](Result<http::Response> r) { done(DecisionAnswerOf(r)); });
}

void HttpCoordinatorTransport::Register(const std::string& coordinator_url, const std::string& name,
                                        const std::string& own_url, std::function<void(Status)> done) {
  http::ClientRequest cr;
  cr.base_url = coordinator_url;
  cr.method = "PUT";
  cr.target = "/v1/participants/" + name;
  cr.body = nlohmann::json{{"url", own_url}}.dump();
  AddToken(cr, token_);
  client_.Send(std::move(cr), [done = std::move(done)](Result<http::Response> r) {
    if (!r.ok()) return done(r.status());
    if (r->status == 401 || r->status == 403) {
      return done(Status::InvalidArgument("the coordinator refused this agent's token (--peer-token-file): HTTP " +
                                          std::to_string(r->status) + ": " + http::ErrorMessageOf(*r)));
    }
    if (r->status != 200) {
      return done(Status::Unavailable("HTTP " + std::to_string(r->status) + ": " + http::ErrorMessageOf(*r)));
    }
    done(Status::Ok());
  });
}

void HttpCoordinatorTransport::GroupMembers(const std::string& coordinator_url,
                                            std::function<void(Result<std::vector<std::string>>)> done) {
  http::ClientRequest cr;
  cr.base_url = coordinator_url;
  cr.target = "/v1/cluster";
  AddToken(cr, token_);
  client_.Send(std::move(cr), [done = std::move(done)](Result<http::Response> r) { done(GroupMembersOf(r)); });
}

void HttpPeerTransport::Call(const wire::ParticipantRef& peer, action::PeerCall call, const std::string& txid,
                             const std::string& key, std::function<void(PeerReply)> done) {
  http::ClientRequest cr;
  cr.base_url = peer.url;
  cr.timeout = std::chrono::milliseconds(request_timeout_ms_);
  if (call == action::PeerCall::kState) {
    cr.target = "/v1/transactions/" + txid;
  } else {
    cr.method = "POST";
    cr.target = call == action::PeerCall::kPrecommit ? "/v1/precommit"
                : call == action::PeerCall::kCommit  ? "/v1/commit"
                                                     : "/v1/abort";
    cr.body = call == action::PeerCall::kAbort ? wire::AbortRequestText(wire::AbortRequest{txid, key})
                                               : wire::CommitRequestText(wire::CommitRequest{txid, key});
  }
  AddToken(cr, token_);
  client_.Send(std::move(cr), [done = std::move(done)](Result<http::Response> r) { done(PeerReplyOf(r)); });
}

}  // namespace commitd::participant
