#include "common/batch_sync.h"

#include <doctest/doctest.h>

#include <vector>

namespace commitd {
namespace {

StorageJob Job(Durability durability, bool with_done = true) {
  StorageJob job;
  job.run = [](sqlite::Database&) { return Status::Ok(); };
  if (with_done) job.done = [](Status) {};
  job.durability = durability;
  return job;
}

constexpr bool kFull = true;
constexpr bool kCommitted = true;
constexpr bool kWrote = true;

TEST_CASE("a batch with a job that must sync now fsyncs, and every done is delivered") {
  const std::vector<StorageJob> batch{Job(Durability::kSyncWithNext), Job(Durability::kSyncNow)};
  for (bool holding : {false, true}) {
    BatchSync plan = PlanBatchSync(batch, kFull, holding);
    CHECK(plan.fsync);
    CHECK(AfterBatch(plan, kCommitted, kWrote, kFull, holding) == HeldDones::kDeliver);
  }
}

TEST_CASE("a riding job commits without fsync and its done is held, behind the ones held before it too") {
  const std::vector<StorageJob> batch{Job(Durability::kSyncWithNext)};
  for (bool holding : {false, true}) {
    BatchSync plan = PlanBatchSync(batch, kFull, holding);
    CHECK_FALSE(plan.fsync);
    CHECK(plan.rides);
    CHECK(AfterBatch(plan, kCommitted, kWrote, kFull, holding) == HeldDones::kHold);
  }
}

TEST_CASE("a done that asks for no sync is not held: with dones held, its batch fsyncs") {
  const std::vector<StorageJob> alone{Job(Durability::kNone)};
  BatchSync plan = PlanBatchSync(alone, kFull, /*holding=*/false);
  CHECK_FALSE(plan.fsync);
  CHECK(AfterBatch(plan, kCommitted, kWrote, kFull, false) == HeldDones::kDeliver);

  plan = PlanBatchSync(alone, kFull, /*holding=*/true);
  CHECK(plan.fsync);
  CHECK(AfterBatch(plan, kCommitted, kWrote, kFull, true) == HeldDones::kDeliver);

  const std::vector<StorageJob> beside_a_rider{Job(Durability::kSyncWithNext), Job(Durability::kNone)};
  CHECK(PlanBatchSync(beside_a_rider, kFull, false).fsync);
}

TEST_CASE("a batch meant to fsync that wrote nothing did not fsync: the held dones get an fsync of the WAL first") {
  const std::vector<StorageJob> read{Job(Durability::kNone)};
  BatchSync plan = PlanBatchSync(read, kFull, /*holding=*/true);
  REQUIRE(plan.fsync);
  CHECK(AfterBatch(plan, kCommitted, !kWrote, kFull, true) == HeldDones::kSyncWalFirst);
  CHECK(AfterBatch(plan, kCommitted, !kWrote, kFull, false) == HeldDones::kDeliver);  // nothing to cover
}

TEST_CASE("a job without a done that asks for no sync rides along with the held ones") {
  const std::vector<StorageJob> batch{Job(Durability::kNone, /*with_done=*/false)};
  BatchSync plan = PlanBatchSync(batch, kFull, /*holding=*/true);
  CHECK_FALSE(plan.fsync);
  CHECK(AfterBatch(plan, kCommitted, kWrote, kFull, true) == HeldDones::kHold);
}

TEST_CASE("a batch that did not commit releases the held dones after an fsync of the WAL alone") {
  const std::vector<StorageJob> batch{Job(Durability::kSyncWithNext)};
  BatchSync plan = PlanBatchSync(batch, kFull, /*holding=*/true);
  CHECK(AfterBatch(plan, !kCommitted, !kWrote, kFull, true) == HeldDones::kSyncWalFirst);
  CHECK(AfterBatch(plan, !kCommitted, !kWrote, kFull, false) == HeldDones::kDeliver);
}

TEST_CASE("with riders deferred, only a job that is not a rider starts a batch") {
  CHECK(StartsBatch(Job(Durability::kSyncNow), /*defer_riders=*/true));
  CHECK(StartsBatch(Job(Durability::kNone), /*defer_riders=*/true));
  CHECK_FALSE(StartsBatch(Job(Durability::kSyncWithNext), /*defer_riders=*/true));
  for (Durability d : {Durability::kSyncNow, Durability::kSyncWithNext, Durability::kNone}) {
    CHECK(StartsBatch(Job(d), /*defer_riders=*/false));
  }
}

TEST_CASE("deferred riders taken at their linger fsync in their own batch, and every done is delivered") {
  const std::vector<StorageJob> batch{Job(Durability::kSyncWithNext), Job(Durability::kSyncWithNext)};
  for (bool holding : {false, true}) {
    BatchSync plan = PlanBatchSync(batch, kFull, holding, /*lingered=*/true);
    CHECK(plan.fsync);
    CHECK(AfterBatch(plan, kCommitted, kWrote, kFull, holding) == HeldDones::kDeliver);
  }
  CHECK_FALSE(PlanBatchSync(batch, !kFull, false, /*lingered=*/true).fsync);
}

TEST_CASE("below synchronous=FULL nothing is fsynced and nothing is held") {
  const std::vector<StorageJob> batch{Job(Durability::kSyncNow), Job(Durability::kSyncWithNext), Job(Durability::kNone)};
  BatchSync plan = PlanBatchSync(batch, !kFull, false);
  CHECK_FALSE(plan.fsync);
  CHECK(AfterBatch(plan, kCommitted, kWrote, !kFull, false) == HeldDones::kDeliver);
}

}  // namespace
}  // namespace commitd
