// CoordinatorTransport: how a participant Node talks to coordinators. The
// binary's implementation is HTTP (participant/http_coordinator_transport.h);
// the simulator's goes over its network. An implementation maps the wire to
// these typed answers and holds no rule about what an answer proves: the Node
// decides that (a "not known here" is proof of abort only from the
// transaction's own coordinator or its group).
//
// Thread: called on the Node's event thread; `done` runs there, exactly once.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace commitd::participant {

struct DecisionQuery {
  std::string coordinator_url;
  std::string txid;
  // The participant asking, named so that the coordinator records its
  // presumed abort before answering; empty: ask without naming anyone.
  std::string asking_participant;
  // The decision log the record was prepared under ("" if unknown): a
  // coordinator with another log answers kUnknownLog and records nothing.
  std::string log_id;
};

struct DecisionAnswer {
  enum class Kind {
    kCommitted,
    kAborted,
    kPending,   // decided neither way yet
    kNotKnown,  // no record of the transaction there: presumed abort, if it is the right coordinator
    kUnknownLog,  // the coordinator's decision log is not the one the record was prepared under: no proof
    // It deleted the transaction's finished decision after its retention
    // window: every participant had acknowledged it, so a record still
    // prepared here contradicts its log. No proof either way: in doubt.
    kForgotten,
    // It resumed the (3PC) transaction after a restart and has not decided it;
    // it waits for every participant, so this counts as no answer.
    kRecovering,
    kError,     // no answer: unreachable, timeout, an answer of no known form
  };
  Kind kind = Kind::kError;
  // kNotKnown: the URLs of every member of the answering coordinator group
  // (they share one decision log); empty for a lone coordinator.
  std::vector<std::string> group;
  std::string error;  // kError: why
};

class CoordinatorTransport {
 public:
  virtual ~CoordinatorTransport() = default;
  virtual void QueryDecision(DecisionQuery query, std::function<void(DecisionAnswer)> done) = 0;
  // Tells a coordinator the URL this participant is reached at. Ok once it
  // accepted; InvalidArgument when it refused the token; else why it failed.
  virtual void Register(const std::string& coordinator_url, const std::string& name, const std::string& own_url,
                        std::function<void(Status)> done) = 0;
  // The URL of every member of the coordinator's group (GET /v1/cluster; a
  // lone coordinator lists itself), or why there is no answer.
  virtual void GroupMembers(const std::string& coordinator_url,
                            std::function<void(Result<std::vector<std::string>>)> done) = 0;
};

}  // namespace commitd::participant
