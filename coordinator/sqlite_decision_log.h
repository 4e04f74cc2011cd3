// DecisionLog on one SQLite file (<data-dir>/decisions.db), WAL + synchronous=FULL,
// every append group-committed by a StorageQueue: a BatchWriter on its
// storage thread in the binary, the simulator's SimStorageQueue in commitd-sim.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <string>

#include "common/batch_writer.h"
#include "common/entropy.h"
#include "common/sqlite_db.h"
#include "common/storage_queue.h"
#include "coordinator/decision_log.h"

namespace commitd::coordinator {

class SqliteDecisionLog final : public DecisionLog {
 public:
  // Runs fn on the owner's thread (where callbacks run).
  using Post = std::function<void(std::function<void()> fn)>;

  // Opens or creates the file and its tables, with a BatchWriter of its own.
  // io: where callbacks run. A damaged file (PRAGMA quick_check) is refused
  // with Corruption naming it. Every open makes the next incarnation durable,
  // and gives an empty log its identity (16 random bytes from entropy).
  static Result<std::unique_ptr<SqliteDecisionLog>> Open(const std::string& path, boost::asio::any_io_executor io,
                                                         Entropy& entropy, std::size_t max_batch = 1024);
  // On a database and a queue the caller owns (both outlive the log); creates
  // the tables, the identity and the incarnation as Open does. post empty: the
  // queue runs reads on the owner's thread itself, so Recover() reads the
  // database directly.
  static Result<std::unique_ptr<SqliteDecisionLog>> Create(sqlite::Database& db, StorageQueue& queue, Post post,
                                                           Entropy& entropy);
  ~SqliteDecisionLog() override;

  Result<RecoveredLog> Recover() override;
  void AppendDecision(DecisionRecord record, std::function<void(Status)> done) override;
  void AppendDecisionWithNextWrite(DecisionRecord record, std::function<void(Status)> done) override;
  void MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) override;
  void PutParticipant(RegistryEntry entry, std::function<void(Status)> done) override;
  void Barrier(std::function<void(Status)> done) override;
  void FindDecision(std::string txid, std::function<void(Result<std::optional<DecisionRecord>>)> done) override;
  void FindByIdempotencyKey(std::string key,
                            std::function<void(Result<std::optional<DecisionRecord>>)> done) override;
  void ListDecisions(ListFilter filter, std::function<void(Result<std::vector<DecisionRecord>>)> done) override;
  void ForgetFinished(int64_t cutoff_ms, int64_t keys_cutoff_ms, std::size_t limit,
                      std::function<void(Result<std::size_t>)> done) override;
  void TxidForgotten(std::string txid, std::function<void(Result<bool>)> done) override;
  void KeyForgotten(std::string key, std::function<void(Result<bool>)> done) override;

  // Batch size and fsync latency of its storage thread (the binary's; the simulator has none).
  void set_batch_metrics(BatchMetrics m) {
    if (owned_writer_) owned_writer_->set_metrics(m);
  }
  std::size_t queue_depth() const { return owned_writer_ ? owned_writer_->queue_depth() : 0; }
  StorageQueue::Stats writer_stats() const { return queue_->stats(); }
  // Records the URL this coordinator serves under (see DecisionStore::AddOwnUrl).
  void AddOwnUrl(std::string url, std::function<void(Status)> done);

 private:
  void Append(DecisionRecord record, Durability durability, std::function<void(Status)> done);
  // Defers the queue's riders (commit records answered already, finished
  // marks): nothing reads them before their done, since the engine keeps the
  // transaction in memory until then.
  SqliteDecisionLog(sqlite::Database& db, StorageQueue& queue, Post post) : db_(&db), queue_(&queue), post_(std::move(post)) {
    queue_->DeferRiders();
  }
  template <class T>
  void PostRead(std::function<T(sqlite::Database&)> read, std::function<void(T)> done);

  // Open: owned here. Declared first so that they are destroyed last.
  std::unique_ptr<sqlite::Database> owned_db_;
  std::unique_ptr<BatchWriter> owned_writer_;
  sqlite::Database* db_;  // after Create, touched only through queue_ (or directly when post_ is empty)
  StorageQueue* queue_;
  Post post_;
  uint64_t incarnation_ = 0;
  std::string log_id_;
  std::string abort_secret_;
};

}  // namespace commitd::coordinator
