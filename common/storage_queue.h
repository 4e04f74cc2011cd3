// StorageQueue: where a node's durable writes go. Jobs run in batches, one
// SQLite transaction (and so one fsync) per batch: group commit. BatchWriter
// is the implementation the binaries use (a storage thread); the simulator
// has one in virtual time. Both run a batch with RunStorageBatch, so what a
// batch does to the database is the same code in both.
//
// Thread: Submit() and Read() are called from the owner's event thread; each
// job's `done` and each read's result come back on that thread, after the
// batch committed (or failed) and, as its Durability asks, was synced; dones
// come back in submission order.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"

namespace commitd {

// When a job's writes must reach the disk, relative to its `done`.
enum class Durability {
  // Synced before done; its batch commits with the connection's own level
  // (synchronous=FULL: an fsync).
  kSyncNow,
  // Synced before done, but nobody waits on it for an answer to a client: a
  // batch of such jobs commits with synchronous=NORMAL (no fsync), and their
  // dones wait for the next batch that syncs (its fsync covers every earlier
  // WAL frame) or, when none comes within the writer's linger, for an fsync
  // of the WAL on its own. An agent's commit rides on the next prepare's fsync.
  kSyncWithNext,
  // May be lost in a machine crash (it can be rebuilt from what earlier,
  // synced jobs wrote): a batch of such jobs commits without fsync, and the
  // next batch that syncs covers it; recovery keeps a prefix of the WAL.
  kNone,
};

struct StorageJob {
  // Inside the batch transaction. A non-ok status fails only this job; the
  // job must leave the transaction usable (use a savepoint for
  // multi-statement work that may fail half-way).
  std::function<Status(sqlite::Database&)> run;
  // On the owner's thread, after the batch's COMMIT: the job's own status, or
  // the commit's error.
  std::function<void(Status)> done;
  // Optional first step: runs before every `run` of its batch, in a
  // transaction of its own that is rolled back (reads, and writes that must
  // not last: a prepare's execution), so the pages it touches are not written
  // to the WAL at the batch's COMMIT. It sees what earlier batches committed,
  // not the jobs of its own batch; `run` must cope with that, and with
  // `scratch` not having run at all (its transaction could not begin).
  std::function<void(sqlite::Database&)> scratch;
  Durability durability = Durability::kSyncNow;
};

class StorageQueue {
 public:
  using Job = StorageJob;
  struct Stats {
    uint64_t batches = 0;
    uint64_t jobs = 0;
  };

  virtual ~StorageQueue() = default;
  virtual void Submit(Job job) = 0;
  // Runs fn against the database between batches (reads); fn delivers its own
  // result to the owner's thread. Not ordered with respect to Submit()ted jobs.
  virtual void Read(std::function<void(sqlite::Database&)> fn) = 0;
  // From now on a kSyncWithNext job is not written in a batch of its own:
  // it waits in the queue for the next job that needs a batch, and is
  // written in that batch, whose fsync it rides on; when none comes within
  // the linger, its batch syncs (the rule: StartsBatch, common/batch_sync.h).
  // Its done comes no later than without it; only its write moves. For a
  // database whose readers need not see a job's writes before its done.
  // Called by the owner before its first Submit.
  virtual void DeferRiders() = 0;
  virtual Stats stats() const = 0;
};

// Runs one batch against db: every scratch step in one transaction that is
// rolled back, then every run in one transaction that is committed. One status
// per job. *rolled_back: the durable transaction as a whole did not commit
// (then every status is that error). The caller sets PRAGMA synchronous.
// commit_seconds (optional): how long the COMMIT took (with synchronous=FULL,
// the fsync), measured on the steady clock; 0 if it was never reached.
// wrote (optional): the transaction wrote pages. A COMMIT that writes none
// writes nothing to the WAL, and so does not fsync it, whatever the level.
std::vector<Status> RunStorageBatch(sqlite::Database& db, std::vector<StorageJob>& batch, bool* rolled_back,
                                    double* commit_seconds = nullptr, bool* wrote = nullptr);

}  // namespace commitd
