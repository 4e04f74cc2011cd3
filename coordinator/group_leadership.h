// GroupLeadership: Leadership as the Raft-replicated decision log knows it.
// The group's URLs are the configured members' (every member shares the one
// decision log). The binary's service and the simulator's group members both
// hand this to coordinator::Node.
//
// Thread: the Node's thread (the log's io thread).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "coordinator/leadership.h"
#include "coordinator/replicated_decision_log.h"

namespace commitd::coordinator {

class GroupLeadership final : public Leadership {
 public:
  // log outlives this.
  GroupLeadership(ReplicatedDecisionLog& log, const std::vector<GroupMember>& members);

  bool leader_ready() const override { return log_.leader_ready(); }
  std::string leader_url() const override { return log_.leader_url(); }
  void set_on_leadership(std::function<void(bool)> fn) override { log_.set_on_leadership(std::move(fn)); }
  uint64_t term() const override { return log_.driver().node().term(); }
  std::vector<std::string> member_urls() const override { return urls_; }

 private:
  ReplicatedDecisionLog& log_;
  std::vector<std::string> urls_;
};

}  // namespace commitd::coordinator
