// GroupMemberNode: the real ReplicatedDecisionLog and coordinator::Node of one
// group member, wired to the simulated network, storage and scheduler.
#include "tests/sim/group_member_node.h"

#include <filesystem>

#include "coordinator/decision_store.h"
#include "tests/sim/client_api.h"

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
    const bool staging = d->record.outcome == Outcome::kPending;
    return (staging ? "staging record " : "decision ") + d->record.txid + " " +
           std::string(coordinator::OutcomeName(d->record.outcome));
  }
  if (auto* f = std::get_if<command::Finish>(&*c)) return "finished " + f->txid;
  if (auto* many = std::get_if<command::FinishMany>(&*c)) {
    std::string out = "finished";
    for (const auto& f : many->marks) out += " " + f.txid;
    return out;
  }
  return "participant";
}

// One line for the trace: what a Ready writes and applies.
std::string DescribeReady(const raft::Ready& r) {
  std::string out = "raft";
  if (r.hard_state) out += " term " + std::to_string(r.hard_state->term) + " vote " + std::to_string(r.hard_state->voted_for);
  if (r.snapshot) out += " install snapshot at " + std::to_string(r.snapshot->meta.index);
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

void RemoveFiles(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    std::filesystem::remove(path + suffix, ec);
  }
}

// A simulated crash closes the connection, it does not kill the machine: a
// committed transaction is what "synced" means here. So no fsync, and the
// rollback journal in memory (half the file writes of WAL's frames and
// checkpoints).
Result<std::unique_ptr<sqlite::Database>> OpenDatabase(const std::string& path) {
  sqlite::OpenOptions oo;
  oo.create = true;
  oo.wal = false;
  auto db = sqlite::Database::Open(path, oo);
  if (!db.ok()) return db;
  if (Status s = (*db)->Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF");
      !s.ok()) {
    return s;
  }
  return db;
}

}  // namespace

GroupMemberNode::GroupMemberNode(GroupMember self, std::vector<GroupMember> members, Context& ctx,
                                 std::string db_path, std::vector<std::string> participants)
    : self_(std::move(self)),
      members_(std::move(members)),
      ctx_(ctx),
      db_path_(std::move(db_path)),
      storage_(self_.name, ctx),
      participants_(std::move(participants)) {
  RemoveFiles(db_path_);
  ctx_.network.AddNode(self_.name, [this](const Request& r, Responder respond) { Handle(r, std::move(respond)); });
  ctx_.network.Crash(self_.name);  // unreachable until Start
}

GroupMemberNode::~GroupMemberNode() {
  node_.reset();
  leadership_.reset();
  storage_.Crash();
  log_.reset();
  db_.reset();
  RemoveFiles(db_path_);
}

std::string GroupMemberNode::NameOf(raft::NodeId id) const {
  for (const auto& m : members_) {
    if (m.id == id) return m.name;
  }
  return "";
}

