#include "coordinator/replicated_decision_log.h"

#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <set>

#include "common/clock.h"
#include "common/log.h"
#include "coordinator/decision_store.h"
#include "coordinator/raft_codec.h"
#include "coordinator/raft_storage.h"
#include "coordinator/raft_wire.h"
#include "coordinator/state_snapshot.h"

namespace commitd::coordinator {
namespace {

constexpr int kMaxInFlightPerPeer = 4;
constexpr int64_t kRaftRequestTimeoutMs = 1000;

int64_t NowMs() { return EngineClockMs(); }

// Applies one committed entry to the state machine; the result goes to the
// member that proposed it. Deterministic: every member gets the same result.
Status ApplyEntry(sqlite::Database& db, const raft::Entry& e) {
  if (e.type != raft::EntryType::kNormal) return Status::Ok();
  auto command = DecodeCommand(e.data);
  if (!command.ok()) return command.status();
  DecisionStore store(db);
  if (auto* d = std::get_if<command::Decide>(&*command)) return store.InsertDecision(d->record);
  if (auto* f = std::get_if<command::Finish>(&*command)) return store.MarkFinished(f->txid, f->finished_ms);
  if (auto* p = std::get_if<command::PutParticipant>(&*command)) return store.PutParticipant(p->entry);
  if (auto* m = std::get_if<command::SetMember>(&*command)) return RaftStorage(db).SetMemberUrl(m->id, m->url);
  if (auto* many = std::get_if<command::FinishMany>(&*command)) {
    for (const auto& f : many->marks) {
      Status s = store.MarkFinished(f.txid, f.finished_ms);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
    return Status::Ok();
  }
  return Status::Internal("unhandled command");
}

}  // namespace

Result<std::unique_ptr<ReplicatedDecisionLog>> ReplicatedDecisionLog::Open(const std::string& path,
                                                                           boost::asio::io_context& io,
                                                                           ReplicatedLogOptions options) {
  auto db = sqlite::Database::Open(path);
  if (!db.ok()) return db.status();
  if (Status s = DecisionStore(**db).CreateSchema(); !s.ok()) return s;
  raft::Membership bootstrap;
  if (!options.join) {
    for (const auto& m : options.members) bootstrap.voters.insert(NodeIdOf(m.id));
  }
  RaftStorage storage(**db);
  if (Status s = storage.Init(bootstrap); !s.ok()) return s;
  auto restored = storage.Load();
  if (!restored.ok()) return restored.status();
  auto replicated_urls = storage.MemberUrls();
  if (!replicated_urls.ok()) return replicated_urls.status();
  std::unique_ptr<ReplicatedDecisionLog> log(new ReplicatedDecisionLog(io, std::move(options), std::move(db).value()));
  log->path_ = path;
  for (const auto& [id, url] : *replicated_urls) log->SetMemberUrl(id, url);
  raft::NodeOptions no;
  no.id = NodeIdOf(log->options_.self_id);
  no.election_timeout_ms = log->options_.election_timeout_ms;
  no.heartbeat_interval_ms = log->options_.heartbeat_ms;
  no.seed = no.id ^ static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  log->applied_ = restored->applied;
  log->snapshot_index_ = restored->snapshot.index;
  log->node_ = std::make_unique<raft::Node>(no, std::move(restored).value(), NowMs());
  return log;
}

ReplicatedDecisionLog::ReplicatedDecisionLog(boost::asio::io_context& io, ReplicatedLogOptions options,
                                             std::unique_ptr<sqlite::Database> db)
    : io_(io),
      options_(std::move(options)),
      db_(std::move(db)),
      writer_(std::make_unique<BatchWriter>(*db_, io.get_executor(), options_.max_batch)),
      client_(io,
              http::ClientOptions{std::chrono::milliseconds(300), std::chrono::milliseconds(kRaftRequestTimeoutMs)}),
      tick_timer_(io) {
  for (const auto& m : options_.members) SetMemberUrl(m.id, m.url);
}

void ReplicatedDecisionLog::SetMemberUrl(const std::string& id, const std::string& url) {
  const raft::NodeId n = NodeIdOf(id);
  if (url.empty()) {
    urls_.erase(n);
    peers_.erase(n);
    return;
  }
  ids_[n] = id;
  urls_[n] = url;
  if (id != options_.self_id) peers_[n].url = url;
}

ReplicatedDecisionLog::~ReplicatedDecisionLog() {
  stopped_ = true;
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
  writer_.reset();
  db_.reset();
}

void ReplicatedDecisionLog::Start() {
  ScheduleTick();
  Pump();
}

void ReplicatedDecisionLog::Stop() {
  stopped_ = true;
  tick_timer_.cancel();
  FailPending("the coordinator is shutting down");
  writer_->Flush();
}

void ReplicatedDecisionLog::ScheduleTick() {
  tick_timer_.expires_after(std::chrono::milliseconds(options_.tick_ms));
  tick_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    node_->Tick(NowMs());
    PromoteCaughtUpLearners();
    Pump();
    ScheduleTick();
  });
}

