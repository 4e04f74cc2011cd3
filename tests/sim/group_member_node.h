// GroupMemberNode: one member of the coordinator group
// (docs/coordinator_group.md).
//
// Raft: the real coordinator::ReplicatedDecisionLog, that is the real
// raft::Driver with the real DecisionStateMachine, on a real SQLite file in
// the run's tmp dir. Its storage is a SimStorageQueue (the same batch code as
// BatchWriter, in virtual time), its transport the simulated network (one
// way: loss, partitions and crashes apply) and its timers the scheduler. A
// crash loses the queue's unsynced jobs and closes the file; a restart
// reopens it.
//
// Service: the real coordinator::Node, given the log, the shared
// coordinator::GroupLeadership over it, the simulator's AgentTransport and
// Timers (as the single CoordinatorNode, and as the binary's service.cc). The
// Node runs an engine only while this member is the ready leader, resumes the
// state machine's unfinished records when it becomes ready, and records a
// presumed abort before answering it. A member that is not the ready leader
// forwards client requests to the leader it knows, or answers 503 (as the
// HTTP adapter does).
//
// The planted group bugs are the shipped classes' test-only fault switches
// (ReplicatedLogOptions, NodeOptions, raft::DriverOptions).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "coordinator/group_leadership.h"
#include "coordinator/node.h"
#include "coordinator/replicated_decision_log.h"
#include "raft/timers.h"
#include "raft/transport.h"
#include "tests/sim/context.h"
#include "tests/sim/sim_agent_transport.h"
#include "tests/sim/sim_storage_queue.h"
#include "tests/sim/seeded_entropy.h"
#include "tests/sim/sim_timers.h"

namespace commitd::sim {

struct GroupMember {
  std::string name;  // "c1": its network node and URL sim://c1
  raft::NodeId id = raft::kNoNode;  // coordinator::NodeIdOf(name)
};

class GroupMemberNode {
 public:
  // `members` lists the whole group, this member included; db_path is its raft.db;
  // participants: the configured agents (their network nodes).
  GroupMemberNode(GroupMember self, std::vector<GroupMember> members, Context& ctx, std::string db_path,
                  std::vector<std::string> participants);
  ~GroupMemberNode();

  // The machine's wall clock minus the virtual clock, from the next Start on.
  void set_clock_offset_ms(int64_t ms) { clock_offset_ms_ = ms; }
  int64_t clock_offset_ms() const { return clock_offset_ms_; }
  Status Start();
  // The process dies: Raft driver, Node, waiting clients and unsynced writes are gone.
  void Crash();
  bool up() const { return up_; }
  const std::string& name() const { return self_.name; }
  void set_log_delay_ms(int64_t ms) { storage_.set_max_delay_ms(ms); }
  // raft.db's queue: a power loss (World) is Crash(), then storage().LoseUnsynced().
  SimStorageQueue& storage() { return storage_; }
  // The other members, for delivering Raft messages; they outlive this one.
  void Connect(std::map<raft::NodeId, GroupMemberNode*> peers) { peers_ = std::move(peers); }
  // A Raft message arrived over the network.
  void Receive(const raft::Message& message);
  // An operator's transfer-leader (POST /v1/cluster/transfer-leader) to member `to`.
  void TransferLeadership(const std::string& to);

  bool leader_ready() const { return up_ && log_->leader_ready(); }
  // Up, storage idle, no proposal or read waiting, and the Node's engine holds nothing.
  bool Idle() const;
  // Every record in its state machine finished, and everything in its log applied.
  bool Caught(raft::Index leader_last_index) const;
  raft::Index last_index() const { return up_ ? log_->driver().node().log().last_index() : 0; }
  std::string Describe() const;

 private:
  // The simulated network as the driver's transport: one message, one delivery.
  class Transport final : public raft::Transport {
   public:
    explicit Transport(GroupMemberNode& node) : node_(node) {}
    void Send(raft::NodeId to, std::vector<raft::Message> messages) override;

   private:
    GroupMemberNode& node_;
  };
  // The scheduler as the driver's timers; nothing scheduled before a crash runs after it.
  class Timers final : public raft::Timers {
   public:
    explicit Timers(GroupMemberNode& node) : node_(node) {}
    int64_t NowMs() override { return node_.ctx_.now(); }
    void After(int64_t ms, std::function<void()> fn) override;
    void Post(std::function<void()> fn) override;

   private:
    GroupMemberNode& node_;
  };

  std::string NameOf(raft::NodeId id) const;
  void ObserveApplied(const raft::Entry& entry, const Status& result);
  void Handle(const Request& request, Responder respond);
  void Forward(const Request& request, Responder respond);

  GroupMember self_;
  std::vector<GroupMember> members_;
  std::map<raft::NodeId, GroupMemberNode*> peers_;
  Context& ctx_;
  std::string db_path_;
  bool up_ = false;
  uint64_t incarnation_ = 0;

  std::unique_ptr<sqlite::Database> db_;
  SimStorageQueue storage_;
  Transport transport_{*this};
  Timers timers_{*this};
  std::vector<std::string> participants_;
  std::unique_ptr<coordinator::ReplicatedDecisionLog> log_;
  raft::Index last_applied_ = 0;  // the checker's view: entries are applied in order
  bool was_ready_ = false;        // for the trace

  std::unique_ptr<coordinator::GroupLeadership> leadership_;
  std::unique_ptr<SimAgentTransport> agents_;
  std::unique_ptr<SimTimers> node_timers_;
  int64_t clock_offset_ms_ = 0;
  SeededEntropy entropy_{ctx_.random};
  std::unique_ptr<coordinator::Node> node_;
};

}  // namespace commitd::sim