Status GroupMemberNode::Start() {
  ++incarnation_;
  auto db = OpenDatabase(db_path_);
  if (!db.ok()) return db.status();
  db_ = std::move(db).value();
  storage_.Attach(db_.get());
  coordinator::ReplicatedLogOptions o;
  o.self_id = self_.name;
  for (const auto& m : members_) o.members.push_back({m.name, UrlOf(m.name)});
  o.election_timeout_ms = ctx_.config.raft_election_timeout_ms;
  o.heartbeat_ms = ctx_.config.raft_heartbeat_ms;
  o.tick_ms = std::min<int64_t>(ctx_.config.tick_ms, ctx_.config.raft_heartbeat_ms);
  o.snapshot_entries = static_cast<raft::Index>(std::max<int64_t>(1, ctx_.config.raft_snapshot_entries));
  o.log_keep_entries = static_cast<raft::Index>(std::max<int64_t>(0, ctx_.config.raft_log_keep_entries));
  o.seed = ctx_.random.Next() | 1;
  o.unsafe_send_before_durable = ctx_.bug == Bug::kGroupSendBeforeSync;
  o.unsafe_overwrite_decisions = ctx_.bug == Bug::kGroupOverwriteDecision;
  o.unsafe_recover_nothing_unfinished = ctx_.bug == Bug::kGroupNoResume;
  o.unsafe_local_reads = ctx_.bug == Bug::kGroupStaleRead;
  o.unsafe_complete_before_commit = ctx_.bug == Bug::kGroupReplyBeforeDurable;
  std::vector<coordinator::GroupMember> group = o.members;
  auto log = coordinator::ReplicatedDecisionLog::OpenOn(*db_, storage_, transport_, timers_, std::move(o));
  if (!log.ok()) {
    storage_.Crash();
    db_.reset();
    return log.status();
  }
  log_ = std::move(log).value();
  raft::Driver& driver = log_->driver();
  last_applied_ = driver.applied();
  log_->machine().set_observer([this](const raft::Entry& e, const Status& s) { ObserveApplied(e, s); });
  driver.set_on_ready([this](const raft::Ready& ready) {
    const raft::Node& node = log_->driver().node();
    if (node.role() == raft::Role::kLeader) ctx_.checker.OnRaftLeader(node.term(), self_.name);
    if (log_->driver().leader_ready() != was_ready_) {
      was_ready_ = !was_ready_;
      ctx_.Log(self_.name, std::string(was_ready_ ? "LEADER READY" : "NOT LEADER") + " (term " +
                               std::to_string(node.term()) + ")");
    }
    if (ready.hard_state || ready.snapshot || ready.truncate_from || !ready.append.empty() ||
        !ready.committed.empty()) {
      ctx_.Log(self_.name, DescribeReady(ready) +
                               (ctx_.bug == Bug::kGroupSendBeforeSync && !ready.messages.empty()
                                    ? " (BUG: its messages already sent)"
                                    : ""));
    }
  });
  was_ready_ = false;
  leadership_ = std::make_unique<coordinator::GroupLeadership>(*log_, group);
  agents_ = std::make_unique<SimAgentTransport>(ctx_, self_.name);
  node_timers_ = std::make_unique<SimTimers>(ctx_.scheduler, self_.name, clock_offset_ms_);
  coordinator::NodeOptions no = coordinator::NodeOptionsFor(ctx_.config, self_.name, UrlOf(self_.name));
  for (const auto& p : participants_) no.participants.push_back({p, UrlOf(p), 0});
  no.unsafe_presume_without_record =
      ctx_.bug == Bug::kGroupPresumeWithoutRecord || ctx_.bug == Bug::kGroupStaleRead;
  no.unsafe_no_retake = ctx_.bug == Bug::kGroupNoRetake;
  // As for a single coordinator (coordinator_node.cc): these bugs show when a
  // forced decision is recorded over them, which adoption would refuse.
  no.unsafe_force_without_adoption = ctx_.bug == Bug::kForceWithoutAdoption ||
                                     ctx_.bug == Bug::kGroupPresumeWithoutRecord ||
                                     ctx_.bug == Bug::kGroupOverwriteDecision;
  no.engine.unsafe_fenced_as_prepared = ctx_.bug == Bug::kFencedAsPrepared;
  no.engine.unsafe_answer_before_staging = ctx_.bug == Bug::kAnswerBeforeStaging;
  if (ctx_.max_unmarked) no.engine.max_unmarked = *ctx_.max_unmarked;
  if (ctx_.coordinator_assumed_retention_ms) no.engine.outcome_retention_ms = *ctx_.coordinator_assumed_retention_ms;
  node_ = std::make_unique<coordinator::Node>(std::move(no), *log_, *agents_, *node_timers_, entropy_,
                                              leadership_.get());
  if (Status s = node_->Start(); !s.ok()) return s;
  up_ = true;
  ctx_.network.Restart(self_.name);
  const raft::Node& node = driver.node();
  ctx_.Log(self_.name, "START (incarnation " + std::to_string(incarnation_) + ", term " +
                           std::to_string(node.term()) + ", log " + std::to_string(node.log().first_index()) + ".." +
                           std::to_string(node.log().last_index()) + ", applied " +
                           std::to_string(driver.applied()) + ")");
  log_->Start();
  return Status::Ok();
}

void GroupMemberNode::Crash() {
  ctx_.Log(self_.name, "CRASH");
  up_ = false;
  ctx_.network.Crash(self_.name);
  node_.reset();
  node_timers_.reset();
  agents_.reset();
  leadership_.reset();
  storage_.Crash();
  log_.reset();
  db_.reset();
}

// Storage thread (here: inside the sync event), as each committed entry is applied.
void GroupMemberNode::ObserveApplied(const raft::Entry& e, const Status& result) {
  if (e.index != last_applied_ + 1) {
    ctx_.checker.Fail("raft apply", self_.name + " was handed entry " + std::to_string(e.index) + " after applying " +
                                        std::to_string(last_applied_));
  }
  last_applied_ = e.index;
  ctx_.checker.OnRaftApplied(self_.name, e.index, e.term, e.data);
  if (e.type != raft::EntryType::kNormal || !result.ok()) return;
  auto c = coordinator::DecodeCommand(e.data);
  if (!c.ok()) return;
  auto* d = std::get_if<command::Decide>(&*c);
  if (d == nullptr) return;
  if (!d->record.idempotency_key.empty()) ctx_.checker.OnIdempotencyKey(d->record.txid, d->record.idempotency_key);
  if (d->record.outcome != Outcome::kPending) {
    ctx_.checker.OnDecisionDurable(d->record.txid, d->record.outcome == Outcome::kCommitted);
  }
}

bool GroupMemberNode::Idle() const {
  return up_ && storage_.idle() && !log_->driver().writing() && log_->driver().waiting() == 0 &&
         node_->active() == 0;
}

