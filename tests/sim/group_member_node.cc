// GroupMemberNode, the Raft driver half (group_member_service.cc is the service).
#include "tests/sim/group_member_node.h"

namespace commitd::sim {

using coordinator::Outcome;
namespace command = coordinator::command;

namespace {

std::string DescribeCommand(const raft::Entry& e) {
  if (e.type == raft::EntryType::kNoop) return "noop";
  if (e.type == raft::EntryType::kConfig) return "config";
  auto c = coordinator::DecodeCommand(e.data);
  if (!c.ok()) return "undecodable";
  if (auto* d = std::get_if<command::Decide>(&*c)) {
    return (d->record.outcome == Outcome::kPending ? "precommit record " : "decision ") + d->record.txid + " " +
           std::string(coordinator::OutcomeName(d->record.outcome));
  }
  if (auto* f = std::get_if<command::Finish>(&*c)) return "finished " + f->txid;
  return "participant";
}

// One line for the trace: what a Ready writes and applies.
std::string DescribeReady(const raft::Ready& r) {
  std::string out = "raft";
  if (r.hard_state) out += " term " + std::to_string(r.hard_state->term) + " vote " + std::to_string(r.hard_state->voted_for);
  if (r.truncate_from) out += " truncate from " + std::to_string(*r.truncate_from);
  if (!r.append.empty()) {
    out += " append " + std::to_string(r.append.front().index) + ".." + std::to_string(r.append.back().index);
  }
  if (!r.committed.empty()) {
    out += " apply " + std::to_string(r.committed.front().index) + ".." + std::to_string(r.committed.back().index) + " (";
    for (std::size_t i = 0; i < r.committed.size(); ++i) out += (i ? ", " : "") + DescribeCommand(r.committed[i]);
    out += ")";
  }
  return out;
}

}  // namespace

GroupMemberNode::GroupMemberNode(GroupMember self, std::vector<GroupMember> members, Context& ctx)
    : self_(std::move(self)),
      members_(std::move(members)),
      ctx_(ctx),
      machine_(ctx.bug == Bug::kGroupOverwriteDecision),
      storage_(self_.name, ctx.scheduler, ctx.random, ctx.trace, [](std::vector<SyncQueue::Job>& batch) {
        std::vector<Status> results;
        for (auto& job : batch) results.push_back(job.run());
        return results;
      }) {
  ctx_.network.AddNode(self_.name, [this](const Request& r, Responder respond) { Handle(r, std::move(respond)); });
  ctx_.network.Crash(self_.name);  // unreachable until Start
}

std::string GroupMemberNode::NameOf(raft::NodeId id) const {
  for (const auto& m : members_) {
    if (m.id == id) return m.name;
  }
  return "";
}

void GroupMemberNode::Start() {
  ++incarnation_;
  txid_counter_ = 0;
  raft::NodeOptions no;
  no.id = self_.id;
  no.election_timeout_ms = ctx_.config.raft_election_timeout_ms;
  no.heartbeat_interval_ms = ctx_.config.raft_heartbeat_ms;
  no.seed = ctx_.random.Next();
  raft::RestoredState restored;
  restored.hard_state = hard_state_;
  for (const auto& m : members_) restored.snapshot.membership.voters.insert(m.id);
  restored.entries = log_;
  restored.applied = machine_.applied;
  node_ = std::make_unique<raft::Node>(no, std::move(restored), ctx_.now());
  applied_ = machine_.applied;
  writing_ = false;
  leader_ready_ = false;
  ready_term_ = 0;
  up_ = true;
  ctx_.network.Restart(self_.name);
  ctx_.Log(self_.name, "START (incarnation " + std::to_string(incarnation_) + ", term " +
                           std::to_string(hard_state_.term) + ", log 1.." + std::to_string(log_.size()) +
                           ", applied " + std::to_string(machine_.applied) + ")");
  Pump();
  ScheduleTick();
}

void GroupMemberNode::Crash() {
  ctx_.Log(self_.name, "CRASH");
  up_ = false;
  ctx_.network.Crash(self_.name);
  storage_.Crash();
  node_.reset();
  writing_ = false;
  proposals_.clear();
  reads_.clear();
  reads_waiting_apply_.clear();
  leader_ready_ = false;
  clients_.clear();
  engine_.reset();
  ++epoch_;
}

bool GroupMemberNode::Idle() const {
  return up_ && storage_.idle() && !writing_ && proposals_.empty() && clients_.empty() &&
         (!engine_ || engine_->active() == 0);
}

bool GroupMemberNode::Caught(raft::Index leader_last_index) const {
  return up_ && applied_ == leader_last_index && machine_.AllFinished();
}

std::string GroupMemberNode::Describe() const {
  std::string out = self_.name + (up_ ? " up" : " down");
  if (node_) {
    out += std::string(" ") + std::string(raft::RoleName(node_->role())) + " term " + std::to_string(node_->term()) +
           " leader " + NameOf(node_->leader()) + (leader_ready_ ? " (ready)" : "") + ", log 1.." +
           std::to_string(node_->log().last_index()) + ", commit " + std::to_string(node_->commit_index()) +
           ", applied " + std::to_string(applied_) + (storage_.idle() ? "" : ", storage busy");
  }
  if (engine_) {
    for (const auto& v : engine_->List()) {
      out += "\n    in engine: " + v.txid + " " + v.state + " " + std::string(coordinator::OutcomeName(v.outcome));
      for (const auto& b : v.branches) out += " [" + b.participant + " " + b.state + " " + b.last_error + "]";
    }
  }
  for (const auto& r : machine_.Unfinished()) {
    out += "\n    unfinished in state machine: " + r.txid + " " + std::string(coordinator::OutcomeName(r.outcome));
  }
  return out;
}

void GroupMemberNode::ScheduleTick() {
  ctx_.scheduler.After(ctx_.config.tick_ms, self_.name, [this, inc = incarnation_] {
    if (!up_ || inc != incarnation_) return;
    node_->Tick(ctx_.now());
    Pump();
    if (engine_) {
      engine_->Tick(ctx_.now());
      PumpEngine();
    }
    ScheduleTick();
  }, Scheduler::Kind::kTick);
}

void GroupMemberNode::Receive(const raft::Message& message) {
  if (!up_) return;
  node_->Step(message, ctx_.now());
  Pump();
}

// --- Raft driver -------------------------------------------------------------

// One Ready at a time: durable (one job: hard state, truncation, appends and
// the committed entries applied), then its messages, then the completions.
void GroupMemberNode::Pump() {
  if (!up_) return;
  if (writing_ || !node_->HasReady()) {
    CheckLeadership();
    return;
  }
  writing_ = true;
  auto ready = std::make_shared<raft::Ready>(node_->TakeReady());
  if (node_->role() == raft::Role::kLeader) ctx_.checker.OnRaftLeader(node_->term(), self_.name);
  if (ready->snapshot) ctx_.checker.Fail("simulation", self_.name + " got a snapshot, but no member compacts its log");
  const bool writes = ready->hard_state || ready->truncate_from || !ready->append.empty() || !ready->committed.empty();
  if (!writes) {  // nothing to make durable: a write of nothing would change nothing
    Persisted(*ready, {});
    writing_ = false;
    Pump();
    return;
  }
  auto results = std::make_shared<std::vector<Status>>();
  SyncQueue::Job job;
  job.label = DescribeReady(*ready);
  if (ctx_.bug == Bug::kGroupSendBeforeSync && !ready->messages.empty()) {
    job.label += " (BUG: its messages already sent)";
    Send(std::move(ready->messages));
    ready->messages.clear();
  }
  job.run = [this, ready, results] { return PersistAndApply(*ready, *results); };
  job.done = [this, ready, results](Status) {
    Persisted(*ready, *results);
    writing_ = false;
    Pump();
  };
  storage_.Submit(std::move(job));
}

Status GroupMemberNode::PersistAndApply(const raft::Ready& ready, std::vector<Status>& results) {
  if (ready.hard_state) hard_state_ = *ready.hard_state;
  if (ready.truncate_from && *ready.truncate_from <= log_.size()) log_.resize(*ready.truncate_from - 1);
  for (const auto& e : ready.append) {
    if (e.index != log_.size() + 1) {
      ctx_.checker.Fail("raft storage", self_.name + " was asked to append entry " + std::to_string(e.index) +
                                            " after " + std::to_string(log_.size()));
      return Status::Internal("append out of order");
    }
    log_.push_back(e);
  }
  for (const auto& e : ready.committed) {
    if (e.index != machine_.applied + 1) {
      ctx_.checker.Fail("raft apply", self_.name + " was handed entry " + std::to_string(e.index) + " after applying " +
                                          std::to_string(machine_.applied));
    }
    results.push_back(ApplyEntry(e));
    machine_.applied = e.index;
    ctx_.checker.OnRaftApplied(self_.name, e.index, e.term, e.data);
  }
  return Status::Ok();
}

Status GroupMemberNode::ApplyEntry(const raft::Entry& entry) {
  if (entry.type != raft::EntryType::kNormal) return Status::Ok();
  auto c = coordinator::DecodeCommand(entry.data);
  if (!c.ok()) return c.status();
  Status s = machine_.Apply(*c);
  if (auto* d = std::get_if<command::Decide>(&*c); d != nullptr && s.ok() && d->record.outcome != Outcome::kPending) {
    ctx_.checker.OnDecisionDurable(d->record.txid, d->record.outcome == Outcome::kCommitted);
  }
  return s;
}

void GroupMemberNode::Persisted(raft::Ready& ready, const std::vector<Status>& results) {
  Send(std::move(ready.messages));
  for (std::size_t i = 0; i < ready.committed.size(); ++i) {
    const raft::Entry& e = ready.committed[i];
    auto it = proposals_.find(e.index);
    if (it == proposals_.end()) continue;
    Proposal p = std::move(it->second);
    proposals_.erase(it);
    if (p.term == e.term) {
      p.done(results[i]);
    } else {
      p.done(Status::Unavailable("leadership changed; another entry took index " + std::to_string(e.index)));
    }
  }
  if (!ready.committed.empty()) applied_ = ready.committed.back().index;
  for (const auto& rs : ready.reads) {
    auto it = reads_.find(rs.request);
    if (it == reads_.end()) continue;
    Read r = std::move(it->second);
    reads_.erase(it);
    if (!rs.ok) {
      r.fail(Status::Unavailable("leadership lost during a read; retry"));
    } else {
      reads_waiting_apply_.emplace(rs.index, std::move(r));
    }
  }
  while (!reads_waiting_apply_.empty() && reads_waiting_apply_.begin()->first <= applied_) {
    Read r = std::move(reads_waiting_apply_.begin()->second);
    reads_waiting_apply_.erase(reads_waiting_apply_.begin());
    r.run();
  }
}

void GroupMemberNode::Send(std::vector<raft::Message> messages) {
  for (auto& m : messages) {
    auto peer = peers_.find(m.to);
    if (peer == peers_.end()) continue;
    GroupMemberNode* to = peer->second;
    std::string label = "raft " + raft::Describe(m);
    if (const auto* append = std::get_if<raft::AppendEntries>(&m.body); append != nullptr && !append->entries.empty()) {
      label += " [";
      for (std::size_t i = 0; i < append->entries.size(); ++i) {
        label += (i ? ", " : "") + DescribeCommand(append->entries[i]);
      }
      label += "]";
    }
    ctx_.network.Post(self_.name, to->name(), label, [to, m = std::move(m)] { to->Receive(m); });
  }
}

// As ReplicatedDecisionLog::CheckLeadership: ready is sticky for a term; it
// starts once this leader has applied an entry of its own term.
void GroupMemberNode::CheckLeadership() {
  const bool leader = node_->role() == raft::Role::kLeader;
  if (!leader) {
    if (!proposals_.empty()) FailPending("this member is no longer the leader");
    auto reads = std::move(reads_);
    reads_.clear();
    auto waiting = std::move(reads_waiting_apply_);
    reads_waiting_apply_.clear();
    for (auto& [id, r] : reads) r.fail(Status::Unavailable("this member is no longer the leader"));
    for (auto& [index, r] : waiting) r.fail(Status::Unavailable("this member is no longer the leader"));
  }
  bool ready = false;
  if (leader) {
    if (leader_ready_ && ready_term_ == node_->term()) return;
    auto applied_term = node_->log().TermAt(applied_);
    ready = applied_term && *applied_term == node_->term();
  }
  if (ready == leader_ready_) return;
  leader_ready_ = ready;
  ready_term_ = ready ? node_->term() : 0;
  OnLeadership(ready);
}

void GroupMemberNode::FailPending(const std::string& why) {
  auto pending = std::move(proposals_);
  proposals_.clear();
  for (auto& [index, p] : pending) {
    p.done(Status::Unavailable(why + "; the entry at " + std::to_string(index) + " may still commit"));
  }
}

void GroupMemberNode::Propose(const coordinator::Command& command, std::function<void(Status)> done) {
  if (!leader_ready_) {
    done(Status::Unavailable("not the leader"));
    return;
  }
  raft::ProposeResult r = node_->Propose(coordinator::EncodeCommand(command), ctx_.now());
  if (r.status != raft::ProposeStatus::kOk) {
    done(Status::Unavailable("cannot append: " + std::string(raft::ProposeStatusName(r.status))));
    return;
  }
  proposals_[r.index] = Proposal{r.term, std::move(done)};
  Pump();
}

void GroupMemberNode::LinearizableRead(std::function<void()> run, std::function<void(Status)> fail) {
  if (!leader_ready_) {
    fail(Status::Unavailable("not the leader"));
    return;
  }
  const uint64_t request = next_read_++;
  raft::ProposeStatus s = node_->ReadIndex(request, ctx_.now());
  if (s != raft::ProposeStatus::kOk) {
    fail(Status::Unavailable("cannot read now: " + std::string(raft::ProposeStatusName(s))));
    return;
  }
  reads_.emplace(request, Read{std::move(run), std::move(fail)});
  Pump();
}

}  // namespace commitd::sim
