#include "coordinator/http_agent_transport.h"

#include <chrono>
#include <type_traits>

#include "common/log.h"
#include "coordinator/agent_answers.h"

namespace commitd::coordinator {
namespace {

// The answer of one exchange, mapped by `map` (status, body; or the whole
// response) when it arrived.
template <class T, class Map>
std::function<void(Result<http::Response>)> Answer(std::function<void(Result<T>)> done, Map map) {
  return [done = std::move(done), map](Result<http::Response> r) {
    if (!r.ok()) {
      done(r.status());
      return;
    }
    if constexpr (std::is_invocable_v<Map, const http::Response&>) {
      done(map(*r));
    } else {
      done(map(r->status, r->body));
    }
  };
}

// A status the protocol answers `call` with besides 200.
bool ExpectedStatus(AgentCall call, int status) {
  switch (call) {
    case AgentCall::kCommit:
    case AgentCall::kAbort: return status == 404;                      // unknown_transaction (a 409 counts)
    case AgentCall::kPrecommit: return status == 404 || status == 409;  // unknown_transaction, already_aborted
    case AgentCall::kFence: return status == 409;                       // voted yes, or committed
    case AgentCall::kAdopt: return status == 404 || status == 409;      // unknown, or decided there
    default: return false;
  }
}

// The failure of one exchange, if it is one.
std::optional<AgentCallError> ErrorOf(const Result<http::Response>& r, AgentCall call) {
  if (!r.ok()) {
    return r.status().code() == StatusCode::kTimeout ? AgentCallError::kTimeout : AgentCallError::kUnreachable;
  }
  const int status = r->status;
  if (status == 200 || ExpectedStatus(call, status)) return std::nullopt;
  if (status == 401 || status == 403) return AgentCallError::kRefused;
  if (status == 429 || status == 503) return AgentCallError::kOverloaded;
  if (status >= 500) return AgentCallError::kServerError;
  return AgentCallError::kRejected;
}

}  // namespace

std::function<void(Result<http::Response>)> HttpAgentTransport::Observed(
    const ParticipantRef& to, AgentCall call, std::function<void(Result<http::Response>)> handler) const {
  if (observer_ == nullptr) return handler;
  return [observer = observer_, name = to.name, call, start = std::chrono::steady_clock::now(),
          handler = std::move(handler)](Result<http::Response> r) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    observer->OnAgentCall(name, call, seconds, ErrorOf(r, call));
    handler(std::move(r));
  };
}

http::ClientRequest HttpAgentTransport::RequestTo(const ParticipantRef& to, std::string method,
                                                  std::string target) const {
  http::ClientRequest cr;
  cr.base_url = to.url;
  cr.method = std::move(method);
  cr.target = std::move(target);
  if (!token_.empty()) cr.headers.emplace_back("Authorization", "Bearer " + token_);
  return cr;
}

void HttpAgentTransport::AddTrace(http::ClientRequest& request, const ParticipantRef& to, AgentCall call,
                                  const std::string& txid) {
  if (!trace_source_) return;
  const TraceContext span = trace_source_(txid).Child(span_ids_);
  request.headers.emplace_back(TraceContext::kHeader, span.Format());
  if (log::Enabled(log::Level::kDebug)) {
    log::Debug("agent_call", {{"txid", txid},
                              {"participant", to.name},
                              {"call", AgentCallName(call)},
                              {"trace_id", span.trace_id()},
                              {"span_id", span.span_id()}});
  }
}

void HttpAgentTransport::Prepare(const ParticipantRef& to, const wire::PrepareRequest& request, int64_t timeout_ms,
                                 std::function<void(Result<wire::Vote>)> done) {
  http::ClientRequest cr = RequestTo(to, "POST", "/v1/prepare");
  cr.body = wire::PrepareRequestText(request);
  cr.timeout = std::chrono::milliseconds(timeout_ms);
  AddTrace(cr, to, AgentCall::kPrepare, request.txid);
  auto vote_of = [](const http::Response& r) {
    return VoteOf(r.status, r.body, r.body_checked_json ? wire::BodySyntax::kChecked : wire::BodySyntax::kUnchecked);
  };
  peers_.Send(std::move(cr), Observed(to, AgentCall::kPrepare, Answer<wire::Vote>(std::move(done), vote_of)));
}

