// BatchSync: which batches of a StorageQueue are fsynced, and when the dones
// of jobs that ride on a later fsync (Durability::kSyncWithNext) are
// delivered. BatchWriter runs this rule; the simulator's queue follows it in
// virtual time, so both decide every batch the same way.
#pragma once

#include <chrono>
#include <span>

#include "common/storage_queue.h"

namespace commitd {

// How long a held done may wait for another batch's fsync before the WAL is
// synced for it alone.
inline constexpr std::chrono::microseconds kDefaultSyncLinger{1000};

// What a batch asks of the disk, decided before it runs.
struct BatchSync {
  // Commits with the connection's own level: at synchronous=FULL an fsync,
  // which covers every WAL frame written before it. Otherwise the batch
  // commits with synchronous=NORMAL and is not on disk for certain.
  bool fsync = false;
  // Some job's done waits for a later fsync (kSyncWithNext).
  bool rides = false;
};

// Whether a queued job starts a batch as soon as the queue gets to it. With
// riders deferred (StorageQueue::DeferRiders), a kSyncWithNext job does not:
// it waits in the queue for a job that does, for a read, or for the linger
// since the oldest queued job (then its batch syncs: `lingered` below), so
// that it is written in the batch whose fsync it rides on instead of in a
// batch of its own.
bool StartsBatch(const StorageJob& job, bool defer_riders);

// full: the connection's own level is synchronous=FULL (below it nothing is
// fsynced and nothing is held). holding: dones of earlier batches are held.
// A kNone done never waits behind held ones: it makes the batch fsync instead.
// lingered: deferred riders taken because none of their jobs starts a batch
// and the linger ran out (or the queue is flushed or stopping): the batch
// syncs, as nothing later is coming to carry them.
BatchSync PlanBatchSync(std::span<const StorageJob> batch, bool full, bool holding, bool lingered = false);

// What becomes of the held dones and of this batch's once it ran.
enum class HeldDones {
  kDeliver,       // all of them now: this batch's fsync covered the held ones, or none were held
  kHold,          // this batch's join the held ones, until a later fsync or the linger
  kSyncWalFirst,  // an fsync of the WAL alone, then all of them (this batch failed or must not wait)
};

// committed: the batch's transaction committed; wrote: it wrote pages. A
// COMMIT that writes nothing does not fsync, so it covers no held done.
HeldDones AfterBatch(const BatchSync& plan, bool committed, bool wrote, bool full, bool holding);

}  // namespace commitd
