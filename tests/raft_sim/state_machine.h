// The replicated state machine of the simulation: the list of applied
// commands and a hash chained over every applied entry, so that two replicas
// that applied different entries at any index end with different hashes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "raft/types.h"

namespace commitd::raft_sim {

class StateMachine {
 public:
  void Apply(const raft::Entry& entry);

  raft::Index applied() const { return applied_; }
  uint64_t hash() const { return hash_; }

  // "index hash\n" then one command per line: large enough to take several chunks.
  std::string Snapshot() const;
  static std::optional<StateMachine> Restore(const std::string& snapshot);

 private:
  raft::Index applied_ = 0;
  uint64_t hash_ = 1469598103934665603ULL;  // FNV-1a offset basis
  std::vector<std::string> commands_;
};

}  // namespace commitd::raft_sim
