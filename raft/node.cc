// Node: construction, the term rules every message goes through (Raft Figure
// 2, "Rules for Servers"), proposals and the Ready batch.
#include "raft/node.h"

#include <algorithm>
#include <cassert>

namespace commitd::raft {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "?";
}

std::string_view ProposeStatusName(ProposeStatus status) {
  switch (status) {
    case ProposeStatus::kOk: return "ok";
    case ProposeStatus::kNotLeader: return "not-leader";
    case ProposeStatus::kTransferring: return "transferring";
    case ProposeStatus::kConfigPending: return "config-pending";
    case ProposeStatus::kNotCaughtUp: return "not-caught-up";
    case ProposeStatus::kInvalidChange: return "invalid-change";
    case ProposeStatus::kCannotRemoveSelf: return "cannot-remove-self";
    case ProposeStatus::kLeaderNotReady: return "leader-not-ready";
  }
  return "?";
}

Node::Node(NodeOptions options, RestoredState state, int64_t now_ms)
    : options_(std::move(options)),
      prng_(options_.seed),
      log_(std::move(state.snapshot), std::move(state.entries)),
      snapshot_meta_(log_.base()),
      snapshot_data_(std::move(state.snapshot_data)),
      term_(state.hard_state.term),
      voted_for_(state.hard_state.voted_for),
      now_ms_(now_ms),
      persisted_hard_state_(state.hard_state) {
  commit_ = std::max(log_.base().index, std::min(state.applied, log_.last_index()));
  applied_ = commit_;
  ResetElectionDeadline();
}

Index Node::MatchIndex(NodeId peer) const {
  if (peer == options_.id) return log_.last_index();
  auto it = progress_.find(peer);
  return it == progress_.end() ? 0 : it->second.match;
}

std::optional<Index> Node::IndexNeededByMembers() const {
  if (role_ != Role::kLeader) return std::nullopt;
  std::optional<Index> lowest;
  for (const auto& [id, p] : progress_) {
    Index needed = p.match + 1;
    if (p.mode == ReplicationMode::kSnapshot) needed = std::max(needed, p.snapshot_meta.index + 1);
    if (!lowest || needed < *lowest) lowest = needed;
  }
  return lowest;
}

void Node::Tick(int64_t now_ms) {
  now_ms_ = now_ms;
  if (role_ != Role::kLeader) {
    if (now_ms_ < election_deadline_ms_) return;
    if (!log_.membership().IsVoter(options_.id)) {
      ResetElectionDeadline();
      return;
    }
    if (options_.pre_vote) {
      BecomePreCandidate();
    } else {
      BecomeCandidate(false);
    }
    return;
  }
  if (transfer_target_ != kNoNode && now_ms_ >= transfer_deadline_ms_) transfer_target_ = kNoNode;
  if (now_ms_ >= quorum_check_due_ms_) {
    quorum_check_due_ms_ = now_ms_ + options_.election_timeout_ms;
    if (options_.check_quorum) {
      CheckQuorum();
      if (role_ != Role::kLeader) return;
    }
  }
  if (now_ms_ >= heartbeat_due_ms_) {
    heartbeat_due_ms_ = now_ms_ + options_.heartbeat_interval_ms;
    BroadcastAppend(true);
  }
}

