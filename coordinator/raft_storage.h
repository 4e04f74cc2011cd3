// The durable half of one coordinator group member (design B.5): its Raft
// log, term and vote, in the same SQLite file as the replicated state machine
// (DecisionStore's tables) and the index that state machine has applied, so
// that applying an entry and advancing the index are one SQLite transaction.
//
// Thread: the storage thread only (inside BatchWriter jobs), except Load,
// which runs before the writer exists.
#pragma once

#include <map>
#include <string>

#include "common/sqlite_db.h"
#include "common/status.h"
#include "raft/node.h"

namespace commitd::coordinator {

class RaftStorage {
 public:
  explicit RaftStorage(sqlite::Database& db) : db_(db) {}

  // Creates the tables if needed. On a fresh file `bootstrap` becomes the
  // membership of the (empty) snapshot base; later it is ignored.
  Status Init(const raft::Membership& bootstrap);
  Result<raft::RestoredState> Load();

  // One Ready's durable part, in the order the Node's contract gives.
  Status SaveHardState(const raft::HardState& hs);
  Status TruncateFrom(raft::Index from);
  Status Append(const std::vector<raft::Entry>& entries);
  Status SetApplied(raft::Index index);
  // The index the state machine tables have applied (at least the snapshot's).
  Result<raft::Index> Applied();
  // Records meta as the log's new base and deletes every entry up to
  // meta.index. The snapshot's contents are the state machine tables of the
  // same file, which have applied at least meta.index: Load returns no bytes.
  Status SaveSnapshot(const raft::SnapshotMeta& meta);
  // The URLs of group members (group_members table; part of the state machine).
  Status SetMemberUrl(const std::string& id, const std::string& url);
  Result<std::map<std::string, std::string>> MemberUrls();

 private:
  Status SetInt(const char* key, int64_t value);
  Result<int64_t> GetInt(const char* key, int64_t fallback);

  sqlite::Database& db_;
};

}  // namespace commitd::coordinator
