#include "common/storage_queue.h"

#include <chrono>

#include <algorithm>
#include <string>

namespace commitd {
namespace {

void RunScratch(sqlite::Database& db, std::vector<StorageJob>& batch) {
  if (std::none_of(batch.begin(), batch.end(), [](const StorageJob& j) { return static_cast<bool>(j.scratch); })) {
    return;
  }
  if (!db.Begin().ok()) return;
  for (StorageJob& job : batch) {
    if (!job.scratch) continue;
    job.scratch(db);
    if (!db.InTransaction()) return;  // SQLite rolled it back itself; the rest never ran
  }
  db.Rollback();
}

// Pages this connection has written to the database or its WAL so far.
int PagesWritten(sqlite::Database& db) {
  int current = 0, highest = 0;
  sqlite3_db_status(db.handle(), SQLITE_DBSTATUS_CACHE_WRITE, &current, &highest, 0);
  return current;
}

std::vector<Status> RunDurable(sqlite::Database& db, std::vector<StorageJob>& batch, bool* rolled_back,
                               double* commit_seconds) {
  std::vector<Status> results(batch.size());
  Status begin = db.Begin();
  if (!begin.ok()) {
    for (auto& r : results) r = begin;
    return results;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    results[i] = batch[i].run(db);
    // Some errors (ON CONFLICT ROLLBACK, I/O, full disk) make SQLite roll the
    // whole transaction back: nothing of this batch is durable then.
    if (!db.InTransaction()) {
      Status lost = Status::IoError("batch transaction rolled back: " + results[i].message());
      for (auto& r : results) r = lost;
      *rolled_back = true;
      return results;
    }
  }
  const auto commit_start = std::chrono::steady_clock::now();
  Status committed = db.Commit();
  if (commit_seconds != nullptr) {
    *commit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_start).count();
  }
  if (!committed.ok()) {
    db.Rollback();
    for (auto& r : results) r = committed;
    *rolled_back = true;
  }
  return results;
}

}  // namespace

std::vector<Status> RunStorageBatch(sqlite::Database& db, std::vector<StorageJob>& batch, bool* rolled_back,
                                    double* commit_seconds, bool* wrote) {
  *rolled_back = false;
  RunScratch(db, batch);
  const int pages_before = wrote != nullptr ? PagesWritten(db) : 0;
  std::vector<Status> results = RunDurable(db, batch, rolled_back, commit_seconds);
  if (wrote != nullptr) *wrote = !*rolled_back && PagesWritten(db) != pages_before;
  return results;
}

}  // namespace commitd