bool GroupMemberNode::Caught(raft::Index leader_last_index) const {
  if (!up_ || log_->driver().applied() != leader_last_index) return false;
  auto recovered = coordinator::DecisionStore(*db_).Recover();
  return recovered.ok() && recovered->unfinished.empty();
}

std::string GroupMemberNode::Describe() const {
  std::string out = self_.name + (up_ ? " up" : " down");
  if (!up_) return out;
  const raft::Driver& driver = log_->driver();
  const raft::Node& node = driver.node();
  out += std::string(" ") + std::string(raft::RoleName(node.role())) + " term " + std::to_string(node.term()) +
         " leader " + NameOf(node.leader()) + (driver.leader_ready() ? " (ready)" : "") + ", log " +
         std::to_string(node.log().first_index()) + ".." + std::to_string(node.log().last_index()) + ", commit " +
         std::to_string(node.commit_index()) + ", applied " + std::to_string(driver.applied()) +
         (storage_.idle() ? "" : ", storage busy");
  for (const auto& v : node_->Transactions()) {
    out += "\n    in engine: " + v.txid + " " + std::string(coordinator::TxStateName(v.state)) + " " + std::string(coordinator::OutcomeName(v.outcome));
    for (const auto& b : v.branches) out += " [" + b.participant + " " + b.state + " " + b.last_error + "]";
  }
  auto recovered = coordinator::DecisionStore(*db_).Recover();
  if (recovered.ok()) {
    for (const auto& r : recovered->unfinished) {
      out += "\n    unfinished in state machine: " + r.txid + " " + std::string(coordinator::OutcomeName(r.outcome));
    }
  }
  return out;
}

// The client API, as service.cc routes it: the ready leader's Node serves
// it; any other member forwards it to the leader it knows.
void GroupMemberNode::Handle(const Request& request, Responder respond) {
  const bool get = request.method == "GET";
  if (log_->leader_ready() || (get && ctx_.bug == Bug::kGroupStaleRead)) {
    ServeClientApi(ctx_, self_.name, *node_, request, std::move(respond));
    return;
  }
  Forward(request, std::move(respond));
}

// One hop only: a forwarded request that finds no ready leader gets 503.
void GroupMemberNode::Forward(const Request& request, Responder respond) {
  const raft::NodeId leader = log_->driver().node().leader();
  if (leader == raft::kNoNode || leader == self_.id || request.headers.count("x-commitd-forwarded") != 0) {
    respond({503, {{"error", {{"code", "no_leader"}, {"message", "no leader is ready yet; retry"}}}}});
    return;
  }
  const std::string to = NameOf(leader);
  Request forwarded = request;
  forwarded.headers["x-commitd-forwarded"] = self_.name;
  ctx_.network.Call(self_.name, to, std::move(forwarded), ctx_.config.request_timeout_ms,
                    [respond = std::move(respond), to](Result<Response> r) {
                      if (!r.ok()) {
                        respond({503, {{"error", {{"code", "leader_unreachable"},
                                                  {"message", "the leader " + to + " did not answer: " +
                                                                  r.status().message()}}}}});
                        return;
                      }
                      respond(std::move(r).value());
                    });
}

void GroupMemberNode::TransferLeadership(const std::string& to) {
  if (!up_) return;
  Status s = log_->TransferLeadership(to);
  ctx_.Log(self_.name, "TRANSFER LEADERSHIP to " + to + (s.ok() ? "" : ": " + s.ToString()));
}

void GroupMemberNode::Receive(const raft::Message& message) {
  if (!up_) return;
  log_->driver().Receive({message});
}

void GroupMemberNode::Transport::Send(raft::NodeId to, std::vector<raft::Message> messages) {
  auto peer = node_.peers_.find(to);
  if (peer == node_.peers_.end()) return;
  GroupMemberNode* receiver = peer->second;
  for (auto& m : messages) {
    std::string label = "raft " + raft::Describe(m);
    if (const auto* append = std::get_if<raft::AppendEntries>(&m.body); append != nullptr && !append->entries.empty()) {
      label += " [";
      for (std::size_t i = 0; i < append->entries.size(); ++i) {
        label += (i ? ", " : "") + DescribeCommand(append->entries[i]);
      }
      label += "]";
    }
    node_.ctx_.network.Post(node_.self_.name, receiver->name(), label,
                            [receiver, m = std::move(m)] { receiver->Receive(m); });
  }
}

void GroupMemberNode::Timers::After(int64_t ms, std::function<void()> fn) {
  node_.ctx_.scheduler.After(ms, node_.self_.name, [&node = node_, inc = node_.incarnation_, fn = std::move(fn)] {
    if (node.up_ && inc == node.incarnation_) fn();
  }, Scheduler::Kind::kTick);
}

void GroupMemberNode::Timers::Post(std::function<void()> fn) {
  node_.ctx_.scheduler.After(0, node_.self_.name, [&node = node_, inc = node_.incarnation_, fn = std::move(fn)] {
    if (node.up_ && inc == node.incarnation_) fn();
  });
}

}  // namespace commitd::sim
