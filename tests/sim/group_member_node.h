// GroupMemberNode: one member of the coordinator group (design B.5,
// docs/coordinator_group.md).
//
// Raft: the real coordinator::ReplicatedDecisionLog, that is the real
// raft::Driver with the real DecisionStateMachine, on a real SQLite file in
// the run's tmp dir. Its storage is a SimStorageQueue (the same batch code as
// BatchWriter, in virtual time), its transport the simulated network (one
// way: loss, partitions and crashes apply) and its timers the scheduler. A
// crash loses the queue's unsynced jobs and closes the file; a restart
// reopens it.
//
// Service: the real coordinator::Engine runs only while this member is the
// ready leader (leader, with an entry of its own term applied). Becoming
// ready it resumes every unfinished record of the state machine; losing it,
// it drops the engine and answers its waiting clients 503. A failed decision
// append drops the engine rather than feeding it the failure. Reads are
// linearizable (DecisionLog reads). A question about an unknown txid appends
// abort first and then answers 404 naming the group. A member that is not the
// ready leader forwards client requests to the leader it knows, or answers 503.
//
// group_member_node.cc wires the member, group_member_service.cc is the service.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/sqlite_db.h"
#include "coordinator/engine.h"
#include "coordinator/replicated_decision_log.h"
#include "raft/timers.h"
#include "raft/transport.h"
#include "tests/sim/context.h"
#include "tests/sim/sim_storage_queue.h"

namespace commitd::sim {

struct GroupMember {
  std::string name;  // "c1": its network node and URL sim://c1
  raft::NodeId id = raft::kNoNode;  // coordinator::NodeIdOf(name)
};

class GroupMemberNode {
 public:
  // `members` lists the whole group, this member included; db_path is its raft.db.
  GroupMemberNode(GroupMember self, std::vector<GroupMember> members, Context& ctx, std::string db_path);
  ~GroupMemberNode();

  Status Start();
  // The process dies: Raft driver, engine, waiting clients and unsynced writes are gone.
  void Crash();
  bool up() const { return up_; }
  const std::string& name() const { return self_.name; }
  void set_log_delay_ms(int64_t ms) { storage_.set_max_delay_ms(ms); }
  // The other members, for delivering Raft messages; they outlive this one.
  void Connect(std::map<raft::NodeId, GroupMemberNode*> peers) { peers_ = std::move(peers); }
  // A Raft message arrived over the network.
  void Receive(const raft::Message& message);

  bool leader_ready() const { return up_ && log_->leader_ready(); }
  // Up, storage idle, no proposal, read or client waiting, and the engine (if any) holds nothing.
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
  void ScheduleEngineTick();

  // Service.
  void OnLeadership(bool ready);
  void DropEngine(const std::string& why);
  void Handle(const Request& request, Responder respond);
  void Forward(const Request& request, Responder respond);
  void HandleSubmit(const Request& request, Responder respond);
  void StartTransaction(std::shared_ptr<wire::TxRequest> tx, const std::string& key, Responder respond);
  void AttachClient(const std::string& txid, Responder respond);
  void HandleGetTransaction(const std::string& txid, Responder respond);
  // 200 with the record, or (none) false.
  bool AnswerFromRecord(const std::optional<coordinator::DecisionRecord>& record, const std::string& how,
                        const Responder& respond);
  void AnswerPresumedAbort(const std::string& txid, const std::string& how, const Responder& respond);
  void RecordPresumedAbort(const std::string& txid, const std::string& asker, Responder respond);
  void PumpEngine();
  void Execute(coordinator::Action& a);

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
  std::unique_ptr<coordinator::ReplicatedDecisionLog> log_;
  raft::Index last_applied_ = 0;  // the checker's view: entries are applied in order

  std::unique_ptr<coordinator::Engine> engine_;
  uint64_t epoch_ = 0;  // bumped whenever the engine is dropped: stale callbacks compare it
  uint64_t txid_counter_ = 0;
  std::unordered_map<coordinator::ClientToken, Responder> clients_;
  coordinator::ClientToken next_client_ = 1;
};

}  // namespace commitd::sim
