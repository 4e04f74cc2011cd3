// One simulated run: five servers, a seeded network, a virtual clock, a
// client, and a chaos schedule (crashes, partitions, membership changes,
// leadership transfers) until the world heals. The Checker runs after every
// step; after healing, a newly proposed entry must commit within
// kLivenessBoundMs of virtual time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/raft_sim/options.h"

namespace commitd::raft_sim {

struct RunStats {
  uint64_t steps = 0;
  int64_t virtual_ms = 0;
  uint64_t messages = 0;
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t leaders = 0;  // distinct (term, leader) pairs
  uint64_t max_term = 0;
  uint64_t committed = 0;  // distinct committed indexes
  uint64_t conf_changes = 0;
  uint64_t transfers = 0;
  uint64_t reads = 0;  // ReadIndex answers checked
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_installed = 0;
  int64_t heal_to_commit_ms = 0;  // how long after healing the first new entry committed
};

struct RunResult {
  std::optional<std::string> violation;
  RunStats stats;
  std::string profile;             // the seed's fault profile, for reports
  uint64_t trace_hash = 0;         // of every trace line, when asked for
  std::vector<std::string> tail;   // the last trace lines, when asked for
};

// hash_trace: format every trace line and hash it (for --check-determinism).
RunResult RunSeed(const SimOptions& options, bool hash_trace);

}  // namespace commitd::raft_sim
