#include "coordinator/replicated_decision_log.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <future>
#include <set>

#include "common/log.h"
#include "coordinator/decision_store.h"
#include "coordinator/group_members.h"
#include "raft/storage.h"
#include "raft/wire.h"

namespace commitd::coordinator {

Result<raft::RestoredState> ReplicatedDecisionLog::Prepare(sqlite::Database& db, const ReplicatedLogOptions& options) {
  if (Status s = DecisionStateMachine::CreateSchema(db); !s.ok()) return s;
  raft::Membership bootstrap;
  if (!options.join) {
    for (const auto& m : options.members) bootstrap.voters.insert(NodeIdOf(m.id));
  }
  raft::Storage storage(db);
  if (Status s = storage.Init(bootstrap); !s.ok()) return s;
  return storage.Load();
}

ReplicatedDecisionLog::ReplicatedDecisionLog(ReplicatedLogOptions options, raft::Timers& timers)
    : options_(std::move(options)), timers_(timers), machine_(options_.unsafe_overwrite_decisions) {
  machine_.set_on_member_url([this](const std::string& id, const std::string& url) { SetMemberUrl(id, url); });
}

Result<std::unique_ptr<ReplicatedDecisionLog>> ReplicatedDecisionLog::Open(const std::string& path,
                                                                           boost::asio::io_context& io,
                                                                           ReplicatedLogOptions options) {
  auto db = sqlite::Database::Open(path);
  if (!db.ok()) return db.status();
  auto restored = Prepare(**db, options);
  if (!restored.ok()) return restored.status();
  auto urls = GroupMembersTable(**db).Urls();
  if (!urls.ok()) return urls.status();
  auto timers = std::make_unique<raft::AsioTimers>(io);
  std::unique_ptr<ReplicatedDecisionLog> log(new ReplicatedDecisionLog(std::move(options), *timers));
  log->asio_timers_ = std::move(timers);
  log->path_ = path;
  log->owned_db_ = std::move(db).value();
  log->writer_ = std::make_unique<BatchWriter>(*log->owned_db_, io.get_executor(), log->options_.max_batch);
  ReplicatedDecisionLog* self = log.get();
  log->http_ = std::make_unique<raft::HttpTransport>(
      io, log->options_.token,
      [self](std::vector<raft::Message> messages, raft::Reply reply) {
        self->driver_->Receive(std::move(messages), std::move(reply));
      },
      log->options_.client_tls);
  for (const auto& m : log->options_.members) log->SetMemberUrl(m.id, m.url);
  for (const auto& [id, url] : *urls) log->SetMemberUrl(id, url);
  log->Run(std::move(restored).value(), *log->writer_, *log->http_,
           [self](std::function<void(Result<sqlite::Database*>)> fn) { self->ReadSnapshotOnThread(std::move(fn)); });
  return log;
}

Result<std::unique_ptr<ReplicatedDecisionLog>> ReplicatedDecisionLog::OpenOn(sqlite::Database& db,
                                                                             StorageQueue& storage,
                                                                             raft::Transport& transport,
                                                                             raft::Timers& timers,
                                                                             ReplicatedLogOptions options) {
  auto restored = Prepare(db, options);
  if (!restored.ok()) return restored.status();
  auto urls = GroupMembersTable(db).Urls();
  if (!urls.ok()) return urls.status();
  std::unique_ptr<ReplicatedDecisionLog> log(new ReplicatedDecisionLog(std::move(options), timers));
  log->db_on_owner_thread_ = &db;
  for (const auto& m : log->options_.members) log->SetMemberUrl(m.id, m.url);
  for (const auto& [id, url] : *urls) log->SetMemberUrl(id, url);
  log->Run(std::move(restored).value(), storage, transport, {});
  return log;
}

void ReplicatedDecisionLog::Run(raft::RestoredState restored, StorageQueue& storage, raft::Transport& transport,
                                std::function<void(std::function<void(Result<sqlite::Database*>)>)> read_snapshot) {
  storage_ = &storage;
  raft::DriverOptions o;
  o.node.id = NodeIdOf(options_.self_id);
  o.node.election_timeout_ms = options_.election_timeout_ms;
  o.node.heartbeat_interval_ms = options_.heartbeat_ms;
  o.node.seed = options_.seed != 0
                    ? options_.seed
                    : o.node.id ^ static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  o.tick_ms = options_.tick_ms;
  o.snapshot_entries = options_.snapshot_entries;
  o.log_keep_entries = options_.log_keep_entries;
  o.read_snapshot = std::move(read_snapshot);
  o.unsafe_send_before_durable = options_.unsafe_send_before_durable;
  driver_ = std::make_unique<raft::Driver>(std::move(o), std::move(restored), machine_, storage, transport, timers_);
  driver_->set_on_leadership([this](bool ready) { OnLeadership(ready); });
  driver_->set_on_leader_change([this](raft::NodeId leader, raft::Term term) {
    auto id = ids_.find(leader);
    log::Info("leader_changed", {{"term", term},
                                 {"leader", leader == raft::kNoNode ? std::string()
                                            : id == ids_.end()      ? std::to_string(leader)
                                                                    : id->second},
                                 {"self", options_.self_id}});
  });
  driver_->set_before_ready([this] { OnBeforeReady(); });
}

void ReplicatedDecisionLog::SetMemberUrl(const std::string& id, const std::string& url) {
  const raft::NodeId n = NodeIdOf(id);
  if (url.empty()) {
    urls_.erase(n);
    if (http_) http_->RemovePeer(n);
    return;
  }
  ids_[n] = id;
  urls_[n] = url;
  if (http_ && id != options_.self_id) http_->SetPeer(n, url);
}

ReplicatedDecisionLog::~ReplicatedDecisionLog() {
  *alive_ = false;
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
  // The storage thread drains its queue first: those jobs use machine_.
  writer_.reset();
  driver_.reset();
  http_.reset();
  owned_db_.reset();
}

void ReplicatedDecisionLog::Start() { driver_->Start(); }

void ReplicatedDecisionLog::Stop() {
  if (http_) http_->Stop();
  FailHeld("the coordinator is shutting down");
  driver_->Stop("the coordinator is shutting down");
  if (writer_) writer_->Flush();
}

void ReplicatedDecisionLog::OnRaftMessages(const std::string& body, http::Responder respond) {
  if (!http_) {
    respond(http::ErrorResponse(503, "raft", "this member does not take raft messages over HTTP"));
    return;
  }
  http_->OnRequest(body, std::move(respond));
}

void ReplicatedDecisionLog::OnLeadership(bool ready) {
  const raft::Node& node = driver_->node();
  if (!ready) FailHeld("this member is no longer the leader");
  log::Info(ready ? "leader_ready" : "not_leader",
            {{"term", node.term()}, {"commit_index", node.commit_index()}, {"leader", leader_url()}});
  if (on_leadership_) on_leadership_(ready);
}

// The copy is read on a thread of its own through a second, read-only
// connection (one WAL read transaction: the tables exactly at the applied
// index stored with them), so that Readies — and the heartbeats behind them —
// keep flowing meanwhile; a snapshot of megabytes taken on the storage thread
// stalled the leader long enough to lose its leadership.
void ReplicatedDecisionLog::ReadSnapshotOnThread(std::function<void(Result<sqlite::Database*>)> fn) {
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
  snapshot_thread_ = std::thread([path = path_, fn = std::move(fn)] {
    sqlite::OpenOptions oo;
    oo.create = false;
    oo.read_only = true;
    auto db = sqlite::Database::Open(path, oo);
    if (!db.ok()) {
      fn(db.status());
      return;
    }
    fn(db->get());
  });
}

Result<RecoveredLog> ReplicatedDecisionLog::Recover() {
  Result<RecoveredLog> recovered = RecoverNow();
  if (recovered.ok() && options_.unsafe_recover_nothing_unfinished) recovered->unfinished.clear();
  return recovered;
}

namespace {
// The state machine's records, registry and identity.
Result<RecoveredLog> RecoverFrom(sqlite::Database& db) {
  DecisionStore store(db);
  Result<RecoveredLog> recovered = store.Recover();
  if (!recovered.ok()) return recovered;
  Result<std::string> log_id = store.LogId();
  if (!log_id.ok()) return log_id.status();
  Result<std::string> abort_secret = store.AbortSecret();
  if (!abort_secret.ok()) return abort_secret.status();
  recovered->log_id = std::move(log_id).value();
  recovered->abort_secret = std::move(abort_secret).value();
  return recovered;
}
}  // namespace

Result<RecoveredLog> ReplicatedDecisionLog::RecoverNow() {
  if (db_on_owner_thread_ != nullptr) return RecoverFrom(*db_on_owner_thread_);
  std::promise<Result<RecoveredLog>> promise;
  auto future = promise.get_future();
  storage_->Read([&promise](sqlite::Database& db) { promise.set_value(RecoverFrom(db)); });
  return future.get();
}

void ReplicatedDecisionLog::CreateIdentity(std::string log_id, std::string abort_secret,
                                           std::function<void(Status)> done) {
  driver_->Propose(EncodeCommand(command::SetIdentity{std::move(log_id), std::move(abort_secret)}), std::move(done));
}

template <class T>
void ReplicatedDecisionLog::Read(std::function<Result<T>(sqlite::Database&)> read,
                                 std::function<void(Result<T>)> done) {
  if (options_.unsafe_local_reads) {
    storage_->Read([&timers = timers_, read = std::move(read), done](sqlite::Database& db) {
      Result<T> result = read(db);
      timers.Post([done, result = std::move(result)]() mutable { done(std::move(result)); });
    });
    return;
  }
  driver_->LinearizableRead(
      [&timers = timers_, read = std::move(read), done](sqlite::Database& db) {
        Result<T> result = read(db);
        timers.Post([done, result = std::move(result)]() mutable { done(std::move(result)); });
      },
      [done](Status s) { done(s); });
}

void ReplicatedDecisionLog::AppendDecision(DecisionRecord record, std::function<void(Status)> done) {
  DropUnreadReply(record);
  // (A staging record is answered on too, like a decision.)
  if (options_.unsafe_complete_before_commit) {
    driver_->Propose(EncodeCommand(command::Decide{std::move(record)}), [](Status) {});
    timers_.Post([done = std::move(done)] { done(Status::Ok()); });
    return;
  }
  driver_->Propose(EncodeCommand(command::Decide{std::move(record)}), std::move(done));
}

// A 2PC commit whose client was answered already (its staging record and
// the votes make it certain) is not urgent either: it rides in the next Ready
// that appends, usually the next transaction's staging record.
void ReplicatedDecisionLog::AppendDecisionWithNextWrite(DecisionRecord record, std::function<void(Status)> done) {
  if (Status s = CanHold(); !s.ok()) {
    done(s);
    return;
  }
  DropUnreadReply(record);
  riding_.push_back({EncodeCommand(command::Decide{std::move(record)}), std::move(done)});
  ArmHeldLinger();
}

namespace {
// How long held writes wait for a Ready with entries of its own to ride in.
// A finished mark usually arrives with the next transaction's votes, and a
// held decision with its staging record, both within this; alone, each would
// be a Raft write with an fsync on every member, and the next transaction's
// writes would queue behind it.
constexpr int64_t kHeldLingerMs = 5;
}  // namespace

// Finished marks are not urgent (a mark lost in a crash only means the
// decision is delivered again): they are proposed together, as one entry, in
// the next Ready that appends anything else, or after kHeldLingerMs.
void ReplicatedDecisionLog::MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) {
  if (Status s = CanHold(); !s.ok()) {
    done(s);
    return;
  }
  finishing_.push_back({command::Finish{std::move(txid), finished_ms}, std::move(done)});
  ArmHeldLinger();
}

