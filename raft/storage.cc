#include "raft/storage.h"

#include <algorithm>

namespace commitd::raft {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS raft_state (
  key TEXT PRIMARY KEY,
  value
);
CREATE TABLE IF NOT EXISTS raft_log (
  idx INTEGER PRIMARY KEY,
  term INTEGER NOT NULL,
  type INTEGER NOT NULL,
  data BLOB NOT NULL
);
)sql";

// Format 2: a snapshot is only its meta: the state machine's tables in this
// file are its contents (and a coordinator's entries are binary commands,
// coordinator/raft_codec.h). Format 1 (no 'format' key) held JSON commands and
// the snapshot's bytes in raft_state 'snapshot_data'; such a file is read and
// upgraded in place.
constexpr int64_t kFormat = 2;

}  // namespace

Status Storage::SetInt(const char* key, int64_t value) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare("INSERT OR REPLACE INTO raft_state(key, value) VALUES (?1, ?2)", &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, std::string_view(key)).Bind(2, value);
  return stmt->Run();
}

Result<int64_t> Storage::GetInt(const char* key, int64_t fallback) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare("SELECT value FROM raft_state WHERE key = ?1", &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, std::string_view(key));
  int64_t value = stmt->Step() ? stmt->Int(0) : fallback;
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return value;
}

Status Storage::Init(const Membership& bootstrap) {
  sqlite::Transaction txn(db_);
  if (!txn.status().ok()) return txn.status();
  if (Status s = db_.Exec(kSchema); !s.ok()) return s;
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "INSERT OR IGNORE INTO raft_state(key, value) VALUES ('snapshot_membership', ?1)", &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, bootstrap.Encode());
  if (Status s = stmt->Run(); !s.ok()) return s;
  auto format = GetInt("format", 1);
  if (!format.ok()) return format.status();
  if (*format > kFormat) {
    return Status::Corruption(db_.path() + ": raft storage format " + std::to_string(*format) +
                              " is newer than this commitd's (" + std::to_string(kFormat) + ")");
  }
  if (Status s = SetInt("format", kFormat); !s.ok()) return s;
  return txn.Commit();
}

Result<RestoredState> Storage::Load() {
  RestoredState state;
  auto term = GetInt("term", 0);
  auto vote = GetInt("vote", 0);
  auto base_index = GetInt("snapshot_index", 0);
  auto base_term = GetInt("snapshot_term", 0);
  auto applied = GetInt("applied", 0);
  for (const auto* r : {&term, &vote, &base_index, &base_term, &applied}) {
    if (!r->ok()) return r->status();
  }
  state.hard_state.term = static_cast<Term>(*term);
  state.hard_state.voted_for = static_cast<NodeId>(*vote);
  state.snapshot.index = static_cast<Index>(*base_index);
  state.snapshot.term = static_cast<Term>(*base_term);
  Status error;
  sqlite::Statement* stmt = db_.Prepare("SELECT value FROM raft_state WHERE key = 'snapshot_membership'", &error);
  if (stmt == nullptr) return error;
  std::string membership = stmt->Step() ? stmt->Text(0) : std::string();
  stmt->Reset();
  auto decoded = Membership::Decode(membership);
  if (!decoded) return Status::Corruption("raft_state: bad snapshot_membership '" + membership + "'");
  state.snapshot.membership = *decoded;
  // No snapshot bytes: the node asks for them when a follower needs them.
  stmt = db_.Prepare("SELECT idx, term, type, data FROM raft_log WHERE idx > ?1 ORDER BY idx", &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, static_cast<int64_t>(state.snapshot.index));
  Index expected = state.snapshot.index + 1;
  while (stmt->Step()) {
    Entry e;
    e.index = static_cast<Index>(stmt->Int(0));
    e.term = static_cast<Term>(stmt->Int(1));
    const int64_t type = stmt->Int(2);
    e.type = static_cast<EntryType>(type);
    e.data = stmt->Blob(3);
    if (type < 0 || type > static_cast<int64_t>(EntryType::kNoop) ||
        (e.type == EntryType::kConfig && !Membership::Decode(e.data))) {
      stmt->Reset();
      return Status::Corruption("raft_log: entry " + std::to_string(e.index) + " is not a valid entry");
    }
    if (e.index != expected) {
      stmt->Reset();
      return Status::Corruption("raft_log: entry " + std::to_string(e.index) + " where " + std::to_string(expected) +
                                " was expected");
    }
    ++expected;
    state.entries.push_back(std::move(e));
  }
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  state.applied = std::max<Index>(static_cast<Index>(*applied), state.snapshot.index);
  return state;
}

Status Storage::SaveHardState(const HardState& hs) {
  if (Status s = SetInt("term", static_cast<int64_t>(hs.term)); !s.ok()) return s;
  return SetInt("vote", static_cast<int64_t>(hs.voted_for));
}

Status Storage::TruncateFrom(Index from) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare("DELETE FROM raft_log WHERE idx >= ?1", &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, static_cast<int64_t>(from));
  return stmt->Run();
}

Status Storage::Append(const std::vector<Entry>& entries) {
  Status error;
  sqlite::Statement* stmt =
      db_.Prepare("INSERT OR REPLACE INTO raft_log(idx, term, type, data) VALUES (?1, ?2, ?3, ?4)", &error);
  if (stmt == nullptr) return error;
  for (const auto& e : entries) {
    stmt->Bind(1, static_cast<int64_t>(e.index))
        .Bind(2, static_cast<int64_t>(e.term))
        .Bind(3, static_cast<int64_t>(e.type))
        .BindBlob(4, e.data);
    if (Status s = stmt->Run(); !s.ok()) return s;
    stmt->Reset();
  }
  return Status::Ok();
}

Status Storage::SetApplied(Index index) { return SetInt("applied", static_cast<int64_t>(index)); }

Result<Index> Storage::Applied() {
  auto applied = GetInt("applied", 0);
  if (!applied.ok()) return applied.status();
  auto base = GetInt("snapshot_index", 0);
  if (!base.ok()) return base.status();
  return static_cast<Index>(std::max(*applied, *base));
}

Status Storage::SaveSnapshot(const SnapshotMeta& meta) {
  if (Status s = SetInt("snapshot_index", static_cast<int64_t>(meta.index)); !s.ok()) return s;
  if (Status s = SetInt("snapshot_term", static_cast<int64_t>(meta.term)); !s.ok()) return s;
  Status error;
  sqlite::Statement* stmt =
      db_.Prepare("INSERT OR REPLACE INTO raft_state(key, value) VALUES ('snapshot_membership', ?1)", &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, meta.membership.Encode());
  if (Status s = stmt->Run(); !s.ok()) return s;
  stmt = db_.Prepare("DELETE FROM raft_state WHERE key = 'snapshot_data'", &error);  // format 1's bytes
  if (stmt == nullptr) return error;
  if (Status s = stmt->Run(); !s.ok()) return s;
  stmt = db_.Prepare("DELETE FROM raft_log WHERE idx <= ?1", &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, static_cast<int64_t>(meta.index));
  return stmt->Run();
}

}  // namespace commitd::raft
