// One Raft server as a pure state machine (docs/raft.md).
//
// Inputs: Tick(now_ms), Step(message, now_ms), Propose, ProposeConfChange,
// TransferLeadership, ReadIndex, CompactLog. Output: a Ready batch, taken with
// TakeReady(). The node does no I/O, reads no clock and starts no thread;
// the driver owns storage, network and time.
//
// Contract with the driver, for each Ready, in this order:
//   1. make durable: hard_state; then snapshot (store it and delete every log
//      entry with index <= snapshot.meta.index); then delete every entry with
//      index >= truncate_from; then append `append`;
//   2. only then send `messages` (a vote or an append acknowledgement must
//      never leave before what it promises is on disk; a leader's appends
//      may leave earlier, see docs/raft.md "The Ready contract");
//   3. apply: if snapshot is set, replace the state machine with it first;
//      then apply `committed` in order;
//   4. answer each of `reads` once the state machine has applied its index.
// Readies must be handled one at a time, in the order they were taken.
//
// Thread: not thread-safe; owned by one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "raft/log.h"
#include "raft/messages.h"
#include "raft/prng.h"

namespace commitd::raft {

struct NodeOptions {
  NodeId id = kNoNode;
  // Followers and candidates wait a random time in [election_timeout_ms,
  // 2 * election_timeout_ms) before campaigning; a leader checks its quorum
  // every election_timeout_ms. These two values are the library's own, for
  // its tests and simulator (the Raft paper's range); commitd always sets
  // both from Config (raft_election_timeout_ms, raft_heartbeat_ms).
  int64_t election_timeout_ms = 150;
  int64_t heartbeat_interval_ms = 50;
  std::size_t max_entries_per_append = 64;
  std::size_t snapshot_chunk_bytes = 64 * 1024;
  // false, for a driver that serializes its state machine when a follower
  // needs it (snapshot_wanted): a leader lets go of a snapshot's bytes once
  // no follower is being sent them, and no member keeps the bytes it
  // installed, instead of holding them until the next compaction.
  bool keep_snapshot_bytes = true;
  // A learner may be promoted once its match index is within this many entries of the leader's last index.
  Index promotion_margin = 8;
  uint64_t seed = 1;  // for the election timeouts
  bool pre_vote = true;
  // A leader steps down when it has not heard from a quorum within an election
  // timeout, and a voter ignores vote requests while it hears from a leader.
  bool check_quorum = true;

  // Deliberately wrong behaviour, only for proving that the simulator's checker
  // catches it: commit a previous term's entry by counting replicas (Raft
  // §5.4.2, Figure 8) and append no no-op on election.
  bool unsafe_commit_previous_term = false;
  // Likewise: answer ReadIndex at once, without confirming leadership with a quorum.
  bool unsafe_read_without_quorum = false;
};

// What the driver read back from its storage when it (re)starts the node.
struct RestoredState {
  HardState hard_state;
  SnapshotMeta snapshot;  // index 0 and the bootstrap membership when never compacted
  std::shared_ptr<const std::string> snapshot_data;
  std::vector<Entry> entries;  // after snapshot.index, contiguous
  // How far the driver's state machine is (>= snapshot.index); entries after it
  // are handed out again as committed once the node learns they are.
  Index applied = 0;
};

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view RoleName(Role role);

struct SnapshotInstall {
  SnapshotMeta meta;
  std::shared_ptr<const std::string> data;
};

// The answer to ReadIndex: once the state machine has applied `index`, a read
// of it is linearizable. ok is false when leadership was lost first; ask again.
struct ReadState {
  uint64_t request = 0;
  Index index = 0;
  bool ok = false;
};

struct Ready {
  std::optional<HardState> hard_state;
  std::optional<SnapshotInstall> snapshot;
  std::optional<Index> truncate_from;
  std::vector<Entry> append;
  std::vector<Message> messages;
  std::vector<Entry> committed;
  std::vector<ReadState> reads;  // may be answered as soon as the state machine reaches each index