void Node::Step(const Message& m, int64_t now_ms) {
  now_ms_ = now_ms;
  const auto* vote_request = std::get_if<RequestVote>(&m.body);
  const auto* vote_response = std::get_if<RequestVoteResponse>(&m.body);
  if (m.term > term_) {
    if (vote_request && !vote_request->leadership_transfer && InLease()) {
      // CheckQuorum's other half: while we hear from a leader, a server that
      // wants an election (it may have been cut off, or removed) cannot depose it.
      return;
    }
    if (vote_request && vote_request->pre_vote) {
      // A PreVote asks about a future term; it changes nothing here.
    } else if (vote_response && vote_response->pre_vote && vote_response->granted) {
      // Granted PreVotes echo the term we would campaign in.
    } else {
      bool from_leader = std::holds_alternative<AppendEntries>(m.body) ||
                         std::holds_alternative<InstallSnapshot>(m.body) ||
                         std::holds_alternative<TimeoutNow>(m.body);
      BecomeFollower(m.term, from_leader ? m.from : kNoNode);
    }
  } else if (m.term < term_) {
    // Figure 2: "reply false if term < currentTerm"; the reply carries our
    // term, so a stale leader or candidate learns it is stale and steps down.
    if (std::holds_alternative<AppendEntries>(m.body)) {
      AppendEntriesResponse r;
      r.rejected_prev_index = std::get<AppendEntries>(m.body).prev_index;
      Send(m.from, r);
    } else if (std::holds_alternative<InstallSnapshot>(m.body)) {
      Send(m.from, InstallSnapshotResponse{std::get<InstallSnapshot>(m.body).meta.index, 0, false});
    } else if (vote_request) {
      Send(m.from, RequestVoteResponse{false, vote_request->pre_vote});
    }
    return;
  }

  std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, RequestVote>) {
          HandleRequestVote(m, body);
        } else if constexpr (std::is_same_v<T, RequestVoteResponse>) {
          HandleVoteResponse(m, body);
        } else if constexpr (std::is_same_v<T, AppendEntries>) {
          HandleAppendEntries(m, body);
        } else if constexpr (std::is_same_v<T, AppendEntriesResponse>) {
          HandleAppendResponse(m, body);
        } else if constexpr (std::is_same_v<T, InstallSnapshot>) {
          HandleInstallSnapshot(m, body);
        } else if constexpr (std::is_same_v<T, InstallSnapshotResponse>) {
          HandleSnapshotResponse(m, body);
        } else if constexpr (std::is_same_v<T, TimeoutNow>) {
          HandleTimeoutNow(m);
        }
      },
      m.body);
}

ProposeResult Node::Propose(std::string data, int64_t now_ms) {
  return ProposeEntry(EntryType::kNormal, std::move(data), now_ms);
}

ProposeResult Node::ProposeNoop(int64_t now_ms) { return ProposeEntry(EntryType::kNoop, "", now_ms); }

ProposeResult Node::ProposeEntry(EntryType type, std::string data, int64_t now_ms) {
  now_ms_ = now_ms;
  if (role_ != Role::kLeader) return {ProposeStatus::kNotLeader, 0, term_, leader_};
  if (transfer_target_ != kNoNode) return {ProposeStatus::kTransferring, 0, term_, leader_};
  Index index = AppendAsLeader(type, std::move(data));
  return {ProposeStatus::kOk, index, term_, leader_};
}

ProposeResult Node::ProposeConfChange(const ConfChange& change, int64_t now_ms) {
  now_ms_ = now_ms;
  ProposeResult result{ProposeStatus::kOk, 0, term_, leader_};
  if (role_ != Role::kLeader) {
    result.status = ProposeStatus::kNotLeader;
    return result;
  }
  if (transfer_target_ != kNoNode) {
    result.status = ProposeStatus::kTransferring;
    return result;
  }
  // One change at a time (thesis §4.1), and only once an entry of this term
  // is committed: otherwise a change appended by a new leader can combine with
  // an uncommitted change of a previous leader into two disjoint majorities
  // (Ongaro, raft-dev, "bug in single-server membership changes", 2015).
  if (log_.last_config_index() > commit_ || log_.TermAt(commit_) != term_) {
    result.status = ProposeStatus::kConfigPending;
    return result;
  }
  if (change.type == ConfChangeType::kRemove && change.node == options_.id) {
    result.status = ProposeStatus::kCannotRemoveSelf;
    return result;
  }
  std::optional<Membership> next = Apply(log_.membership(), change);
  if (!next) {
    result.status = ProposeStatus::kInvalidChange;
    return result;
  }
  if (change.type == ConfChangeType::kPromote) {
    Index match = MatchIndex(change.node);
    if (match + options_.promotion_margin < log_.last_index()) {
      result.status = ProposeStatus::kNotCaughtUp;
      return result;
    }
  }
  result.index = AppendAsLeader(EntryType::kConfig, next->Encode());
  return result;
}

ProposeStatus Node::TransferLeadership(NodeId to, int64_t now_ms) {
  now_ms_ = now_ms;
  if (role_ != Role::kLeader) return ProposeStatus::kNotLeader;
  if (to == options_.id || !log_.membership().IsVoter(to)) return ProposeStatus::kInvalidChange;
  // Asking again for the same target keeps the first deadline (thesis
  // §3.10: a transfer not done within an election timeout is aborted).
  if (transfer_target_ != to) transfer_deadline_ms_ = now_ms_ + options_.election_timeout_ms;
  transfer_target_ = to;
  if (MatchIndex(to) == log_.last_index()) {
    MaybeSendTimeoutNow();
  } else {
    SendAppend(to, false);  // TimeoutNow follows the acknowledgement that it caught up
  }
  return ProposeStatus::kOk;
}

