// raft::Driver: runs the pure raft::Node (raft/node.h) for any state machine
// (docs/raft.md "The driver"). The binary and the simulator run this class;
// what differs is what it is given:
//   - a StateMachine (raft/state_machine.h) whose tables share the SQLite
//     file of the Raft log (raft/storage.h);
//   - a StorageQueue (common/storage_queue.h): BatchWriter's storage thread,
//     or the simulator's SimStorageQueue, both running the same batch code;
//   - a Transport and Timers (raft/transport.h).
//
// One Ready at a time: made durable in one storage job (hard state, snapshot,
// truncation, appended entries, and the committed entries applied, with the
// applied index) before its messages leave and its proposals complete. A
// follower applies its committed entries a little later, together
// (DriverOptions::follower_apply_lag_ms). Two exceptions keep a leader fast and stay safe
// (docs/raft.md "The Ready contract"): a leader's appends leave while its own
// write runs, and a Ready that only applies committed entries skips the fsync.
//
// Thread: the owner's (the io thread; the simulator's only thread), except
// what runs inside storage jobs and reads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "common/storage_queue.h"
#include "raft/node.h"
#include "raft/state_machine.h"
#include "raft/timers.h"
#include "raft/transport.h"

namespace commitd::raft {

struct DriverOptions {
  NodeOptions node;  // id, election timeout, heartbeat, seed
  int64_t tick_ms = Config{}.tick_ms;
  // The log is compacted every this many applied entries, keeping the last
  // snapshot_entries / 2 (the state machine's tables are the snapshot).
  Index snapshot_entries = static_cast<Index>(Config{}.raft_snapshot_entries);
  // A leader compacts no further than the entries a member behind still
  // needs, but keeps at most this many behind its applied index for it.
  Index log_keep_entries = static_cast<Index>(Config{}.raft_log_keep_entries);
  // Runs fn with a connection to the database (or the error opening one); fn
  // serializes the state machine in a read transaction there and posts its
  // own result. Unset: through the storage queue's Read. The binary gives a
  // thread of its own with a read-only connection, so that Readies (and the
  // heartbeats behind them) keep flowing while megabytes are copied.
  std::function<void(std::function<void(Result<sqlite::Database*>)>)> read_snapshot;
  // Deliberately wrong, only for proving that the simulator's checker catches
  // it: a Ready's messages (votes, acknowledgements) leave before it is durable.
  bool unsafe_send_before_durable = false;
  // A follower applies committed entries this long after the first of them
  // came, together (Driver::DeferredDue); 0: at once, as everyone else does.
  int64_t follower_apply_lag_ms = 50;
};

// What the driver counted since it started (metrics).
struct DriverCounters {
  uint64_t leader_changes = 0;       // times the leader this member knows of became another one
  uint64_t snapshots_taken = 0;      // log compactions at a local snapshot
  uint64_t snapshots_installed = 0;  // snapshots received from the leader and installed
};

class Driver {
 public:
  // `restored` is what raft::Storage::Load read from the queue's database.
  // Every reference must outlive the driver.
  Driver(DriverOptions options, RestoredState restored, StateMachine& machine, StorageQueue& storage,
         Transport& transport, Timers& timers);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  void Start();
  // No more Readies; waiting proposals, reads and replies fail with `why`.
  void Stop(const std::string& why);

  // Messages from another member, all from one sender. reply (optional)
  // carries this member's messages back to it once they may leave.
  void Receive(std::vector<Message> messages, Reply reply = {});
  // Leader-ready only: done gets the entry's apply result once it is applied
  // here, or Unavailable: refused (not leader-ready, or a leadership transfer
  // in progress: nothing was appended), or this member stopped leading first
  // (the entry may still commit).
  void Propose(std::string data, std::function<void(Status)> done);
  // As Propose, for an empty entry the state machine ignores: done gets Ok
  // once every entry this member appended before it is applied here.
  void Barrier(std::function<void(Status)> done);
  // Leader-ready only: runs fn with the state machine (through the storage
  // queue's Read; fn posts its own result) once a ReadIndex round confirmed
  // leadership and the state machine applied that far; else fail.
  void LinearizableRead(std::function<void(sqlite::Database&)> fn, std::function<void(Status)> fail);
  ProposeStatus TransferLeadership(NodeId to);
  ProposeResult ProposeConfChange(const ConfChange& change);

