#include "tests/sim/sim_agent_transport.h"

#include "coordinator/agent_answers.h"

namespace commitd::sim {
namespace {

using coordinator::DecisionAck;
using coordinator::PrecommitAnswer;

// Calls `to` and maps the answer (status, body text) with `map`.
template <class T, class Map>
void Exchange(Context& ctx, const std::string& from, const std::string& to, Request request, int64_t timeout_ms,
              Map map, std::function<void(Result<T>)> done) {
  ctx.network.Call(from, to, std::move(request), timeout_ms,
                   [map, done = std::move(done)](Result<Response> r) {
                     if (!r.ok()) {
                       done(r.status());
                       return;
                     }
                     done(map(r->status, r->body.is_null() ? std::string() : r->body.dump()));
                   });
}

std::string Describe(const Status& s) { return s.ToString(); }

}  // namespace

void SimAgentTransport::Prepare(const coordinator::ParticipantRef& to, const wire::PrepareRequest& request,
                                int64_t timeout_ms, std::function<void(Result<wire::Vote>)> done) {
  const std::string txid = request.txid;
  ctx_.checker.OnBranch(txid, to.name);
  ctx_.Log(from_, "send prepare " + txid + " -> " + to.name);
  nlohmann::json body = nlohmann::json::parse(wire::PrepareRequestText(request));  // the text an agent is sent
  if (ctx_.prepares_without_log) body.erase("log_id");
  Exchange<wire::Vote>(ctx_, from_, NodeOf(to.url), Request{"POST", "/v1/prepare", std::move(body), {}},
                       timeout_ms,
                       [](int status, std::string_view body) {
                         return coordinator::VoteOf(status, body, wire::BodySyntax::kUnchecked);
                       },
                       [ctx = &ctx_, from = from_, txid, name = to.name, done = std::move(done)](Result<wire::Vote> vote) {
                         ctx->Log(from, "vote " + txid + " from " + name + ": " +
                                             (!vote.ok() ? Describe(vote.status())
                                              : vote->yes ? "yes"
                                                          : "no " + vote->reason));
                         done(std::move(vote));
                       });
}

void SimAgentTransport::Deliver(const coordinator::ParticipantRef& to, const std::string& txid,
                                coordinator::Outcome outcome, const std::string& key,
                                std::function<void(Result<DecisionAck>)> done) {
  const bool commit = outcome == coordinator::Outcome::kCommitted;
  ctx_.Log(from_, std::string("send ") + (commit ? "commit " : "abort ") + txid + " -> " + to.name);
  Exchange<DecisionAck>(ctx_, from_, NodeOf(to.url),
                        Request{"POST", commit ? "/v1/commit" : "/v1/abort",
                                commit ? wire::ToJson(wire::CommitRequest{txid, key}) : wire::ToJson(wire::AbortRequest{txid, key}),
                                {}},
                        ctx_.config.request_timeout_ms, coordinator::DecisionAckOf,
                        [ctx = &ctx_, from = from_, txid, name = to.name, done = std::move(done)](Result<DecisionAck> ack) {
                          ctx->Log(from, "ack " + txid + " from " + name + ": " +
                                              (!ack.ok() ? Describe(ack.status())
                                                         : std::string(coordinator::DecisionAckName(*ack))));
                          done(std::move(ack));
                        });
}

void SimAgentTransport::Precommit(const coordinator::ParticipantRef& to, const std::string& txid,
                                  const std::string& commit_key, std::function<void(Result<PrecommitAnswer>)> done) {
  ctx_.Log(from_, "send precommit " + txid + " -> " + to.name);
  Exchange<PrecommitAnswer>(ctx_, from_, NodeOf(to.url),
                            Request{"POST", "/v1/precommit", wire::ToJson(wire::CommitRequest{txid, commit_key}), {}},
                            ctx_.config.request_timeout_ms, coordinator::PrecommitAnswerOf,
                            [ctx = &ctx_, from = from_, txid, name = to.name, done = std::move(done)](Result<PrecommitAnswer> answer) {
                              ctx->Log(from, "precommit answer " + txid + " from " + name + ": " +
                                                  (!answer.ok() ? Describe(answer.status())
                                                   : *answer == PrecommitAnswer::kAcked     ? "acked"
                                                   : *answer == PrecommitAnswer::kCommitted ? "committed"
                                                   : *answer == PrecommitAnswer::kAborted   ? "aborted"
                                                                                            : "unknown_transaction"));
                              done(std::move(answer));
                            });
}

void SimAgentTransport::Fence(const coordinator::ParticipantRef& to, const std::string& txid,
                              std::function<void(Result<coordinator::FenceAnswer>)> done) {
  using coordinator::FenceAnswer;
  ctx_.Log(from_, "send fence " + txid + " -> " + to.name);
  Exchange<FenceAnswer>(ctx_, from_, NodeOf(to.url),
                        Request{"POST", "/v1/abort", wire::ToJson(wire::AbortRequest{txid, std::string()}), {}},
                        ctx_.config.request_timeout_ms, coordinator::FenceAnswerOf,
                        [ctx = &ctx_, from = from_, txid, name = to.name, done = std::move(done)](Result<FenceAnswer> answer) {
                          ctx->Log(from, "fence answer " + txid + " from " + name + ": " +
                                              (!answer.ok() ? Describe(answer.status())
                                               : *answer == FenceAnswer::kFenced   ? "fenced"
                                               : *answer == FenceAnswer::kPrepared ? "prepared"
                                                                                   : "committed"));
                          done(std::move(answer));
                        });
}

void SimAgentTransport::Adopt(const coordinator::ParticipantRef& to, const wire::AdoptRequest& request,
                              std::function<void(Result<coordinator::AdoptReply>)> done) {
  using coordinator::AdoptReply;
  const std::string txid = request.txid;
  ctx_.Log(from_, "send adopt " + txid + " -> " + to.name);
  Exchange<AdoptReply>(ctx_, from_, NodeOf(to.url), Request{"POST", "/v1/adopt", wire::ToJson(request), {}},
                       ctx_.config.request_timeout_ms, coordinator::AdoptAnswerOf,
                       [ctx = &ctx_, from = from_, txid, name = to.name, done = std::move(done)](Result<AdoptReply> reply) {
                         ctx->Log(from, "adopt answer " + txid + " from " + name + ": " +
                                             (!reply.ok() ? Describe(reply.status())
                                                          : std::string(coordinator::AdoptAnswerName(reply->answer))));
                         done(std::move(reply));
                       });
}

void SimAgentTransport::QueryState(const coordinator::ParticipantRef& to, const std::string& txid,
                                   std::function<void(Result<coordinator::StateAnswer>)> done) {
  using coordinator::StateAnswer;
  ctx_.Log(from_, "send state query " + txid + " -> " + to.name);
  Exchange<StateAnswer>(ctx_, from_, NodeOf(to.url), Request{"GET", "/v1/transactions/" + txid, nullptr, {}},
                        ctx_.config.request_timeout_ms, coordinator::StateAnswerOf,
                        [ctx = &ctx_, from = from_, txid, name = to.name, done = std::move(done)](Result<StateAnswer> answer) {
                          ctx->Log(from, "state answer " + txid + " from " + name + ": " +
                                              (!answer.ok() ? Describe(answer.status())
                                               : *answer == StateAnswer::kHolds     ? "holds"
                                               : *answer == StateAnswer::kCommitted ? "committed"
                                               : *answer == StateAnswer::kAborted   ? "aborted"
                                                                                    : "unknown"));
                          done(std::move(answer));
                        });
}

void SimAgentTransport::ListPrepared(const coordinator::ParticipantRef& to,
                                     std::function<void(Result<std::vector<coordinator::PreparedAtAgent>>)> done) {
  Exchange<std::vector<coordinator::PreparedAtAgent>>(
      ctx_, from_, NodeOf(to.url), Request{"GET", "/v1/transactions?state=prepared", nullptr, {}},
      ctx_.config.request_timeout_ms, coordinator::PreparedListOf, std::move(done));
}

void SimAgentTransport::FetchCatalog(const coordinator::ParticipantRef& to, int64_t timeout_ms,
                                     std::function<void(Result<coordinator::AgentCatalog>)> done) {
  Exchange<coordinator::AgentCatalog>(ctx_, from_, NodeOf(to.url), Request{"GET", "/v1/procedures", nullptr, {}},
                                      timeout_ms > 0 ? timeout_ms : ctx_.config.request_timeout_ms,
                                      coordinator::CatalogOf, std::move(done));
}

}  // namespace commitd::sim
