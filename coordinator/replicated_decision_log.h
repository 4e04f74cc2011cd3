// DecisionLog on a Raft group (design B.5): one member of a 3- or 5-node
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
// The Raft core (raft/node.h) is pure; this class is its driver: one Ready
// at a time, made durable in one SQLite transaction on the storage thread
// (BatchWriter) before its messages are sent (POST /v1/raft to each peer,
// at most a few requests in flight per peer; Raft tolerates the loss).
//
// Thread: the io thread, except what runs inside BatchWriter jobs.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/batch_writer.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/sqlite_db.h"
#include "coordinator/decision_log.h"
#include "coordinator/raft_codec.h"
#include "raft/node.h"

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
  int64_t election_timeout_ms = 150;
  int64_t heartbeat_ms = 50;
  int64_t tick_ms = 10;
  std::size_t max_batch = 1024;
  // The log is compacted every this many applied entries, keeping the last
  // snapshot_entries / 2 (the state machine tables are the snapshot).
  raft::Index snapshot_entries = 10'000;
};

class ReplicatedDecisionLog final : public DecisionLog {
 public:
  static Result<std::unique_ptr<ReplicatedDecisionLog>> Open(const std::string& path, boost::asio::io_context& io,
                                                             ReplicatedLogOptions options);
  ~ReplicatedDecisionLog() override;

  // The local state machine as it is now (call when leader_ready()).
  Result<RecoveredLog> Recover() override;
  void AppendDecision(DecisionRecord record, std::function<void(Status)> done) override;
  void MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) override;
  void PutParticipant(RegistryEntry entry, std::function<void(Status)> done) override;
  void FindDecision(std::string txid, std::function<void(Result<std::optional<DecisionRecord>>)> done) override;
  void FindByIdempotencyKey(std::string key,
                            std::function<void(Result<std::optional<DecisionRecord>>)> done) override;
  void ListDecisions(ListFilter filter, std::function<void(Result<std::vector<DecisionRecord>>)> done) override;

  void Start();
  void Stop();
  // POST /v1/raft from another member: an RFT1 frame (raft_wire.h). The
  // answer is an RFT1 frame too, sent once the Ready holding this member's
  // replies to the frame is durable: it carries those of its messages that go
  // back to the sender (an append's acknowledgement rides the append's
  // response instead of a request of its own).
  void OnRaftMessages(const std::string& body, http::Responder respond);

  // Leader, with an entry of its own term committed and everything committed applied.
  bool leader_ready() const { return leader_ready_; }
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
  BatchWriter::Stats writer_stats() const { return writer_->stats(); }

 private:
  struct Pending {
    raft::Term term = 0;
    std::function<void(Status)> done;
  };
  struct PeerLink {
    std::string url;
    int in_flight = 0;
    std::vector<raft::Message> queued;  // while kMaxInFlightPerPeer requests are out; sent with the next
  };
  // A /v1/raft request waiting for the Ready that holds this member's replies.
  struct HeldResponse {
    raft::NodeId from = raft::kNoNode;
    http::Responder respond;
  };

  ReplicatedDecisionLog(boost::asio::io_context& io, ReplicatedLogOptions options,
                        std::unique_ptr<sqlite::Database> db);
  void Propose(std::string data, std::function<void(Status)> done);
  void Pump();
  // Sends each message to its peer: in the response to a request held from
  // that peer, else in a POST; answers every held response.
  void Send(std::vector<raft::Message> messages, std::vector<HeldResponse> held);
  void Post(raft::NodeId to, std::vector<raft::Message> messages);
  void OnRaftResponse(raft::NodeId to, Result<http::Response> response);
  void AfterApply(raft::Index applied);
  void CheckLeadership();
  void FailPending(const std::string& why);
  // Runs fn on the storage thread once a ReadIndex round confirms leadership.
  void LinearizableRead(std::function<void(sqlite::Database&)> fn, std::function<void(Status)> fail);
  void ScheduleTick();
  void MaybeSnapshot();
  void CompactLog(raft::Index index);
  void SerializeSnapshot();
  void ProvideSnapshot(Result<std::pair<raft::Index, std::string>> taken);
  void ProposeFinished();
  void SetMemberUrl(const std::string& id, const std::string& url);
  void PromoteCaughtUpLearners();

  boost::asio::io_context& io_;
  ReplicatedLogOptions options_;
  std::unique_ptr<sqlite::Database> db_;  // storage thread only, once writer_ exists
  std::unique_ptr<BatchWriter> writer_;
  std::unique_ptr<raft::Node> node_;
  http::Client client_;
  boost::asio::steady_timer tick_timer_;
  std::map<raft::NodeId, PeerLink> peers_;
  std::vector<HeldResponse> held_;  // requests stepped since the last Ready was taken
  std::map<raft::NodeId, std::string> ids_;  // node id -> member id ("c1")
  std::map<raft::NodeId, std::string> urls_;  // node id -> URL, self included
  int64_t next_promotion_ms_ = 0;
  std::map<raft::Index, Pending> pending_;
  struct FinishWaiter {
    command::Finish mark;
    std::function<void(Status)> done;
  };
  std::vector<FinishWaiter> finishing_;  // coalesced into one entry by ProposeFinished
  struct ReadWaiter {
    std::function<void(sqlite::Database&)> fn;
    std::function<void(Status)> fail;
  };
  std::map<uint64_t, ReadWaiter> reads_;  // by request number, until the Ready answers
  std::multimap<raft::Index, ReadWaiter> reads_waiting_apply_;
  uint64_t next_read_ = 1;
  raft::Index applied_ = 0;
  raft::Index snapshot_index_ = 0;  // the log's base on disk
  bool snapshotting_ = false;       // a compaction or a serialization is under way
  std::string path_;
  std::thread snapshot_thread_;  // serializes the state machine; joined before the next and at destruction
  bool writing_ = false;
  bool leader_ready_ = false;
  raft::Term ready_term_ = 0;
  bool stopped_ = false;
  std::function<void(bool)> on_leadership_;
};

}  // namespace commitd::coordinator
