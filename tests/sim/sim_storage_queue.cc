#include "tests/sim/sim_storage_queue.h"

#include "common/batch_sync.h"

#include <algorithm>

namespace commitd::sim {

SimStorageQueue::SimStorageQueue(std::string node, Context& ctx)
    : node_(std::move(node)), ctx_(ctx), disk_(ctx.disk) {}

void SimStorageQueue::Attach(sqlite::Database* db, std::function<void(sqlite::Database&)> after_rollback) {
  db_ = db;
  path_ = db->path();
  after_rollback_ = std::move(after_rollback);
  // The binaries' sqlite::Database::Open fsyncs the WAL it finds: whatever a
  // crash or a power loss left in the file is durable once the node is back.
  if (disk_ == DiskModel::kFsyncIsDurable) {
    if (images_.batches() != 0) {
      ctx_.Log(node_, "opening the database synced " + std::to_string(images_.batches()) +
                          " batch(es) committed without fsync");
    }
    Synced();
  }
}

void SimStorageQueue::Submit(Job job) {
  if (queued_.empty()) first_queued_ms_ = ctx_.now();
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
  ctx_.scheduler.After(ctx_.random.Uniform(1, max_delay_ms_), node_, [this, epoch = epoch_] { Sync(epoch); });
}

void SimStorageQueue::Crash() {
  ++epoch_;
  if (!queued_.empty()) {
    ctx_.Log(node_, "storage lost " + std::to_string(queued_.size()) + " unsynced job(s)");
  }
  queued_.clear();
  reads_.clear();
  completed_.clear();
  held_.clear();
  sync_scheduled_ = false;
  linger_sync_scheduled_ = false;
  delivery_scheduled_ = false;
  db_ = nullptr;
}

void SimStorageQueue::LoseUnsynced() {
  const std::size_t unsynced = images_.batches();
  if (unsynced == 0) return;
  const auto kept = static_cast<std::size_t>(ctx_.random.Uniform(0, static_cast<int64_t>(unsynced)));
  ctx_.Log(node_, "power loss: the disk kept " + std::to_string(kept) + " of the " + std::to_string(unsynced) +
                      " batch(es) committed since the last fsync");
  if (Status s = images_.Restore(path_, kept); !s.ok()) ctx_.checker.Fail("simulation", node_ + ": " + s.ToString());
  synced_through_ = committed_batches_;
}

void SimStorageQueue::Sync(uint64_t epoch) {
  if (epoch != epoch_ || db_ == nullptr) return;
  sync_scheduled_ = false;
  auto reads = std::move(reads_);
  reads_.clear();
  for (auto& read : reads) read(*db_);
  if (epoch != epoch_) return;  // a read's completion crashed the node
  if (queued_.empty()) return;
  const bool starts = std::any_of(queued_.begin(), queued_.end(),
                                  [this](const Job& j) { return StartsBatch(j, defer_riders_); });
  const int64_t linger_end = first_queued_ms_ + ctx_.sync_linger_ms;
  if (!starts && reads.empty() && ctx_.now() < linger_end) {
    if (!linger_sync_scheduled_) {
      linger_sync_scheduled_ = true;
      ctx_.scheduler.After(linger_end - ctx_.now(), node_, [this, epoch = epoch_] {
        if (epoch != epoch_) return;
        linger_sync_scheduled_ = false;
        Sync(epoch);
      });
    }
    return;
  }
  const bool lingered = !starts && reads.empty();
  std::vector<Job> batch(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
  queued_.clear();
  const bool holding = !held_.empty();
  // Without power losses every committed batch is durable: as if each fsynced.
  const BatchSync plan = disk_ == DiskModel::kCommitIsDurable ? BatchSync{.fsync = true}
                                                              : PlanBatchSync(batch, /*full=*/true, holding, lingered);
  if (!plan.fsync) {
    if (Status s = images_.CaptureBefore(path_); !s.ok()) ctx_.checker.Fail("simulation", node_ + ": " + s.ToString());
  }
  bool rolled_back = false;
  bool wrote = false;
  std::vector<Status> results = RunStorageBatch(*db_, batch, &rolled_back, nullptr, &wrote);
  if (rolled_back && after_rollback_) after_rollback_(*db_);
  if (disk_ == DiskModel::kCommitIsDurable) wrote = !rolled_back;  // "synced" is "committed"
  if (!plan.fsync && !wrote) images_.DropLast();  // the file did not change
  ++stats_.batches;
  stats_.jobs += batch.size();
  const uint64_t committed = wrote ? ++committed_batches_ : 0;
  // SQLite fsyncs at a COMMIT that writes to the WAL, never at one that writes nothing.
  const bool synced = !rolled_back && plan.fsync && wrote;
  std::size_t failed = 0;
  for (const Status& s : results) failed += s.ok() ? 0 : 1;
  std::string what = "sync ";  // a failed batch too: "sync ..., N failed: ..."
  if (!plan.fsync) {
    what = "commit without fsync: ";
  } else if (!wrote && !rolled_back) {
    what = "commit, nothing written: ";
  }
  ctx_.Log(node_, what + std::to_string(batch.size()) + " job(s)" +
                      (failed == 0 ? "" : ", " + std::to_string(failed) + " failed: " + results.back().ToString()));
  const HeldDones next = AfterBatch(plan, !rolled_back, wrote, /*full=*/true, holding);
  if (next == HeldDones::kSyncWalFirst) {
    SyncWal();
  } else if (next == HeldDones::kDeliver) {
    if (synced) Synced();
    Release();
  } else if (!holding) {
    ctx_.scheduler.After(ctx_.sync_linger_ms, node_, [this, epoch = epoch_, hold = ++holds_] { LingerOut(epoch, hold); });
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Completion c{std::move(batch[i].done), results[i], batch[i].durability, committed};
    // Held as BatchWriter holds them, with or without a done: they keep the WAL owing an fsync.
    if (next == HeldDones::kHold) {
      held_.push_back(std::move(c));
    } else if (c.done) {
      completed_.push_back(std::move(c));
    }
  }
  ScheduleDelivery();
}

void SimStorageQueue::LingerOut(uint64_t epoch, uint64_t hold) {
  if (epoch != epoch_ || db_ == nullptr || held_.empty() || hold != holds_) return;
  SyncWal();
  ScheduleDelivery();
}

void SimStorageQueue::SyncWal() {
  ctx_.Log(node_, "sync of the WAL for " + std::to_string(held_.size()) + " held job(s)");
  Synced();
  Release();
}

void SimStorageQueue::Synced() {
  synced_through_ = committed_batches_;
  images_.Clear();
  if (on_synced_) on_synced_(*db_);
}

void SimStorageQueue::Release() {
  for (auto& c : held_) {
    if (c.done) completed_.push_back(std::move(c));
  }
  held_.clear();
}

void SimStorageQueue::ScheduleDelivery() {
  if (completed_.empty() || delivery_scheduled_) return;
  delivery_scheduled_ = true;
  ctx_.scheduler.After(ctx_.random.Uniform(0, 2), node_, [this, epoch = epoch_] { Deliver(epoch); });
}

void SimStorageQueue::Deliver(uint64_t epoch) {
  if (epoch != epoch_) return;
  delivery_scheduled_ = false;
  while (!completed_.empty() && epoch == epoch_) {
    Completion c = std::move(completed_.front());
    completed_.pop_front();
    // BatchWriter's promise: a job that asked for an fsync hears of its
    // success only once its batch is synced; a power loss may take back any later one.
    if (c.status.ok() && c.durability != Durability::kNone && c.batch > synced_through_) {
      ctx_.checker.Fail("durable completion", node_ + ": a job that asked for an fsync was told it succeeded while "
                                                      "its batch was not synced");
    }
    c.done(c.status);
  }
}

}  // namespace commitd::sim
