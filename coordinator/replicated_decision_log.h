// DecisionLog on a Raft group: one member of a 3- or 5-node
// coordinator group. Appends become Raft entries (raft_codec.h commands); an
// append completes when its entry is committed and applied to the local state
// machine — DecisionStore's tables in the member's own SQLite file (raft.db),
// together with the Raft log, term, vote and applied index (RaftStorage).
// Applying is deterministic and "first decision for a txid wins"; a refused
// decision completes with Conflict on the member that proposed it.
//
// Only the leader accepts appends and reads; reads are linearizable
// (ReadIndex, then the local state machine once it has applied that far).
// Elsewhere they complete with Unavailable; the service forwards client
// requests to the leader instead.
//
// Raft runs in raft::Driver (raft/driver.h) with DecisionStateMachine; this
// class turns DecisionLog calls into proposals and linearizable reads, and
// keeps the members' ids and URLs. The binary opens it with its own storage
// thread (BatchWriter), HTTP transport (POST /v1/raft) and asio timers; the
// simulator opens it on its own (OpenOn).
//
// Thread: the io thread, except what runs inside storage jobs.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/batch_writer.h"
#include "common/config.h"
#include "common/http_server.h"
#include "common/sqlite_db.h"
#include "coordinator/decision_log.h"
#include "coordinator/raft_codec.h"
#include "coordinator/decision_state_machine.h"
#include "raft/asio_timers.h"
#include "raft/driver.h"
#include "raft/http_transport.h"

namespace commitd::coordinator {

struct GroupMember {
  std::string id;   // "c1"
  std::string url;  // "http://127.0.0.1:7000"
};

struct ReplicatedLogOptions {
  std::string self_id;
  std::vector<GroupMember> members;  // the bootstrap membership, self included
  // A new member joining a running group: it starts with no membership and
  // waits to be added (AddMember on the leader); `members` still gives URLs.
  bool join = false;
  std::string token;                 // sent as a bearer token to the other members
  tls::Context client_tls;           // for https:// members (unset: http:// only)
  int64_t election_timeout_ms = Config{}.raft_election_timeout_ms;
  int64_t heartbeat_ms = Config{}.raft_heartbeat_ms;
  int64_t tick_ms = Config{}.tick_ms;
  std::size_t max_batch = static_cast<std::size_t>(Config{}.max_batch);
  // The log is compacted every this many applied entries, keeping the last
  // snapshot_entries / 2 (the state machine tables are the snapshot).
  raft::Index snapshot_entries = static_cast<raft::Index>(Config{}.raft_snapshot_entries);
  // raft::DriverOptions::log_keep_entries.
  raft::Index log_keep_entries = static_cast<raft::Index>(Config{}.raft_log_keep_entries);
  uint64_t seed = 0;  // for the election timeouts; 0: from the clock
  // Deliberately wrong, for the simulator's checker (raft::DriverOptions,
  // DecisionStateMachine).
  bool unsafe_send_before_durable = false;
  bool unsafe_overwrite_decisions = false;
  // Test-only fault switches (the simulator's planted bugs), never set by the binary:
  // Recover reports no unfinished record, so a new leader resumes nothing.
  bool unsafe_recover_nothing_unfinished = false;
  // Reads answer from the local state machine on any member, without ReadIndex.
  bool unsafe_local_reads = false;
  // A decision append completes as soon as it is proposed, before it is committed.
  bool unsafe_complete_before_commit = false;
};

class ReplicatedDecisionLog final : public DecisionLog {
 public:
  // The binary's: raft.db at `path`, a storage thread, HTTP between members.
  static Result<std::unique_ptr<ReplicatedDecisionLog>> Open(const std::string& path, boost::asio::io_context& io,
                                                             ReplicatedLogOptions options);
  // On storage, transport and timers the caller owns (the simulator). `db`
  // is the queue's database; the queue runs its jobs on the caller's thread,
  // so Recover reads it directly. Incoming messages go to driver().Receive.
  static Result<std::unique_ptr<ReplicatedDecisionLog>> OpenOn(sqlite::Database& db, StorageQueue& storage,
                                                               raft::Transport& transport, raft::Timers& timers,
                                                               ReplicatedLogOptions options);
  ~ReplicatedDecisionLog() override;

  // The local state machine as it is now (call when leader_ready()).
  Result<RecoveredLog> Recover() override;
  void AppendDecision(DecisionRecord record, std::function<void(Status)> done) override;
  // Held like finished marks, and proposed before them.
  void AppendDecisionWithNextWrite(DecisionRecord record, std::function<void(Status)> done) override;
  void MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) override;
  void PutParticipant(RegistryEntry entry, std::function<void(Status)> done) override;
  // An empty Raft entry (raft::Driver::Barrier), after the finished marks held.
  void Barrier(std::function<void(Status)> done) override;
  void FindDecision(std::string txid, std::function<void(Result<std::optional<DecisionRecord>>)> done) override;
  void FindByIdempotencyKey(std::string key,
                            std::function<void(Result<std::optional<DecisionRecord>>)> done) override;
  void ListDecisions(ListFilter filter, std::function<void(Result<std::vector<DecisionRecord>>)> done) override;
  void CreateIdentity(std::string log_id, std::string abort_secret, std::function<void(Status)> done) override;
  // Leader only: a replicated command every member applies to the same rows.
  void ForgetFinished(int64_t cutoff_ms, int64_t keys_cutoff_ms, std::size_t limit,
                      std::function<void(Result<std::size_t>)> done) override;
  void TxidForgotten(std::string txid, std::function<void(Result<bool>)> done) override;
  void KeyForgotten(std::string key, std::function<void(Result<bool>)> done) override;