Status ReplicatedDecisionLog::CanHold() const {
  if (driver_->stopped()) return Status::Unavailable("the coordinator is shutting down");
  if (!driver_->leader_ready()) return Status::Unavailable("not the leader");
  return Status::Ok();
}

void ReplicatedDecisionLog::ArmHeldLinger() {
  if (held_linger_armed_) return;
  held_linger_armed_ = true;
  timers_.After(kHeldLingerMs, [this, alive = alive_] {
    if (!*alive) return;
    held_linger_armed_ = false;
    ProposeHeld();
  });
}

void ReplicatedDecisionLog::FailHeld(const std::string& why) {
  auto riding = std::move(riding_);
  riding_.clear();
  auto finishing = std::move(finishing_);
  finishing_.clear();
  for (auto& d : riding) d.done(Status::Unavailable(why));
  for (auto& w : finishing) w.done(Status::Unavailable(why));
}

void ReplicatedDecisionLog::OnBeforeReady() {
  if ((!riding_.empty() || !finishing_.empty()) && driver_->node().HasPendingAppend()) ProposeHeld();
}

void ReplicatedDecisionLog::ProposeHeld() {
  auto riding = std::move(riding_);
  riding_.clear();
  for (auto& d : riding) driver_->Propose(std::move(d.command), std::move(d.done));
  if (finishing_.empty()) return;
  auto batch = std::make_shared<std::vector<FinishWaiter>>(std::move(finishing_));
  finishing_.clear();
  command::FinishMany many;
  for (const auto& w : *batch) many.marks.push_back(w.mark);
  driver_->Propose(EncodeCommand(many), [batch](Status s) {
    for (auto& w : *batch) w.done(s);
  });
}

