// The durable half of a Raft member on SQLite: its log, term and vote, the
// snapshot base, and the index its state machine has applied. They live in
// the same file as the state machine's own tables, so that applying an entry
// and advancing the applied index are one SQLite transaction.
//
// Thread: whichever runs the storage jobs (the storage thread), except Init
// and Load, which run before the storage queue takes the database.
#pragma once

#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"
#include "raft/node.h"

namespace commitd::raft {

class Storage {
 public:
  explicit Storage(sqlite::Database& db) : db_(db) {}

  // Creates the tables if needed. On a fresh file `bootstrap` becomes the
  // membership of the (empty) snapshot base; later it is ignored.
  Status Init(const Membership& bootstrap);
  Result<RestoredState> Load();

  // One Ready's durable part, in the order the Node's contract gives.
  Status SaveHardState(const HardState& hs);
  Status TruncateFrom(Index from);
  Status Append(const std::vector<Entry>& entries);
  Status SetApplied(Index index);
  // The index the state machine tables have applied (at least the snapshot's).
  Result<Index> Applied();
  // Records meta as the log's new base and deletes every entry up to
  // meta.index. The snapshot's contents are the state machine tables of the
  // same file, which have applied at least meta.index: Load returns no bytes.
  Status SaveSnapshot(const SnapshotMeta& meta);

 private:
  Status SetInt(const char* key, int64_t value);
  Result<int64_t> GetInt(const char* key, int64_t fallback);

  sqlite::Database& db_;
};

}  // namespace commitd::raft
