#include "tests/sim/coordinator_calls.h"

#include "tests/sim/sim_agent_transport.h"

namespace commitd::sim {

void CallPrepare(Context& ctx, const std::string& from, const coordinator::action::SendPrepare& send,
                 std::function<void(Result<wire::Vote>)> on_vote) {
  SimAgentTransport(ctx, from).Prepare(send.to, send.request, send.timeout_ms, std::move(on_vote));
}

void CallDecision(Context& ctx, const std::string& from, const coordinator::action::SendDecision& send,
                  std::function<void(Status)> on_ack) {
  SimAgentTransport(ctx, from).Deliver(send.to, send.txid, send.outcome,
                                       [on_ack = std::move(on_ack)](Result<coordinator::DecisionAck> ack) {
                                         if (!ack.ok()) {
                                           on_ack(ack.status());
                                         } else if (*ack != coordinator::DecisionAck::kAcked) {
                                           on_ack(Status::Unavailable("unknown_transaction"));
                                         } else {
                                           on_ack(Status::Ok());
                                         }
                                       });
}

void CallPrecommit(Context& ctx, const std::string& from, const coordinator::action::SendPrecommit& send,
                   std::function<void(Result<coordinator::PrecommitAnswer>)> on_answer) {
  SimAgentTransport(ctx, from).Precommit(send.to, send.txid, std::move(on_answer));
}

}  // namespace commitd::sim