void ReplicatedDecisionLog::PutParticipant(RegistryEntry entry, std::function<void(Status)> done) {
  driver_->Propose(EncodeCommand(command::PutParticipant{std::move(entry)}), std::move(done));
}

void ReplicatedDecisionLog::Barrier(std::function<void(Status)> done) {
  ProposeHeld();  // the writes held back were appended before it
  driver_->Barrier(std::move(done));
}

void ReplicatedDecisionLog::FindDecision(std::string txid,
                                         std::function<void(Result<std::optional<DecisionRecord>>)> done) {
  Read<std::optional<DecisionRecord>>([txid](sqlite::Database& db) { return DecisionStore(db).FindByTxid(txid); },
                                      std::move(done));
}

void ReplicatedDecisionLog::FindByIdempotencyKey(std::string key,
                                                 std::function<void(Result<std::optional<DecisionRecord>>)> done) {
  Read<std::optional<DecisionRecord>>(
      [key](sqlite::Database& db) { return DecisionStore(db).FindByIdempotencyKey(key); }, std::move(done));
}

void ReplicatedDecisionLog::ListDecisions(ListFilter filter,
                                          std::function<void(Result<std::vector<DecisionRecord>>)> done) {
  Read<std::vector<DecisionRecord>>([filter](sqlite::Database& db) { return DecisionStore(db).List(filter); },
                                    std::move(done));
}

