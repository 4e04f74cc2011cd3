// What one simulated Raft run is asked to do, and the deliberate bugs that
// prove the checker can fail.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace commitd::raft_sim {

enum class Bug {
  kNone,
  kCommitOldTerm,     // the core counts replicas for previous-term entries and appends no no-op (Raft Figure 8)
  kNoVotePersist,     // the driver persists the term but never the vote
  kAckBeforeDurable,  // the driver makes appends durable one Ready late, after their acknowledgements left
  kStaleRead,         // the core answers ReadIndex without confirming leadership with a quorum
};

std::optional<Bug> ParseBug(std::string_view name);
std::string_view BugName(Bug bug);

struct SimOptions {
  uint64_t seed = 1;
  Bug bug = Bug::kNone;
  bool trace = false;         // print every trace line as it happens
  std::size_t trace_tail = 0; // keep the last lines and print them with a violation
  uint64_t fault_steps = 6000;  // events before the world heals
};

constexpr int64_t kTickMs = 10;
constexpr int64_t kElectionTimeoutMs = 150;
constexpr int64_t kHeartbeatMs = 50;
constexpr int64_t kLivenessBoundMs = 5'000;  // after healing, a new entry must commit within this
constexpr uint64_t kNodeCount = 5;

}  // namespace commitd::raft_sim
