#include "tests/sim/coordinator_node.h"

#include <filesystem>
#include <fstream>

#include "coordinator/decision_store.h"
#include "tests/sim/client_api.h"

namespace commitd::sim {

using coordinator::DecisionRecord;
using coordinator::Outcome;

namespace {
constexpr char kDeleteFinished[] = "DELETE FROM decisions WHERE finished = 1 AND finished_ms <= ?1";
// The raw DELETE records no forgotten key, so a retry after it would run the
// transfer again: with --client-retries, decisions with a key stay.
constexpr char kDeleteFinishedWithoutKey[] =
    "DELETE FROM decisions WHERE finished = 1 AND finished_ms <= ?1 AND idempotency_key IS NULL";
}  // namespace

// The SqliteDecisionLog with the simulator's storage-side hooks: compaction of
// finished decisions, the client's Idempotency-Keys reported to the checker
// (--client-retries), and the planted bug forget-decision (a decision
// "written" by a job that writes nothing and reports success).
class CoordinatorNode::FaultyLog final : public coordinator::DecisionLog {
 public:
  FaultyLog(CoordinatorNode& node, coordinator::SqliteDecisionLog& store) : node_(node), store_(store) {}

  Result<coordinator::RecoveredLog> Recover() override { return store_.Recover(); }
  void AppendDecision(DecisionRecord record, std::function<void(Status)> done) override {
    Append(std::move(record), std::move(done), /*with_next_write=*/false);
  }
  void AppendDecisionWithNextWrite(DecisionRecord record, std::function<void(Status)> done) override {
    Append(std::move(record), std::move(done), /*with_next_write=*/true);
  }
  // Then compacts (as does a commit record written with its finished mark,
  // Append): finished decisions older than kFinishedRetentionMs are
  // deleted, which presumed abort allows. It makes an early ack (a participant
  // acking before its outcome is durable) observable. Nobody waits for it and
  // a power loss may take it back (the decisions are deleted again later).
  // The takeover sweep of a restart acts on agents' listings once the
  // slowest has answered, up to request_timeout_ms later, and a listing may
  // show a transaction prepared that finished since the restart: until the
  // sweep is done with them, decisions finished since the restart are kept,
  // as commitd's retention (days) keeps them. (The first start's agents hold
  // nothing yet.) Times are the node's clock, as finished_ms is. With
  // --client-retries a decision with an Idempotency-Key is kept for the whole
  // run, as commitd keeps it for days: its client may retry it at any time.
  void MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) override {
    if (node_.ctx_.refuse_marks > 0 && node_.ctx_.random.Chance(node_.ctx_.refuse_marks)) {
      node_.ctx_.Log(node_.name_, "MARK REFUSED " + txid);
      // As the real mark's job: it rides on the next fsync.
      node_.queue_.Submit(StorageJob{[](sqlite::Database&) { return Status::IoError("simulated: mark refused"); },
                                     std::move(done), nullptr, Durability::kSyncWithNext});
      return;
    }
    store_.MarkFinished(std::move(txid), finished_ms, std::move(done));
    Compact();
  }
  void PutParticipant(coordinator::RegistryEntry entry, std::function<void(Status)> done) override {
    store_.PutParticipant(std::move(entry), std::move(done));
  }
  void Barrier(std::function<void(Status)> done) override { store_.Barrier(std::move(done)); }
  void FindDecision(std::string txid, std::function<void(Result<std::optional<DecisionRecord>>)> done) override {
    store_.FindDecision(std::move(txid), std::move(done));
  }
  void FindByIdempotencyKey(std::string key,
                            std::function<void(Result<std::optional<DecisionRecord>>)> done) override {
    store_.FindByIdempotencyKey(std::move(key), std::move(done));
  }
  void ListDecisions(coordinator::ListFilter filter,
                     std::function<void(Result<std::vector<DecisionRecord>>)> done) override {
    store_.ListDecisions(filter, std::move(done));
  }
  void ForgetFinished(int64_t cutoff_ms, int64_t keys_cutoff_ms, std::size_t limit,
                      std::function<void(Result<std::size_t>)> done) override {
    store_.ForgetFinished(cutoff_ms, keys_cutoff_ms, limit, std::move(done));
  }
  void TxidForgotten(std::string txid, std::function<void(Result<bool>)> done) override {
    store_.TxidForgotten(std::move(txid), std::move(done));
  }
  void KeyForgotten(std::string key, std::function<void(Result<bool>)> done) override {
    store_.KeyForgotten(std::move(key), std::move(done));
  }