  // Leader, with an entry of its own term applied (every earlier committed
  // entry is in the state machine). Sticky for a term.
  bool leader_ready() const { return leader_ready_; }
  // Called whenever leader_ready() changes.
  void set_on_leadership(std::function<void(bool ready)> fn) { on_leadership_ = std::move(fn); }
  // Called whenever no Ready is being written, before the next is taken: the
  // owner may propose what it gathered meanwhile (coalesced commands).
  void set_before_ready(std::function<void()> fn) { before_ready_ = std::move(fn); }
  // Called with each Ready as it is taken (traces and the simulator's checks).
  void set_on_ready(std::function<void(const Ready&)> fn) { on_ready_ = std::move(fn); }
  // Called whenever the leader this member knows of changes (kNoNode: none known).
  void set_on_leader_change(std::function<void(NodeId leader, Term term)> fn) { on_leader_change_ = std::move(fn); }
  const DriverCounters& counters() const { return counters_; }

  const Node& node() const { return *node_; }
  Index applied() const { return applied_; }
  bool writing() const { return writing_; }
  // Stop() was called: it proposes nothing more.
  bool stopped() const { return stopped_; }
  // Proposals and reads not answered yet.
  std::size_t waiting() const { return pending_.size() + reads_.size() + reads_waiting_apply_.size(); }

 private:
  struct Pending {
    Term term = 0;
    std::function<void(Status)> done;
  };
  struct ReadWaiter {
    std::function<void(sqlite::Database&)> fn;
    std::function<void(Status)> fail;
  };
  // A delivery waiting for the Ready that holds this member's replies.
  struct HeldReply {
    NodeId from = kNoNode;
    Reply reply;
  };
  struct Applied;  // what a Ready's storage job hands back

  // Leader-ready only: appends what propose appends; done as Propose says.
  void Append(const std::function<ProposeResult()>& propose, std::function<void(Status)> done);
  void Pump();
  void Written(const std::shared_ptr<Ready>& ready, const std::shared_ptr<Applied>& applied,
               std::vector<HeldReply> held);
  // Each message to its peer: in the reply to a delivery held from it, else
  // through the transport; answers every held delivery.
  void Send(std::vector<Message> messages, std::vector<HeldReply> held);
  void ScheduleTick();
  void CheckLeadership();
  void NoteLeader();
  void FailWaiting(const std::string& why);
  void AfterApply();
  // Moves the Ready's committed entries behind those deferred, and gives it
  // back all of them once they are due.
  void TakeApplies(Ready& ready);
  bool DeferredDue() const;
  void PromoteCaughtUpLearners();
  // driver_snapshot.cc
  void MaybeSnapshot();
  void CompactLog(Index index);
  void SerializeSnapshot();
  void ProvideSnapshot(Result<std::pair<Index, std::string>> taken);
  // Wraps fn so that it does nothing once the driver is gone.
  std::function<void()> Guarded(std::function<void()> fn);

  DriverOptions options_;
  StateMachine& machine_;
  StorageQueue& storage_;
  Transport& transport_;
  Timers& timers_;
  std::unique_ptr<Node> node_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  std::vector<HeldReply> held_;  // deliveries stepped since the last Ready was taken
  std::map<Index, Pending> pending_;
  std::map<uint64_t, ReadWaiter> reads_;  // by request number, until a Ready answers
  std::multimap<Index, ReadWaiter> reads_waiting_apply_;
  uint64_t next_read_ = 1;
  Index applied_ = 0;
  // Committed entries a follower applies later, in order (TakeApplies).
  static constexpr std::size_t kMaxDeferredEntries = 4096;
  std::vector<Entry> deferred_;
  int64_t deferred_since_ms_ = 0;  // when the first of them came
  Index snapshot_index_ = 0;  // the log's base on disk
  bool snapshotting_ = false;  // a compaction or a serialization is under way
  int64_t next_promotion_ms_ = 0;
  bool writing_ = false;
  bool leader_ready_ = false;
  Term ready_term_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  std::function<void(bool)> on_leadership_;
  std::function<void()> before_ready_;
  std::function<void(const Ready&)> on_ready_;
  std::function<void(NodeId, Term)> on_leader_change_;
  NodeId known_leader_ = kNoNode;
  DriverCounters counters_;
};

}  // namespace commitd::raft
