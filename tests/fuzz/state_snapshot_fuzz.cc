// State machine snapshots a coordinator group member installs
// (InstallSnapshot from the leader): RestoreStateMachine on any bytes, into a
// store with the group_members table of raft.db. What it accepts must
// snapshot again and restore to the same state.
#include <memory>
#include <string>

#include "common/sqlite_db.h"
#include "coordinator/decision_store.h"
#include "coordinator/group_members.h"
#include "raft/storage.h"
#include "coordinator/state_snapshot.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using commitd::fuzz::Require;
namespace sqlite = commitd::sqlite;
namespace coordinator = commitd::coordinator;

std::unique_ptr<sqlite::Database> OpenStore() {
  auto db = sqlite::Database::Open(":memory:", {.wal = false, .synchronous_full = false});
  Require(db.ok(), "open an in-memory database");
  Require(coordinator::DecisionStore(**db).CreateSchema().ok(), "create the decision store schema");
  commitd::raft::Membership bootstrap;
  bootstrap.voters.insert(1);
  Require(commitd::raft::Storage(**db).Init(bootstrap).ok(), "create the raft tables");
  Require(coordinator::GroupMembersTable(**db).CreateSchema().ok(), "create the group members table");
  return std::move(db).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<sqlite::Database> db = OpenStore();
  static std::unique_ptr<sqlite::Database> copy = OpenStore();
  // Each restore runs in a transaction rolled back afterwards, as the
  // storage thread's batch would be when the restore fails.
  Require(db->Begin().ok(), "begin");
  const commitd::Status restored = coordinator::RestoreStateMachine(*db, commitd::fuzz::Text(data, size));
  if (restored.ok()) {
    commitd::Result<std::string> snapshot = coordinator::SnapshotStateMachine(*db);
    Require(snapshot.ok(), "a restored state can be snapshotted");
    Require(copy->Begin().ok(), "begin");
    Require(coordinator::RestoreStateMachine(*copy, *snapshot).ok(), "a snapshot of a restored state restores");
    commitd::Result<std::string> again = coordinator::SnapshotStateMachine(*copy);
    Require(again.ok() && *again == *snapshot, "a snapshot round-trips");
    Require(copy->Rollback().ok(), "rollback");
  } else {
    Require(restored.code() == commitd::StatusCode::kCorruption || restored.code() == commitd::StatusCode::kConflict,
            "a bad snapshot is Corruption (or a Conflict between its records)");
  }
  Require(db->Rollback().ok(), "rollback");
  return 0;
}