Status ReplicatedDecisionLog::OnRaftMessages(const std::string& body) {
  auto messages = DecodeRaftMessages(body);
  if (!messages.ok()) return messages.status();
  if (stopped_) return Status::Unavailable("stopping");
  const int64_t now = NowMs();
  for (const auto& m : *messages) {
    if (m.to == node_->id()) node_->Step(m, now);
  }
  Pump();
  return Status::Ok();
}

void ReplicatedDecisionLog::Propose(std::string data, std::function<void(Status)> done) {
  if (!leader_ready_) {
    done(Status::Unavailable("not the leader"));
    return;
  }
  raft::ProposeResult r = node_->Propose(std::move(data), NowMs());
  if (r.status != raft::ProposeStatus::kOk) {
    done(Status::Unavailable("cannot append: " + std::string(raft::ProposeStatusName(r.status))));
    return;
  }
  pending_[r.index] = Pending{r.term, std::move(done)};
  Pump();
}

// One Ready at a time: durable (one SQLite transaction, with the entries it
// commits applied in it), then its messages, then the completions.
void ReplicatedDecisionLog::Pump() {
  if (stopped_) return;
  if (!writing_) ProposeFinished();
  if (writing_ || !node_->HasReady()) {
    CheckLeadership();
    MaybeSnapshot();
    return;
  }
  writing_ = true;
  auto ready = std::make_shared<raft::Ready>(node_->TakeReady());
  auto results = std::make_shared<std::vector<Status>>();
  auto member_urls = std::make_shared<std::map<std::string, std::string>>();
  writer_->Submit(BatchWriter::Job{
      [ready, results, member_urls](sqlite::Database& db) -> Status {
        RaftStorage storage(db);
        if (ready->hard_state) {
          if (Status s = storage.SaveHardState(*ready->hard_state); !s.ok()) return s;
        }
        if (ready->snapshot) {
          // From the leader: it becomes the log's base and the whole state machine.
          const std::string& data = *ready->snapshot->data;
          if (Status s = storage.SaveSnapshot(ready->snapshot->meta, data); !s.ok()) return s;
          if (Status s = RestoreStateMachine(db, data); !s.ok()) return s;
          if (Status s = storage.SetApplied(ready->snapshot->meta.index); !s.ok()) return s;
          auto urls = storage.MemberUrls();
          if (!urls.ok()) return urls.status();
          *member_urls = std::move(urls).value();
        }
        if (ready->truncate_from) {
          if (Status s = storage.TruncateFrom(*ready->truncate_from); !s.ok()) return s;
        }
        if (!ready->append.empty()) {
          if (Status s = storage.Append(ready->append); !s.ok()) return s;
        }
        for (const auto& e : ready->committed) {
          // Each entry in its own savepoint: a refused decision changes nothing.
          if (Status s = db.Exec("SAVEPOINT apply_entry"); !s.ok()) return s;
          Status r = ApplyEntry(db, e);
          if (!r.ok()) db.Exec("ROLLBACK TO apply_entry");
          db.Exec("RELEASE apply_entry");
          results->push_back(r);
        }
        if (!ready->committed.empty()) return storage.SetApplied(ready->committed.back().index);
        return Status::Ok();
      },
      [this, ready, results, member_urls](Status s) {
        if (!s.ok()) {
          // The Raft log on disk no longer matches what the node believes: stop.
          log::Error("fatal_raft_storage_failure", {{"error", s.ToString()}});
          std::abort();
        }
        Send(std::move(ready->messages));
        for (const auto& [id, url] : *member_urls) SetMemberUrl(id, url);
        for (std::size_t i = 0; i < ready->committed.size(); ++i) {
          const raft::Entry& e = ready->committed[i];
          if (e.type != raft::EntryType::kNormal || !(*results)[i].ok()) continue;
          if (e.data.find("\"op\":\"member\"") == std::string::npos) continue;
          auto c = DecodeCommand(e.data);
          if (c.ok() && std::holds_alternative<command::SetMember>(*c)) {
            const auto& m = std::get<command::SetMember>(*c);
            SetMemberUrl(m.id, m.url);
          }
        }
        if (ready->snapshot) {
          applied_ = std::max(applied_, ready->snapshot->meta.index);
          snapshot_index_ = ready->snapshot->meta.index;
          log::Info("snapshot_installed", {{"index", snapshot_index_}, {"bytes", ready->snapshot->data->size()}});
        }
        for (std::size_t i = 0; i < ready->committed.size(); ++i) {
          const raft::Entry& e = ready->committed[i];
          auto it = pending_.find(e.index);
          if (it == pending_.end()) continue;
          Pending p = std::move(it->second);
          pending_.erase(it);
          if (p.term == e.term) {
            p.done((*results)[i]);
          } else {
            p.done(Status::Unavailable("leadership changed; another entry took index " + std::to_string(e.index)));
          }
        }
        if (!ready->committed.empty()) applied_ = ready->committed.back().index;
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
        AfterApply(applied_);
        writing_ = false;
        Pump();
      }});
}