 private:
  // Deletes the finished decisions older than kFinishedRetentionMs (see MarkFinished).
  void Compact() {
    // Under --adversary the log keeps every decision, as commitd's does:
    // old txids are replayed to it.
    if (node_.ctx_.adversary) return;
    const int64_t now = node_.timers_->NowMs();
    int64_t cutoff = now - kFinishedRetentionMs;
    if (node_.incarnation_ > 1 &&
        now <= node_.started_ms_ + node_.ctx_.config.request_timeout_ms + kFinishedRetentionMs) {
      cutoff = std::min(cutoff, node_.started_ms_ - 1);
    }
    const char* compact = node_.ctx_.client_retries ? kDeleteFinishedWithoutKey : kDeleteFinished;
    node_.queue_.Submit(StorageJob{[compact, cutoff](sqlite::Database& db) {
                                     Status error;
                                     sqlite::Statement* stmt = db.Prepare(compact, &error);
                                     if (stmt == nullptr) return error;
                                     stmt->Bind(1, cutoff);
                                     return stmt->Run();
                                   },
                                   nullptr, nullptr, Durability::kNone});
  }

  void Append(DecisionRecord record, std::function<void(Status)> done, bool with_next_write) {
    const bool decided = record.outcome != Outcome::kPending;
    // A 2PC staging record is what a commit answered early stands on: the bug forgets it too.
    const bool forgettable = decided || record.protocol == wire::Protocol::k2pc;
    if (forgettable && node_.ctx_.bug == Bug::kForgetDecision) {
      node_.ctx_.Log(node_.name_, "BUG forget-decision: " + record.txid + " " +
                                      std::string(coordinator::OutcomeName(record.outcome)) + " not written");
      node_.queue_.Submit(StorageJob{[](sqlite::Database&) { return Status::Ok(); }, std::move(done)});
      return;
    }
    if (decided) node_.appended_.insert(record.txid);
    // Only the client's keys: an adversary's restart replaces the log, which
    // forgets its keys legitimately (and runs without the flag stay as they were).
    if (decided && node_.ctx_.client_retries && !record.idempotency_key.empty()) {
      node_.ctx_.checker.OnIdempotencyKey(record.txid, record.idempotency_key);
    }
    const bool finished = record.finished;  // a commit record written with its finished mark
    if (with_next_write) {
      store_.AppendDecisionWithNextWrite(std::move(record), std::move(done));
    } else {
      store_.AppendDecision(std::move(record), std::move(done));
    }
    if (finished) Compact();
  }

  CoordinatorNode& node_;
  coordinator::SqliteDecisionLog& store_;
};

CoordinatorNode::CoordinatorNode(std::string name, Context& ctx, std::string db_path,
                                 std::vector<std::string> participants)
    : name_(std::move(name)),
      ctx_(ctx),
      db_path_(std::move(db_path)),
      participants_(std::move(participants)),
      queue_(name_, ctx),
      entropy_(ctx.random) {
  ctx_.network.AddNode(name_, [this](const Request& r, Responder respond) { Handle(r, std::move(respond)); });
  ctx_.network.Crash(name_);  // unreachable until Start
  queue_.set_on_synced([this](sqlite::Database& db) { ReportDurable(db); });
}

CoordinatorNode::~CoordinatorNode() {
  node_.reset();
  log_.reset();
  store_.reset();
  queue_.Crash();
  db_.reset();
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    std::filesystem::remove(db_path_ + suffix, ec);
  }
}

