#include "tests/raft_sim/network.h"

namespace commitd::raft_sim {

std::vector<int64_t> Network::Plan(raft::NodeId from, raft::NodeId to) {
  std::vector<int64_t> delays;
  if (IsCut(from, to) || rng_.Chance(profile_.drop)) return delays;
  int copies = rng_.Chance(profile_.duplicate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    int64_t delay = rng_.Uniform(1, profile_.max_delay_ms);
    if (rng_.Chance(profile_.outlier)) delay += rng_.Uniform(1, profile_.max_outlier_ms);
    delays.push_back(delay);
  }
  return delays;
}

}  // namespace commitd::raft_sim
