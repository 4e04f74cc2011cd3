#include "common/batch_writer.h"

#include <boost/asio/post.hpp>
#include <algorithm>
#include <string>

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
  idle_cv_.wait(lock, [this] { return queue_.empty() && reads_.empty() && !busy_; });
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
    }
    for (auto& read : reads) read(db_);
    reads.clear();
    if (!batch.empty()) RunBatch(batch);
  }
}

void BatchWriter::RunBatch(std::vector<Job>& batch) {
  const bool skip_fsync = synchronous_ > 1 && std::none_of(batch.begin(), batch.end(),
                                                           [](const Job& j) { return j.needs_fsync; });
  // A batch that needs its fsync never commits unless the level is back.
  Status level = SetSynchronous(skip_fsync ? 1 : synchronous_);
  bool rolled_back = false;
  double commit_seconds = 0;
  std::vector<Status> results = level.ok() ? RunStorageBatch(db_, batch, &rolled_back, &commit_seconds)
                                           : std::vector<Status>(batch.size(), level);
  if (rolled_back && after_rollback_) after_rollback_(db_);
  BatchMetrics m;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.batches++;
    stats_.jobs += batch.size();
    m = metrics_;
  }
  if (m.batch_size != nullptr) m.batch_size->Observe(static_cast<double>(batch.size()));
  if (m.fsync_seconds != nullptr && !skip_fsync && level.ok() && !rolled_back) m.fsync_seconds->Observe(commit_seconds);
  std::vector<std::function<void(Status)>> dones;
  dones.reserve(batch.size());
  for (Job& job : batch) dones.push_back(std::move(job.done));
  boost::asio::post(io_, [dones = std::move(dones), results = std::move(results)]() mutable {
    for (std::size_t i = 0; i < dones.size(); ++i) {
      if (dones[i]) dones[i](results[i]);
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
