// Node: log replication, commitment, snapshots and CheckQuorum (Raft §5.3,
// §5.4, §7; thesis §3.5, §4.2.1, §6.2).
#include <algorithm>

#include "raft/node.h"

namespace commitd::raft {

// --- leader side ------------------------------------------------------------

void Node::SyncProgress() {
  const Membership& m = log_.membership();
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = m.Contains(it->first) ? std::next(it) : progress_.erase(it);
  }
  auto add = [&](NodeId peer) {
    if (peer == options_.id || progress_.count(peer)) return;
    Progress p;
    p.next = log_.last_index() + 1;
    progress_[peer] = p;
  };
  for (NodeId v : m.voters) add(v);
  for (NodeId l : m.learners) add(l);
}

Index Node::AppendAsLeader(EntryType type, std::string data) {
  Index index = log_.last_index() + 1;
  AppendToLog(Entry{term_, index, type, std::move(data)});
  if (type == EntryType::kConfig) {
    SyncProgress();
    if (transfer_target_ != kNoNode && !log_.membership().IsVoter(transfer_target_)) transfer_target_ = kNoNode;
  }
  BroadcastAppend(false);
  MaybeCommit();
  return index;
}

void Node::BroadcastAppend(bool heartbeat) {
  for (auto& [peer, p] : progress_) SendAppend(peer, heartbeat);
}

void Node::SendAppend(NodeId peer, bool heartbeat) {
  auto it = progress_.find(peer);
  if (it == progress_.end()) return;
  Progress& p = it->second;
  if (p.mode == ReplicationMode::kSnapshot) {
    if (heartbeat) SendSnapshotChunk(peer, p);  // the chunk or its answer may be lost
    return;
  }
  if (p.mode == ReplicationMode::kProbe && p.probe_sent && !heartbeat) return;
  std::optional<Term> prev_term = log_.TermAt(p.next - 1);
  if (!prev_term) {
    // What this follower needs is compacted away: send the snapshot instead,
    // once the driver provided one (until then the heartbeat asks again).
    if (!snapshot_data_) {
      snapshot_wanted_ = true;
      return;
    }
    p.mode = ReplicationMode::kSnapshot;
    p.snapshot_meta = snapshot_meta_;
    p.snapshot_data = snapshot_data_;
    p.snapshot_offset = 0;
    SendSnapshotChunk(peer, p);
    return;
  }
  AppendEntries ae;
  ae.prev_index = p.next - 1;
  ae.prev_term = *prev_term;
  ae.entries = log_.Slice(p.next, log_.last_index(), options_.max_entries_per_append);
  ae.leader_commit = commit_;
  ae.read_round = read_round_;
  if (p.mode == ReplicationMode::kReplicate) {
    if (!ae.entries.empty()) p.next = ae.entries.back().index + 1;
  } else {
    p.probe_sent = true;
  }
  Send(peer, std::move(ae));
}

void Node::SendSnapshotChunk(NodeId peer, Progress& p) {
  const std::string& data = *p.snapshot_data;
  uint64_t offset = std::min<uint64_t>(p.snapshot_offset, data.size());
  InstallSnapshot is;
  is.meta = p.snapshot_meta;
  is.offset = offset;
  is.chunk = data.substr(offset, options_.snapshot_chunk_bytes);
  is.done = offset + is.chunk.size() == data.size();
  Send(peer, std::move(is));
}

void Node::HandleAppendResponse(const Message& m, const AppendEntriesResponse& r) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& p = it->second;
  p.recent_active = true;
  if (r.read_round > p.read_round) {
    p.read_round = r.read_round;
    ResolveReads();
  }
  if (r.success) {
    if (p.mode == ReplicationMode::kSnapshot && r.match_index < p.snapshot_meta.index) return;
    p.match = std::max(p.match, r.match_index);
    p.next = std::max(p.next, p.match + 1);
    if (p.mode != ReplicationMode::kReplicate) {
      p.mode = ReplicationMode::kReplicate;
      p.probe_sent = false;
      p.next = p.match + 1;
    }
    MaybeCommit();
    if (role_ != Role::kLeader) return;
    MaybeSendTimeoutNow();
    if (p.next <= log_.last_index()) SendAppend(m.from, false);
    return;
  }
  // A rejection answers one particular append; ignore those we have moved past.
  if (p.mode == ReplicationMode::kSnapshot) return;
  if (r.rejected_prev_index <= p.match) return;
  if (p.mode == ReplicationMode::kProbe && r.rejected_prev_index != p.next - 1) return;
  Index next = r.conflict_index;
  if (r.conflict_term != 0) {
    if (std::optional<Index> last = log_.LastIndexOfTerm(r.conflict_term)) next = *last + 1;
  }
  next = std::min(next, r.rejected_prev_index);
  p.next = std::max(next, p.match + 1);
  p.mode = ReplicationMode::kProbe;
  p.probe_sent = false;
  SendAppend(m.from, false);
}