ProposeStatus Node::ReadIndex(uint64_t request, int64_t now_ms) {
  now_ms_ = now_ms;
  if (role_ != Role::kLeader) return ProposeStatus::kNotLeader;
  // Until then the commit index may lag what an earlier leader committed.
  if (log_.TermAt(commit_) != term_) return ProposeStatus::kLeaderNotReady;
  pending_reads_.push_back(PendingRead{request, commit_, ++read_round_});
  if (options_.unsafe_read_without_quorum) {
    pending_reads_.back().round = 0;
    ResolveReads();
    return ProposeStatus::kOk;
  }
  ResolveReads();  // a single voter needs no round trip
  if (!pending_reads_.empty()) BroadcastAppend(true);
  return ProposeStatus::kOk;
}

void Node::CompactLog(Index index, std::shared_ptr<const std::string> data) {
  assert(index <= applied_);
  if (index <= log_.base().index) return;
  log_.CompactTo(index);
  if (data) {
    snapshot_meta_ = log_.base();
    snapshot_data_ = std::move(data);
    snapshot_wanted_ = false;
  } else if (snapshot_data_ && snapshot_meta_.index < index) {
    snapshot_data_.reset();  // a follower installing it would miss the entries compacted after it
  }
}

void Node::ProvideSnapshot(Index index, std::shared_ptr<const std::string> data) {
  if (index < log_.base().index || index > applied_ || !data) return;
  snapshot_meta_ = SnapshotMeta{index, *log_.TermAt(index), log_.MembershipAt(index)};
  snapshot_data_ = std::move(data);
  snapshot_wanted_ = false;
}

bool Node::HasReady() const {
  return HardState{term_, voted_for_} != persisted_hard_state_ || pending_snapshot_ || pending_truncate_from_ ||
         !pending_append_.empty() || !pending_messages_.empty() || commit_ > applied_ ||
         !pending_read_states_.empty();
}

Ready Node::TakeReady() {
  Ready ready;
  HardState hs{term_, voted_for_};
  if (hs != persisted_hard_state_) {
    ready.hard_state = hs;
    persisted_hard_state_ = hs;
  }
  ready.snapshot = std::move(pending_snapshot_);
  ready.truncate_from = pending_truncate_from_;
  ready.append = std::move(pending_append_);
  ready.messages = std::move(pending_messages_);
  ready.reads = std::move(pending_read_states_);
  pending_read_states_.clear();
  pending_snapshot_.reset();
  pending_truncate_from_.reset();
  pending_append_.clear();
  pending_messages_.clear();
  if (commit_ > applied_) {
    ready.committed = log_.Slice(applied_ + 1, commit_, SIZE_MAX);
    applied_ = commit_;
  }
  return ready;
}

void Node::Send(NodeId to, MessageBody body, Term term) {
  pending_messages_.push_back(Message{options_.id, to, term == 0 ? term_ : term, std::move(body)});
}

void Node::AppendToLog(Entry entry) {
  pending_append_.push_back(entry);
  log_.Append(std::move(entry));
}

void Node::TruncateLogFrom(Index from) {
  if (from > log_.last_index()) return;
  log_.TruncateFrom(from);
  if (!pending_append_.empty() && from >= pending_append_.front().index) {
    pending_append_.resize(from - pending_append_.front().index);
    return;
  }
  // Everything pending goes, and some of what the driver already holds too.
  pending_append_.clear();
  pending_truncate_from_ = std::min(pending_truncate_from_.value_or(from), from);
}

void Node::InstallSnapshotLocally(SnapshotMeta meta, std::shared_ptr<const std::string> data) {
  Index index = meta.index;
  bool kept = log_.InstallSnapshot(meta);
  std::erase_if(pending_append_, [&](const Entry& e) { return !kept || e.index <= index; });
  if (!kept) pending_truncate_from_ = std::min(pending_truncate_from_.value_or(index + 1), index + 1);
  snapshot_meta_ = meta;
  if (options_.keep_snapshot_bytes) snapshot_data_ = data;
  pending_snapshot_ = SnapshotInstall{std::move(meta), std::move(data)};
  commit_ = std::max(commit_, index);
  applied_ = index;
}

}  // namespace commitd::raft
