// Prepared records an agent reads back from _commitd_prepared when it starts
// (ResourceManager::Open -> LoadPrepared, the lock table rebuilt from their
// keys) and commits or aborts later (ApplyCommit applies the stored
// changeset). Fields (0x1f-separated; the changeset last, taking the rest):
//   txid, protocol, state, lock_keys, coordinator, participants, created_ms,
//   deadline_ms, last_error, log_id, abort_key, commit_check, changeset
#include <memory>
#include <string>

#include "common/sqlite_db.h"
#include "participant/resource_manager.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using commitd::StatusCode;
using commitd::fuzz::Require;
namespace sqlite = commitd::sqlite;
namespace participant = commitd::participant;

constexpr char kSchema[] = R"sql(
CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0));
CREATE TABLE journal (txid TEXT NOT NULL, account TEXT NOT NULL, delta INTEGER NOT NULL, PRIMARY KEY (txid, account));
INSERT INTO accounts VALUES ('alice', 100), ('bob', 50);
)sql";

std::unique_ptr<sqlite::Database> OpenBank() {
  auto db = sqlite::Database::Open(":memory:", {.wal = false, .synchronous_full = false});
  Require(db.ok(), "open an in-memory database");
  Require((*db)->Exec(kSchema).ok(), "create the bank schema");
  // The _commitd_ tables.
  Require(participant::ResourceManager::Open(**db, {}, {}).ok(), "open a resource manager on an empty bank");
  return std::move(db).value();
}

bool OneOf(StatusCode code, std::initializer_list<StatusCode> codes) {
  for (StatusCode c : codes) {
    if (code == c) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<sqlite::Database> db = OpenBank();
  const std::vector<std::string_view> f = commitd::fuzz::Fields(commitd::fuzz::Text(data, size), 13);
  const std::string txid(f[0]);

  Require(db->Exec("BEGIN").ok(), "begin");
  sqlite::Statement* insert = db->Prepare(
      "INSERT INTO _commitd_prepared(txid, protocol, state, lock_keys, coordinator, participants, created_ms, "
      "deadline_ms, last_error, log_id, abort_key, commit_check, changeset) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
  for (int i = 0; i < 12; ++i) insert->Bind(i + 1, f[i]);
  insert->BindBlob(13, f[12]);
  Require(insert->Run().ok(), "insert a prepared record");

  auto rm = participant::ResourceManager::Open(*db, {}, {});
  if (!rm.ok()) {
    Require(rm.status().code() == StatusCode::kCorruption, "an unreadable record is Corruption");
  } else {
    // Commit in a savepoint of its own, as the storage thread's batch does.
    const commitd::Status committed = (*rm)->Commit(txid, 1);
    Require(OneOf(committed.code(), {StatusCode::kOk, StatusCode::kConflict, StatusCode::kIoError}),
            "a commit applies, conflicts, or fails on a SQLite error");
    Require((*rm)->RebuildLocks().ok(), "the lock table rebuilds after a commit");
    const commitd::Status aborted = (*rm)->Abort(txid, 2);
    Require(aborted.ok(), "an abort discards any record");
    auto left = (*rm)->LoadPrepared();
    Require(left.ok() && left->empty(), "nothing is prepared after an abort");
  }
  Require(db->Exec("ROLLBACK").ok(), "rollback");
  return 0;
}