// Every snapshot_entries applied entries: a consistent copy of the state
// machine becomes the log's base, on disk and in the node (which sends it to
// followers too far behind); the log before it is deleted. The copy is read on
// a thread of its own through a second, read-only connection (one WAL read
// transaction: the tables exactly at the applied index stored with them), so
// that Readies — and the heartbeats behind them — keep flowing meanwhile; a
// snapshot of megabytes taken on the storage thread stalled the leader long
// enough to lose its leadership.
void ReplicatedDecisionLog::MaybeSnapshot() {
  if (snapshotting_ || applied_ < snapshot_index_ + options_.snapshot_entries) return;
  snapshotting_ = true;
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
  snapshot_thread_ = std::thread([this] {
    Result<std::pair<raft::SnapshotMeta, std::string>> taken = Status::Internal("unset");
    sqlite::OpenOptions oo;
    oo.create = false;
    oo.read_only = true;
    auto db = sqlite::Database::Open(path_, oo);
    if (!db.ok()) {
      taken = db.status();
    } else {
      taken = [&]() -> Result<std::pair<raft::SnapshotMeta, std::string>> {
        if (Status s = (*db)->Exec("BEGIN"); !s.ok()) return s;
        raft::SnapshotMeta meta;
        Status error;
        sqlite::Statement* stmt = (*db)->Prepare(
            "SELECT (SELECT value FROM raft_state WHERE key = 'applied'), "
            "(SELECT term FROM raft_log WHERE idx = (SELECT value FROM raft_state WHERE key = 'applied'))",
            &error);
        if (stmt == nullptr) return error;
        if (!stmt->Step() || stmt->IsNull(0) || stmt->IsNull(1)) {
          stmt->Reset();
          return Status::Unavailable("no applied entry to snapshot yet");
        }
        meta.index = static_cast<raft::Index>(stmt->Int(0));
        meta.term = static_cast<raft::Term>(stmt->Int(1));
        stmt->Reset();
        auto data = SnapshotStateMachine(**db);
        (*db)->Exec("COMMIT");
        if (!data.ok()) return data.status();
        return std::make_pair(meta, std::move(data).value());
      }();
    }
    boost::asio::post(io_, [this, taken = std::move(taken)]() mutable { SaveSnapshot(std::move(taken)); });
  });
}

