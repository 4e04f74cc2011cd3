// The storage thread: runs jobs against one SQLite database in batches, one
// SQLite transaction (and so one fsync) per batch — group commit.
//
// Thread: Submit() is called from the io thread. Each job's `run` executes on
// the storage thread inside the batch transaction; its `done` is posted back
// to the io executor after the batch committed (or failed), in submission
// order. Jobs submitted while a batch is being written form the next batch.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"

namespace commitd {

class BatchWriter {
 public:
  struct Job {
    // Storage thread, inside the batch transaction. A non-ok status fails only
    // this job; the job must leave the transaction usable (use a savepoint for
    // multi-statement work that may fail half-way).
    std::function<Status(sqlite::Database&)> run;
    // io thread, after the batch's COMMIT: the job's own status, or the commit's error.
    std::function<void(Status)> done;
    // Optional first step, storage thread: runs before every `run` of its
    // batch, in a transaction of its own that is rolled back (reads, and
    // writes that must not last: a prepare's execution). So the pages it
    // touches are not written to the WAL at the batch's COMMIT. It sees what
    // earlier batches committed, not the jobs of its own batch; `run` must
    // cope with that, and with `scratch` not having run at all (its
    // transaction could not begin).
    std::function<void(sqlite::Database&)> scratch;
    // false: what this job writes may be lost in a machine crash (it can be
    // rebuilt from what earlier, synced jobs wrote). A batch of such jobs only
    // commits with synchronous=NORMAL: no fsync; the next batch that needs one
    // syncs its WAL frames too, and recovery keeps a prefix of the WAL.
    bool needs_fsync = true;
  };

  struct Stats {
    uint64_t batches = 0;
    uint64_t jobs = 0;
  };

  // `db` is owned by the caller, outlives the writer, and from now on is
  // touched only by the storage thread.
  // after_rollback (storage thread, optional): called when a batch's durable
  // transaction was rolled back, so that state kept beside the database can
  // be rebuilt from it.
  BatchWriter(sqlite::Database& db, boost::asio::any_io_executor io, std::size_t max_batch = 1024,
              std::function<void(sqlite::Database&)> after_rollback = {});
  ~BatchWriter();  // drains queued jobs, then joins
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  void Submit(Job job);
  // Runs fn on the storage thread between batches (reads); fn posts its own
  // result to the io executor. Not ordered with respect to Submit()ted jobs.
  void Read(std::function<void(sqlite::Database&)> fn);
  // Blocks until every job submitted so far has run and its done was posted.
  void Flush();
  Stats stats() const;

 private:
  void Loop();
  void RunBatch(std::vector<Job>& batch);
  void RunScratch(std::vector<Job>& batch);
  // Runs the jobs in one transaction and commits it; each job's status.
  // *rolled_back: the transaction as a whole did not commit.
  std::vector<Status> RunDurable(std::vector<Job>& batch, bool* rolled_back);
  Status SetSynchronous(int level);  // PRAGMA synchronous, when it differs

  sqlite::Database& db_;
  boost::asio::any_io_executor io_;
  const std::size_t max_batch_;
  std::function<void(sqlite::Database&)> after_rollback_;
  // Storage thread: the connection's own PRAGMA synchronous, and the level set
  // now (NORMAL after a batch that needed no fsync, until the next one that does).
  int synchronous_ = 2;
  int current_synchronous_ = 2;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<Job> queue_;
  std::deque<std::function<void(sqlite::Database&)>> reads_;
  bool busy_ = false;
  bool stop_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace commitd
