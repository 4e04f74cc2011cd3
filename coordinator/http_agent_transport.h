// AgentTransport over HTTP (docs/api.md, agent API): protocol messages go
// through a BatchingClient (coalesced per agent under load), the rest through
// the plain client. Answers are mapped by agent_answers.h.
//
// Thread: the io thread of the clients.
#pragma once

#include <functional>
#include <string>

#include "common/batching_client.h"
#include "common/entropy.h"
#include "common/http_client.h"
#include "coordinator/agent_call_observer.h"
#include "coordinator/agent_transport.h"
#include "common/trace_context.h"

namespace commitd::coordinator {

class HttpAgentTransport final : public AgentTransport {
 public:
  // token: sent as a bearer token when non-empty. Both clients outlive this.
  HttpAgentTransport(http::Client& client, http::BatchingClient& peers, std::string token)
      : client_(client), peers_(peers), token_(std::move(token)) {}
  // Told about every exchange (round trip, error); must outlive this. Null: nobody.
  void set_observer(AgentCallObserver* observer) { observer_ = observer; }
  // The trace a transaction's calls belong to; each protocol call (prepare,
  // precommit, commit, abort) is a new span in it, sent as `traceparent`.
  // Unset: no trace context is sent.
  using TraceSource = std::function<TraceContext(const std::string& txid)>;
  void set_trace_source(TraceSource source) { trace_source_ = std::move(source); }

  void Prepare(const ParticipantRef& to, const wire::PrepareRequest& request, int64_t timeout_ms,
               std::function<void(Result<wire::Vote>)> done) override;
  void Deliver(const ParticipantRef& to, const std::string& txid, Outcome outcome, const std::string& key,
               std::function<void(Result<DecisionAck>)> done) override;
  void Fence(const ParticipantRef& to, const std::string& txid, std::function<void(Result<FenceAnswer>)> done) override;
  void Adopt(const ParticipantRef& to, const wire::AdoptRequest& request,
             std::function<void(Result<AdoptReply>)> done) override;
  void QueryState(const ParticipantRef& to, const std::string& txid,
                  std::function<void(Result<StateAnswer>)> done) override;
  void Precommit(const ParticipantRef& to, const std::string& txid, const std::string& commit_key,
                 std::function<void(Result<PrecommitAnswer>)> done) override;
  void ListPrepared(const ParticipantRef& to,
                    std::function<void(Result<std::vector<PreparedAtAgent>>)> done) override;
  void FetchCatalog(const ParticipantRef& to, int64_t timeout_ms,
                    std::function<void(Result<AgentCatalog>)> done) override;

 private:
  http::ClientRequest RequestTo(const ParticipantRef& to, std::string method, std::string target) const;
  // Adds the call's traceparent (a new span of txid's trace) and logs it at debug level.
  void AddTrace(http::ClientRequest& request, const ParticipantRef& to, AgentCall call, const std::string& txid);
  // Wraps an answer handler: the observer hears of the exchange first.
  std::function<void(Result<http::Response>)> Observed(const ParticipantRef& to, AgentCall call,
                                                       std::function<void(Result<http::Response>)> handler) const;

  http::Client& client_;
  http::BatchingClient& peers_;
  std::string token_;
  AgentCallObserver* observer_ = nullptr;
  TraceSource trace_source_;
  SystemEntropy span_ids_;
};

}  // namespace commitd::coordinator
