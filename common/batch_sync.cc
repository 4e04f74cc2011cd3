#include "common/batch_sync.h"

#include <algorithm>

namespace commitd {

bool StartsBatch(const StorageJob& job, bool defer_riders) {
  return !defer_riders || job.durability != Durability::kSyncWithNext;
}

BatchSync PlanBatchSync(std::span<const StorageJob> batch, bool full, bool holding, bool lingered) {
  auto any = [&](auto pred) { return std::any_of(batch.begin(), batch.end(), pred); };
  BatchSync plan;
  plan.rides = any([](const StorageJob& j) { return j.durability == Durability::kSyncWithNext; });
  const bool unsynced_done_would_wait =
      (plan.rides || holding) && any([](const StorageJob& j) { return j.durability == Durability::kNone && j.done; });
  plan.fsync = full && (lingered || any([](const StorageJob& j) { return j.durability == Durability::kSyncNow; }) ||
                        unsynced_done_would_wait);
  return plan;
}

HeldDones AfterBatch(const BatchSync& plan, bool committed, bool wrote, bool full, bool holding) {
  if (committed && plan.fsync) return wrote || !holding ? HeldDones::kDeliver : HeldDones::kSyncWalFirst;
  if (committed && full && (plan.rides || holding)) return HeldDones::kHold;
  return holding ? HeldDones::kSyncWalFirst : HeldDones::kDeliver;
}

}  // namespace commitd
