#include "common/batch_writer.h"

#include <boost/asio/post.hpp>
#include <algorithm>
#include <string>
#include <utility>

#include "common/batch_sync.h"
#include "common/failpoint.h"
#include "common/log.h"

namespace commitd {

BatchWriter::BatchWriter(sqlite::Database& db, boost::asio::any_io_executor io, std::size_t max_batch,
                         std::function<void(sqlite::Database&)> after_rollback)
    : db_(db), io_(std::move(io)), max_batch_(max_batch), after_rollback_(std::move(after_rollback)) {
  if (sqlite::Statement* level = db_.Prepare("PRAGMA synchronous"); level != nullptr && level->Step()) {
    synchronous_ = static_cast<int>(level->Int(0));
    level->Reset();
  }
  current_synchronous_ = synchronous_;
  thread_ = std::thread([this] { Loop(); });
}

BatchWriter::~BatchWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BatchWriter::Submit(Job job) {
  bool wake = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool first = queue_.empty();
    // Only deferred riders wait for a deadline from it.
    if (first && defer_riders_) first_queued_at_ = std::chrono::steady_clock::now();
    const bool starts = StartsBatch(job, defer_riders_);
    if (starts) ++starting_queued_;
    queue_.push_back(std::move(job));
    // A deferred rider behind another waits for the deadline the storage thread has already.
    wake = starts || first;
  }
  if (wake) cv_.notify_one();
}

void BatchWriter::DeferRiders() {
  std::lock_guard<std::mutex> lock(mu_);
  defer_riders_ = true;
}

void BatchWriter::Read(std::function<void(sqlite::Database&)> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reads_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void BatchWriter::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  ++flushing_;
  cv_.notify_one();
  idle_cv_.wait(lock, [this] { return queue_.empty() && reads_.empty() && !busy_; });
  --flushing_;
}

BatchWriter::Stats BatchWriter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void BatchWriter::set_metrics(BatchMetrics m) {
  std::lock_guard<std::mutex> lock(mu_);
  metrics_ = m;
}

std::size_t BatchWriter::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void BatchWriter::Loop() {
  std::vector<Job> batch;
  std::deque<std::function<void(sqlite::Database&)>> reads;
  using Clock = std::chrono::steady_clock;
  for (;;) {
    bool sync_held = false;
    bool lingered = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        if (stop_ || !reads_.empty() || starting_queued_ > 0 || (flushing_ > 0 && !(queue_.empty() && held_.empty()))) {
          break;
        }
        auto deadline = Clock::time_point::max();
        if (!held_.empty()) deadline = held_deadline_;
        if (!queue_.empty()) deadline = std::min(deadline, first_queued_at_ + sync_linger_);
        if (deadline == Clock::time_point::max()) {
          busy_ = false;
          idle_cv_.notify_all();
          cv_.wait(lock);
          continue;
        }
        // Still busy for Flush(): held dones are not posted yet, or riders wait.
        if (Clock::now() >= deadline) break;
        cv_.wait_until(lock, deadline);
      }
      if (queue_.empty() && reads_.empty()) {
        if (held_.empty()) return;  // stopping, and nothing left
        sync_held = true;           // the linger ran out, a Flush() waits, or stopping
      } else {
        busy_ = true;
        // Deferred riders only, taken because their linger ran out, a Flush() waits, or stopping.
        lingered = starting_queued_ == 0 && reads_.empty();
        std::size_t n = std::min(queue_.size(), max_batch_);
        batch.clear();
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        starting_queued_ = 0;
        for (const Job& j : queue_) starting_queued_ += StartsBatch(j, defer_riders_) ? 1 : 0;
        reads.swap(reads_);
      }
    }
    if (sync_held) {
      SyncHeld();
      continue;
    }
    for (auto& read : reads) read(db_);
    reads.clear();
    if (!batch.empty()) RunBatch(batch, lingered);
  }
}

void BatchWriter::RunBatch(std::vector<Job>& batch, bool lingered) {
  const bool full = synchronous_ > 1;
  const bool was_holding = !held_.empty();
  const BatchSync plan = PlanBatchSync(batch, full, was_holding, lingered);
  // A batch that needs its fsync never commits unless the level is back.
  Status level = SetSynchronous(full && !plan.fsync ? 1 : synchronous_);
  bool rolled_back = false;
  bool wrote = false;
  double commit_seconds = 0;
  std::vector<Status> results;
  if (!sync_failed_.ok()) {
    results.assign(batch.size(), sync_failed_);
  } else if (level.ok()) {
    results = RunStorageBatch(db_, batch, &rolled_back, &commit_seconds, &wrote);
  } else {
    results.assign(batch.size(), level);
  }
  if (rolled_back && after_rollback_) after_rollback_(db_);
  const bool committed = sync_failed_.ok() && level.ok() && !rolled_back;
  BatchMetrics m;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.batches++;
    stats_.jobs += batch.size();
    m = metrics_;
  }
  if (m.batch_size != nullptr) m.batch_size->Observe(static_cast<double>(batch.size()));
  if (m.fsync_seconds != nullptr && plan.fsync && committed && wrote) m.fsync_seconds->Observe(commit_seconds);
  for (std::size_t i = 0; i < batch.size(); ++i) held_.emplace_back(std::move(batch[i].done), std::move(results[i]));
  switch (AfterBatch(plan, committed, wrote, full, was_holding)) {
    case HeldDones::kDeliver:
      PostHeld();
      break;
    case HeldDones::kHold:
      // The deadline is the first held job's.
      if (!was_holding) held_deadline_ = std::chrono::steady_clock::now() + sync_linger_;
      break;
    case HeldDones::kSyncWalFirst:
      SyncHeld();
      break;
  }
}

void BatchWriter::SyncHeld() {
  if (sync_failed_.ok()) {
    const auto start = std::chrono::steady_clock::now();
    Status synced = failpoint::Active("storage.fail_wal_sync") ? Status::IoError("failpoint storage.fail_wal_sync")
                                                                : db_.SyncWal();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    BatchMetrics m;
    {
      std::lock_guard<std::mutex> lock(mu_);
      m = metrics_;
    }
    if (synced.ok() && m.fsync_seconds != nullptr) m.fsync_seconds->Observe(seconds);
    if (!synced.ok()) {
      sync_failed_ = Status::IoError("storage failed: an fsync of the WAL failed (" + synced.message() +
                                     "); restart to recover from what the disk holds");
      log::Error("wal_sync_failed", {{"database", db_.path()}, {"error", synced.ToString()}});
    }
  }
  if (!sync_failed_.ok()) {
    for (auto& [done, status] : held_) {
      if (status.ok()) status = sync_failed_;
    }
  }
  PostHeld();
}

void BatchWriter::PostHeld() {
  if (held_.empty()) return;
  boost::asio::post(io_, [dones = std::exchange(held_, {})]() mutable {
    for (auto& [done, status] : dones) {
      if (done) done(status);
    }
  });
}

Status BatchWriter::SetSynchronous(int level) {
  if (level == current_synchronous_) return Status::Ok();
  Status s = db_.Exec("PRAGMA synchronous=" + std::to_string(level));
  if (s.ok()) current_synchronous_ = level;
  return s;
}

}  // namespace commitd
