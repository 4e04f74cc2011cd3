// The group member's requests to participants (prepare, commit/abort,
// precommit) in the form its service half (group_member_service.cc) uses,
// over SimAgentTransport (the answers mapped as the binary maps them). The
// single coordinator runs coordinator::Node instead, which uses the transport
// directly.
#pragma once

#include <functional>
#include <string>

#include "coordinator/engine.h"
#include "tests/sim/context.h"

namespace commitd::sim {

void CallPrepare(Context& ctx, const std::string& from, const coordinator::action::SendPrepare& send,
                 std::function<void(Result<wire::Vote>)> on_vote);
// Ok once acked; any other answer (unknown_transaction included) is an error: retried.
void CallDecision(Context& ctx, const std::string& from, const coordinator::action::SendDecision& send,
                  std::function<void(Status)> on_ack);
void CallPrecommit(Context& ctx, const std::string& from, const coordinator::action::SendPrecommit& send,
                   std::function<void(Result<coordinator::PrecommitAnswer>)> on_answer);

}  // namespace commitd::sim