void ReplicatedDecisionLog::SaveSnapshot(Result<std::pair<raft::SnapshotMeta, std::string>> taken) {
  if (stopped_) return;
  if (!taken.ok()) {
    log::Warn("snapshot_failed", {{"error", taken.status().ToString()}});
    snapshot_index_ = applied_;  // try again at the next threshold
    snapshotting_ = false;
    return;
  }
  raft::SnapshotMeta meta = taken->first;
  meta.membership = node_->log().MembershipAt(meta.index);
  auto data = std::make_shared<std::string>(std::move(taken->second));
  writer_->Submit(
      BatchWriter::Job{[meta, data](sqlite::Database& db) { return RaftStorage(db).SaveSnapshot(meta, *data); },
                       [this, meta, data](Status s) {
                         snapshotting_ = false;
                         if (!s.ok()) {
                           log::Error("snapshot_failed", {{"index", meta.index}, {"error", s.ToString()}});
                           snapshot_index_ = meta.index;
                           return;
                         }
                         node_->CompactLog(meta.index, data);
                         snapshot_index_ = meta.index;
                         log::Info("snapshot_taken", {{"index", meta.index}, {"bytes", data->size()}});
                         Pump();
                       }});
}

void ReplicatedDecisionLog::AfterApply(raft::Index applied) {
  while (!reads_waiting_apply_.empty() && reads_waiting_apply_.begin()->first <= applied) {
    ReadWaiter w = std::move(reads_waiting_apply_.begin()->second);
    reads_waiting_apply_.erase(reads_waiting_apply_.begin());
    writer_->Read(std::move(w.fn));
  }
}

// Leader-ready is sticky for a term: it starts once this member, as leader,
// has applied an entry of its own term (so every earlier decision is in the
// state machine), and ends when it stops leading or the term changes.
void ReplicatedDecisionLog::CheckLeadership() {
  const bool leader = node_->role() == raft::Role::kLeader;
  if (!leader) {
    if (!pending_.empty()) FailPending("this member is no longer the leader");
    if (!reads_.empty() || !reads_waiting_apply_.empty()) {
      auto reads = std::move(reads_);
      reads_.clear();
      for (auto& [id, w] : reads) w.fail(Status::Unavailable("this member is no longer the leader"));
      auto waiting = std::move(reads_waiting_apply_);
      reads_waiting_apply_.clear();
      for (auto& [index, w] : waiting) w.fail(Status::Unavailable("this member is no longer the leader"));
    }
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
  log::Info(ready ? "leader_ready" : "not_leader",
            {{"term", node_->term()}, {"commit_index", node_->commit_index()}, {"leader", leader_url()}});
  if (on_leadership_) on_leadership_(ready);
}

void ReplicatedDecisionLog::FailPending(const std::string& why) {
  auto finishing = std::move(finishing_);
  finishing_.clear();
  for (auto& w : finishing) w.done(Status::Unavailable(why));
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [index, p] : pending) {
    p.done(Status::Unavailable(why + "; the entry at " + std::to_string(index) + " may still commit"));
  }
}

void ReplicatedDecisionLog::Send(std::vector<raft::Message> messages) {
  std::map<raft::NodeId, std::vector<raft::Message>> by_peer;
  for (auto& m : messages) by_peer[m.to].push_back(std::move(m));
  for (auto& [to, list] : by_peer) {
    auto peer = peers_.find(to);
    if (peer == peers_.end() || peer->second.in_flight >= kMaxInFlightPerPeer) continue;  // lost, as on a network
    http::ClientRequest cr;
    cr.base_url = peer->second.url;
    cr.method = "POST";
    cr.target = "/v1/raft";
    cr.body = EncodeRaftMessages(list);
    cr.headers.emplace_back("Content-Type", "application/octet-stream");
    cr.timeout = std::chrono::milliseconds(kRaftRequestTimeoutMs);
    if (!options_.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options_.token);
    ++peer->second.in_flight;
    client_.Send(std::move(cr), [this, to](Result<http::Response>) {
      auto it = peers_.find(to);
      if (it != peers_.end()) --it->second.in_flight;
    });
  }
}