void ReplicatedDecisionLog::ForgetFinished(int64_t cutoff_ms, int64_t keys_cutoff_ms, std::size_t limit,
                                           std::function<void(Result<std::size_t>)> done) {
  if (!driver_->leader_ready()) {
    done(Status::Unavailable("not the leader"));
    return;
  }
  command::ForgetFinished forget{cutoff_ms, static_cast<uint32_t>(std::min<std::size_t>(limit, UINT32_MAX)),
                                 keys_cutoff_ms};
  driver_->Propose(EncodeCommand(forget), [this, done = std::move(done)](Status s) {
    if (!s.ok()) {
      done(s);
      return;
    }
    done(machine_.last_forgotten());
  });
}

void ReplicatedDecisionLog::TxidForgotten(std::string txid, std::function<void(Result<bool>)> done) {
  Read<bool>([txid](sqlite::Database& db) { return DecisionStore(db).TxidForgotten(txid); }, std::move(done));
}

void ReplicatedDecisionLog::KeyForgotten(std::string key, std::function<void(Result<bool>)> done) {
  Read<bool>([key](sqlite::Database& db) { return DecisionStore(db).KeyForgotten(key); }, std::move(done));
}

Status ReplicatedDecisionLog::TransferLeadership(const std::string& to) {
  if (!driver_->node().membership().IsVoter(NodeIdOf(to))) {
    return Status::InvalidArgument("to: '" + to + "' is not a voting member of the group");
  }
  if (to == options_.self_id) return Status::Ok();  // already leads
  raft::ProposeStatus s = driver_->TransferLeadership(NodeIdOf(to));
  if (s != raft::ProposeStatus::kOk) {
    return Status::Conflict("cannot transfer leadership now: " + std::string(raft::ProposeStatusName(s)));
  }
  return Status::Ok();
}

