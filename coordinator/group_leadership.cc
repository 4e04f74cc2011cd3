#include "coordinator/group_leadership.h"

namespace commitd::coordinator {

GroupLeadership::GroupLeadership(ReplicatedDecisionLog& log, const std::vector<GroupMember>& members) : log_(log) {
  for (const auto& m : members) urls_.push_back(m.url);
}

}  // namespace commitd::coordinator
