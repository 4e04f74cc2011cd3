// How a raft::Driver reaches the other members: raft/http_transport.h in the
// binary, the simulated network in commitd-sim. Delivery is best effort
// (messages may be lost, delayed, duplicated or reordered; Raft copes).
// Incoming messages go to Driver::Receive.
//
// Thread: the driver's owner thread.
#pragma once

#include <functional>
#include <vector>

#include "common/status.h"
#include "raft/messages.h"

namespace commitd::raft {

// Answers one delivery: the receiver's messages back to its sender, once
// they may leave (their Ready is durable); an error if it is stopping.
using Reply = std::function<void(Result<std::vector<Message>>)>;

class Transport {
 public:
  virtual ~Transport() = default;
  // Every message is addressed to `to`.
  virtual void Send(NodeId to, std::vector<Message> messages) = 0;
};

}  // namespace commitd::raft