void ReplicatedDecisionLog::LinearizableRead(std::function<void(sqlite::Database&)> fn,
                                             std::function<void(Status)> fail) {
  if (!leader_ready_) {
    fail(Status::Unavailable("not the leader"));
    return;
  }
  const uint64_t request = next_read_++;
  raft::ProposeStatus s = node_->ReadIndex(request, NowMs());
  if (s != raft::ProposeStatus::kOk) {
    fail(Status::Unavailable("cannot read now: " + std::string(raft::ProposeStatusName(s))));
    return;
  }
  reads_.emplace(request, ReadWaiter{std::move(fn), std::move(fail)});
  Pump();
}

Result<RecoveredLog> ReplicatedDecisionLog::Recover() {
  std::promise<Result<RecoveredLog>> promise;
  auto future = promise.get_future();
  writer_->Read([&promise](sqlite::Database& db) { promise.set_value(DecisionStore(db).Recover()); });
  return future.get();
}

void ReplicatedDecisionLog::AppendDecision(DecisionRecord record, std::function<void(Status)> done) {
  Propose(EncodeCommand(command::Decide{std::move(record)}), std::move(done));
}

// Finished marks are not urgent: those that arrive while a write is in
// flight go into the log together, as one entry (ProposeFinished).
void ReplicatedDecisionLog::MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) {
  if (!leader_ready_) {
    done(Status::Unavailable("not the leader"));
    return;
  }
  finishing_.push_back({command::Finish{std::move(txid), finished_ms}, std::move(done)});
  if (!writing_) ProposeFinished();
}

void ReplicatedDecisionLog::ProposeFinished() {
  if (finishing_.empty()) return;
  auto batch = std::make_shared<std::vector<FinishWaiter>>(std::move(finishing_));
  finishing_.clear();
  command::FinishMany many;
  for (const auto& w : *batch) many.marks.push_back(w.mark);
  Propose(EncodeCommand(many), [batch](Status s) {
    for (auto& w : *batch) w.done(s);
  });
}

void ReplicatedDecisionLog::PutParticipant(RegistryEntry entry, std::function<void(Status)> done) {
  Propose(EncodeCommand(command::PutParticipant{std::move(entry)}), std::move(done));
}

namespace {
template <class T>
std::function<void(sqlite::Database&)> PostingRead(boost::asio::io_context& io,
                                                  std::function<Result<T>(DecisionStore&)> read,
                                                  std::function<void(Result<T>)> done) {
  return [&io, read = std::move(read), done](sqlite::Database& db) {
    DecisionStore store(db);
    Result<T> result = read(store);
    boost::asio::post(io, [done, result = std::move(result)]() mutable { done(std::move(result)); });
  };
}
}  // namespace

void ReplicatedDecisionLog::FindDecision(std::string txid,
                                         std::function<void(Result<std::optional<DecisionRecord>>)> done) {
  using T = std::optional<DecisionRecord>;
  LinearizableRead(PostingRead<T>(io_, [txid](DecisionStore& s) { return s.FindByTxid(txid); }, done),
                   [done](Status s) { done(s); });
}

void ReplicatedDecisionLog::FindByIdempotencyKey(std::string key,
                                                 std::function<void(Result<std::optional<DecisionRecord>>)> done) {
  using T = std::optional<DecisionRecord>;
  LinearizableRead(PostingRead<T>(io_, [key](DecisionStore& s) { return s.FindByIdempotencyKey(key); }, done),
                   [done](Status s) { done(s); });
}

void ReplicatedDecisionLog::ListDecisions(ListFilter filter,
                                          std::function<void(Result<std::vector<DecisionRecord>>)> done) {
  using T = std::vector<DecisionRecord>;
  LinearizableRead(PostingRead<T>(io_, [filter](DecisionStore& s) { return s.List(filter); }, done),
                   [done](Status s) { done(s); });
}

Status ReplicatedDecisionLog::TransferLeadership(const std::string& to) {
  if (!node_->membership().IsVoter(NodeIdOf(to))) {
    return Status::InvalidArgument("to: '" + to + "' is not a voting member of the group");
  }
  if (to == options_.self_id) return Status::Ok();  // already leads
  raft::ProposeStatus s = node_->TransferLeadership(NodeIdOf(to), NowMs());
  Pump();
  if (s != raft::ProposeStatus::kOk) {
    return Status::Conflict("cannot transfer leadership now: " + std::string(raft::ProposeStatusName(s)));
  }
  return Status::Ok();
}

