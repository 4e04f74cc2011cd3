// GroupMemberNode: one member of the coordinator group (design B.5,
// docs/coordinator_group.md), driven the way
// coordinator/replicated_decision_log.cc and coordinator/service.cc drive it.
//
// Raft: the real raft::Node. Its storage is simulated: hard state, log and
// the DecisionStateMachine survive a crash exactly as far as they were synced.
// Each Ready that writes anything is one SyncQueue job (hard state, truncation,
// appended entries and the committed entries applied, in one transaction);
// only once it is synced are its messages sent and its proposals completed,
// and only then is the next Ready taken. Raft messages travel over the
// simulated network one way (loss, partitions and crashes apply).
//
// Service: the real coordinator::Engine runs only while this member is the
// ready leader (leader, with an entry of its own term applied). Becoming
// ready it resumes every unfinished record of the state machine; losing it,
// it drops the engine and answers its waiting clients 503. A failed decision
// append drops the engine rather than feeding it the failure. Reads are
// linearizable (ReadIndex). A question about an unknown txid appends abort
// first and then answers 404 naming the group. A member that is not the
// ready leader forwards client requests to the leader it knows, or answers 503.
//
// group_member_node.cc is the Raft driver, group_member_service.cc the service.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "coordinator/engine.h"
#include "raft/node.h"
#include "tests/sim/context.h"
#include "tests/sim/decision_state_machine.h"
#include "tests/sim/sync_queue.h"

namespace commitd::sim {

struct GroupMember {
  std::string name;  // "c1": its network node and URL sim://c1
  raft::NodeId id = raft::kNoNode;
};

class GroupMemberNode {
 public:
  // `members` lists the whole group, this member included.
  GroupMemberNode(GroupMember self, std::vector<GroupMember> members, Context& ctx);

  void Start();
  // The process dies: Raft node, engine, waiting clients and unsynced writes are gone.
  void Crash();
  bool up() const { return up_; }
  const std::string& name() const { return self_.name; }
  void set_log_delay_ms(int64_t ms) { storage_.set_max_delay_ms(ms); }
  // The other members, for delivering Raft messages; they outlive this one.
  void Connect(std::map<raft::NodeId, GroupMemberNode*> peers) { peers_ = std::move(peers); }
  // A Raft message arrived over the network.
  void Receive(const raft::Message& message);

  bool leader_ready() const { return up_ && leader_ready_; }
  // Up, storage idle, no proposal or client waiting, and the engine (if any) holds nothing.
  bool Idle() const;
  // Every record in its state machine finished, and everything in its log applied.
  bool Caught(raft::Index leader_last_index) const;
  raft::Index last_index() const { return node_ ? node_->log().last_index() : 0; }
  std::string Describe() const;

 private:
  struct Proposal {
    raft::Term term = 0;
    std::function<void(Status)> done;
  };
  struct Read {
    std::function<void()> run;
    std::function<void(Status)> fail;
  };

  // Raft driver.
  void Pump();
  void Persisted(raft::Ready& ready, const std::vector<Status>& results);
  Status PersistAndApply(const raft::Ready& ready, std::vector<Status>& results);
  Status ApplyEntry(const raft::Entry& entry);
  std::string NameOf(raft::NodeId id) const;
  void Send(std::vector<raft::Message> messages);
  void CheckLeadership();
  void FailPending(const std::string& why);
  void Propose(const coordinator::Command& command, std::function<void(Status)> done);
  void LinearizableRead(std::function<void()> run, std::function<void(Status)> fail);
  void ScheduleTick();

  // Service.
  void OnLeadership(bool ready);
  void DropEngine(const std::string& why);
  void Handle(const Request& request, Responder respond);
  void Forward(const Request& request, Responder respond);
  void HandleSubmit(const Request& request, Responder respond);
  void StartTransaction(std::shared_ptr<wire::TxRequest> tx, const std::string& key, Responder respond);
  void AttachClient(const std::string& txid, Responder respond);
  void HandleGetTransaction(const std::string& txid, Responder respond);
  // 200 with the record, or (none) 404 presumed abort; false if there is no record.
  bool AnswerFromRecord(const std::string& txid, const std::string& how, const Responder& respond);
  void AnswerPresumedAbort(const std::string& txid, const std::string& how, const Responder& respond);
  void RecordPresumedAbort(const std::string& txid, const std::string& asker, Responder respond);
  void PumpEngine();
  void Execute(coordinator::Action& a);

  GroupMember self_;
  std::vector<GroupMember> members_;
  std::map<raft::NodeId, GroupMemberNode*> peers_;
  Context& ctx_;
  bool up_ = false;
  uint64_t incarnation_ = 0;

  // Durable: what a crash keeps.
  raft::HardState hard_state_;
  std::vector<raft::Entry> log_;  // indexes 1.. (never compacted)
  DecisionStateMachine machine_;

  SyncQueue storage_;
  std::unique_ptr<raft::Node> node_;
  bool writing_ = false;
  raft::Index applied_ = 0;  // what the driver has seen applied (after the sync's completion)
  std::map<raft::Index, Proposal> proposals_;
  uint64_t next_read_ = 1;
  std::map<uint64_t, Read> reads_;
  std::multimap<raft::Index, Read> reads_waiting_apply_;
  bool leader_ready_ = false;
  raft::Term ready_term_ = 0;

  std::unique_ptr<coordinator::Engine> engine_;
  uint64_t epoch_ = 0;  // bumped whenever the engine is dropped: stale callbacks compare it
  uint64_t txid_counter_ = 0;
  std::unordered_map<coordinator::ClientToken, Responder> clients_;
  coordinator::ClientToken next_client_ = 1;
};

}  // namespace commitd::sim
