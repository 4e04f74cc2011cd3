// The simulated network: per-seed delay, loss, duplication and reordering,
// and directed links that partitions cut. Messages are delivered by the
// World's event queue; this decides when (and whether) each copy arrives.
#pragma once

#include <algorithm>
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "raft/membership.h"
#include "raft/prng.h"

namespace commitd::raft_sim {

struct NetworkProfile {
  double drop = 0;
  double duplicate = 0;
  double outlier = 0;  // chance of an extra delay, which reorders the message behind later ones
  int64_t max_delay_ms = 10;
  int64_t max_outlier_ms = 300;
};

class Network {
 public:
  Network(raft::SplitMix64& rng, NetworkProfile profile) : rng_(rng), profile_(profile) {}

  // The delays after which the copies of one message arrive: none if it is
  // lost, two if it is duplicated.
  std::vector<int64_t> Plan(raft::NodeId from, raft::NodeId to);
  bool IsCut(raft::NodeId from, raft::NodeId to) const { return cut_.count({from, to}) > 0; }
  void Cut(raft::NodeId from, raft::NodeId to) { cut_.insert({from, to}); }
  void Heal() { cut_.clear(); }
  // No more loss, duplication or outliers, and delays well under an election
  // timeout (what liveness needs); messages still overtake one another.
  void StopFaults(int64_t max_delay_ms) {
    profile_.drop = 0;
    profile_.duplicate = 0;
    profile_.outlier = 0;
    profile_.max_delay_ms = std::min(profile_.max_delay_ms, max_delay_ms);
  }
  const NetworkProfile& profile() const { return profile_; }

 private:
  raft::SplitMix64& rng_;
  NetworkProfile profile_;
  std::set<std::pair<raft::NodeId, raft::NodeId>> cut_;
};

}  // namespace commitd::raft_sim
