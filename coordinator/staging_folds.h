// Which staging records a batch of committed group entries may write
// together with the decision that replaces them (DecisionStateMachine::ApplyAll):
// one row inserted with the decision's outcome, where applying the two
// entries one after the other would insert the staging record and then
// replace it. Pure: decides from the decoded commands alone.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <vector>

#include "coordinator/raft_codec.h"

namespace commitd::coordinator {

struct StagingFold {
  // The row as the staging record and then its decision leave it.
  DecisionRecord row;
  std::size_t decision;  // the entry of the decision, applied with the staging record's
};

// commands[i]: entry i's command; nullopt for an entry the state machine
// ignores (kNoop, kConfig). `undecodable` marks entries whose data did not
// decode. Returns the folds by the staging record's entry.
//
// A staging record folds with the next entry of its transaction when that
// is its decision (not pending, same protocol), and nothing else of the
// transaction comes between them: no other record, no finished mark. Only
// decision records and finished marks may lie between them; any other
// command, or an entry that did not decode, ends the stretch where records
// fold. Whatever comes later (a finished mark, another record) applies to
// the decision's row as it would have after the two entries one by one;
// another record of the transaction after the decision cancels the fold.
// Between the two, the row reads the same to every other command that can
// come there: another transaction's record taking the same idempotency key
// meets a row holding it either way.
std::map<std::size_t, StagingFold> PlanStagingFolds(const std::vector<std::optional<Command>>& commands,
                                                    const std::vector<bool>& undecodable);

}  // namespace commitd::coordinator