void Node::HandleSnapshotResponse(const Message& m, const InstallSnapshotResponse& r) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& p = it->second;
  p.recent_active = true;
  if (p.mode != ReplicationMode::kSnapshot || r.snapshot_index != p.snapshot_meta.index) return;
  if (r.done) {
    p.match = std::max(p.match, r.snapshot_index);
    p.next = p.match + 1;
    p.mode = ReplicationMode::kProbe;
    p.probe_sent = false;
    p.snapshot_data.reset();
    LetGoOfSnapshotBytesIfUnsent();
    MaybeCommit();
    if (role_ != Role::kLeader) return;
    MaybeSendTimeoutNow();
    SendAppend(m.from, false);
    return;
  }
  p.snapshot_offset = r.next_offset;
  SendSnapshotChunk(m.from, p);
}

void Node::MaybeCommit() {
  const Membership& m = log_.membership();
  if (m.voters.empty()) return;
  std::vector<Index> matches;
  for (NodeId v : m.voters) matches.push_back(MatchIndex(v));
  std::sort(matches.begin(), matches.end(), std::greater<>());
  Index candidate = matches[m.Quorum() - 1];
  if (candidate <= commit_) return;
  // Figure 2 / §5.4.2: only an entry of the current term is committed by
  // counting replicas; earlier ones are committed with it.
  if (log_.TermAt(candidate) != term_ && !options_.unsafe_commit_previous_term) return;
  commit_ = candidate;
}

void Node::MaybeSendTimeoutNow() {
  if (transfer_target_ == kNoNode) return;
  if (MatchIndex(transfer_target_) != log_.last_index()) return;
  Send(transfer_target_, TimeoutNow{});
}

void Node::ResolveReads() {
  const Membership& m = log_.membership();
  std::vector<uint64_t> rounds;
  for (NodeId v : m.voters) {
    if (v == options_.id) {
      rounds.push_back(read_round_);
    } else {
      auto it = progress_.find(v);
      rounds.push_back(it == progress_.end() ? 0 : it->second.read_round);
    }
  }
  if (rounds.empty()) return;
  std::sort(rounds.begin(), rounds.end(), std::greater<>());
  uint64_t confirmed = rounds[m.Quorum() - 1];
  auto done = std::stable_partition(pending_reads_.begin(), pending_reads_.end(),
                                    [&](const PendingRead& r) { return r.round <= confirmed; });
  for (auto it = pending_reads_.begin(); it != done; ++it) {
    pending_read_states_.push_back(ReadState{it->request, it->index, true});
  }
  pending_reads_.erase(pending_reads_.begin(), done);
}

void Node::FailReads() {
  for (const PendingRead& r : pending_reads_) pending_read_states_.push_back(ReadState{r.request, 0, false});
  pending_reads_.clear();
}

void Node::CheckQuorum() {
  const Membership& m = log_.membership();
  std::size_t active = 0;
  for (NodeId v : m.voters) {
    if (v == options_.id) {
      ++active;
      continue;
    }
    auto it = progress_.find(v);
    if (it != progress_.end() && it->second.recent_active) ++active;
  }
  for (auto& [peer, p] : progress_) p.recent_active = false;
  if (active < m.Quorum()) BecomeFollower(term_, kNoNode);
}

// --- follower side ----------------------------------------------------------

