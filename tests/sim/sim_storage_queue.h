// SimStorageQueue: a node's StorageQueue in virtual time, the simulator's
// stand-in for BatchWriter. Jobs wait in FIFO order until a sync runs them as
// one batch with RunStorageBatch (the same code BatchWriter runs) against the
// node's real SQLite file; their completions are delivered in order a little
// later, as separate events (the storage thread posting back).
//
// What survives a crash depends on the run's DiskModel:
// - kCommitIsDurable (process crashes only): every batch is durable once it
//   committed; a crash loses the queued jobs and the undelivered completions.
// - kFsyncIsDurable (power losses too): each batch fsyncs or not, and its
//   dones are held for a later fsync or delivered, by BatchWriter's rule
//   (common/batch_sync.h), with its linger in virtual time. A power loss
//   (Crash, then LoseUnsynced) also takes back a suffix, drawn at random, of
//   the batches committed since the last fsync (UnsyncedImages).
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
#include "tests/sim/context.h"
#include "tests/sim/unsynced_images.h"

namespace commitd::sim {

class SimStorageQueue final : public StorageQueue {
 public:
  SimStorageQueue(std::string node, Context& ctx);

  // after_rollback: as BatchWriter's (called when a batch's transaction did not commit).
  // With kFsyncIsDurable, attaching is a sync: the binaries fsync the WAL
  // when they open their database.
  void Attach(sqlite::Database* db, std::function<void(sqlite::Database&)> after_rollback = {});
  // Called each time what the database holds becomes durable, before any
  // completion this releases is delivered (the world's checks read the
  // database there): after every committed batch (kCommitIsDurable), after
  // every fsync, and at Attach (kFsyncIsDurable).
  void set_on_synced(std::function<void(sqlite::Database&)> fn) { on_synced_ = std::move(fn); }
  void set_max_delay_ms(int64_t ms) { max_delay_ms_ = ms; }

  void Submit(Job job) override;
  void Read(std::function<void(sqlite::Database&)> fn) override;
  // As BatchWriter's: deferred riders wait for a job that starts a batch, a
  // read, or the linger (in virtual ms) since the oldest queued job.
  void DeferRiders() override { defer_riders_ = true; }
  Stats stats() const override { return stats_; }

  // The process died: queued jobs, reads, held and undelivered completions are gone.
  void Crash();
  // The machine lost power (after Crash, with the database closed): the file
  // keeps what was synced and a prefix, drawn at random, of what was not.
  void LoseUnsynced();
  bool idle() const { return queued_.empty() && reads_.empty() && completed_.empty() && held_.empty(); }
  // Batches committed since the last fsync (a power loss may lose them).
  std::size_t unsynced_batches() const { return images_.batches(); }

 private:
  struct Completion {
    std::function<void(Status)> done;
    Status status;
    Durability durability = Durability::kSyncNow;
    uint64_t batch = 0;  // the committed batch holding its writes; 0: its batch wrote nothing
  };

  void ScheduleSync();
  void Sync(uint64_t epoch);
  // The held dones' linger ran out: the WAL is synced for them alone.
  void LingerOut(uint64_t epoch, uint64_t hold);
  void SyncWal();
  // Everything committed so far is durable.
  void Synced();
  void Release();  // the held completions, delivered next
  void ScheduleDelivery();
  void Deliver(uint64_t epoch);

  std::string node_;
  Context& ctx_;
  const DiskModel disk_;
  sqlite::Database* db_ = nullptr;
  std::string path_;  // of the attached database, kept while it is closed
  std::function<void(sqlite::Database&)> after_rollback_;
  std::function<void(sqlite::Database&)> on_synced_;
  int64_t max_delay_ms_ = 5;
  std::deque<Job> queued_;
  std::deque<std::function<void(sqlite::Database&)>> reads_;
  std::deque<Completion> completed_;
  std::deque<Completion> held_;  // waiting for an fsync (kFsyncIsDurable)
  uint64_t holds_ = 0;            // bumped when dones start to be held: a linger of an earlier hold does nothing
  bool sync_scheduled_ = false;
  bool defer_riders_ = false;
  int64_t first_queued_ms_ = 0;       // when the oldest queued job was queued
  bool linger_sync_scheduled_ = false;  // a sync at the deferred riders' linger
  bool delivery_scheduled_ = false;
  uint64_t epoch_ = 0;            // bumped by a crash: events scheduled before it do nothing
  uint64_t committed_batches_ = 0;
  uint64_t synced_through_ = 0;  // every committed batch up to this one is durable
  UnsyncedImages images_;
  Stats stats_;
};

}  // namespace commitd::sim
