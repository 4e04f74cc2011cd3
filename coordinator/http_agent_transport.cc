#include "coordinator/http_agent_transport.h"

#include <chrono>

#include "coordinator/agent_answers.h"

namespace commitd::coordinator {
namespace {

// The answer of one exchange, mapped by `map` (status, body) when it arrived.
template <class T, class Map>
std::function<void(Result<http::Response>)> Answer(std::function<void(Result<T>)> done, Map map) {
  return [done = std::move(done), map](Result<http::Response> r) {
    if (!r.ok()) {
      done(r.status());
      return;
    }
    done(map(r->status, r->body));
  };
}

}  // namespace

http::ClientRequest HttpAgentTransport::RequestTo(const ParticipantRef& to, std::string method,
                                                  std::string target) const {
  http::ClientRequest cr;
  cr.base_url = to.url;
  cr.method = std::move(method);
  cr.target = std::move(target);
  if (!token_.empty()) cr.headers.emplace_back("Authorization", "Bearer " + token_);
  return cr;
}

void HttpAgentTransport::Prepare(const ParticipantRef& to, const wire::PrepareRequest& request, int64_t timeout_ms,
                                 std::function<void(Result<wire::Vote>)> done) {
  http::ClientRequest cr = RequestTo(to, "POST", "/v1/prepare");
  cr.body = wire::ToJson(request).dump();
  cr.timeout = std::chrono::milliseconds(timeout_ms);
  peers_.Send(std::move(cr), Answer<wire::Vote>(std::move(done), VoteOf));
}

void HttpAgentTransport::Deliver(const ParticipantRef& to, const std::string& txid, Outcome outcome,
                                 const std::string& abort_key, std::function<void(Result<DecisionAck>)> done) {
  const bool commit = outcome == Outcome::kCommitted;
  http::ClientRequest cr = RequestTo(to, "POST", commit ? "/v1/commit" : "/v1/abort");
  cr.body = commit ? nlohmann::json{{"txid", txid}}.dump() : wire::ToJson(wire::AbortRequest{txid, abort_key}).dump();
  peers_.Send(std::move(cr), Answer<DecisionAck>(std::move(done), DecisionAckOf));
}

void HttpAgentTransport::Precommit(const ParticipantRef& to, const std::string& txid,
                                   std::function<void(Result<PrecommitAnswer>)> done) {
  http::ClientRequest cr = RequestTo(to, "POST", "/v1/precommit");
  cr.body = nlohmann::json{{"txid", txid}}.dump();
  peers_.Send(std::move(cr), Answer<PrecommitAnswer>(std::move(done), PrecommitAnswerOf));
}

void HttpAgentTransport::ListPrepared(const ParticipantRef& to,
                                      std::function<void(Result<std::vector<PreparedAtAgent>>)> done) {
  client_.Send(RequestTo(to, "GET", "/v1/transactions?state=prepared"),
               Answer<std::vector<PreparedAtAgent>>(std::move(done), PreparedListOf));
}

void HttpAgentTransport::FetchCatalog(const ParticipantRef& to, int64_t timeout_ms,
                                      std::function<void(Result<AgentCatalog>)> done) {
  http::ClientRequest cr = RequestTo(to, "GET", "/v1/procedures");
  cr.timeout = std::chrono::milliseconds(timeout_ms);
  client_.Send(std::move(cr), Answer<AgentCatalog>(std::move(done), CatalogOf));
}

}  // namespace commitd::coordinator