void ReplicatedDecisionLog::AddMember(const std::string& id, const std::string& url, std::function<void(Status)> done) {
  if (!driver_->leader_ready()) {
    done(Status::Unavailable("not the leader"));
    return;
  }
  if (driver_->node().membership().Contains(NodeIdOf(id))) {
    done(Status::Conflict(id + " is already a member"));
    return;
  }
  driver_->Propose(EncodeCommand(command::SetMember{id, url}), [this, id, done = std::move(done)](Status s) {
    if (!s.ok()) {
      done(s);
      return;
    }
    raft::ProposeResult r = driver_->ProposeConfChange({raft::ConfChangeType::kAddLearner, NodeIdOf(id)});
    if (r.status != raft::ProposeStatus::kOk) {
      done(Status::Conflict("cannot add " + id + " now: " + std::string(raft::ProposeStatusName(r.status))));
      return;
    }
    log::Info("member_added_as_learner", {{"id", id}});
    done(Status::Ok());
  });
}

Status ReplicatedDecisionLog::RemoveMember(const std::string& id) {
  const raft::NodeId n = NodeIdOf(id);
  if (!driver_->node().membership().Contains(n)) return Status::InvalidArgument(id + " is not a member");
  raft::ProposeResult r = driver_->ProposeConfChange({raft::ConfChangeType::kRemove, n});
  if (r.status == raft::ProposeStatus::kCannotRemoveSelf) {
    return Status::Conflict(id + " is the leader: transfer leadership first (commitctl cluster transfer-leader)");
  }
  if (r.status != raft::ProposeStatus::kOk) {
    return Status::Conflict("cannot remove " + id + " now: " + std::string(raft::ProposeStatusName(r.status)));
  }
  log::Info("member_removed", {{"id", id}});
  return Status::Ok();
}

std::string ReplicatedDecisionLog::leader_url() const {
  auto it = urls_.find(driver_->node().leader());
  return it == urls_.end() ? std::string() : it->second;
}

nlohmann::json ReplicatedDecisionLog::ClusterStatus() const {
  auto id_of = [this](raft::NodeId n) {
    auto it = ids_.find(n);
    return it == ids_.end() ? std::to_string(n) : it->second;
  };
  nlohmann::json members = nlohmann::json::array();
  const raft::Node& node = driver_->node();
  const raft::Membership& ms = node.membership();
  std::set<raft::NodeId> shown = ms.voters;
  shown.insert(ms.learners.begin(), ms.learners.end());
  for (raft::NodeId n : shown) {
    auto url = urls_.find(n);
    std::string role = ms.IsVoter(n) ? "voter" : "learner";
    nlohmann::json j = {
        {"id", id_of(n)}, {"url", url == urls_.end() ? std::string() : url->second}, {"membership", role}};
    if (n == node.leader()) j["role"] = "leader";
    if (node.role() == raft::Role::kLeader && n != node.id()) j["match_index"] = node.MatchIndex(n);
    members.push_back(std::move(j));
  }
  const raft::NodeId leader = node.leader();
  return {{"id", options_.self_id},
          {"role", std::string(raft::RoleName(node.role()))},
          {"term", node.term()},
          {"leader", leader == raft::kNoNode ? std::string() : id_of(leader)},
          {"leader_url", leader_url()},
          {"leader_ready", driver_->leader_ready()},
          {"commit_index", node.commit_index()},
          {"applied_index", driver_->applied()},
          {"last_index", node.log().last_index()},
          {"members", std::move(members)}};
}

}  // namespace commitd::coordinator
