#include "common/batch_writer.h"

#include <boost/asio/post.hpp>

#include "common/wal_sync.h"

namespace commitd {
namespace {

bool InWalMode(sqlite::Database& db) {
  sqlite::Statement* mode = db.Prepare("PRAGMA journal_mode");
  if (mode == nullptr || !mode->Step()) return false;
  const bool wal = mode->Text(0) == "wal";
  mode->Reset();
  return wal;
}

}  // namespace

BatchWriter::BatchWriter(sqlite::Database& db, boost::asio::any_io_executor io, std::size_t max_batch, SyncMode sync)
    : db_(db), io_(std::move(io)), max_batch_(max_batch) {
  if (sync == SyncMode::kOverlapped && InWalMode(db_) && db_.Exec("PRAGMA synchronous=NORMAL").ok()) {
    wal_sync_ = std::make_unique<sqlite::WalSync>(db_.path());
    sync_thread_ = std::thread([this] { SyncLoop(); });
  }
  thread_ = std::thread([this] { Loop(); });
}

BatchWriter::~BatchWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (sync_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      storage_done_ = true;
    }
    sync_cv_.notify_all();
    sync_thread_.join();
  }
}

void BatchWriter::Submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
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
  idle_cv_.wait(lock, [this] { return queue_.empty() && reads_.empty() && !busy_ && unsynced_.empty() && !syncing_; });
}

BatchWriter::Stats BatchWriter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void BatchWriter::WaitSynced(std::unique_lock<std::mutex>& lock) {
  synced_cv_.wait(lock, [this] { return unsynced_.empty() && !syncing_; });
}

void BatchWriter::Loop() {
  std::vector<Job> batch;
  std::deque<std::function<void(sqlite::Database&)>> reads;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      busy_ = false;
      idle_cv_.notify_all();
      cv_.wait(lock, [this] { return stop_ || !queue_.empty() || !reads_.empty(); });
      if (queue_.empty() && reads_.empty() && stop_) return;
      busy_ = true;
      std::size_t n = std::min(queue_.size(), max_batch_);
      batch.clear();
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      reads.swap(reads_);
      // Reads see only durable data: nothing they report may vanish in a crash.
      if (!reads.empty()) WaitSynced(lock);
    }
    for (auto& read : reads) read(db_);
    reads.clear();
    if (!batch.empty()) RunBatch(batch);
  }
}

void BatchWriter::RunBatch(std::vector<Job>& batch) {
  Status broken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    broken = broken_;
  }
  std::vector<Job*> durable, scratch;
  for (Job& job : batch) (job.durable ? durable : scratch).push_back(&job);
  std::vector<Status> durable_results = RunInTransaction(durable, broken, /*commit=*/true);
  // After the durable jobs, so that these see everything submitted before them.
  std::vector<Status> scratch_results = RunInTransaction(scratch, broken, /*commit=*/false);
  std::vector<std::function<void(Status)>> dones;
  std::vector<Status> results;
  dones.reserve(batch.size());
  results.reserve(batch.size());
  for (std::size_t i = 0; i < durable.size(); ++i) {
    if (!durable[i]->done) continue;
    dones.push_back(std::move(durable[i]->done));
    results.push_back(std::move(durable_results[i]));
  }
  for (std::size_t i = 0; i < scratch.size(); ++i) {
    if (!scratch[i]->done) continue;
    dones.push_back(std::move(scratch[i]->done));
    results.push_back(std::move(scratch_results[i]));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.batches++;
    stats_.jobs += batch.size();
    // In order behind every earlier batch's dones; a batch that wrote nothing
    // needs no fsync of its own, only to wait for one that is pending.
    if (wal_sync_ && (!durable.empty() || syncing_ || !unsynced_.empty())) {
      unsynced_.push_back(Unsynced{std::move(dones), std::move(results)});
      sync_cv_.notify_one();
      return;
    }
  }
  PostDones(std::move(dones), std::move(results));
}

std::vector<Status> BatchWriter::RunInTransaction(const std::vector<Job*>& jobs, const Status& broken, bool commit) {
  std::vector<Status> results(jobs.size());
  if (jobs.empty()) return results;
  Status begin = broken.ok() ? db_.Begin() : broken;
  if (!begin.ok()) {
    for (auto& r : results) r = begin;
    return results;
  }
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    results[i] = jobs[i]->run(db_);
    // Some errors (ON CONFLICT ROLLBACK, I/O, full disk) make SQLite roll the
    // whole transaction back: nothing of this batch is durable then.
    if (!db_.InTransaction()) {
      Status lost = Status::IoError("batch transaction rolled back: " + results[i].message());
      for (auto& r : results) r = lost;
      return results;
    }
  }
  if (!commit) {
    db_.Rollback();
    return results;
  }
  Status committed = db_.Commit();
  if (!committed.ok()) {
    db_.Rollback();
    for (auto& r : results) r = committed;
  }
  return results;
}

void BatchWriter::SyncLoop() {
  std::deque<Unsynced> batches;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      syncing_ = false;
      synced_cv_.notify_all();
      idle_cv_.notify_all();
      sync_cv_.wait(lock, [this] { return storage_done_ || !unsynced_.empty(); });
      if (unsynced_.empty()) return;
      batches.swap(unsynced_);
      syncing_ = true;
    }
    Status synced = wal_sync_->Sync();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.syncs++;
      if (!synced.ok() && broken_.ok()) {
        broken_ = Status::IoError("storage is broken until restart; " + synced.message());
      }
      synced = broken_;
    }
    for (Unsynced& b : batches) {
      if (!synced.ok()) {
        for (Status& r : b.results) r = synced;
      }
      PostDones(std::move(b.dones), std::move(b.results));
    }
    batches.clear();
  }
}

void BatchWriter::PostDones(std::vector<std::function<void(Status)>> dones, std::vector<Status> results) {
  if (dones.empty()) return;
  boost::asio::post(io_, [dones = std::move(dones), results = std::move(results)]() mutable {
    for (std::size_t i = 0; i < dones.size(); ++i) dones[i](results[i]);
  });
}

}  // namespace commitd
