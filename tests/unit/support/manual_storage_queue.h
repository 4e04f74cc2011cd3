// A StorageQueue that runs its jobs on the test's thread when the test says
// so: Sync() runs everything queued as one batch (as the storage thread
// would), then the completions.
#pragma once

#include <deque>
#include <iterator>
#include <vector>

#include "common/sqlite_db.h"
#include "common/storage_queue.h"

namespace commitd::testing {

class ManualStorageQueue final : public StorageQueue {
 public:
  explicit ManualStorageQueue(sqlite::Database& db) : db_(db) {}
  void Submit(Job job) override { jobs_.push_back(std::move(job)); }
  void Read(std::function<void(sqlite::Database&)> fn) override { fn(db_); }
  // Batches run when the test syncs them: there is no linger to defer riders by.
  void DeferRiders() override {}
  Stats stats() const override { return stats_; }
  void Sync() {
    std::vector<Job> batch(std::make_move_iterator(jobs_.begin()), std::make_move_iterator(jobs_.end()));
    jobs_.clear();
    if (batch.empty()) return;
    bool rolled_back = false;
    std::vector<Status> results = RunStorageBatch(db_, batch, &rolled_back);
    ++stats_.batches;
    stats_.jobs += batch.size();
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(results[i]);
  }
  std::size_t queued() const { return jobs_.size(); }

 private:
  sqlite::Database& db_;
  std::deque<Job> jobs_;
  Stats stats_;
};

}  // namespace commitd::testing
