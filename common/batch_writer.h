// The storage thread: runs jobs against one SQLite database in batches, one
// SQLite transaction (and so one fsync) per batch — group commit.
//
// Thread: Submit() is called from the io thread. Each job's `run` executes on
// the storage thread inside the batch transaction; its `done` is posted back
// to the io executor once the batch is durable (or failed): a batch's dones
// after every earlier batch's, its durable jobs' dones first. Jobs submitted
// while a batch is being written form the next batch.
//
// SyncMode::kOverlapped (WAL databases): the database runs with
// synchronous=NORMAL and a second thread fdatasync()s the WAL, so batch N's
// fsync overlaps batch N+1's statements. A batch's dones are posted only after
// an fdatasync that started after its COMMIT; later batches may read what an
// earlier, not yet durable batch wrote, but nothing of theirs is reported
// before that earlier batch is durable too.
// After a failed fdatasync nothing is trusted any more (the kernel may have
// dropped the failed pages): every unsynced and every later job fails.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"

namespace commitd {

namespace sqlite {
class WalSync;
}

class BatchWriter {
 public:
  struct Job {
    // Storage thread, inside the batch transaction. A non-ok status fails only
    // this job; the job must leave the transaction usable (use a savepoint for
    // multi-statement work that may fail half-way).
    std::function<Status(sqlite::Database&)> run;
    // io thread, after the batch's COMMIT is durable: the job's own status, or
    // the commit's (or fsync's) error.
    std::function<void(Status)> done;
    // false: the job writes nothing that must last (a scratch job). It runs
    // after its batch's durable jobs, in a transaction of its own that is
    // rolled back (so the pages it touched are not written to the WAL), and
    // sees everything submitted before it; its done comes after theirs.
    bool durable = true;
  };

  enum class SyncMode {
    kInCommit,    // SQLite's own synchronous setting makes each COMMIT durable
    kOverlapped,  // see above; falls back to kInCommit for a database not in WAL mode
  };

  struct Stats {
    uint64_t batches = 0;
    uint64_t jobs = 0;
    uint64_t syncs = 0;  // fdatasync calls of kOverlapped
  };

  // `db` is owned by the caller, outlives the writer, and from now on is
  // touched only by the storage thread.
  BatchWriter(sqlite::Database& db, boost::asio::any_io_executor io, std::size_t max_batch = 1024,
              SyncMode sync = SyncMode::kInCommit);
  ~BatchWriter();  // drains queued jobs and their syncs, then joins
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  void Submit(Job job);
  // Runs fn on the storage thread between batches (reads), once everything
  // committed before is durable; fn posts its own result to the io executor.
  // Not ordered with respect to Submit()ted jobs.
  void Read(std::function<void(sqlite::Database&)> fn);
  // Blocks until every job submitted so far has run and its done was posted.
  void Flush();
  Stats stats() const;
  bool overlapped() const { return wal_sync_ != nullptr; }

 private:
  // A committed batch waiting for its fdatasync.
  struct Unsynced {
    std::vector<std::function<void(Status)>> dones;
    std::vector<Status> results;
  };

  void Loop();
  void SyncLoop();
  void RunBatch(std::vector<Job>& batch);
  // Runs jobs in one transaction, committed or rolled back; each job's status.
  std::vector<Status> RunInTransaction(const std::vector<Job*>& jobs, const Status& broken, bool commit);
  void PostDones(std::vector<std::function<void(Status)>> dones, std::vector<Status> results);
  void WaitSynced(std::unique_lock<std::mutex>& lock);

  sqlite::Database& db_;
  boost::asio::any_io_executor io_;
  const std::size_t max_batch_;
  std::unique_ptr<sqlite::WalSync> wal_sync_;  // set in kOverlapped mode; used only by sync_thread_
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::condition_variable sync_cv_;
  std::condition_variable synced_cv_;
  std::deque<Job> queue_;
  std::deque<std::function<void(sqlite::Database&)>> reads_;
  std::deque<Unsynced> unsynced_;
  bool busy_ = false;
  bool syncing_ = false;
  bool stop_ = false;
  bool storage_done_ = false;
  Status broken_;  // the failed fdatasync, once one failed
  Stats stats_;
  std::thread thread_;
  std::thread sync_thread_;
};

}  // namespace commitd
