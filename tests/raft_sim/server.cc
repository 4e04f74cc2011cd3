#include "tests/raft_sim/server.h"

namespace commitd::raft_sim {

void DurableState::TruncateFrom(raft::Index from) {
  if (from <= snapshot.index) {
    entries.clear();
  } else if (from <= last_index()) {
    entries.resize(from - snapshot.index - 1);
  }
}

bool DurableState::Append(const raft::Entry& entry, bool overwrite) {
  if (overwrite) {
    if (entry.index <= snapshot.index) return true;
    TruncateFrom(entry.index);
  }
  if (entry.index != last_index() + 1) return false;
  entries.push_back(entry);
  return true;
}

void DurableState::DropThrough(raft::Index index) {
  if (index >= last_index()) {
    entries.clear();
  } else if (index > snapshot.index) {
    entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(index - snapshot.index));
  }
}

Server::Server(raft::NodeId id, raft::Membership bootstrap, raft::NodeOptions tuning, Bug bug,
               raft::Index compact_every)
    : id_(id), tuning_(tuning), bug_(bug), compact_every_(compact_every) {
  tuning_.id = id;
  tuning_.unsafe_commit_previous_term = bug == Bug::kCommitOldTerm;
  tuning_.unsafe_read_without_quorum = bug == Bug::kStaleRead;
  durable_.snapshot.membership = std::move(bootstrap);
}

void Server::Start(int64_t now_ms, uint64_t seed) {
  ++incarnation_;
  raft::NodeOptions options = tuning_;
  options.seed = seed;
  raft::RestoredState restored;
  restored.hard_state = durable_.hard_state;
  restored.snapshot = durable_.snapshot;
  restored.snapshot_data = durable_.snapshot_data;
  restored.entries = durable_.entries;
  restored.applied = durable_.snapshot.index;
  state_machine_ = StateMachine();
  if (durable_.snapshot_data) {
    if (auto sm = StateMachine::Restore(*durable_.snapshot_data)) state_machine_ = std::move(*sm);
  }
  node_ = std::make_unique<raft::Node>(options, std::move(restored), now_ms);
}

void Server::Crash() {
  node_.reset();
  unsynced_.reset();
}

bool Server::Persist(const raft::Ready& ready) {
  if (ready.snapshot) {
    durable_.DropThrough(ready.snapshot->meta.index);
    durable_.snapshot = ready.snapshot->meta;
    durable_.snapshot_data = ready.snapshot->data;
  }
  if (ready.truncate_from) durable_.TruncateFrom(*ready.truncate_from);
  bool fits = true;
  for (const raft::Entry& e : ready.append) fits &= durable_.Append(e, bug_ == Bug::kAckBeforeDurable);
  return fits;
}

void Server::Pump(Checker& checker, const std::function<void(raft::Message)>& send) {
  while (node_ && node_->HasReady()) {
    raft::Ready ready = node_->TakeReady();
    // 1. Persist.
    if (ready.hard_state) {
      raft::NodeId vote = durable_.hard_state.voted_for;
      if (ready.hard_state->term != durable_.hard_state.term) vote = raft::kNoNode;
      durable_.hard_state = *ready.hard_state;
      if (bug_ == Bug::kNoVotePersist) durable_.hard_state.voted_for = vote;
    }
    if (bug_ == Bug::kAckBeforeDurable) {
      if (unsynced_) Persist(*unsynced_);
      unsynced_ = raft::Ready{};
      unsynced_->truncate_from = ready.truncate_from;
      unsynced_->append = ready.append;
      raft::Ready snapshot_only;
      snapshot_only.snapshot = ready.snapshot;
      Persist(snapshot_only);
    } else if (!Persist(ready)) {
      checker.CheckDurableLog(id_, node_->log(), durable_.snapshot.index, durable_.last_index(), std::nullopt);
    }
    checker.OnAppended(id_, node_->log(), ready.append);
    if (bug_ != Bug::kAckBeforeDurable) {
      std::optional<raft::Term> last_term =
          durable_.entries.empty() ? durable_.snapshot.term : durable_.entries.back().term;
      checker.CheckDurableLog(id_, node_->log(), durable_.snapshot.index, durable_.last_index(), last_term);
    }
    // 2. Send.
    for (raft::Message& m : ready.messages) send(std::move(m));
    // 3. Apply.
    if (ready.snapshot) {
      if (auto sm = StateMachine::Restore(*ready.snapshot->data)) state_machine_ = std::move(*sm);
      ++counters_.snapshots_installed;
      checker.OnApplied(id_, state_machine_.applied(), state_machine_.hash());
    }
    for (const raft::Entry& e : ready.committed) {
      if (e.index != state_machine_.applied() + 1) {
        checker.Report("apply: n" + std::to_string(id_) + " was handed entry " + std::to_string(e.index) +
                       " after applying " + std::to_string(state_machine_.applied()));
      }
      state_machine_.Apply(e);
      ++counters_.entries_applied;
      checker.OnApplied(id_, e.index, state_machine_.hash());
    }
    // 4. Answer reads (the simulation only checks the read point).
    for (const raft::ReadState& read : ready.reads) {
      if (!read.ok) ++reads_failed_;
      checker.OnReadAnswered(id_, read);
    }
    MaybeCompact();
  }
}

void Server::MaybeCompact() {
  if (compact_every_ == 0) return;
  raft::Index applied = state_machine_.applied();
  const raft::Log& log = node_->log();
  if (applied < log.base().index + compact_every_ || applied > log.last_index()) return;
  auto data = std::make_shared<const std::string>(state_machine_.Snapshot());
  raft::SnapshotMeta meta{applied, *log.TermAt(applied), log.MembershipAt(applied)};
  if (unsynced_) {  // a snapshot makes everything before it durable
    Persist(*unsynced_);
    unsynced_.reset();
  }
  durable_.DropThrough(applied);
  durable_.snapshot = meta;
  durable_.snapshot_data = data;
  node_->CompactLog(applied, data);
  ++counters_.snapshots_taken;
}

}  // namespace commitd::raft_sim