void HttpAgentTransport::Deliver(const ParticipantRef& to, const std::string& txid, Outcome outcome,
                                 const std::string& key, std::function<void(Result<DecisionAck>)> done) {
  const bool commit = outcome == Outcome::kCommitted;
  http::ClientRequest cr = RequestTo(to, "POST", commit ? "/v1/commit" : "/v1/abort");
  cr.body = commit ? wire::CommitRequestText(wire::CommitRequest{txid, key})
                   : wire::AbortRequestText(wire::AbortRequest{txid, key});
  AddTrace(cr, to, commit ? AgentCall::kCommit : AgentCall::kAbort, txid);
  peers_.Send(std::move(cr), Observed(to, commit ? AgentCall::kCommit : AgentCall::kAbort,
                                      Answer<DecisionAck>(std::move(done), DecisionAckOf)));
}

void HttpAgentTransport::Precommit(const ParticipantRef& to, const std::string& txid, const std::string& commit_key,
                                   std::function<void(Result<PrecommitAnswer>)> done) {
  http::ClientRequest cr = RequestTo(to, "POST", "/v1/precommit");
  cr.body = wire::CommitRequestText(wire::CommitRequest{txid, commit_key});
  AddTrace(cr, to, AgentCall::kPrecommit, txid);
  peers_.Send(std::move(cr),
              Observed(to, AgentCall::kPrecommit, Answer<PrecommitAnswer>(std::move(done), PrecommitAnswerOf)));
}

void HttpAgentTransport::Fence(const ParticipantRef& to, const std::string& txid,
                               std::function<void(Result<FenceAnswer>)> done) {
  http::ClientRequest cr = RequestTo(to, "POST", "/v1/abort");
  cr.body = wire::AbortRequestText(wire::AbortRequest{txid, std::string()});
  AddTrace(cr, to, AgentCall::kFence, txid);
  peers_.Send(std::move(cr), Observed(to, AgentCall::kFence, Answer<FenceAnswer>(std::move(done), FenceAnswerOf)));
}

void HttpAgentTransport::Adopt(const ParticipantRef& to, const wire::AdoptRequest& request,
                               std::function<void(Result<AdoptReply>)> done) {
  http::ClientRequest cr = RequestTo(to, "POST", "/v1/adopt");
  cr.body = wire::ToJson(request).dump();
  AddTrace(cr, to, AgentCall::kAdopt, request.txid);
  client_.Send(std::move(cr), Observed(to, AgentCall::kAdopt, Answer<AdoptReply>(std::move(done), AdoptAnswerOf)));
}

void HttpAgentTransport::QueryState(const ParticipantRef& to, const std::string& txid,
                                    std::function<void(Result<StateAnswer>)> done) {
  http::ClientRequest cr = RequestTo(to, "GET", "/v1/transactions/" + txid);
  AddTrace(cr, to, AgentCall::kStateQuery, txid);
  client_.Send(std::move(cr),
               Observed(to, AgentCall::kStateQuery, Answer<StateAnswer>(std::move(done), StateAnswerOf)));
}

void HttpAgentTransport::ListPrepared(const ParticipantRef& to,
                                      std::function<void(Result<std::vector<PreparedAtAgent>>)> done) {
  client_.Send(RequestTo(to, "GET", "/v1/transactions?state=prepared"),
               Observed(to, AgentCall::kListPrepared,
                        Answer<std::vector<PreparedAtAgent>>(std::move(done), PreparedListOf)));
}

void HttpAgentTransport::FetchCatalog(const ParticipantRef& to, int64_t timeout_ms,
                                      std::function<void(Result<AgentCatalog>)> done) {
  http::ClientRequest cr = RequestTo(to, "GET", "/v1/procedures");
  cr.timeout = std::chrono::milliseconds(timeout_ms);
  client_.Send(std::move(cr), Observed(to, AgentCall::kProbe, Answer<AgentCatalog>(std::move(done), CatalogOf)));
}

}  // namespace commitd::coordinator
