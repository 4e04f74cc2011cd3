// The coordinator's AgentTransport over the simulated network: the agent API
// requests the HTTP transport sends, answered by the simulated participants
// and mapped to typed answers by coordinator/agent_answers.h (the binary's
// mapping). Each request and answer is written to the trace.
#pragma once

#include <string>

#include "coordinator/agent_transport.h"
#include "tests/sim/context.h"

namespace commitd::sim {

class SimAgentTransport final : public coordinator::AgentTransport {
 public:
  // from: the coordinator's network node.
  SimAgentTransport(Context& ctx, std::string from) : ctx_(ctx), from_(std::move(from)) {}

  void Prepare(const coordinator::ParticipantRef& to, const wire::PrepareRequest& request, int64_t timeout_ms,
               std::function<void(Result<wire::Vote>)> done) override;
  void Deliver(const coordinator::ParticipantRef& to, const std::string& txid, coordinator::Outcome outcome,
               const std::string& key, std::function<void(Result<coordinator::DecisionAck>)> done) override;
  void Fence(const coordinator::ParticipantRef& to, const std::string& txid,
             std::function<void(Result<coordinator::FenceAnswer>)> done) override;
  void Adopt(const coordinator::ParticipantRef& to, const wire::AdoptRequest& request,
             std::function<void(Result<coordinator::AdoptReply>)> done) override;
  void Precommit(const coordinator::ParticipantRef& to, const std::string& txid, const std::string& commit_key,
                 std::function<void(Result<coordinator::PrecommitAnswer>)> done) override;
  void QueryState(const coordinator::ParticipantRef& to, const std::string& txid,
                  std::function<void(Result<coordinator::StateAnswer>)> done) override;
  void ListPrepared(const coordinator::ParticipantRef& to,
                    std::function<void(Result<std::vector<coordinator::PreparedAtAgent>>)> done) override;
  void FetchCatalog(const coordinator::ParticipantRef& to, int64_t timeout_ms,
                    std::function<void(Result<coordinator::AgentCatalog>)> done) override;

 private:
  Context& ctx_;
  std::string from_;
};

}  // namespace commitd::sim
