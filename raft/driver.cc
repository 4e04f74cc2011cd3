#include "raft/driver.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <utility>

#include "common/log.h"
#include "raft/storage.h"

namespace commitd::raft {
namespace {

// A leader's Ready that changes no term, vote, snapshot or truncation and
// whose messages are all appends, snapshot chunks or TimeoutNow to followers.
bool LeaderMessagesOnly(const Ready& r) {
  if (r.hard_state || r.snapshot || r.truncate_from || r.messages.empty()) return false;
  return std::all_of(r.messages.begin(), r.messages.end(), [](const Message& m) {
    return std::holds_alternative<AppendEntries>(m.body) || std::holds_alternative<InstallSnapshot>(m.body) ||
           std::holds_alternative<TimeoutNow>(m.body);
  });
}

// Writes one Ready's durable part and applies its committed entries, in the
// order raft/node.h gives. Storage thread.
Status WriteReady(sqlite::Database& db, StateMachine& machine, const Ready& ready, std::vector<Status>* results) {
  Storage storage(db);
  if (ready.hard_state) {
    if (Status s = storage.SaveHardState(*ready.hard_state); !s.ok()) return s;
  }
  if (ready.snapshot) {
    // From the leader: it becomes the log's base and the whole state machine.
    if (Status s = storage.SaveSnapshot(ready.snapshot->meta); !s.ok()) return s;
    if (Status s = machine.Restore(db, *ready.snapshot->data); !s.ok()) return s;
    if (Status s = storage.SetApplied(ready.snapshot->meta.index); !s.ok()) return s;
  }
  if (ready.truncate_from) {
    if (Status s = storage.TruncateFrom(*ready.truncate_from); !s.ok()) return s;
  }
  if (!ready.append.empty()) {
    if (Status s = storage.Append(ready.append); !s.ok()) return s;
  }
  if (Status s = machine.ApplyAll(db, ready.committed, results); !s.ok()) return s;
  if (results->size() != ready.committed.size()) return Status::Internal("the state machine gave a result per entry");
  if (!ready.committed.empty()) return storage.SetApplied(ready.committed.back().index);
  return Status::Ok();
}

}  // namespace

struct Driver::Applied {
  std::vector<Status> results;  // one per committed entry
};

Driver::Driver(DriverOptions options, RestoredState restored, StateMachine& machine, StorageQueue& storage,
               Transport& transport, Timers& timers)
    : options_(std::move(options)), machine_(machine), storage_(storage), transport_(transport), timers_(timers) {
  applied_ = restored.applied;
  snapshot_index_ = restored.snapshot.index;
  // Its state machine is durable: a snapshot's bytes are serialized when a follower needs them, not kept.
  options_.node.keep_snapshot_bytes = false;
  node_ = std::make_unique<Node>(options_.node, std::move(restored), timers_.NowMs());
}

Driver::~Driver() { *alive_ = false; }

std::function<void()> Driver::Guarded(std::function<void()> fn) {
  return [alive = alive_, fn = std::move(fn)] {
    if (*alive) fn();
  };
}

void Driver::Start() {
  started_ = true;
  ScheduleTick();
  Pump();
}

void Driver::Stop(const std::string& why) {
  stopped_ = true;
  auto held = std::move(held_);
  held_.clear();
  for (auto& h : held) {
    if (h.reply) h.reply(Status::Unavailable(why));
  }
  FailWaiting(why);
}

void Driver::ScheduleTick() {
  timers_.After(options_.tick_ms, Guarded([this] {
                  if (stopped_) return;
                  node_->Tick(timers_.NowMs());
                  PromoteCaughtUpLearners();
                  Pump();
                  ScheduleTick();
                }));
}

void Driver::Receive(std::vector<Message> messages, Reply reply) {
  if (stopped_) {
    if (reply) reply(Status::Unavailable("stopping"));
    return;
  }
  const int64_t now = timers_.NowMs();
  NodeId from = kNoNode;
  for (const auto& m : messages) {
    from = m.from;
    if (m.to == node_->id()) node_->Step(m, now);
  }
  if (reply) held_.push_back(HeldReply{from, std::move(reply)});
  Pump();
}

void Driver::Propose(std::string data, std::function<void(Status)> done) {
  Append([&] { return node_->Propose(std::move(data), timers_.NowMs()); }, std::move(done));
}

// Entries are applied in log order, and a pending entry completes with the
// Ready that applies it: the barrier completes after every earlier one.
void Driver::Barrier(std::function<void(Status)> done) {
  Append([&] { return node_->ProposeNoop(timers_.NowMs()); }, std::move(done));
}

void Driver::Append(const std::function<ProposeResult()>& propose, std::function<void(Status)> done) {
  if (stopped_ || !leader_ready_) {
    done(Status::Unavailable("not the leader"));
    return;
  }
  ProposeResult r = propose();
  if (r.status != ProposeStatus::kOk) {
    done(Status::Unavailable("cannot append: " + std::string(ProposeStatusName(r.status))));
    return;
  }
  pending_[r.index] = Pending{r.term, std::move(done)};
  Pump();
}

void Driver::LinearizableRead(std::function<void(sqlite::Database&)> fn, std::function<void(Status)> fail) {
  if (stopped_ || !leader_ready_) {
    fail(Status::Unavailable("not the leader"));
    return;
  }
  const uint64_t request = next_read_++;
  ProposeStatus s = node_->ReadIndex(request, timers_.NowMs());
  if (s != ProposeStatus::kOk) {
    fail(Status::Unavailable("cannot read now: " + std::string(ProposeStatusName(s))));
    return;
  }
  reads_.emplace(request, ReadWaiter{std::move(fn), std::move(fail)});
  Pump();
}

ProposeStatus Driver::TransferLeadership(NodeId to) {
  ProposeStatus s = node_->TransferLeadership(to, timers_.NowMs());
  Pump();
  return s;
}

ProposeResult Driver::ProposeConfChange(const ConfChange& change) {
  ProposeResult r = node_->ProposeConfChange(change, timers_.NowMs());
  Pump();
  return r;
}

// One Ready at a time: durable (one storage job, with the entries it commits
// applied in it), then its messages (a leader's appends before, see
// LeaderMessagesOnly), then the completions.
void Driver::Pump() {
  if (stopped_ || !started_) return;
  if (!writing_ && before_ready_) before_ready_();
  if (writing_ || (!node_->HasReady() && !DeferredDue())) {
    if (!writing_ && !held_.empty()) {  // no Ready to wait for: nothing to reply
      auto held = std::move(held_);
      held_.clear();
      Send({}, std::move(held));
    }
    CheckLeadership();
    MaybeSnapshot();
    return;
  }
  writing_ = true;
  auto ready = std::make_shared<Ready>(node_->TakeReady());
  TakeApplies(*ready);
  if (on_ready_) on_ready_(*ready);
  std::vector<HeldReply> held = std::move(held_);
  held_.clear();
  if (LeaderMessagesOnly(*ready) || options_.unsafe_send_before_durable) {
    // Raft thesis §10.2.1: the leader's appends go out while its own write
    // runs. Safe because this Ready's messages promise nothing about this
    // member's disk, and the commitment they may lead to reaches anyone (as
    // leader_commit, applied entries or read answers) only through later
    // Readies, taken after this one is durable.
    Send(std::move(ready->messages), std::move(held));
    ready->messages.clear();
    held.clear();
  }
  auto applied = std::make_shared<Applied>();
  if (!ready->hard_state && !ready->snapshot && !ready->truncate_from && ready->append.empty() &&
      ready->committed.empty()) {
    // Nothing to make durable (heartbeats, answers, read states): no storage
    // round trip; every earlier Ready is durable already.
    Written(ready, applied, std::move(held));
    return;
  }
  StorageJob job;
  job.run = [&machine = machine_, ready, applied](sqlite::Database& db) {
    return WriteReady(db, machine, *ready, &applied->results);
  };
  auto held_shared = std::make_shared<std::vector<HeldReply>>(std::move(held));
  job.done = [this, alive = alive_, ready, applied, held_shared](Status s) {
    if (!*alive) return;
    if (!s.ok()) {
      // The Raft log on disk no longer matches what the node believes: stop.
      log::Error("fatal_raft_storage_failure", {{"error", s.ToString()}});
      std::abort();
    }
    Written(ready, applied, std::move(*held_shared));
  };
  // A Ready that only applies committed entries promises nothing about this
  // member's disk: the entries are durable in the log (on a quorum), and an
  // apply lost in a machine crash is redone from the log on restart (the
  // applied index is written with it). So it skips the fsync; the next Ready
  // that persists something syncs it too, and compaction (always synced) never
  // deletes an entry whose application could still be lost.
  const bool persists = ready->hard_state.has_value() || ready->snapshot.has_value() ||
                        ready->truncate_from.has_value() || !ready->append.empty();
  job.durability = persists ? Durability::kSyncNow : Durability::kNone;
  storage_.Submit(std::move(job));
}

// A follower applies committed entries follower_apply_lag_ms after the
// first of them came, all at once: a transaction's records (staging, commit
// record, finished mark) usually commit within that time of each other, and
// a state machine may then write them as one (StateMachine::ApplyAll). Safe
// because applying is not what a follower promises: the entries are durable
// in its log, it acknowledged them as appended, and nothing reads a
// follower's state machine. Anyone else applies at once: a candidate or
// leader must have applied everything committed before it serves.
bool Driver::DeferredDue() const {
  if (deferred_.empty()) return false;
  if (node_->role() != Role::kFollower || options_.follower_apply_lag_ms <= 0) return true;
  // A clock that went back (waited < 0) does not hold them any longer.
  const int64_t waited = timers_.NowMs() - deferred_since_ms_;
  return deferred_.size() >= kMaxDeferredEntries || waited >= options_.follower_apply_lag_ms || waited < 0;
}

void Driver::TakeApplies(Ready& ready) {
  if (ready.snapshot) {
    // The snapshot holds every entry up to its index applied.
    const Index base = ready.snapshot->meta.index;
    std::erase_if(deferred_, [base](const Entry& e) { return e.index <= base; });
  }
  if (ready.committed.empty() && deferred_.empty()) return;
  if (deferred_.empty()) deferred_since_ms_ = timers_.NowMs();
  std::move(ready.committed.begin(), ready.committed.end(), std::back_inserter(deferred_));
  ready.committed.clear();
  if (DeferredDue()) ready.committed = std::exchange(deferred_, {});
}

void Driver::Written(const std::shared_ptr<Ready>& ready, const std::shared_ptr<Applied>& applied,
                     std::vector<HeldReply> held) {
  if (stopped_) return;
  Send(std::move(ready->messages), std::move(held));
  if (ready->snapshot) {
    applied_ = std::max(applied_, ready->snapshot->meta.index);
    snapshot_index_ = ready->snapshot->meta.index;
    ++counters_.snapshots_installed;
    log::Info("snapshot_installed", {{"index", snapshot_index_}, {"bytes", ready->snapshot->data->size()}});
  }
  if (!ready->committed.empty()) applied_ = ready->committed.back().index;
  if (ready->snapshot || !ready->committed.empty()) machine_.AfterDurable(ready->committed, ready->snapshot.has_value());
  for (std::size_t i = 0; i < ready->committed.size(); ++i) {
    const Entry& e = ready->committed[i];
    auto it = pending_.find(e.index);
    if (it == pending_.end()) continue;
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (p.term == e.term) {
      p.done(applied->results[i]);
    } else {
      p.done(Status::Unavailable("leadership changed; another entry took index " + std::to_string(e.index)));
    }
    if (stopped_) return;
  }
  for (const auto& rs : ready->reads) {
    auto it = reads_.find(rs.request);
    if (it == reads_.end()) continue;
    ReadWaiter w = std::move(it->second);
    reads_.erase(it);
    if (!rs.ok) {
      w.fail(Status::Unavailable("leadership lost during a read; retry"));
    } else {
      reads_waiting_apply_.emplace(rs.index, std::move(w));
    }
  }
  AfterApply();
  writing_ = false;
  Pump();
}

void Driver::AfterApply() {
  while (!reads_waiting_apply_.empty() && reads_waiting_apply_.begin()->first <= applied_) {
    ReadWaiter w = std::move(reads_waiting_apply_.begin()->second);
    reads_waiting_apply_.erase(reads_waiting_apply_.begin());
    storage_.Read(std::move(w.fn));
  }
}

void Driver::Send(std::vector<Message> messages, std::vector<HeldReply> held) {
  std::map<NodeId, std::vector<Message>> by_peer;
  for (auto& m : messages) by_peer[m.to].push_back(std::move(m));
  for (auto& [to, list] : by_peer) {
    auto h = std::find_if(held.begin(), held.end(), [to = to](const HeldReply& r) { return r.from == to; });
    if (h == held.end()) {
      transport_.Send(to, std::move(list));
      continue;
    }
    Reply reply = std::move(h->reply);
    held.erase(h);
    reply(std::move(list));
  }
  for (auto& h : held) h.reply(std::vector<Message>{});
}

// Leader-ready is sticky for a term: it starts once this member, as leader,
// has applied an entry of its own term (so every earlier decision is in the
// state machine), and ends when it stops leading or the term changes.
void Driver::NoteLeader() {
  const NodeId leader = node_->leader();
  if (leader == known_leader_) return;
  if (leader != kNoNode) ++counters_.leader_changes;
  known_leader_ = leader;
  if (on_leader_change_) on_leader_change_(leader, node_->term());
}

void Driver::CheckLeadership() {
  NoteLeader();
  const bool leader = node_->role() == Role::kLeader;
  if (!leader && waiting() > 0) FailWaiting("this member is no longer the leader");
  bool ready = false;
  if (leader) {
    if (leader_ready_ && ready_term_ == node_->term()) return;
    auto applied_term = node_->log().TermAt(applied_);
    ready = applied_term && *applied_term == node_->term();
  }
  if (ready == leader_ready_) return;
  leader_ready_ = ready;
  ready_term_ = ready ? node_->term() : 0;
  if (on_leadership_) on_leadership_(ready);
}

void Driver::FailWaiting(const std::string& why) {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [index, p] : pending) {
    p.done(Status::Unavailable(why + "; the entry at " + std::to_string(index) + " may still commit"));
  }
  auto reads = std::move(reads_);
  reads_.clear();
  for (auto& [id, w] : reads) w.fail(Status::Unavailable(why));
  auto waiting = std::move(reads_waiting_apply_);
  reads_waiting_apply_.clear();
  for (auto& [index, w] : waiting) w.fail(Status::Unavailable(why));
}

// Leader: a learner that has caught up becomes a voter (the core refuses
// while it lags, or while another change is pending; try again later).
void Driver::PromoteCaughtUpLearners() {
  if (!leader_ready_ || node_->membership().learners.empty()) return;
  const int64_t now = timers_.NowMs();
  if (now < next_promotion_ms_) return;
  next_promotion_ms_ = now + 100;
  for (NodeId learner : node_->membership().learners) {
    ProposeResult r = node_->ProposeConfChange({ConfChangeType::kPromote, learner}, now);
    if (r.status == ProposeStatus::kOk) {
      log::Info("member_promoted", {{"node", learner}});
      break;
    }
  }
}

}  // namespace commitd::raft