  bool empty() const {
    return !hard_state && !snapshot && !truncate_from && append.empty() && messages.empty() && committed.empty() &&
           reads.empty();
  }
};

enum class ProposeStatus {
  kOk,
  kNotLeader,
  kTransferring,      // a leadership transfer is in progress
  kConfigPending,     // a configuration change is not committed yet, or nothing of this term is
  kNotCaughtUp,       // the learner to promote lags too far behind
  kInvalidChange,     // the change does not apply to the current membership
  kCannotRemoveSelf,  // transfer leadership first
  kLeaderNotReady,    // ReadIndex: the leader has not committed an entry of its own term yet
};
std::string_view ProposeStatusName(ProposeStatus status);

struct ProposeResult {
  ProposeStatus status = ProposeStatus::kOk;
  Index index = 0;  // where the entry went, when kOk
  Term term = 0;
  NodeId leader = kNoNode;  // the leader this node knows of, when kNotLeader
};

class Node {
 public:
  Node(NodeOptions options, RestoredState state, int64_t now_ms);

  // --- inputs -------------------------------------------------------------
  void Tick(int64_t now_ms);
  void Step(const Message& message, int64_t now_ms);
  ProposeResult Propose(std::string data, int64_t now_ms);
  // As Propose, for an empty kNoop entry (a barrier): once it is applied,
  // every entry before it in the log is applied too.
  ProposeResult ProposeNoop(int64_t now_ms);
  ProposeResult ProposeConfChange(const ConfChange& change, int64_t now_ms);
  // Leader only: hands leadership to a voter once it has caught up (TimeoutNow).
  // Proposals are refused until it is done or an election timeout has passed.
  ProposeStatus TransferLeadership(NodeId to, int64_t now_ms);
  // Leader only (thesis §6.4): a linearizable read point. The node notes its
  // commit index, confirms with a heartbeat round that a quorum still follows
  // it, then answers with a ReadState in a later Ready.
  ProposeStatus ReadIndex(uint64_t request, int64_t now_ms);
  // The driver's state machine is durable up to at least `index` (<= applied());
  // the log up to it may go. `data`, the state machine at exactly `index`, is
  // kept to send to followers that are too far behind; it may be null: the
  // driver then serializes one when a follower needs it (snapshot_wanted()).
  void CompactLog(Index index, std::shared_ptr<const std::string> data);
  // The state machine at `index` (base().index <= index <= applied()), to send
  // to followers behind the log's base; the log is not compacted. Ignored when
  // the log was compacted past `index` meanwhile (or index > applied()).
  void ProvideSnapshot(Index index, std::shared_ptr<const std::string> data);

  // --- outputs ------------------------------------------------------------
  bool HasReady() const;
  // Entries appended since the last TakeReady (the next Ready writes them).
  bool HasPendingAppend() const { return !pending_append_.empty(); }
  Ready TakeReady();