  void Start();
  void Stop();
  // POST /v1/raft from another member (the binary's HTTP transport): an RFT1
  // frame (raft/wire.h), answered with one once this member's replies to it
  // may leave (an append's acknowledgement rides the append's response).
  void OnRaftMessages(const std::string& body, http::Responder respond);

  // Leader, with an entry of its own term committed and everything committed applied.
  bool leader_ready() const { return driver_->leader_ready(); }
  // Called on the io thread whenever leader_ready() changes.
  void set_on_leadership(std::function<void(bool ready)> fn) { on_leadership_ = std::move(fn); }
  // The URL of the leader this member knows of ("" if none).
  std::string leader_url() const;
  // GET /v1/cluster.
  nlohmann::json ClusterStatus() const;
  // Leader only: hands leadership to member `to` (its id, "c2") once it has caught up.
  Status TransferLeadership(const std::string& to);
  // Leader only: replicates the new member's URL, then adds it as a learner;
  // the leader promotes it to voter once it has caught up.
  void AddMember(const std::string& id, const std::string& url, std::function<void(Status)> done);
  Status RemoveMember(const std::string& id);
  // Batch size and fsync latency of its storage thread (the binary's; the simulator has none).
  void set_batch_metrics(BatchMetrics m) {
    if (writer_) writer_->set_metrics(m);
  }
  std::size_t queue_depth() const { return writer_ ? writer_->queue_depth() : 0; }
  StorageQueue::Stats writer_stats() const { return storage_->stats(); }
  raft::Driver& driver() { return *driver_; }
  DecisionStateMachine& machine() { return machine_; }
  const raft::Driver& driver() const { return *driver_; }

 private:
  ReplicatedDecisionLog(ReplicatedLogOptions options, raft::Timers& timers);
  static Result<raft::RestoredState> Prepare(sqlite::Database& db, const ReplicatedLogOptions& options);
  void Run(raft::RestoredState restored, StorageQueue& storage, raft::Transport& transport,
           std::function<void(std::function<void(Result<sqlite::Database*>)>)> read_snapshot);
  void OnLeadership(bool ready);
  Result<RecoveredLog> RecoverNow();
  // Runs fn on the storage thread once a ReadIndex round confirms leadership.
  template <class T>
  void Read(std::function<Result<T>(sqlite::Database&)> read, std::function<void(Result<T>)> done);
  // Proposes the decisions and finished marks held.
  void ProposeHeld();
  // Why a write cannot be held for a later Ready now (Ok: it can).
  Status CanHold() const;
  // Held writes are proposed after kHeldLingerMs at the latest.
  void ArmHeldLinger();
  // Fails every held write with `why`.
  void FailHeld(const std::string& why);
  // Before each Ready: proposes the decisions and finished marks held if the
  // Ready appends entries anyway, so that they ride in its write; otherwise
  // they wait for the linger's timer.
  void OnBeforeReady();
  void SetMemberUrl(const std::string& id, const std::string& url);
  // The binary's: serializes a snapshot on a thread of its own (raft::DriverOptions::read_snapshot).
  void ReadSnapshotOnThread(std::function<void(Result<sqlite::Database*>)> fn);

  ReplicatedLogOptions options_;
  raft::Timers& timers_;
  // The binary's own parts (null in the simulator).
  std::unique_ptr<sqlite::Database> owned_db_;  // storage thread only, once writer_ exists
  std::unique_ptr<BatchWriter> writer_;
  std::unique_ptr<raft::AsioTimers> asio_timers_;
  std::unique_ptr<raft::HttpTransport> http_;
  std::string path_;
  std::thread snapshot_thread_;  // joined before the next and at destruction
  // The simulator's database, read directly by Recover.
  sqlite::Database* db_on_owner_thread_ = nullptr;

  StorageQueue* storage_ = nullptr;
  DecisionStateMachine machine_;
  std::unique_ptr<raft::Driver> driver_;
  std::map<raft::NodeId, std::string> ids_;   // node id -> member id ("c1")
  std::map<raft::NodeId, std::string> urls_;  // node id -> URL, self included
  struct FinishWaiter {
    command::Finish mark;
    std::function<void(Status)> done;
  };
  std::vector<FinishWaiter> finishing_;  // coalesced into one entry by ProposeHeld
  struct HeldDecision {
    std::string command;  // an encoded command::Decide
    std::function<void(Status)> done;
  };
  std::vector<HeldDecision> riding_;  // proposed, in order, by ProposeHeld
  bool held_linger_armed_ = false;
  // Timer callbacks check it: they may fire after this object is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::function<void(bool)> on_leadership_;
};

}  // namespace commitd::coordinator
