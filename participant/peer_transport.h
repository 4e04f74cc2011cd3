// PeerTransport: how a participant Node talks to the other participants of a
// 3PC transaction when it runs the termination protocol (docs/protocol.md).
// An implementation maps the wire to PeerReply; the Node maps replies to
// engine inputs.
//
// Thread: called on the Node's event thread; `done` runs there, exactly once.
#pragma once

#include <functional>
#include <string>

#include "common/wire.h"
#include "participant/engine.h"

namespace commitd::participant {

struct PeerReply {
  enum class Kind {
    kState,               // the peer's state of the transaction (Engine::StateOf's names)
    kUnknownTransaction,  // the peer has never seen it (or forgot it)
    kAlreadyAborted,      // the peer refused a precommit or commit: it aborted
    kError,               // no answer, or one of no known form
  };
  Kind kind = Kind::kError;
  std::string state;  // kState
  std::string error;  // kError
};

class PeerTransport {
 public:
  virtual ~PeerTransport() = default;
  // kState asks the peer's state; kPrecommit, kCommit and kAbort tell it.
  // key: the transaction's abort key with kAbort, its commit key with
  // kPrecommit and kCommit ("" if this agent has none).
  virtual void Call(const wire::ParticipantRef& peer, action::PeerCall call, const std::string& txid,
                    const std::string& key, std::function<void(PeerReply)> done) = 0;
};

}  // namespace commitd::participant
