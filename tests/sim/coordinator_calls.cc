#include "tests/sim/coordinator_calls.h"

namespace commitd::sim {

using coordinator::Outcome;

void CallPrepare(Context& ctx, const std::string& from, const coordinator::action::SendPrepare& send,
                 std::function<void(Result<wire::Vote>)> on_vote) {
  const std::string txid = send.request.txid;
  const std::string to = send.to.name;
  ctx.checker.OnBranch(txid, to);
  ctx.Log(from, "send prepare " + txid + " -> " + to);
  Request request{"POST", "/v1/prepare", wire::ToJson(send.request)};
  ctx.network.Call(from, NodeOf(send.to.url), std::move(request), send.timeout_ms,
                   [&ctx, from, txid, to, on_vote = std::move(on_vote)](Result<Response> r) {
                     Result<wire::Vote> vote = Status::Internal("unset");
                     if (!r.ok()) {
                       vote = r.status();
                     } else if (r->status != 200) {
                       const auto& body = r->body;
                       std::string msg = body.is_object() && body.contains("error")
                                             ? body["error"].value("message", body.dump())
                                             : body.dump();
                       vote = Status::InvalidArgument("HTTP " + std::to_string(r->status) + ": " + msg);
                     } else {
                       vote = wire::ParseVote(r->body.dump());
                     }
                     ctx.Log(from, "vote " + txid + " from " + to + ": " +
                                       (!vote.ok() ? vote.status().ToString() : vote->yes ? "yes" : "no " + vote->reason));
                     on_vote(std::move(vote));
                   });
}

void CallDecision(Context& ctx, const std::string& from, const coordinator::action::SendDecision& send,
                  std::function<void(Status)> on_ack) {
  const bool commit = send.outcome == Outcome::kCommitted;
  const std::string txid = send.txid;
  const std::string to = send.to.name;
  ctx.Log(from, std::string("send ") + (commit ? "commit " : "abort ") + txid + " -> " + to);
  Request request{"POST", commit ? "/v1/commit" : "/v1/abort", {{"txid", txid}}};
  ctx.network.Call(from, NodeOf(send.to.url), std::move(request), ctx.config.request_timeout_ms,
                   [&ctx, from, txid, to, on_ack = std::move(on_ack)](Result<Response> r) {
                     Status s;
                     if (!r.ok()) {
                       s = r.status();
                     } else if (r->status != 200) {
                       s = Status::Unavailable("HTTP " + std::to_string(r->status) + ": " + r->body.dump());
                     }
                     ctx.Log(from, "ack " + txid + " from " + to + ": " + s.ToString());
                     on_ack(s);
                   });
}

void CallPrecommit(Context& ctx, const std::string& from, const coordinator::action::SendPrecommit& send,
                   std::function<void(Result<coordinator::PrecommitAnswer>)> on_answer) {
  const std::string txid = send.txid;
  const std::string to = send.to.name;
  ctx.Log(from, "send precommit " + txid + " -> " + to);
  Request request{"POST", "/v1/precommit", {{"txid", txid}}};
  ctx.network.Call(
      from, NodeOf(send.to.url), std::move(request), ctx.config.request_timeout_ms,
      [&ctx, from, txid, to, on_answer = std::move(on_answer)](Result<Response> r) {
        Result<coordinator::PrecommitAnswer> answer = Status::Internal("unset");
        const std::string code =
            r.ok() && r->body.is_object() && r->body.contains("error") ? r->body["error"].value("code", "") : "";
        if (!r.ok()) {
          answer = r.status();
        } else if (r->status == 200) {
          answer = coordinator::PrecommitAnswer::kAcked;
        } else if ((r->status == 409 && code == "already_aborted") ||
                   (r->status == 404 && code == "unknown_transaction")) {
          answer = coordinator::PrecommitAnswer::kAborted;
        } else {
          answer = Status::Unavailable("HTTP " + std::to_string(r->status) + ": " + r->body.dump());
        }
        ctx.Log(from, "precommit answer " + txid + " from " + to + ": " +
                          (answer.ok() ? (*answer == coordinator::PrecommitAnswer::kAcked ? "acked" : "aborted")
                                       : answer.status().ToString()));
        on_answer(std::move(answer));
      });
}

}  // namespace commitd::sim
