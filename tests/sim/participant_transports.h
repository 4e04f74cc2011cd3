// The simulator's implementations of a participant Node's interfaces:
// transports over the sim Network and timers over the Scheduler. Answers go
// through the same parsers as the HTTP transports' (DecisionAnswerOf,
// PeerReplyOf), so the mapping from the wire to typed answers is one code.
#pragma once

#include <string>

#include "participant/coordinator_transport.h"
#include "participant/peer_transport.h"
#include "tests/sim/context.h"

namespace commitd::sim {

class SimCoordinatorTransport final : public participant::CoordinatorTransport {
 public:
  SimCoordinatorTransport(std::string node, Context& ctx) : node_(std::move(node)), ctx_(ctx) {}
  void QueryDecision(participant::DecisionQuery query, std::function<void(participant::DecisionAnswer)> done) override;
  void Register(const std::string& coordinator_url, const std::string& name, const std::string& own_url,
                std::function<void(Status)> done) override;
  void GroupMembers(const std::string& coordinator_url,
                    std::function<void(Result<std::vector<std::string>>)> done) override;

 private:
  std::string node_;
  Context& ctx_;
};

class SimPeerTransport final : public participant::PeerTransport {
 public:
  SimPeerTransport(std::string node, Context& ctx) : node_(std::move(node)), ctx_(ctx) {}
  void Call(const wire::ParticipantRef& peer, participant::action::PeerCall call, const std::string& txid,
            const std::string& key, std::function<void(participant::PeerReply)> done) override;

 private:
  std::string node_;
  Context& ctx_;
};

}  // namespace commitd::sim