void ReplicatedDecisionLog::AddMember(const std::string& id, const std::string& url, std::function<void(Status)> done) {
  if (!leader_ready_) {
    done(Status::Unavailable("not the leader"));
    return;
  }
  if (node_->membership().Contains(NodeIdOf(id))) {
    done(Status::Conflict(id + " is already a member"));
    return;
  }
  Propose(EncodeCommand(command::SetMember{id, url}), [this, id, done = std::move(done)](Status s) {
    if (!s.ok()) {
      done(s);
      return;
    }
    raft::ProposeResult r = node_->ProposeConfChange({raft::ConfChangeType::kAddLearner, NodeIdOf(id)}, NowMs());
    Pump();
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
  if (!node_->membership().Contains(n)) return Status::InvalidArgument(id + " is not a member");
  raft::ProposeResult r = node_->ProposeConfChange({raft::ConfChangeType::kRemove, n}, NowMs());
  Pump();
  if (r.status == raft::ProposeStatus::kCannotRemoveSelf) {
    return Status::Conflict(id + " is the leader: transfer leadership first (commitctl cluster transfer-leader)");
  }
  if (r.status != raft::ProposeStatus::kOk) {
    return Status::Conflict("cannot remove " + id + " now: " + std::string(raft::ProposeStatusName(r.status)));
  }
  log::Info("member_removed", {{"id", id}});
  return Status::Ok();
}

// Leader: a learner that has caught up becomes a voter (the core refuses
// while it lags, or while another change is pending; try again later).
void ReplicatedDecisionLog::PromoteCaughtUpLearners() {
  if (!leader_ready_ || node_->membership().learners.empty()) return;
  const int64_t now = NowMs();
  if (now < next_promotion_ms_) return;
  next_promotion_ms_ = now + 100;
  for (raft::NodeId learner : node_->membership().learners) {
    raft::ProposeResult r = node_->ProposeConfChange({raft::ConfChangeType::kPromote, learner}, now);
    if (r.status == raft::ProposeStatus::kOk) {
      log::Info("member_promoted", {{"id", ids_.count(learner) ? ids_[learner] : std::to_string(learner)}});
      break;
    }
  }
}

std::string ReplicatedDecisionLog::leader_url() const {
  auto it = urls_.find(node_->leader());
  return it == urls_.end() ? std::string() : it->second;
}

nlohmann::json ReplicatedDecisionLog::ClusterStatus() const {
  auto id_of = [this](raft::NodeId n) {
    auto it = ids_.find(n);
    return it == ids_.end() ? std::to_string(n) : it->second;
  };
  nlohmann::json members = nlohmann::json::array();
  const raft::Membership& ms = node_->membership();
  std::set<raft::NodeId> shown = ms.voters;
  shown.insert(ms.learners.begin(), ms.learners.end());
  for (raft::NodeId n : shown) {
    auto url = urls_.find(n);
    std::string role = ms.IsVoter(n) ? "voter" : "learner";
    nlohmann::json j = {
        {"id", id_of(n)}, {"url", url == urls_.end() ? std::string() : url->second}, {"membership", role}};
    if (n == node_->leader()) j["role"] = "leader";
    if (node_->role() == raft::Role::kLeader && n != node_->id()) j["match_index"] = node_->MatchIndex(n);
    members.push_back(std::move(j));
  }
  const raft::NodeId leader = node_->leader();
  return {{"id", options_.self_id},
          {"role", std::string(raft::RoleName(node_->role()))},
          {"term", node_->term()},
          {"leader", leader == raft::kNoNode ? std::string() : id_of(leader)},
          {"leader_url", leader_url()},
          {"leader_ready", leader_ready_},
          {"commit_index", node_->commit_index()},
          {"applied_index", applied_},
          {"last_index", node_->log().last_index()},
          {"members", std::move(members)}};
}

}  // namespace commitd::coordinator
