#include "tests/sim/participant_transports.h"

#include "participant/http_transports.h"

namespace commitd::sim {
namespace {

// The sim network carries JSON values; the HTTP parsers take the body text.
Result<http::Response> AsHttp(const Result<Response>& r) {
  if (!r.ok()) return r.status();
  http::Response h;
  h.status = r->status;
  h.body = r->body.dump();
  return h;
}

}  // namespace

void SimCoordinatorTransport::QueryDecision(participant::DecisionQuery query,
                                            std::function<void(participant::DecisionAnswer)> done) {
  if (ctx_.bug == Bug::kCommitOnTimeout) {
    // The deliberate bug: a participant that asks about a prepared
    // transaction (past its deadline, or after a restart) commits it alone.
    ctx_.Log(node_, "BUG commit-on-timeout: committing " + query.txid + " alone");
    participant::DecisionAnswer commit;
    commit.kind = participant::DecisionAnswer::Kind::kCommitted;
    done(std::move(commit));
    return;
  }
  // As HttpCoordinatorTransport builds it.
  std::string target = "/v1/transactions/" + query.txid;
  std::string sep = "?";
  if (!query.asking_participant.empty()) {
    target += sep + "participant=" + query.asking_participant;
    sep = "&";
  }
  if (!query.log_id.empty()) target += sep + "log_id=" + query.log_id;
  ctx_.Log(node_, "query decision " + query.txid + " at " + NodeOf(query.coordinator_url));
  ctx_.network.Call(node_, NodeOf(query.coordinator_url), Request{"GET", std::move(target), nullptr},
                    ctx_.config.request_timeout_ms,
                    [done = std::move(done)](Result<Response> r) { done(participant::DecisionAnswerOf(AsHttp(r))); });
}

void SimCoordinatorTransport::Register(const std::string& coordinator_url, const std::string& name,
                                       const std::string& own_url, std::function<void(Status)> done) {
  ctx_.network.Call(node_, NodeOf(coordinator_url), Request{"PUT", "/v1/participants/" + name, {{"url", own_url}}},
                    ctx_.config.request_timeout_ms, [done = std::move(done)](Result<Response> r) {
                      if (!r.ok()) return done(r.status());
                      done(r->status == 200 ? Status::Ok() : Status::Unavailable("HTTP " + std::to_string(r->status)));
                    });
}

void SimCoordinatorTransport::GroupMembers(const std::string& coordinator_url,
                                           std::function<void(Result<std::vector<std::string>>)> done) {
  ctx_.network.Call(node_, NodeOf(coordinator_url), Request{"GET", "/v1/cluster", nullptr},
                    ctx_.config.request_timeout_ms,
                    [done = std::move(done)](Result<Response> r) { done(participant::GroupMembersOf(AsHttp(r))); });
}

void SimPeerTransport::Call(const wire::ParticipantRef& peer, participant::action::PeerCall call,
                            const std::string& txid, const std::string& key,
                            std::function<void(participant::PeerReply)> done) {
  using participant::action::PeerCall;
  Request request = call == PeerCall::kState ? Request{"GET", "/v1/transactions/" + txid, nullptr}
                    : call == PeerCall::kPrecommit ? Request{"POST", "/v1/precommit", wire::ToJson(wire::CommitRequest{txid, key})}
                    : call == PeerCall::kCommit    ? Request{"POST", "/v1/commit", wire::ToJson(wire::CommitRequest{txid, key})}
                                                   : Request{"POST", "/v1/abort", wire::ToJson(wire::AbortRequest{txid, key})};
  ctx_.network.Call(node_, NodeOf(peer.url), std::move(request), ctx_.config.request_timeout_ms,
                    [done = std::move(done)](Result<Response> r) { done(participant::PeerReplyOf(AsHttp(r))); });
}

}  // namespace commitd::sim