void Node::HandleAppendEntries(const Message& m, const AppendEntries& ae) {
  if (role_ != Role::kFollower || leader_ != m.from) BecomeFollower(term_, m.from);
  last_leader_contact_ms_ = now_ms_;
  ResetElectionDeadline();

  AppendEntriesResponse r;
  r.read_round = ae.read_round;
  Index prev_index = ae.prev_index;
  Term prev_term = ae.prev_term;
  auto first_new = ae.entries.begin();
  if (prev_index < log_.base().index) {
    // The start of this append is in our snapshot, hence committed and equal
    // to the leader's; skip to the first entry after it.
    while (first_new != ae.entries.end() && first_new->index <= log_.base().index) ++first_new;
    if (first_new == ae.entries.end()) {
      r.success = true;
      r.match_index = ae.entries.empty() ? ae.prev_index : ae.entries.back().index;
      Send(m.from, r);
      return;
    }
    prev_index = first_new->index - 1;
    std::optional<Term> term = log_.TermAt(prev_index);
    if (!term) {  // the entries skip an index: malformed, refuse it
      r.rejected_prev_index = ae.prev_index;
      r.conflict_index = log_.last_index() + 1;
      Send(m.from, r);
      return;
    }
    prev_term = *term;
  }
  std::optional<Term> our_prev = log_.TermAt(prev_index);
  if (our_prev != prev_term) {
    r.rejected_prev_index = ae.prev_index;
    if (!our_prev) {
      r.conflict_index = log_.last_index() + 1;
    } else if (prev_index <= log_.base().index) {
      // The base (index 0, or the snapshot) is committed, so a leader cannot
      // disagree with it; refuse without reading below the log.
      r.conflict_term = *our_prev;
      r.conflict_index = log_.first_index();
    } else {
      r.conflict_term = *our_prev;
      r.conflict_index = log_.FirstIndexOfTerm(prev_index);
    }
    Send(m.from, r);
    return;
  }
  for (auto it = first_new; it != ae.entries.end(); ++it) {
    std::optional<Term> existing = log_.TermAt(it->index);
    if (existing == it->term) continue;
    // Figure 2: if an existing entry conflicts with a new one (same index,
    // different terms), delete it and all that follow it.
    if (existing) TruncateLogFrom(it->index);
    AppendToLog(*it);
  }
  Index last_new = ae.entries.empty() ? ae.prev_index : ae.entries.back().index;
  // Figure 2: commitIndex = min(leaderCommit, index of last new entry).
  commit_ = std::max(commit_, std::min(ae.leader_commit, last_new));
  r.success = true;
  r.match_index = last_new;
  Send(m.from, r);
}

void Node::HandleInstallSnapshot(const Message& m, const InstallSnapshot& is) {
  if (role_ != Role::kFollower || leader_ != m.from) BecomeFollower(term_, m.from);
  last_leader_contact_ms_ = now_ms_;
  ResetElectionDeadline();

  InstallSnapshotResponse r;
  r.snapshot_index = is.meta.index;
  if (is.meta.index <= commit_) {
    // We already hold everything it covers, committed.
    incoming_snapshot_.reset();
    r.done = true;
    Send(m.from, r);
    return;
  }
  if (is.offset == 0) incoming_snapshot_ = IncomingSnapshot{is.meta, ""};
  bool continues = incoming_snapshot_ && incoming_snapshot_->meta == is.meta &&
                   incoming_snapshot_->data.size() == is.offset;
  if (!continues) {
    bool same = incoming_snapshot_ && incoming_snapshot_->meta == is.meta;
    r.next_offset = same ? incoming_snapshot_->data.size() : 0;
    Send(m.from, r);
    return;
  }
  incoming_snapshot_->data += is.chunk;
  r.next_offset = incoming_snapshot_->data.size();
  if (is.done) {
    auto data = std::make_shared<const std::string>(std::move(incoming_snapshot_->data));
    SnapshotMeta meta = incoming_snapshot_->meta;
    incoming_snapshot_.reset();
    InstallSnapshotLocally(std::move(meta), std::move(data));
    r.done = true;
  }
  Send(m.from, r);
}

void Node::LetGoOfSnapshotBytesIfUnsent() {
  if (options_.keep_snapshot_bytes || !snapshot_data_) return;
  for (const auto& [peer, p] : progress_) {
    if (p.mode == ReplicationMode::kSnapshot) return;
  }
  snapshot_data_.reset();
}

}  // namespace commitd::raft
