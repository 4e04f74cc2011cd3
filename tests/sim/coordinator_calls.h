// The coordinator's requests to participants (prepare, commit/abort,
// precommit), sent over the simulated network and answered the way
// coordinator/service.cc maps HTTP answers to engine inputs. Shared by
// CoordinatorNode and GroupMemberNode; each logs what it sends and hears.
#pragma once

#include <functional>
#include <string>

#include "coordinator/engine.h"
#include "tests/sim/context.h"

namespace commitd::sim {

// Non-200 answers become InvalidArgument votes.
void CallPrepare(Context& ctx, const std::string& from, const coordinator::action::SendPrepare& send,
                 std::function<void(Result<wire::Vote>)> on_vote);
// Non-200 answers become Unavailable.
void CallDecision(Context& ctx, const std::string& from, const coordinator::action::SendDecision& send,
                  std::function<void(Status)> on_ack);
// 200: acked; 409 already_aborted or 404 unknown_transaction: it aborted.
void CallPrecommit(Context& ctx, const std::string& from, const coordinator::action::SendPrecommit& send,
                   std::function<void(Result<coordinator::PrecommitAnswer>)> on_answer);

}  // namespace commitd::sim
