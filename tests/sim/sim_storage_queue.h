// SimStorageQueue: a node's StorageQueue in virtual time, the simulator's
// stand-in for BatchWriter. Jobs wait in FIFO order until a sync runs them as
// one batch with RunStorageBatch (the same code BatchWriter runs) against the
// node's real SQLite file; their completions are delivered in order a little
// later, as separate events (the storage thread posting back). A crash loses
// every job not yet synced and every completion not yet delivered; what a
// sync committed stays.
//
// The database is the node's: it attaches it after opening and detaches it
// (Crash) before closing it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "common/storage_queue.h"
#include "tests/sim/random.h"
#include "tests/sim/scheduler.h"
#include "tests/sim/trace.h"

namespace commitd::sim {

class SimStorageQueue final : public StorageQueue {
 public:
  SimStorageQueue(std::string node, Scheduler& scheduler, Random& random, Trace& trace)
      : node_(std::move(node)), scheduler_(scheduler), random_(random), trace_(trace) {}

  // after_rollback: as BatchWriter's (called when a batch's transaction did not commit).
  void Attach(sqlite::Database* db, std::function<void(sqlite::Database&)> after_rollback = {});
  // Called right after each batch is durable, before any completion is
  // delivered (the world's checks read the database there).
  void set_on_synced(std::function<void(sqlite::Database&)> fn) { on_synced_ = std::move(fn); }
  void set_max_delay_ms(int64_t ms) { max_delay_ms_ = ms; }

  void Submit(Job job) override;
  void Read(std::function<void(sqlite::Database&)> fn) override;
  Stats stats() const override { return stats_; }

  // The process died: queued jobs, reads and undelivered completions are gone.
  void Crash();
  bool idle() const { return queued_.empty() && reads_.empty() && completed_.empty(); }

 private:
  void ScheduleSync();
  void Sync(uint64_t epoch);
  void Deliver(uint64_t epoch);

  std::string node_;
  Scheduler& scheduler_;
  Random& random_;
  Trace& trace_;
  sqlite::Database* db_ = nullptr;
  std::function<void(sqlite::Database&)> after_rollback_;
  std::function<void(sqlite::Database&)> on_synced_;
  int64_t max_delay_ms_ = 5;
  std::deque<Job> queued_;
  std::deque<std::function<void(sqlite::Database&)>> reads_;
  std::deque<std::pair<std::function<void(Status)>, Status>> completed_;
  bool sync_scheduled_ = false;
  bool delivery_scheduled_ = false;
  uint64_t epoch_ = 0;  // bumped by a crash: events scheduled before it do nothing
  Stats stats_;
};

}  // namespace commitd::sim
