#include "coordinator/replicated_decision_log.h"

#include <algorithm>
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
constexpr std::size_t kMaxQueuedPerPeer = 4096;
constexpr int64_t kRaftRequestTimeoutMs = 1000;

int64_t NowMs() { return EngineClockMs(); }

const std::string kSavepoint = "SAVEPOINT apply_entry";
const std::string kRollbackToSavepoint = "ROLLBACK TO apply_entry";
const std::string kReleaseSavepoint = "RELEASE apply_entry";

// A statement without parameters or results, from the connection's cache.
Status RunCached(sqlite::Database& db, const std::string& sql) {
  Status error;
  sqlite::Statement* stmt = db.Prepare(sql, &error);
  if (stmt == nullptr) return error;
  return stmt->Run();
}

// Applies one committed entry to the state machine; the result goes to the
// member that proposed it. Deterministic: every member gets the same result,
// except for kIoError (the disk failed), which the caller treats as fatal.
// A member URL it stores is added to *members.
Status ApplyEntry(sqlite::Database& db, const raft::Entry& e, std::vector<command::SetMember>* members) {
  if (e.type != raft::EntryType::kNormal) return Status::Ok();
  auto command = DecodeCommand(e.data);
  if (!command.ok()) return command.status();
  DecisionStore store(db);
  if (auto* d = std::get_if<command::Decide>(&*command)) return store.InsertDecision(d->record);
  if (auto* f = std::get_if<command::Finish>(&*command)) return store.MarkFinished(f->txid, f->finished_ms);
  if (auto* p = std::get_if<command::PutParticipant>(&*command)) return store.PutParticipant(p->entry);
  if (auto* m = std::get_if<command::SetMember>(&*command)) {
    Status s = RaftStorage(db).SetMemberUrl(m->id, m->url);
    if (s.ok()) members->push_back(std::move(*m));
    return s;
  }
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
  auto held = std::move(held_);
  held_.clear();
  for (auto& h : held) h.respond(http::ErrorResponse(503, "raft", "stopping"));
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

void ReplicatedDecisionLog::OnRaftMessages(const std::string& body, http::Responder respond) {
  auto messages = DecodeRaftMessages(body);
  if (!messages.ok()) {
    respond(http::ErrorResponse(400, "raft", messages.status().message()));
    return;
  }
  if (stopped_) {
    respond(http::ErrorResponse(503, "raft", "stopping"));
    return;
  }
  const int64_t now = NowMs();
  raft::NodeId from = raft::kNoNode;
  for (const auto& m : *messages) {
    from = m.from;
    if (m.to == node_->id()) node_->Step(m, now);
  }
  held_.push_back(HeldResponse{from, std::move(respond)});
  Pump();
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

namespace {

// A leader's Ready that changes no term, vote, snapshot or truncation and
// whose messages are all appends, snapshot chunks or TimeoutNow to followers.
bool LeaderMessagesOnly(const raft::Ready& r) {
  if (r.hard_state || r.snapshot || r.truncate_from || r.messages.empty()) return false;
  return std::all_of(r.messages.begin(), r.messages.end(), [](const raft::Message& m) {
    return std::holds_alternative<raft::AppendEntries>(m.body) ||
           std::holds_alternative<raft::InstallSnapshot>(m.body) || std::holds_alternative<raft::TimeoutNow>(m.body);
  });
}

}  // namespace

// One Ready at a time: durable (one SQLite transaction, with the entries it
// commits applied in it), then its messages (a leader's appends before, see
// LeaderMessagesOnly), then the completions.
void ReplicatedDecisionLog::Pump() {
  if (stopped_) return;
  if (!writing_) ProposeFinished();
  if (writing_ || !node_->HasReady()) {
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
  auto ready = std::make_shared<raft::Ready>(node_->TakeReady());
  auto held = std::make_shared<std::vector<HeldResponse>>(std::move(held_));
  held_.clear();
  if (LeaderMessagesOnly(*ready)) {
    // Raft thesis §10.2.1: the leader's appends go out while its own write
    // runs. Safe because this Ready's messages promise nothing about this
    // member's disk, and the commitment they may lead to reaches anyone (as
    // leader_commit, applied entries or read answers) only through later
    // Readies, taken after this one is durable.
    Send(std::move(ready->messages), std::move(*held));
    ready->messages.clear();
    held->clear();
  }
  auto results = std::make_shared<std::vector<Status>>();
  auto member_urls = std::make_shared<std::map<std::string, std::string>>();
  auto member_changes = std::make_shared<std::vector<command::SetMember>>();
  BatchWriter::Job job{
      [ready, results, member_urls, member_changes](sqlite::Database& db) -> Status {
        RaftStorage storage(db);
        if (ready->hard_state) {
          if (Status s = storage.SaveHardState(*ready->hard_state); !s.ok()) return s;
        }
        if (ready->snapshot) {
          // From the leader: it becomes the log's base and the whole state machine.
          const std::string& data = *ready->snapshot->data;
          if (Status s = storage.SaveSnapshot(ready->snapshot->meta); !s.ok()) return s;
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
        results->reserve(ready->committed.size());
        for (const auto& e : ready->committed) {
          // Each entry in its own savepoint: a refused decision changes nothing.
          if (Status s = RunCached(db, kSavepoint); !s.ok()) return s;
          Status r = ApplyEntry(db, e, member_changes.get());
          // A failed disk is not a refusal every member would repeat: stop
          // rather than advance the applied index past an entry not applied.
          if (r.code() == StatusCode::kIoError) return r;
          if (!r.ok()) {
            if (Status s = RunCached(db, kRollbackToSavepoint); !s.ok()) return s;
          }
          if (Status s = RunCached(db, kReleaseSavepoint); !s.ok()) return s;
          results->push_back(r);
        }
        if (!ready->committed.empty()) return storage.SetApplied(ready->committed.back().index);
        return Status::Ok();
      },
      [this, ready, results, member_urls, member_changes, held](Status s) {
        if (!s.ok()) {
          // The Raft log on disk no longer matches what the node believes: stop.
          log::Error("fatal_raft_storage_failure", {{"error", s.ToString()}});
          std::abort();
        }
        Send(std::move(ready->messages), std::move(*held));
        for (const auto& [id, url] : *member_urls) SetMemberUrl(id, url);
        for (const auto& m : *member_changes) SetMemberUrl(m.id, m.url);
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
      }};
  // A Ready that only applies committed entries promises nothing about this
  // member's disk: the entries are durable in the log (on a quorum), and an
  // apply lost in a machine crash is redone from the log on restart (the
  // applied index is written with it). So it skips the fsync; the next Ready
  // that persists something syncs it too, and compaction (always synced) never
  // deletes an entry whose application could still be lost.
  job.needs_fsync = ready->hard_state.has_value() || ready->snapshot.has_value() ||
                    ready->truncate_from.has_value() || !ready->append.empty();
  writer_->Submit(std::move(job));
}

// Snapshots (Raft §7). The state machine tables in raft.db, stored with the
// index they have applied, are a durable snapshot at every moment, so
// compacting the log only records its new base and deletes the entries up to
// it: every snapshot_entries applied entries, keeping the last
// snapshot_entries / 2 so that a follower a little behind still catches up
// from the log. The bytes a follower behind the base needs are serialized only
// when the leader's core asks for them (snapshot_wanted): a copy of every
// decision costs CPU in proportion to the whole table, which taking it at
// every compaction spent on every member for nothing.
void ReplicatedDecisionLog::MaybeSnapshot() {
  if (snapshotting_) return;
  if (node_->snapshot_wanted()) {
    SerializeSnapshot();
    return;
  }
  const raft::Index keep = options_.snapshot_entries / 2;
  if (applied_ < snapshot_index_ + options_.snapshot_entries + keep) return;
  CompactLog(applied_ - keep);
}

void ReplicatedDecisionLog::CompactLog(raft::Index index) {
  const raft::Log& log = node_->log();
  auto term = log.TermAt(index);
  if (!term) return;  // already compacted further (a snapshot installed from the leader)
  snapshotting_ = true;
  raft::SnapshotMeta meta{index, *term, log.MembershipAt(index)};
  writer_->Submit(BatchWriter::Job{[meta](sqlite::Database& db) { return RaftStorage(db).SaveSnapshot(meta); },
                                   [this, meta](Status s) {
                                     snapshotting_ = false;
                                     snapshot_index_ = std::max(snapshot_index_, meta.index);
                                     if (!s.ok()) {
                                       log::Error("snapshot_failed", {{"index", meta.index}, {"error", s.ToString()}});
                                       return;
                                     }
                                     node_->CompactLog(meta.index, nullptr);
                                     log::Info("snapshot_taken", {{"index", meta.index}, {"log_compacted", true}});
                                     Pump();
                                   }});
}

// The copy is read on a thread of its own through a second, read-only
// connection (one WAL read transaction: the tables exactly at the applied
// index stored with them), so that Readies — and the heartbeats behind them —
// keep flowing meanwhile; a snapshot of megabytes taken on the storage thread
// stalled the leader long enough to lose its leadership.
void ReplicatedDecisionLog::SerializeSnapshot() {
  snapshotting_ = true;
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
  snapshot_thread_ = std::thread([this] {
    Result<std::pair<raft::Index, std::string>> taken = Status::Internal("unset");
    sqlite::OpenOptions oo;
    oo.create = false;
    oo.read_only = true;
    auto db = sqlite::Database::Open(path_, oo);
    if (!db.ok()) {
      taken = db.status();
    } else {
      taken = [&]() -> Result<std::pair<raft::Index, std::string>> {
        if (Status s = (*db)->Exec("BEGIN"); !s.ok()) return s;
        auto applied = RaftStorage(**db).Applied();
        auto data = applied.ok() ? SnapshotStateMachine(**db) : Result<std::string>(applied.status());
        (*db)->Exec("COMMIT");
        if (!data.ok()) return data.status();
        return std::make_pair(*applied, std::move(data).value());
      }();
    }
    boost::asio::post(io_, [this, taken = std::move(taken)]() mutable { ProvideSnapshot(std::move(taken)); });
  });
}

void ReplicatedDecisionLog::ProvideSnapshot(Result<std::pair<raft::Index, std::string>> taken) {
  snapshotting_ = false;
  if (stopped_) return;
  if (!taken.ok()) {
    log::Warn("snapshot_failed", {{"error", taken.status().ToString()}});
    return;  // the core asks again at its next heartbeat
  }
  auto data = std::make_shared<const std::string>(std::move(taken->second));
  node_->ProvideSnapshot(taken->first, data);
  log::Info("snapshot_serialized", {{"index", taken->first}, {"bytes", data->size()}});
  Pump();
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

void ReplicatedDecisionLog::Send(std::vector<raft::Message> messages, std::vector<HeldResponse> held) {
  std::map<raft::NodeId, std::vector<raft::Message>> by_peer;
  for (auto& m : messages) by_peer[m.to].push_back(std::move(m));
  for (auto& [to, list] : by_peer) {
    auto h = std::find_if(held.begin(), held.end(), [to = to](const HeldResponse& r) { return r.from == to; });
    if (h == held.end()) {
      Post(to, std::move(list));
      continue;
    }
    http::Response r;
    r.body = EncodeRaftMessages(list);
    r.content_type = "application/octet-stream";
    h->respond(std::move(r));
    held.erase(h);
  }
  for (auto& h : held) {
    http::Response r;
    r.body = EncodeRaftMessages({});
    r.content_type = "application/octet-stream";
    h.respond(std::move(r));
  }
}

// At most kMaxInFlightPerPeer requests per peer; later messages wait and go
// with the next request (past kMaxQueuedPerPeer they are lost, as on a network).
void ReplicatedDecisionLog::Post(raft::NodeId to, std::vector<raft::Message> messages) {
  auto peer = peers_.find(to);
  if (peer == peers_.end()) return;
  PeerLink& link = peer->second;
  if (link.in_flight >= kMaxInFlightPerPeer) {
    for (auto& m : messages) {
      if (link.queued.size() >= kMaxQueuedPerPeer) break;
      link.queued.push_back(std::move(m));
    }
    return;
  }
  if (!link.queued.empty()) {
    for (auto& m : messages) link.queued.push_back(std::move(m));
    messages = std::move(link.queued);
    link.queued.clear();
  }
  if (messages.empty()) return;
  http::ClientRequest cr;
  cr.base_url = link.url;
  cr.method = "POST";
  cr.target = "/v1/raft";
  cr.body = EncodeRaftMessages(messages);
  cr.headers.emplace_back("Content-Type", "application/octet-stream");
  cr.timeout = std::chrono::milliseconds(kRaftRequestTimeoutMs);
  if (!options_.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options_.token);
  ++link.in_flight;
  client_.Send(std::move(cr), [this, to](Result<http::Response> r) { OnRaftResponse(to, std::move(r)); });
}

// The answer to a POST: the peer's replies to it (an RFT1 frame), if any.
void ReplicatedDecisionLog::OnRaftResponse(raft::NodeId to, Result<http::Response> response) {
  auto peer = peers_.find(to);
  if (peer != peers_.end()) --peer->second.in_flight;
  if (stopped_) return;
  if (response.ok() && response->status == 200) {
    auto messages = DecodeRaftMessages(response->body);
    if (messages.ok()) {
      const int64_t now = NowMs();
      for (const auto& m : *messages) {
        if (m.to == node_->id()) node_->Step(m, now);
      }
    }
  }
  if (peer != peers_.end() && !peer->second.queued.empty()) Post(to, {});
  Pump();
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
  // The reply is read back only to answer a retry with the same
  // Idempotency-Key; without one, every member would store it for nothing.
  if (record.idempotency_key.empty()) record.reply = nullptr;
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
