// DecisionStateMachine: the coordinator group's replicated state, one copy
// per member, changed only by applying committed Raft entries (commands of
// coordinator/raft_codec.h) in log order.
//
// Apply rules as coordinator/decision_store.cc: the first decision for a txid
// wins (Conflict otherwise, the record unchanged), except that a decision
// replaces a 3PC precommit record (outcome pending); an idempotency key
// belongs to one txid; Finish marks a record finished (NotFound if unknown).
// Unlike the single-coordinator model, nothing is ever forgotten: the real
// replicated store keeps every record (its snapshots copy them all), so a
// late question about a finished transaction finds its decision rather than
// recording a presumed abort next to it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/raft_codec.h"
#include "raft/types.h"

namespace commitd::sim {

class DecisionStateMachine {
 public:
  // Bug::kGroupOverwriteDecision: a later decision replaces an earlier one.
  explicit DecisionStateMachine(bool overwrite_decisions = false) : overwrite_decisions_(overwrite_decisions) {}

  // The result goes back to the proposer; the state changes only on Ok.
  Status Apply(const coordinator::Command& command);

  const coordinator::DecisionRecord* Find(const std::string& txid) const;
  const coordinator::DecisionRecord* FindByIdempotencyKey(const std::string& key) const;
  // Decided-but-unfinished records and 3PC precommit records, as DecisionStore::Recover.
  std::vector<coordinator::DecisionRecord> Unfinished() const;
  bool AllFinished() const;

  raft::Index applied = 0;  // the last entry applied

 private:
  bool overwrite_decisions_;
  std::map<std::string, coordinator::DecisionRecord> records_;
  std::map<std::string, std::string> txid_by_key_;
};

}  // namespace commitd::sim
