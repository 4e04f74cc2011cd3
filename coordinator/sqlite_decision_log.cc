#include "coordinator/sqlite_decision_log.h"

#include <boost/asio/post.hpp>
#include <future>

#include "common/failpoint.h"
#include "coordinator/decision_store.h"

namespace commitd::coordinator {

// Runs a read through the queue and delivers its result on the owner's thread.
template <class T>
void SqliteDecisionLog::PostRead(std::function<T(sqlite::Database&)> read, std::function<void(T)> done) {
  queue_->Read([post = post_, read = std::move(read), done = std::move(done)](sqlite::Database& db) mutable {
    if (!post) {
      done(read(db));
      return;
    }
    post([done = std::move(done), result = read(db)]() mutable { done(std::move(result)); });
  });
}

namespace {

struct Identity {
  uint64_t incarnation = 0;
  std::string log_id;
  std::string abort_secret;
};

// Checks the file, creates the tables, gives an empty log its identity and
// makes the next incarnation durable (one transaction), before anything is served.
Result<Identity> OpenIdentity(sqlite::Database& db, Entropy& entropy) {
  DecisionStore store(db);
  if (Status s = store.CheckIntegrity(); !s.ok()) return s;
  if (Status s = store.CreateSchema(); !s.ok()) return s;
  sqlite::Transaction tx(db);
  if (!tx.status().ok()) return tx.status();
  Result<std::string> log_id = store.LogId();
  if (!log_id.ok()) return log_id.status();
  if (log_id->empty()) {
    Result<int64_t> decisions = store.Count(std::nullopt, false);
    if (!decisions.ok()) return decisions.status();
    // A log that has decisions but no identity predates identities: it stays
    // without one (agents' records of it carry none either).
    if (*decisions == 0) {
      std::string fresh = entropy.Hex(16);
      if (Status s = store.SetLogId(fresh); !s.ok()) return s;
      *log_id = fresh;
    }
  }
  // Every log gets an abort secret, one without identity too: it only makes
  // aborts of records prepared from now on checkable.
  Result<std::string> secret = store.AbortSecret();
  if (!secret.ok()) return secret.status();
  if (secret->empty()) {
    std::string fresh = entropy.Hex(32);
    if (Status s = store.SetAbortSecret(fresh); !s.ok()) return s;
    *secret = fresh;
  }
  Result<uint64_t> incarnation = store.NextIncarnation();
  if (!incarnation.ok()) return incarnation.status();
  if (Status s = tx.Commit(); !s.ok()) return s;
  return Identity{*incarnation, *log_id, *secret};
}

}  // namespace

Result<std::unique_ptr<SqliteDecisionLog>> SqliteDecisionLog::Open(const std::string& path,
                                                                   boost::asio::any_io_executor io, Entropy& entropy,
                                                                   std::size_t max_batch) {
  Result<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(path);
  if (!db.ok()) return db.status();
  Result<Identity> identity = OpenIdentity(**db, entropy);
  if (!identity.ok()) return identity.status();
  auto writer = std::make_unique<BatchWriter>(**db, io, max_batch);
  std::unique_ptr<SqliteDecisionLog> log(new SqliteDecisionLog(
      **db, *writer, [io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); }));
  log->owned_db_ = std::move(db).value();
  log->owned_writer_ = std::move(writer);
  log->incarnation_ = identity->incarnation;
  log->log_id_ = identity->log_id;
  log->abort_secret_ = identity->abort_secret;
  return log;
}

Result<std::unique_ptr<SqliteDecisionLog>> SqliteDecisionLog::Create(sqlite::Database& db, StorageQueue& queue,
                                                                     Post post, Entropy& entropy) {
  Result<Identity> identity = OpenIdentity(db, entropy);
  if (!identity.ok()) return identity.status();
  std::unique_ptr<SqliteDecisionLog> log(new SqliteDecisionLog(db, queue, std::move(post)));
  log->incarnation_ = identity->incarnation;
  log->log_id_ = identity->log_id;
  log->abort_secret_ = identity->abort_secret;
  return log;
}

SqliteDecisionLog::~SqliteDecisionLog() {
  owned_writer_.reset();  // drains queued writes and joins the storage thread
  owned_db_.reset();
}

Result<RecoveredLog> SqliteDecisionLog::Recover() {
  Result<RecoveredLog> recovered = RecoveredLog{};
  if (!post_) {
    recovered = DecisionStore(*db_).Recover();
  } else {
    // Blocks the io thread for at most the batch in progress: it runs at the
    // start, and while serving only to take over records the engine let go
    // of. The storage thread never waits for the io thread.
    std::promise<Result<RecoveredLog>> promise;
    std::future<Result<RecoveredLog>> future = promise.get_future();
    queue_->Read([&promise](sqlite::Database& db) { promise.set_value(DecisionStore(db).Recover()); });
    recovered = future.get();
  }
  if (!recovered.ok()) return recovered;
  recovered->incarnation = incarnation_;
  recovered->log_id = log_id_;
  recovered->abort_secret = abort_secret_;
  return recovered;
}

