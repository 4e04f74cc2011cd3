// One simulated server: a raft::Node, the driver around it, its durable
// storage and its state machine. The driver follows the Ready contract of
// raft/node.h (persist, then send, then apply) unless a Bug says otherwise.
// A crash keeps exactly the durable storage; a restart rebuilds the node from it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "raft/node.h"
#include "tests/raft_sim/checker.h"
#include "tests/raft_sim/options.h"
#include "tests/raft_sim/state_machine.h"

namespace commitd::raft_sim {

// What survives a crash.
struct DurableState {
  raft::HardState hard_state;
  raft::SnapshotMeta snapshot;
  std::shared_ptr<const std::string> snapshot_data;
  std::vector<raft::Entry> entries;  // after snapshot.index, contiguous

  raft::Index last_index() const { return snapshot.index + entries.size(); }
  void TruncateFrom(raft::Index from);
  // Appends at the end; an entry that does not go right after the last one is
  // a broken Ready (unless `overwrite`: then it replaces what is there).
  bool Append(const raft::Entry& entry, bool overwrite);
  void DropThrough(raft::Index index);
};

struct ServerCounters {
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_installed = 0;
  uint64_t entries_applied = 0;
};

class Server {
 public:
  // tuning.id and tuning.seed are filled in here and at each Start.
  Server(raft::NodeId id, raft::Membership bootstrap, raft::NodeOptions tuning, Bug bug,
         raft::Index compact_every);

  void Start(int64_t now_ms, uint64_t seed);
  void Crash();
  bool up() const { return node_ != nullptr; }
  uint64_t incarnation() const { return incarnation_; }
  raft::NodeId id() const { return id_; }
  raft::Node& node() { return *node_; }
  const raft::Node* node_or_null() const { return node_.get(); }
  const StateMachine& state_machine() const { return state_machine_; }
  const ServerCounters& counters() const { return counters_; }

  // Carries out every Ready the node has; messages go to `send`.
  void Pump(Checker& checker, const std::function<void(raft::Message)>& send);
  uint64_t reads_failed() const { return reads_failed_; }

 private:
  // False when the Ready's log writes did not fit the durable log.
  bool Persist(const raft::Ready& ready);
  void MaybeCompact();

  raft::NodeId id_;
  raft::NodeOptions tuning_;
  Bug bug_;
  raft::Index compact_every_;  // 0: never
  DurableState durable_;
  std::optional<raft::Ready> unsynced_;  // Bug::kAckBeforeDurable: the last Ready's log writes, not yet durable
  std::unique_ptr<raft::Node> node_;
  StateMachine state_machine_;
  uint64_t incarnation_ = 0;
  ServerCounters counters_;
  uint64_t reads_failed_ = 0;
};

}  // namespace commitd::raft_sim
