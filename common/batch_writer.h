// The storage thread: runs jobs against one SQLite database in batches, one
// SQLite transaction (and so one fsync) per batch — group commit.
//
// Thread: Submit() is called from the io thread. Each job's `run` executes on
// the storage thread inside the batch transaction; its `done` is posted back
// to the io executor after the batch committed (or failed), in submission
// order. Jobs submitted while a batch is being written form the next batch.
// Dones of Durability::kSyncWithNext jobs are held until a later batch's fsync
// or, when the queue stays empty for the linger, an fsync of the WAL alone
// (the rule, shared with the simulator: common/batch_sync.h). With
// DeferRiders such jobs wait in the queue instead and are written in the
// batch they ride on.
// If that fsync fails, what the held jobs wrote may not be on disk while the
// database shows it: the writer then fails every later job (fail closed) until
// the process restarts and recovers from what the disk holds.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/batch_sync.h"
#include "common/metrics.h"
#include "common/sqlite_db.h"
#include "common/status.h"
#include "common/storage_queue.h"

namespace commitd {

// Histograms a BatchWriter records into from its storage thread (metrics are
// lock-free). Null: not recorded.
struct BatchMetrics {
  metrics::Histogram* batch_size = nullptr;     // jobs per batch
  metrics::Histogram* fsync_seconds = nullptr;  // COMMIT of a batch that synced, or an fsync of the WAL alone
};

class BatchWriter final : public StorageQueue {
 public:
  // `db` is owned by the caller, outlives the writer, and from now on is
  // touched only by the storage thread.
  // after_rollback (storage thread, optional): called when a batch's durable
  // transaction was rolled back, so that state kept beside the database can
  // be rebuilt from it.
  BatchWriter(sqlite::Database& db, boost::asio::any_io_executor io, std::size_t max_batch = 1024,
              std::function<void(sqlite::Database&)> after_rollback = {});
  ~BatchWriter() override;  // drains queued jobs, then joins
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  void Submit(Job job) override;
  // fn runs on the storage thread and posts its own result to the io executor.
  void Read(std::function<void(sqlite::Database&)> fn) override;
  // Deferred riders wait at most the linger, and a Flush() or the destructor
  // takes them at once.
  void DeferRiders() override;
  // Blocks until every job submitted so far has run and its done was posted
  // (held dones get their fsync now, without waiting for the linger).
  void Flush();
  Stats stats() const override;
  // Any time; from the next batch on.
  void set_metrics(BatchMetrics m);
  // Jobs submitted and not yet taken into a batch.
  std::size_t queue_depth() const;
  // How long a done of a kSyncWithNext job may wait for another batch's fsync
  // before the WAL is synced for it alone (kDefaultSyncLinger, common/batch_sync.h).
  // Set before the first Submit.
  void set_sync_linger(std::chrono::microseconds linger) { sync_linger_ = linger; }

 private:
  void Loop();
  // lingered: deferred riders whose linger ran out (PlanBatchSync).
  void RunBatch(std::vector<Job>& batch, bool lingered);
  // Syncs the WAL and posts the held dones (with the sync's error if it failed).
  void SyncHeld();
  // Posts the held dones to the io executor, in order, and empties held_.
  void PostHeld();
  Status SetSynchronous(int level);  // PRAGMA synchronous, when it differs

  sqlite::Database& db_;
  boost::asio::any_io_executor io_;
  const std::size_t max_batch_;
  std::function<void(sqlite::Database&)> after_rollback_;
  // Storage thread: the connection's own PRAGMA synchronous, and the level set
  // now (NORMAL after a batch that needed no fsync, until the next one that does).
  int synchronous_ = 2;
  int current_synchronous_ = 2;
  std::chrono::microseconds sync_linger_ = kDefaultSyncLinger;
  // Storage thread: dones (with their jobs' statuses) waiting for an fsync, in
  // submission order, and when the first of them must have it.
  std::vector<std::pair<std::function<void(Status)>, Status>> held_;
  std::chrono::steady_clock::time_point held_deadline_;
  // Storage thread: set when an fsync of held jobs failed; every later job fails with it.
  Status sync_failed_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<Job> queue_;
  // Under mu_: whether riders are deferred, how many queued jobs start a
  // batch (StartsBatch), and when the oldest queued job was queued (kept
  // only with riders deferred).
  bool defer_riders_ = false;
  std::size_t starting_queued_ = 0;
  std::chrono::steady_clock::time_point first_queued_at_;
  std::deque<std::function<void(sqlite::Database&)>> reads_;
  bool busy_ = false;
  bool stop_ = false;
  int flushing_ = 0;  // callers blocked in Flush()
  Stats stats_;
  BatchMetrics metrics_;  // under mu_; the storage thread copies it per batch
  std::thread thread_;
};

}  // namespace commitd
