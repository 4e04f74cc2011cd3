// Node: roles, elections, PreVote, leadership transfer (Raft §5.2, thesis §3.10, §9.6).
#include <algorithm>

#include "raft/node.h"

namespace commitd::raft {

void Node::ResetElectionDeadline() {
  election_deadline_ms_ =
      now_ms_ + prng_.Uniform(options_.election_timeout_ms, 2 * options_.election_timeout_ms - 1);
}

bool Node::InLease() const {
  if (!options_.check_quorum) return false;
  if (role_ == Role::kLeader) return true;  // it steps down by itself once it loses its quorum
  return leader_ != kNoNode && now_ms_ - last_leader_contact_ms_ < options_.election_timeout_ms;
}

void Node::BecomeFollower(Term term, NodeId leader) {
  FailReads();
  if (term > term_) {
    term_ = term;
    voted_for_ = kNoNode;
  }
  role_ = Role::kFollower;
  leader_ = leader;
  if (leader != kNoNode) last_leader_contact_ms_ = now_ms_;
  progress_.clear();
  if (!options_.keep_snapshot_bytes) snapshot_data_.reset();
  transfer_target_ = kNoNode;
  votes_granted_.clear();
  votes_rejected_.clear();
  ResetElectionDeadline();
}

void Node::BecomePreCandidate() {
  role_ = Role::kPreCandidate;
  leader_ = kNoNode;
  votes_granted_ = {options_.id};
  votes_rejected_.clear();
  ResetElectionDeadline();
  if (votes_granted_.size() >= log_.membership().Quorum()) {
    BecomeCandidate(false);
    return;
  }
  for (NodeId voter : log_.membership().voters) {
    if (voter == options_.id) continue;
    Send(voter, RequestVote{log_.last_index(), log_.last_term(), true, false}, term_ + 1);
  }
}

void Node::BecomeCandidate(bool leadership_transfer) {
  role_ = Role::kCandidate;
  ++term_;
  voted_for_ = options_.id;
  leader_ = kNoNode;
  votes_granted_ = {options_.id};
  votes_rejected_.clear();
  ResetElectionDeadline();
  if (votes_granted_.size() >= log_.membership().Quorum()) {
    BecomeLeader();
    return;
  }
  for (NodeId voter : log_.membership().voters) {
    if (voter == options_.id) continue;
    Send(voter, RequestVote{log_.last_index(), log_.last_term(), false, leadership_transfer});
  }
}

void Node::BecomeLeader() {
  role_ = Role::kLeader;
  leader_ = options_.id;
  read_round_ = 0;
  votes_granted_.clear();
  votes_rejected_.clear();
  progress_.clear();
  transfer_target_ = kNoNode;
  snapshot_wanted_ = false;
  SyncProgress();
  quorum_check_due_ms_ = now_ms_ + options_.election_timeout_ms;
  heartbeat_due_ms_ = now_ms_ + options_.heartbeat_interval_ms;
  if (!options_.unsafe_commit_previous_term) {
    // Raft §5.4.2 / thesis §3.6.2: a leader commits earlier terms' entries only
    // by committing one of its own, so it appends one at once.
    AppendAsLeader(EntryType::kNoop, "");
  } else {
    BroadcastAppend(false);
  }
}

void Node::HandleRequestVote(const Message& m, const RequestVote& rv) {
  // Figure 2: grant if votedFor is null or candidateId and the candidate's log
  // is at least as up-to-date as ours. A PreVote for a later term is granted on
  // the log alone; it binds nothing.
  bool can_vote = voted_for_ == m.from || (voted_for_ == kNoNode && leader_ == kNoNode) ||
                  (rv.pre_vote && m.term > term_);
  bool granted = can_vote && log_.IsUpToDate(rv.last_log_index, rv.last_log_term);
  if (rv.pre_vote) {
    Send(m.from, RequestVoteResponse{granted, true}, granted ? m.term : term_);
    return;
  }
  if (granted) {
    voted_for_ = m.from;
    ResetElectionDeadline();
  }
  Send(m.from, RequestVoteResponse{granted, false});
}

void Node::HandleVoteResponse(const Message& m, const RequestVoteResponse& r) {
  bool counting = (r.pre_vote && role_ == Role::kPreCandidate) || (!r.pre_vote && role_ == Role::kCandidate);
  if (!counting || !log_.membership().IsVoter(m.from)) return;
  (r.granted ? votes_granted_ : votes_rejected_).insert(m.from);
  std::size_t quorum = log_.membership().Quorum();
  if (votes_granted_.size() >= quorum) {
    if (r.pre_vote) {
      BecomeCandidate(false);
    } else {
      BecomeLeader();
    }
  } else if (votes_rejected_.size() >= quorum) {
    BecomeFollower(term_, kNoNode);
  }
}

void Node::HandleTimeoutNow(const Message&) {
  if (role_ == Role::kLeader || !log_.membership().IsVoter(options_.id)) return;
  // Thesis §3.10: the transferee starts a real election at once, skipping
  // PreVote, and its requests pass the voters' leader lease.
  BecomeCandidate(true);
}

}  // namespace commitd::raft
