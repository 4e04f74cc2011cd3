#include "tests/sim/sim_storage_queue.h"

namespace commitd::sim {

void SimStorageQueue::Attach(sqlite::Database* db, std::function<void(sqlite::Database&)> after_rollback) {
  db_ = db;
  after_rollback_ = std::move(after_rollback);
}

void SimStorageQueue::Submit(Job job) {
  queued_.push_back(std::move(job));
  ScheduleSync();
}

void SimStorageQueue::Read(std::function<void(sqlite::Database&)> fn) {
  reads_.push_back(std::move(fn));
  ScheduleSync();
}

void SimStorageQueue::ScheduleSync() {
  if (sync_scheduled_) return;
  sync_scheduled_ = true;
  scheduler_.After(random_.Uniform(1, max_delay_ms_), node_, [this, epoch = epoch_] { Sync(epoch); });
}

void SimStorageQueue::Crash() {
  ++epoch_;
  if (!queued_.empty()) {
    trace_.Add(scheduler_.now(), node_, "storage lost " + std::to_string(queued_.size()) + " unsynced job(s)");
  }
  queued_.clear();
  reads_.clear();
  completed_.clear();
  sync_scheduled_ = false;
  delivery_scheduled_ = false;
  db_ = nullptr;
}

void SimStorageQueue::Sync(uint64_t epoch) {
  if (epoch != epoch_ || db_ == nullptr) return;
  sync_scheduled_ = false;
  auto reads = std::move(reads_);
  reads_.clear();
  for (auto& read : reads) read(*db_);
  if (epoch != epoch_) return;  // a read's completion crashed the node
  std::vector<Job> batch(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
  queued_.clear();
  if (batch.empty()) return;
  bool rolled_back = false;
  std::vector<Status> results = RunStorageBatch(*db_, batch, &rolled_back);
  if (rolled_back && after_rollback_) after_rollback_(*db_);
  ++stats_.batches;
  stats_.jobs += batch.size();
  std::size_t failed = 0;
  for (const Status& s : results) failed += s.ok() ? 0 : 1;
  trace_.Add(scheduler_.now(), node_,
             "sync " + std::to_string(batch.size()) + " job(s)" +
                 (failed == 0 ? "" : ", " + std::to_string(failed) + " failed: " + results.back().ToString()));
  if (on_synced_ && !rolled_back) on_synced_(*db_);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].done) completed_.emplace_back(std::move(batch[i].done), results[i]);
  }
  if (!completed_.empty() && !delivery_scheduled_) {
    delivery_scheduled_ = true;
    scheduler_.After(random_.Uniform(0, 2), node_, [this, epoch = epoch_] { Deliver(epoch); });
  }
}

void SimStorageQueue::Deliver(uint64_t epoch) {
  if (epoch != epoch_) return;
  delivery_scheduled_ = false;
  while (!completed_.empty() && epoch == epoch_) {
    auto [done, status] = std::move(completed_.front());
    completed_.pop_front();
    done(status);
  }
}

}  // namespace commitd::sim
