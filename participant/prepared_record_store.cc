#include "participant/prepared_record_store.h"

#include "common/json_parse.h"
#include "common/json_text.h"
#include "common/wire.h"

#include <set>
#include <utility>

namespace commitd::participant {
namespace {

using nlohmann::json;

// WITHOUT ROWID: one B-tree keyed by txid per table, so that inserting or
// deleting a record dirties one page instead of a table page and an index page
// (every group commit writes each page it dirtied whole to the WAL). Databases
// created before keep their rowid tables; both work.
constexpr char kSchema[] = R"sql(
SAVEPOINT commitd_open;
CREATE TABLE IF NOT EXISTS _commitd_prepared(
  txid TEXT PRIMARY KEY,
  protocol TEXT NOT NULL,
  state TEXT NOT NULL,
  changeset BLOB NOT NULL,
  lock_keys TEXT NOT NULL,
  coordinator TEXT NOT NULL,
  participants TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  log_id TEXT NOT NULL DEFAULT '',
  abort_key TEXT NOT NULL DEFAULT '',
  commit_check TEXT NOT NULL DEFAULT '',
  adopted_by TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _commitd_finished(
  txid TEXT PRIMARY KEY,
  outcome TEXT NOT NULL,
  finished_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS _commitd_finished_by_time ON _commitd_finished(finished_ms);
RELEASE commitd_open;
)sql";

Result<std::vector<std::string>> ParseLockKeys(const std::string& txid, const std::string& text) {
  json parsed = ParseJson(text);
  if (parsed.is_discarded() || !parsed.is_array()) {
    return Status::Corruption("_commitd_prepared '" + txid + "': lock_keys is not a JSON array");
  }
  std::vector<std::string> keys;
  for (const json& key : parsed) {
    if (!key.is_string()) return Status::Corruption("_commitd_prepared '" + txid + "': lock_keys holds a non-string");
    keys.push_back(key.get<std::string>());
  }
  return keys;
}

// The JSON array of the keys, as nlohmann's dump of it writes it.
std::string LockKeysText(const std::vector<std::string>& keys) {
  std::string out = "[";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(&out, keys[i]);
  }
  out.push_back(']');
  return out;
}

// The names of _commitd_prepared's columns.
Result<std::set<std::string>> PreparedColumns(sqlite::Database& db) {
  Status error;
  sqlite::Statement* columns = db.Prepare("SELECT name FROM pragma_table_info('_commitd_prepared')", &error);
  if (columns == nullptr) return error;
  std::set<std::string> names;
  while (columns->Step()) names.insert(columns->Text(0));
  Status listed = columns->status();
  columns->Reset();
  if (!listed.ok()) return listed;
  return names;
}

}  // namespace

Status PreparedRecordStore::CreateTables() {
  if (Status s = db_.Exec(kSchema); !s.ok()) {
    db_.Exec("ROLLBACK TO commitd_open; RELEASE commitd_open");
    return Status::IoError("create _commitd_ tables in " + db_.path() + ": " + s.message());
  }
  Result<std::set<std::string>> present = PreparedColumns(db_);
  if (!present.ok()) return present.status();
  for (const std::string column : {"log_id", "abort_key", "commit_check", "adopted_by"}) {
    if (present->count(column) != 0) continue;
    if (Status s = db_.Exec("ALTER TABLE _commitd_prepared ADD COLUMN " + column + " TEXT NOT NULL DEFAULT ''");
        !s.ok()) {
      return Status::IoError("add _commitd_prepared." + column + " in " + db_.path() + ": " + s.message());
    }
  }
  return Status::Ok();
}

Status PreparedRecordStore::Persist(const PreparedRecord& record) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "INSERT OR REPLACE INTO _commitd_prepared(txid, protocol, state, changeset, lock_keys, coordinator, "
      "participants, created_ms, deadline_ms, last_error, log_id, abort_key, commit_check, adopted_by) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
      &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, record.txid)
      .Bind(2, record.protocol)
      .Bind(3, record.state)
      .BindBlob(4, record.changeset)
      .Bind(5, LockKeysText(record.lock_keys))
      .Bind(6, record.coordinator)
      .Bind(7, wire::ParticipantsText(record.participants))
      .Bind(8, record.created_ms)
      .Bind(9, record.deadline_ms)
      .Bind(10, record.last_error)
      .Bind(11, record.log_id)
      .Bind(12, record.abort_key)
      .Bind(13, record.commit_check)
      .Bind(14, record.adopted_by);
  return stmt->Run();
}

Status PreparedRecordStore::Update(const std::string& txid, const std::string& state,
                                   const std::string& last_error) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "UPDATE _commitd_prepared SET state = CASE WHEN ?2 = '' THEN state ELSE ?2 END, last_error = ?3 "
      "WHERE txid = ?1",
      &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, txid).Bind(2, state).Bind(3, last_error);
  if (Status s = stmt->Run(); !s.ok()) return s;
  if (sqlite3_changes(db_.handle()) == 0) return Status::NotFound("no prepared transaction '" + txid + "'");
  return Status::Ok();
}

Status PreparedRecordStore::Adopt(const std::string& txid, const Adoption& adoption) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "UPDATE _commitd_prepared SET abort_key = ?2, commit_check = ?3, adopted_by = ?4 WHERE txid = ?1", &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, txid).Bind(2, adoption.abort_key).Bind(3, adoption.commit_check).Bind(4, adoption.log_id);
  if (Status s = stmt->Run(); !s.ok()) return s;
  if (sqlite3_changes(db_.handle()) == 0) return Status::NotFound("no prepared transaction '" + txid + "'");
  return Status::Ok();
}