void SqliteDecisionLog::AppendDecision(DecisionRecord record, std::function<void(Status)> done) {
  Append(std::move(record), Durability::kSyncNow, std::move(done));
}

// A 2PC commit whose client was answered already (its staging record and the
// votes make it certain) rides on the next batch's fsync.
void SqliteDecisionLog::AppendDecisionWithNextWrite(DecisionRecord record, std::function<void(Status)> done) {
  Append(std::move(record), Durability::kSyncWithNext, std::move(done));
}

void SqliteDecisionLog::Append(DecisionRecord record, Durability durability, std::function<void(Status)> done) {
  DropUnreadReply(record);
  // Serializing the record happens on the storage thread, off the io thread.
  queue_->Submit(StorageJob{[record = std::move(record)](sqlite::Database& db) {
                              if (failpoint::Active("decision_log.fail_append")) {
                                return Status::IoError("failpoint decision_log.fail_append");
                              }
                              return DecisionStore(db).InsertDecision(record);
                            },
                            std::move(done), nullptr, durability});
}

// A finished mark is written when the agents' acknowledgements arrive, which
// is when the next transaction's votes arrive too: it rides on that decision's
// fsync instead of taking one of its own ahead of it.
void SqliteDecisionLog::MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) {
  queue_->Submit(StorageJob{[txid = std::move(txid), finished_ms](sqlite::Database& db) {
                              return DecisionStore(db).MarkFinished(txid, finished_ms);
                            },
                            std::move(done), nullptr, Durability::kSyncWithNext});
}

void SqliteDecisionLog::PutParticipant(RegistryEntry entry, std::function<void(Status)> done) {
  queue_->Submit(StorageJob{
      [entry = std::move(entry)](sqlite::Database& db) { return DecisionStore(db).PutParticipant(entry); },
      std::move(done)});
}

// The queue completes jobs in the order they were submitted: a job that
// writes nothing completes after every append before it.
void SqliteDecisionLog::Barrier(std::function<void(Status)> done) {
  queue_->Submit(StorageJob{[](sqlite::Database&) { return Status::Ok(); }, std::move(done), nullptr,
                            Durability::kNone});
}

void SqliteDecisionLog::AddOwnUrl(std::string url, std::function<void(Status)> done) {
  queue_->Submit(StorageJob{
      [url = std::move(url)](sqlite::Database& db) { return DecisionStore(db).AddOwnUrl(url); }, std::move(done)});
}

void SqliteDecisionLog::FindDecision(std::string txid,
                                     std::function<void(Result<std::optional<DecisionRecord>>)> done) {
  PostRead<Result<std::optional<DecisionRecord>>>(
      [txid = std::move(txid)](sqlite::Database& db) { return DecisionStore(db).FindByTxid(txid); }, std::move(done));
}

void SqliteDecisionLog::FindByIdempotencyKey(std::string key,
                                             std::function<void(Result<std::optional<DecisionRecord>>)> done) {
  PostRead<Result<std::optional<DecisionRecord>>>(
      [key = std::move(key)](sqlite::Database& db) { return DecisionStore(db).FindByIdempotencyKey(key); },
      std::move(done));
}

void SqliteDecisionLog::ListDecisions(ListFilter filter,
                                      std::function<void(Result<std::vector<DecisionRecord>>)> done) {
  PostRead<Result<std::vector<DecisionRecord>>>(
      [filter](sqlite::Database& db) { return DecisionStore(db).List(filter); }, std::move(done));
}

void SqliteDecisionLog::ForgetFinished(int64_t cutoff_ms, int64_t keys_cutoff_ms, std::size_t limit,
                                       std::function<void(Result<std::size_t>)> done) {
  auto forgotten = std::make_shared<std::size_t>(0);
  queue_->Submit(StorageJob{[cutoff_ms, keys_cutoff_ms, limit, forgotten](sqlite::Database& db) {
                              Result<std::size_t> n =
                                  DecisionStore(db).ForgetFinishedBefore(cutoff_ms, keys_cutoff_ms, limit);
                              if (!n.ok()) return n.status();
                              *forgotten = *n;
                              return Status::Ok();
                            },
                            [forgotten, done = std::move(done)](Status s) {
                              if (!s.ok()) {
                                done(s);
                                return;
                              }
                              done(*forgotten);
                            }});
}

void SqliteDecisionLog::TxidForgotten(std::string txid, std::function<void(Result<bool>)> done) {
  PostRead<Result<bool>>([txid = std::move(txid)](sqlite::Database& db) { return DecisionStore(db).TxidForgotten(txid); },
                         std::move(done));
}

void SqliteDecisionLog::KeyForgotten(std::string key, std::function<void(Result<bool>)> done) {
  PostRead<Result<bool>>([key = std::move(key)](sqlite::Database& db) { return DecisionStore(db).KeyForgotten(key); },
                         std::move(done));
}

}  // namespace commitd::coordinator
