// What an operator's forced decision may do with a transaction prepared
// under another decision log (one that was lost or replaced), once each
// participant answered its adoption (AgentTransport::Adopt). Pure.
//
// An adopted participant refuses the lost log's decisions from then on, so
// once every participant adopted the transaction or answered what it did,
// no decision still in the network can change any of them: the forced
// outcome is recorded only if it agrees with what they did.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "coordinator/agent_transport.h"
#include "coordinator/types.h"

namespace commitd::coordinator {

struct AdoptionVerdict {
  enum class Kind {
    kRecord,        // every participant adopted it, or did what the operator asks: record the forced outcome
    kContradicted,  // a participant did the other outcome (`participant`, `done`): refused
    kImpossible,    // no answer allows the outcome asked for (`reason`): refused
    kUnavailable,   // a participant did not answer (`participant`, `reason`): nothing recorded, ask again
  };
  Kind kind = Kind::kRecord;
  std::string participant;
  Outcome done = Outcome::kPending;  // kContradicted: what `participant` did
  std::string reason;
};

using AdoptionAnswers = std::vector<std::pair<std::string, Result<AdoptAnswer>>>;  // participant, answer

// `wanted`: committed or aborted. What a participant did (committed, aborted)
// is judged before silence: it refuses the force whatever the silent ones did.
// A participant that no longer knows the
// transaction never prepared it, or finished it and forgot: that allows
// abort, and commit only when another participant committed (so every one
// voted yes and the forgotten one committed too).
AdoptionVerdict JudgeAdoptions(Outcome wanted, const AdoptionAnswers& answers);

}  // namespace commitd::coordinator