  // --- queries ------------------------------------------------------------
  NodeId id() const { return options_.id; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId voted_for() const { return voted_for_; }
  NodeId leader() const { return leader_; }
  Index commit_index() const { return commit_; }
  Index applied() const { return applied_; }
  const Log& log() const { return log_; }
  const Membership& membership() const { return log_.membership(); }
  // Leader: a follower needs entries before the log's base and no snapshot
  // bytes are held; the driver should call ProvideSnapshot.
  bool snapshot_wanted() const { return role_ == Role::kLeader && snapshot_wanted_; }
  // Whether this node holds a snapshot's bytes (to send them, or kept).
  bool holds_snapshot_bytes() const { return snapshot_data_ != nullptr; }
  NodeId transfer_target() const { return transfer_target_; }
  // Leader only: the highest index known to match on `peer` (0 if unknown).
  Index MatchIndex(NodeId peer) const;
  // Leader: the lowest index another member still needs from this log (the
  // one after its match, or after the snapshot being sent to it); nullopt off
  // the leader or with no other member.
  std::optional<Index> IndexNeededByMembers() const;

 private:
  enum class ReplicationMode { kProbe, kReplicate, kSnapshot };
  struct Progress {
    Index next = 1;
    Index match = 0;
    ReplicationMode mode = ReplicationMode::kProbe;
    bool probe_sent = false;  // in kProbe: one append is out, wait for its answer or the heartbeat
    bool recent_active = false;
    uint64_t read_round = 0;  // the latest ReadIndex round it acknowledged
    // kSnapshot: the snapshot being sent and how much of it the follower holds.
    SnapshotMeta snapshot_meta;
    std::shared_ptr<const std::string> snapshot_data;
    uint64_t snapshot_offset = 0;
  };
  struct IncomingSnapshot {
    SnapshotMeta meta;
    std::string data;
  };

  // node_election.cc
  void BecomeFollower(Term term, NodeId leader);
  void BecomePreCandidate();
  void BecomeCandidate(bool leadership_transfer);
  void BecomeLeader();
  void HandleRequestVote(const Message& m, const RequestVote& rv);
  void HandleVoteResponse(const Message& m, const RequestVoteResponse& r);
  void HandleTimeoutNow(const Message& m);
  bool InLease() const;
  void ResetElectionDeadline();

  // node_replication.cc: leader side
  void SyncProgress();
  void SendAppend(NodeId peer, bool heartbeat);
  void SendSnapshotChunk(NodeId peer, Progress& p);
  // Without keep_snapshot_bytes: drops the leader's bytes once no follower is sent them.
  void LetGoOfSnapshotBytesIfUnsent();
  void BroadcastAppend(bool heartbeat);
  void HandleAppendResponse(const Message& m, const AppendEntriesResponse& r);
  void HandleSnapshotResponse(const Message& m, const InstallSnapshotResponse& r);
  void MaybeCommit();
  void MaybeSendTimeoutNow();
  void CheckQuorum();
  void ResolveReads();
  void FailReads();
  Index AppendAsLeader(EntryType type, std::string data);
  ProposeResult ProposeEntry(EntryType type, std::string data, int64_t now_ms);
  // node_replication.cc: follower side
  void HandleAppendEntries(const Message& m, const AppendEntries& ae);
  void HandleInstallSnapshot(const Message& m, const InstallSnapshot& is);

  // node.cc
  void Send(NodeId to, MessageBody body, Term term = 0);
  void AppendToLog(Entry entry);
  void TruncateLogFrom(Index from);
  void InstallSnapshotLocally(SnapshotMeta meta, std::shared_ptr<const std::string> data);

  NodeOptions options_;
  SplitMix64 prng_;
  Log log_;
  // The snapshot sent to followers behind the log's base: the state machine at
  // snapshot_meta_.index (>= log_.base().index while snapshot_data_ is set).
  SnapshotMeta snapshot_meta_;
  std::shared_ptr<const std::string> snapshot_data_;
  bool snapshot_wanted_ = false;

  Role role_ = Role::kFollower;
  Term term_ = 0;
  NodeId voted_for_ = kNoNode;
  NodeId leader_ = kNoNode;
  Index commit_ = 0;
  Index applied_ = 0;  // handed out to the driver

  int64_t now_ms_ = 0;
  int64_t election_deadline_ms_ = 0;
  int64_t last_leader_contact_ms_ = 0;  // follower: when the leader last reached us
  int64_t heartbeat_due_ms_ = 0;
  int64_t quorum_check_due_ms_ = 0;

  std::set<NodeId> votes_granted_;
  std::set<NodeId> votes_rejected_;

  std::map<NodeId, Progress> progress_;  // leader: every member but itself
  NodeId transfer_target_ = kNoNode;
  int64_t transfer_deadline_ms_ = 0;

  std::optional<IncomingSnapshot> incoming_snapshot_;

  struct PendingRead {
    uint64_t request = 0;
    Index index = 0;
    uint64_t round = 0;
  };
  uint64_t read_round_ = 0;  // leader: ReadIndex rounds started in this term
  std::vector<PendingRead> pending_reads_;

  // The Ready being built.
  HardState persisted_hard_state_;
  std::optional<SnapshotInstall> pending_snapshot_;
  std::optional<Index> pending_truncate_from_;
  std::vector<Entry> pending_append_;
  std::vector<Message> pending_messages_;
  std::vector<ReadState> pending_read_states_;
};

}  // namespace commitd::raft