Status CoordinatorNode::Start() {
  ++incarnation_;
  // As the participants' files: rollback journal in memory, no fsync (a
  // simulated crash does not kill the process, so a committed SQLite
  // transaction is what "synced" means here).
  sqlite::OpenOptions oo;
  oo.wal = false;
  oo.synchronous_full = false;
  auto db = sqlite::Database::Open(db_path_, oo);
  if (!db.ok()) return db.status();
  db_ = std::move(db).value();
  if (Status s = db_->Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF"); !s.ok()) {
    return s;
  }
  auto store = coordinator::SqliteDecisionLog::Create(*db_, queue_, nullptr, entropy_);
  if (!store.ok()) return store.status();
  store_ = std::move(store).value();
  queue_.Attach(db_.get());
  log_ = std::make_unique<FaultyLog>(*this, *store_);
  agents_ = std::make_unique<SimAgentTransport>(ctx_, name_);
  timers_ = std::make_unique<SimTimers>(ctx_.scheduler, name_, clock_offset_ms_);
  started_ms_ = timers_->NowMs();
  coordinator::NodeOptions options = coordinator::NodeOptionsFor(ctx_.config, name_, UrlOf(name_));
  for (const auto& p : participants_) options.participants.push_back({p, UrlOf(p), 0});
  options.unsafe_presume_without_record = ctx_.bug == Bug::kPresumeWithoutRecord;
  // An unrecorded presumed abort shows when a forced commit is recorded over
  // it; adoption refuses that force (the participant answers aborted), so
  // that bug is planted with adoption off.
  options.unsafe_force_without_adoption =
      ctx_.bug == Bug::kForceWithoutAdoption || ctx_.bug == Bug::kPresumeWithoutRecord;
  options.unsafe_no_retake = ctx_.bug == Bug::kNoLetGoRetake;
  options.unsafe_replay_as_abort = ctx_.bug == Bug::kReplayAsAbort;
  options.engine.unsafe_fenced_as_prepared = ctx_.bug == Bug::kFencedAsPrepared;
  options.engine.unsafe_fence_too_old = ctx_.bug == Bug::kFenceTooOld;
  options.engine.unsafe_answer_before_staging = ctx_.bug == Bug::kAnswerBeforeStaging;
  if (ctx_.max_unmarked) options.engine.max_unmarked = *ctx_.max_unmarked;
  if (ctx_.coordinator_assumed_retention_ms) {
    options.engine.outcome_retention_ms = *ctx_.coordinator_assumed_retention_ms;
  }
  node_ = std::make_unique<coordinator::Node>(std::move(options), *log_, *agents_, *timers_, entropy_, nullptr);
  up_ = true;
  ctx_.network.Restart(name_);
  ctx_.Log(name_, "START (incarnation " + std::to_string(incarnation_) +
                     (clock_offset_ms_ != 0 ? ", clock " + std::to_string(clock_offset_ms_) + " ms" : "") + ")");
  return node_->Start();
}

std::string CoordinatorNode::log_id() {
  if (!up_) return "";
  auto id = coordinator::DecisionStore(*db_).LogId();
  return id.ok() ? *id : "";
}

void CoordinatorNode::ReplaceLogWithEmptyFile() {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    std::filesystem::remove(db_path_ + suffix, ec);
  }
  std::ofstream(db_path_, std::ios::binary | std::ios::trunc);
  ctx_.Log(name_, "LOG REPLACED by an empty file");
  ctx_.checker.OnLogReplaced();
}

void CoordinatorNode::Crash() {
  ctx_.Log(name_, "CRASH");
  up_ = false;
  ctx_.network.Crash(name_);
  node_.reset();
  timers_.reset();
  agents_.reset();
  log_.reset();
  store_.reset();
  queue_.Crash();
  db_.reset();
  appended_.clear();
}

// Called right after a batch is durable: every decision appended since, now
// in the database, is reported (a refused duplicate finds the first one).
void CoordinatorNode::ReportDurable(sqlite::Database& db) {
  for (auto it = appended_.begin(); it != appended_.end();) {
    auto found = coordinator::DecisionStore(db).FindByTxid(*it);
    if (found.ok() && found->has_value() && (*found)->outcome != Outcome::kPending) {
      ctx_.Log(name_, "durable: " + *it + " " + std::string(coordinator::OutcomeName((*found)->outcome)));
      ctx_.checker.OnDecisionDurable(*it, (*found)->outcome == Outcome::kCommitted);
      it = appended_.erase(it);
    } else {
      ++it;
    }
  }
}

bool CoordinatorNode::Settled() {
  if (!up_ || !queue_.idle() || node_->active() != 0) return false;
  auto recovered = coordinator::DecisionStore(*db_).Recover();
  return recovered.ok() && recovered->unfinished.empty();
}

std::string CoordinatorNode::Describe() {
  std::string out = name_ + (up_ ? " up" : " down");
  if (!node_) return out;
  for (const auto& v : node_->Transactions()) {
    out += "\n    in engine: " + v.txid + " " + std::string(coordinator::TxStateName(v.state)) + " " + std::string(coordinator::OutcomeName(v.outcome));
    for (const auto& b : v.branches) out += " [" + b.participant + " " + b.state + " " + b.last_error + "]";
  }
  if (auto recovered = coordinator::DecisionStore(*db_).Recover(); recovered.ok()) {
    for (const auto& r : recovered->unfinished) out += "\n    unfinished in log: " + r.txid;
  }
  return out;
}

void CoordinatorNode::Handle(const Request& request, Responder respond) {
  ServeClientApi(ctx_, name_, *node_, request, std::move(respond));
}

}  // namespace commitd::sim
