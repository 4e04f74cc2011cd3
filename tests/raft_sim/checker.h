// The safety properties of Raft (Figure 3 of the paper), checked after every
// step of the simulation:
//   election safety      at most one leader per term;
//   log matching         two logs holding an entry with the same index and term
//                        hold the same entry and agree on every entry before it;
//   leader completeness  an entry committed in term T is in the log of every
//                        leader of a term after T;
//   state machine safety no two servers apply different entries at an index;
//   linearizable reads   a ReadIndex answer covers every entry committed before it was asked.
// The checks are incremental (each append, commit and apply is checked once
// against what the run has seen so far), so they stay cheap after every step.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "raft/node.h"

namespace commitd::raft_sim {

class Checker {
 public:
  explicit Checker(std::size_t node_count);

  // entries were just appended to node's log (the Ready's `append`).
  void OnAppended(raft::NodeId node, const raft::Log& log, const std::vector<raft::Entry>& entries);
  // node's state machine now reflects every entry up to index and has this hash.
  void OnApplied(raft::NodeId node, raft::Index index, uint64_t hash);
  // After any step of `stepped`; `nodes` holds every running node (others null).
  void AfterStep(raft::NodeId stepped, const std::vector<const raft::Node*>& nodes);
  void OnRestart(raft::NodeId node, raft::Index commit_index);
  // After a Ready was persisted by a correct driver: the durable log must end
  // where the node's in-memory log ends (the Ready contract of raft/node.h).
  // durable_last_term nullopt: the Ready's appends did not fit the durable log.
  void CheckDurableLog(raft::NodeId node, const raft::Log& log, raft::Index durable_base, raft::Index durable_last,
                       std::optional<raft::Term> durable_last_term);

  // A ReadIndex request was made now; its answer must be at least today's commit.
  void OnReadRequested(uint64_t request);
  void OnReadAnswered(raft::NodeId node, const raft::ReadState& read);

  // Anything else a driver finds wrong with what the node handed it.
  void Report(std::string violation);

  bool IsCommitted(raft::Index index, raft::Term term) const;
  const std::optional<std::string>& violation() const { return violation_; }
  std::size_t committed_count() const { return committed_count_; }
  raft::Term max_leader_term() const { return leaders_.empty() ? 0 : leaders_.rbegin()->first; }
  std::size_t leader_count() const { return leaders_.size(); }
  std::size_t reads_answered() const { return reads_answered_; }

 private:
  struct Committed {
    bool known = false;
    raft::Term term = 0;
    raft::Term known_in = 0;  // the entry was committed in this term or an earlier one
  };
  struct Appended {
    uint64_t fingerprint = 0;
    raft::Term prev_term = 0;
  };

  void Fail(std::string what);
  void CheckLeaderHas(const raft::Node& leader, raft::Index index, const Committed& c);

  std::map<raft::Term, raft::NodeId> leaders_;
  std::vector<raft::Term> completeness_checked_term_;  // per node
  std::vector<Committed> committed_;                   // by index
  std::size_t committed_count_ = 0;
  raft::Index max_committed_ = 0;
  std::map<uint64_t, raft::Index> reads_;  // request -> highest committed index when it was asked
  std::size_t reads_answered_ = 0;
  std::vector<raft::Index> seen_commit_;               // per node
  std::unordered_map<uint64_t, Appended> appended_;    // by (index, term)
  std::vector<std::optional<uint64_t>> applied_hash_;  // by index
  std::optional<std::string> violation_;
};

}  // namespace commitd::raft_sim