Result<std::string> PreparedRecordStore::Changeset(const std::string& txid) {
  Status error;
  sqlite::Statement* read = db_.Prepare("SELECT changeset FROM _commitd_prepared WHERE txid = ?1", &error);
  if (read == nullptr) return error;
  read->Bind(1, txid);
  if (!read->Step()) {
    Status s = read->status();
    read->Reset();
    return s.ok() ? Status::NotFound("no prepared transaction '" + txid + "'") : s;
  }
  std::string changeset = read->Blob(0);
  read->Reset();
  return changeset;
}

Status PreparedRecordStore::Delete(const std::string& txid) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare("DELETE FROM _commitd_prepared WHERE txid = ?1", &error);
  if (stmt == nullptr) return error;
  return stmt->Bind(1, txid).Run();
}

Status PreparedRecordStore::MarkConflict(const std::string& txid, const std::string& conflict) {
  Status error;
  sqlite::Statement* mark = db_.Prepare(
      "UPDATE _commitd_prepared SET state = 'conflict', last_error = ?2 WHERE txid = ?1", &error);
  if (mark == nullptr) return error;
  return mark->Bind(1, txid).Bind(2, conflict).Run();
}

Status PreparedRecordStore::RememberOutcome(const std::string& txid, const std::string& outcome, int64_t now_ms) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "INSERT OR IGNORE INTO _commitd_finished(txid, outcome, finished_ms) VALUES(?1, ?2, ?3)", &error);
  if (stmt == nullptr) return error;
  return stmt->Bind(1, txid).Bind(2, outcome).Bind(3, now_ms).Run();
}

Status PreparedRecordStore::ForgetOutcomesBefore(int64_t cutoff_ms) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "DELETE FROM _commitd_finished WHERE txid IN (SELECT txid FROM _commitd_finished WHERE finished_ms < ?1 "
      "ORDER BY finished_ms LIMIT ?2)",
      &error);
  if (stmt == nullptr) return error;
  return stmt->Bind(1, cutoff_ms).Bind(2, kForgetOutcomesBatch).Run();
}

Result<std::vector<PreparedRecord>> PreparedRecordStore::LoadPrepared() {
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "SELECT txid, protocol, state, changeset, lock_keys, coordinator, participants, created_ms, deadline_ms, "
      "last_error, log_id, abort_key, commit_check, adopted_by FROM _commitd_prepared ORDER BY created_ms, txid",
      &error);
  if (stmt == nullptr) return error;
  std::vector<PreparedRecord> records;
  while (stmt->Step()) {
    PreparedRecord r;
    r.txid = stmt->Text(0);
    if (!wire::IsValidTxid(r.txid)) {
      // It goes into the coordinator's URL when the agent asks for the decision.
      stmt->Reset();
      return Status::Corruption("_commitd_prepared holds an invalid txid '" + r.txid.substr(0, 160) + "'");
    }
    r.protocol = stmt->Text(1);
    r.state = stmt->Text(2);
    r.changeset = stmt->Blob(3);
    Result<std::vector<std::string>> keys = ParseLockKeys(r.txid, stmt->Text(4));
    if (!keys.ok()) {
      stmt->Reset();
      return keys.status();
    }
    r.lock_keys = std::move(keys).value();
    r.coordinator = stmt->Text(5);
    Result<std::vector<wire::ParticipantRef>> participants = wire::ParseParticipants(stmt->Text(6));
    if (!participants.ok()) {
      stmt->Reset();
      return Status::Corruption("_commitd_prepared '" + r.txid + "': " + participants.status().message());
    }
    r.participants = std::move(participants).value();
    r.created_ms = stmt->Int(7);
    r.deadline_ms = stmt->Int(8);
    r.last_error = stmt->Text(9);
    r.log_id = stmt->Text(10);
    r.abort_key = stmt->Text(11);
    r.commit_check = stmt->Text(12);
    r.adopted_by = stmt->Text(13);
    records.push_back(std::move(r));
  }
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return records;
}

Result<std::optional<StoredOutcome>> PreparedRecordStore::FindOutcome(const std::string& txid) {
  Status error;
  sqlite::Statement* stmt =
      db_.Prepare("SELECT outcome, finished_ms FROM _commitd_finished WHERE txid = ?1", &error);
  if (stmt == nullptr) return error;
  std::optional<std::string> name;
  int64_t finished_ms = 0;
  stmt->Bind(1, txid);
  if (stmt->Step()) {
    name = stmt->Text(0);
    finished_ms = stmt->Int(1);
  }
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  if (!name) return std::optional<StoredOutcome>();
  Result<Outcome> outcome = ParseStoredOutcome(*name, "_commitd_finished", txid);
  if (!outcome.ok()) return outcome.status();
  return std::optional<StoredOutcome>(StoredOutcome{*outcome, finished_ms});
}

Result<std::map<std::string, std::string>> PreparedRecordStore::LoadOutcomes() {
  Status error;
  sqlite::Statement* stmt = db_.Prepare("SELECT txid, outcome FROM _commitd_finished", &error);
  if (stmt == nullptr) return error;
  std::map<std::string, std::string> outcomes;
  while (stmt->Step()) outcomes[stmt->Text(0)] = stmt->Text(1);
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return outcomes;
}

}  // namespace commitd::participant
