#include "tests/raft_sim/options.h"

namespace commitd::raft_sim {

std::optional<Bug> ParseBug(std::string_view name) {
  for (Bug bug : {Bug::kNone, Bug::kCommitOldTerm, Bug::kNoVotePersist, Bug::kAckBeforeDurable, Bug::kStaleRead}) {
    if (BugName(bug) == name) return bug;
  }
  return std::nullopt;
}

std::string_view BugName(Bug bug) {
  switch (bug) {
    case Bug::kNone: return "none";
    case Bug::kCommitOldTerm: return "commit-old-term";
    case Bug::kNoVotePersist: return "no-vote-persist";
    case Bug::kAckBeforeDurable: return "ack-before-durable";
    case Bug::kStaleRead: return "stale-read";
  }
  return "?";
}

}  // namespace commitd::raft_sim
