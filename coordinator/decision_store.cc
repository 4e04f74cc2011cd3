#include "coordinator/decision_store.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "common/auth.h"
#include "common/wire.h"
#include "coordinator/txid_issuer.h"
#include "common/json_text.h"
#include "common/json_parse.h"

namespace commitd::coordinator {

namespace {

using nlohmann::json;

constexpr std::string_view kSchemaVersion = "3";

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT
);
CREATE TABLE IF NOT EXISTS decisions (
  txid TEXT PRIMARY KEY,
  protocol TEXT NOT NULL,
  outcome TEXT NOT NULL,
  participants TEXT NOT NULL,
  reason TEXT NOT NULL,
  idempotency_key TEXT,
  reply TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  decided_ms INTEGER NOT NULL,
  finished INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  heuristic INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS decisions_idempotency_key
  ON decisions(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS decisions_decided_ms ON decisions(decided_ms);
CREATE TABLE IF NOT EXISTS participants (
  name TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS forgotten_txids (
  coordinator TEXT NOT NULL,
  incarnation INTEGER NOT NULL,
  max_sequence INTEGER NOT NULL,
  PRIMARY KEY (coordinator, incarnation)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forgotten_keys (
  key_hash INTEGER PRIMARY KEY,
  forgotten_ms INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '3');
)sql";

constexpr std::string_view kUpgradeFrom1 = R"sql(
ALTER TABLE decisions ADD COLUMN heuristic INTEGER NOT NULL DEFAULT 0;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
)sql";

// A key forgotten before keys had a time counts as forgotten at the newest
// cutoff that deleted anything: it is kept a whole window from then.
constexpr std::string_view kStampOldKeys = R"sql(
UPDATE forgotten_keys SET forgotten_ms =
  COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'forgotten_before_ms'), 0);
UPDATE meta SET value = '3' WHERE key = 'schema_version';
)sql";

// After any upgrade: the columns exist by then. Unfinished rows have an index
// of their own, holding them only: a finished mark takes a row out of it
// rather than moving it within an index of every row (decisions_finished,
// before), and no commit record moves it. It is as small as the unfinished set.
constexpr std::string_view kIndexes = R"sql(
CREATE INDEX IF NOT EXISTS forgotten_keys_age ON forgotten_keys(forgotten_ms);
CREATE INDEX IF NOT EXISTS decisions_heuristic ON decisions(heuristic) WHERE heuristic = 1;
CREATE INDEX IF NOT EXISTS decisions_finished_order ON decisions(finished_ms, txid) WHERE finished = 1;
DROP INDEX IF EXISTS decisions_finished;
CREATE INDEX IF NOT EXISTS decisions_unfinished ON decisions(txid) WHERE finished = 0;
)sql";

constexpr char kColumns[] =
    "txid, protocol, outcome, participants, reason, idempotency_key, reply, created_ms, decided_ms, finished, "
    "finished_ms, heuristic";

const std::string kInsertDecision = std::string("INSERT OR IGNORE INTO decisions(") + kColumns +
                                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
const std::string kSelectByTxid = std::string("SELECT ") + kColumns + " FROM decisions WHERE txid = ?1";
const std::string kSelectByKey = std::string("SELECT ") + kColumns + " FROM decisions WHERE idempotency_key = ?1";
// INDEXED BY: left to itself, the planner walks decisions_decided_ms to save
// the sort, over every finished row as well.
constexpr char kUnfinishedRows[] = " FROM decisions INDEXED BY decisions_unfinished WHERE finished = 0";
const std::string kSelectUnfinished =
    std::string("SELECT ") + kColumns + kUnfinishedRows + " ORDER BY decided_ms, txid";
const std::string kSelectAll = std::string("SELECT ") + kColumns + " FROM decisions ORDER BY decided_ms, txid";

Status Prepare(sqlite::Database& db, std::string_view sql, sqlite::Statement** stmt) {
  Status error;
  *stmt = db.Prepare(sql, &error);
  if (*stmt == nullptr) return Status::Internal("prepare " + std::string(sql) + ": " + error.message());
  return Status::Ok();
}

// The current row of a statement selecting kColumns.
Result<DecisionRecord> ReadRecord(const sqlite::Statement& stmt) {
  DecisionRecord r;
  r.txid = stmt.Text(0);
  // It goes into agents' URLs (a state query's path): a file edited behind
  // the log's back must not send a question about another transaction.
  if (!wire::IsValidTxid(r.txid)) return Status::Corruption("decision with an invalid txid '" + r.txid.substr(0, 160) + "'");
  std::string protocol = stmt.Text(1);
  if (protocol == "2pc") {
    r.protocol = wire::Protocol::k2pc;
  } else if (protocol == "3pc") {
    r.protocol = wire::Protocol::k3pc;
  } else {
    return Status::Corruption("decision " + r.txid + ": unknown protocol '" + protocol + "'");
  }
  std::string outcome = stmt.Text(2);
  std::optional<Outcome> o = ParseOutcome(outcome);
  if (!o) return Status::Corruption("decision " + r.txid + ": unknown outcome '" + outcome + "'");
  r.outcome = *o;
  Result<std::vector<ParticipantRef>> participants = wire::ParseParticipants(stmt.Text(3));
  if (!participants.ok()) return Status::Corruption("decision " + r.txid + ": " + participants.status().message());
  r.participants = std::move(participants).value();
  r.reason = stmt.Text(4);
  r.idempotency_key = stmt.Text(5);
  std::string reply = stmt.Text(6);
  r.reply = ParseJson(reply);
  if (r.reply.is_discarded()) return Status::Corruption("decision " + r.txid + ": reply is not JSON");
  r.created_ms = stmt.Int(7);
  r.decided_ms = stmt.Int(8);
  r.finished = stmt.Int(9) != 0;
  r.finished_ms = stmt.Int(10);
  r.heuristic = stmt.Int(11) != 0;
  return r;
}

// Rows of a prepared (and bound) statement selecting kColumns, each to fn.
Status ReadRecords(sqlite::Statement* stmt, const std::function<Status(DecisionRecord)>& fn) {
  while (stmt->Step()) {
    Result<DecisionRecord> r = ReadRecord(*stmt);
    Status s = r.ok() ? fn(std::move(r).value()) : r.status();
    if (!s.ok()) {
      stmt->Reset();
      return s;
    }
  }
  Status s = stmt->status();
  stmt->Reset();
  return s;
}

Result<std::vector<DecisionRecord>> CollectRecords(sqlite::Statement* stmt) {
  std::vector<DecisionRecord> out;
  Status s = ReadRecords(stmt, [&out](DecisionRecord r) {
    out.push_back(std::move(r));
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::string> SchemaVersion(sqlite::Database& db) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, "SELECT value FROM meta WHERE key = 'schema_version'", &stmt); !s.ok()) return s;
  std::string version = stmt->Step() ? stmt->Text(0) : std::string();
  Status step = stmt->status();
  stmt->Reset();
  if (!step.ok()) return step;
  return version;
}

// forgotten_keys gains the time its keys were forgotten. The table may be
// new (made just now by kSchema, with the column): only an old one is altered.
Status UpgradeFrom2(sqlite::Database& db) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, "SELECT count(*) FROM pragma_table_info('forgotten_keys') WHERE name = 'forgotten_ms'",
                         &stmt);
      !s.ok())
    return s;
  const bool has_column = stmt->Step() && stmt->Int(0) == 1;
  Status step = stmt->status();
  stmt->Reset();
  if (!step.ok()) return step;
  if (!has_column) {
    if (Status s = db.Exec("ALTER TABLE forgotten_keys ADD COLUMN forgotten_ms INTEGER NOT NULL DEFAULT 0"); !s.ok()) {
      return s;
    }
  }
  return db.Exec(kStampOldKeys);
}

}  // namespace

Status DecisionStore::CreateSchema() {
  sqlite::Transaction txn(db_);
  if (!txn.status().ok()) return txn.status();
  if (Status s = db_.Exec(kSchema); !s.ok()) return Status::IoError("create schema: " + s.message());
  Result<std::string> version = SchemaVersion(db_);
  if (!version.ok()) return version.status();
  if (*version == "1") {
    if (Status s = db_.Exec(kUpgradeFrom1); !s.ok()) {
      return Status::IoError(db_.path() + ": upgrade schema 1 to 2: " + s.message());
    }
    *version = "2";
  }
  if (*version == "2") {
    if (Status s = UpgradeFrom2(db_); !s.ok()) {
      return Status::IoError(db_.path() + ": upgrade schema 2 to 3: " + s.message());
    }
  } else if (*version != kSchemaVersion) {
    return Status::Corruption(db_.path() + ": unsupported schema_version '" + *version + "' (want " +
                              std::string(kSchemaVersion) + ")");
  }
  if (Status s = db_.Exec(kIndexes); !s.ok()) return Status::IoError("create indexes: " + s.message());
  return txn.Commit();
}

Result<std::optional<DecisionRecord>> DecisionStore::FindOne(const std::string& sql, const std::string& key) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, sql, &stmt); !s.ok()) return s;
  stmt->Bind(1, key);
  Result<std::vector<DecisionRecord>> rows = CollectRecords(stmt);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<DecisionRecord>();
  return std::optional<DecisionRecord>(std::move(rows->front()));
}

Result<std::optional<DecisionRecord>> DecisionStore::FindByTxid(const std::string& txid) {
  return FindOne(kSelectByTxid, txid);
}

Result<std::optional<DecisionRecord>> DecisionStore::FindByIdempotencyKey(const std::string& key) {
  return FindOne(kSelectByKey, key);
}

// Why INSERT OR IGNORE did not insert `r`.
Status DecisionStore::ExplainConflict(const DecisionRecord& r) {
  Result<std::optional<DecisionRecord>> existing = FindByTxid(r.txid);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return Status::Conflict("decision for " + r.txid + " already recorded: " +
                            std::string(OutcomeName((*existing)->outcome)));
  }
  if (!r.idempotency_key.empty()) {
    existing = FindByIdempotencyKey(r.idempotency_key);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) {
      return Status::Conflict("idempotency key '" + r.idempotency_key + "' already used by " + (*existing)->txid);
    }
  }
  return Status::Internal("decision for " + r.txid + " was not inserted");
}

// A pending record (a staging record; in logs of older builds also a 3PC
// precommit record) is not a decision: the decision that follows replaces it
// in place, finished already when every participant acked before it was
// written.
Status DecisionStore::ReplacePending(const DecisionRecord& r, const std::string& reply, bool* replaced) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_,
                         "UPDATE decisions SET outcome = ?1, reason = ?2, reply = ?3, decided_ms = ?4, heuristic = ?5, "
                         "finished = ?8, finished_ms = ?9 "
                         "WHERE txid = ?6 AND outcome = 'pending' AND protocol = ?7",
                         &stmt);
      !s.ok())
    return s;
  stmt->Bind(1, OutcomeName(r.outcome))
      .Bind(2, r.reason)
      .Bind(3, reply)
      .Bind(4, r.decided_ms)
      .Bind(5, static_cast<int64_t>(r.heuristic ? 1 : 0))
      .Bind(6, r.txid)
      .Bind(7, wire::ProtocolName(r.protocol))
      .Bind(8, static_cast<int64_t>(r.finished ? 1 : 0))
      .Bind(9, r.finished_ms);
  if (Status s = stmt->Run(); !s.ok()) return s;
  *replaced = sqlite3_changes(db_.handle()) > 0;
  return Status::Ok();
}

Status DecisionStore::InsertDecision(const DecisionRecord& r) {
  const std::string reply = DumpJson(r.reply);
  if (r.outcome != Outcome::kPending) {
    bool replaced = false;
    if (Status s = ReplacePending(r, reply, &replaced); !s.ok() || replaced) return s;
  }
  bool inserted = false;
  if (Status s = InsertRow(r, reply, &inserted); !s.ok()) return s;
  return inserted ? Status::Ok() : ExplainConflict(r);
}

Status DecisionStore::InsertNew(const DecisionRecord& r, bool* inserted) {
  return InsertRow(r, DumpJson(r.reply), inserted);
}

Status DecisionStore::InsertRow(const DecisionRecord& r, const std::string& reply, bool* inserted) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, kInsertDecision, &stmt); !s.ok()) return s;
  stmt->Bind(1, r.txid)
      .Bind(2, wire::ProtocolName(r.protocol))
      .Bind(3, OutcomeName(r.outcome))
      .Bind(4, wire::ParticipantsText(r.participants))
      .Bind(5, r.reason);
  if (r.idempotency_key.empty()) {
    stmt->BindNull(6);
  } else {
    stmt->Bind(6, r.idempotency_key);
  }
  stmt->Bind(7, reply)
      .Bind(8, r.created_ms)
      .Bind(9, r.decided_ms)
      .Bind(10, static_cast<int64_t>(r.finished ? 1 : 0))
      .Bind(11, r.finished_ms)
      .Bind(12, static_cast<int64_t>(r.heuristic ? 1 : 0));
  if (Status s = stmt->Run(); !s.ok()) return s;
  *inserted = sqlite3_changes(db_.handle()) > 0;
  return Status::Ok();
}

// A pending record is not a decision, and is never marked finished (NotFound): the coordinator finishes a transaction only once
// its decision has replaced that record.
Status DecisionStore::MarkFinished(const std::string& txid, int64_t finished_ms) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_,
                         "UPDATE decisions SET finished = 1, finished_ms = ?1 "
                         "WHERE txid = ?2 AND finished = 0 AND outcome <> 'pending'",
                         &stmt);
      !s.ok())
    return s;
  stmt->Bind(1, finished_ms).Bind(2, txid);
  if (Status s = stmt->Run(); !s.ok()) return s;
  if (sqlite3_changes(db_.handle()) > 0) return Status::Ok();
  Result<std::optional<DecisionRecord>> existing = FindByTxid(txid);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) return Status::NotFound("no decision recorded for " + txid);
  if ((*existing)->outcome == Outcome::kPending) {
    return Status::NotFound("no decision recorded for " + txid + ", only its pending record");
  }
  return Status::Ok();
}

Status DecisionStore::PutParticipant(const RegistryEntry& e) {
  sqlite::Statement* stmt;
  if (e.url.empty()) {  // removed
    if (Status s = Prepare(db_, "DELETE FROM participants WHERE name = ?1", &stmt); !s.ok()) return s;
    stmt->Bind(1, e.name);
    return stmt->Run();
  }
  if (Status s = Prepare(db_,
                         "INSERT INTO participants(name, url, updated_ms) VALUES (?1, ?2, ?3) "
                         "ON CONFLICT(name) DO UPDATE SET url = excluded.url, updated_ms = excluded.updated_ms",
                         &stmt);
      !s.ok())
    return s;
  stmt->Bind(1, e.name).Bind(2, e.url).Bind(3, e.updated_ms);
  return stmt->Run();
}

Result<std::vector<std::string>> DecisionStore::OwnUrls() {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, "SELECT value FROM meta WHERE key = 'coordinator_urls'", &stmt); !s.ok()) return s;
  std::string text = stmt->Step() ? stmt->Text(0) : std::string("[]");
  Status step = stmt->status();
  stmt->Reset();
  if (!step.ok()) return step;
  json urls = ParseJson(text);
  if (!urls.is_array()) return Status::Corruption("meta coordinator_urls is not a JSON array");
  std::vector<std::string> out;
  for (const auto& u : urls) {
    if (u.is_string()) out.push_back(u.get<std::string>());
  }
  return out;
}

Status DecisionStore::AddOwnUrl(const std::string& url) {
  auto urls = OwnUrls();
  if (!urls.ok()) return urls.status();
  for (const auto& u : *urls) {
    if (u == url) return Status::Ok();
  }
  urls->push_back(url);
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES ('coordinator_urls', ?1)", &stmt);
      !s.ok())
    return s;
  stmt->Bind(1, json(*urls).dump());
  return stmt->Run();
}

namespace {

Result<std::string> MetaValue(sqlite::Database& db, const char* key) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, "SELECT value FROM meta WHERE key = ?1", &stmt); !s.ok()) return s;
  stmt->Bind(1, std::string(key));
  std::string value = stmt->Step() ? stmt->Text(0) : std::string();
  Status step = stmt->status();
  stmt->Reset();
  if (!step.ok()) return step;
  return value;
}

Status SetMetaValue(sqlite::Database& db, const char* key, const std::string& value) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)", &stmt); !s.ok()) return s;
  stmt->Bind(1, std::string(key));
  stmt->Bind(2, value);
  return stmt->Run();
}

}  // namespace

Result<std::string> DecisionStore::LogId() { return MetaValue(db_, "log_id"); }

Status DecisionStore::SetLogId(const std::string& log_id) {
  if (log_id.empty()) return Status::InvalidArgument("log id: must not be empty");
  Result<std::string> current = LogId();
  if (!current.ok()) return current.status();
  if (*current == log_id) return Status::Ok();
  if (!current->empty()) {
    return Status::Conflict(db_.path() + ": the log already has identity " + *current);
  }
  return SetMetaValue(db_, "log_id", log_id);
}

Result<std::string> DecisionStore::AbortSecret() { return MetaValue(db_, "abort_secret"); }

Status DecisionStore::SetAbortSecret(const std::string& secret) {
  if (secret.empty()) return Status::InvalidArgument("abort secret: must not be empty");
  Result<std::string> current = AbortSecret();
  if (!current.ok()) return current.status();
  if (*current == secret) return Status::Ok();
  if (!current->empty()) return Status::Conflict(db_.path() + ": the log already has an abort secret");
  return SetMetaValue(db_, "abort_secret", secret);
}

Status DecisionStore::SetIdentity(const std::string& log_id, const std::string& abort_secret) {
  if (log_id.empty() || abort_secret.empty()) return Status::InvalidArgument("log identity: must not be empty");
  Result<std::string> current_id = LogId();
  if (!current_id.ok()) return current_id.status();
  Result<std::string> current_secret = AbortSecret();
  if (!current_secret.ok()) return current_secret.status();
  if ((!current_id->empty() && *current_id != log_id) || (!current_secret->empty() && *current_secret != abort_secret)) {
    return Status::Conflict(db_.path() + ": the log already has identity " + *current_id);
  }
  if (Status s = SetLogId(log_id); !s.ok()) return s;
  return SetAbortSecret(abort_secret);
}

Result<uint64_t> DecisionStore::NextIncarnation() {
  Result<std::string> current = MetaValue(db_, "incarnation");
  if (!current.ok()) return current.status();
  uint64_t value = 0;
  if (!current->empty()) {
    std::size_t used = 0;
    try {
      value = std::stoull(*current, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != current->size()) {
      return Status::Corruption(db_.path() + ": meta incarnation '" + *current + "' is not a number");
    }
  }
  ++value;
  if (Status s = SetMetaValue(db_, "incarnation", std::to_string(value)); !s.ok()) return s;
  return value;
}

namespace {

// One PRAGMA quick_check, Corruption naming the file unless it says "ok".
Status QuickCheck(sqlite::Database& db, const std::string& pragma) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, pragma, &stmt); !s.ok()) {
    return Status::Corruption(db.path() + ": damaged, cannot be checked: " + s.message());
  }
  std::string verdict = stmt->Step() ? stmt->Text(0) : std::string();
  Status step = stmt->status();
  stmt->Reset();
  if (!step.ok()) return Status::Corruption(db.path() + ": damaged: " + step.message());
  if (verdict != "ok") return Status::Corruption(db.path() + ": damaged: " + verdict);
  return Status::Ok();
}

}  // namespace

Status DecisionStore::CheckIntegrity() {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size", &stmt);
      !s.ok()) {
    return Status::Corruption(db_.path() + ": damaged, cannot be checked: " + s.message());
  }
  const int64_t bytes = stmt->Step() ? stmt->Int(0) : 0;
  Status step = stmt->status();
  stmt->Reset();
  if (!step.ok()) return Status::Corruption(db_.path() + ": damaged: " + step.message());
  if (bytes <= kFullIntegrityCheckBytes) return QuickCheck(db_, "PRAGMA quick_check(1)");
  // A large log: the whole-file check would read all of it (seconds per
  // hundred MiB) before serving. Check every table but the decisions; their
  // pages are checked by SQLite as they are read, the unfinished ones at
  // recovery first.
  if (Status s = Prepare(db_,
                         "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT IN ('decisions') "
                         "AND name NOT LIKE 'sqlite_%'",
                         &stmt);
      !s.ok()) {
    return Status::Corruption(db_.path() + ": damaged, cannot be checked: " + s.message());
  }
  std::vector<std::string> tables;
  while (stmt->Step()) tables.push_back(stmt->Text(0));
  step = stmt->status();
  stmt->Reset();
  if (!step.ok()) return Status::Corruption(db_.path() + ": damaged: " + step.message());
  for (const std::string& table : tables) {
    if (Status s = QuickCheck(db_, "PRAGMA quick_check(" + sqlite::QuoteIdentifier(table) + ")"); !s.ok()) return s;
  }
  return Status::Ok();
}

Result<std::vector<DecisionRecord>> DecisionStore::List(const ListFilter& filter) {
  std::string sql = std::string("SELECT ") + kColumns;
  if (filter.outcome && filter.unfinished_only) {
    sql += std::string(kUnfinishedRows) + " AND outcome = ?1";
  } else if (filter.outcome) {
    sql += " FROM decisions WHERE outcome = ?1";
  } else if (filter.unfinished_only) {
    sql += kUnfinishedRows;
  } else {
    sql += " FROM decisions";
  }
  sql += " ORDER BY decided_ms DESC, txid LIMIT ?2";
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, sql, &stmt); !s.ok()) return s;
  if (filter.outcome) stmt->Bind(1, OutcomeName(*filter.outcome));
  uint64_t limit = std::min<uint64_t>(filter.limit, std::numeric_limits<int64_t>::max());
  stmt->Bind(2, static_cast<int64_t>(limit));
  return CollectRecords(stmt);
}

Result<std::vector<RegistryEntry>> DecisionStore::Registry() {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, "SELECT name, url, updated_ms FROM participants ORDER BY name", &stmt); !s.ok()) {
    return s;
  }
  std::vector<RegistryEntry> out;
  while (stmt->Step()) out.push_back(RegistryEntry{stmt->Text(0), stmt->Text(1), stmt->Int(2)});
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return out;
}

Result<RecoveredLog> DecisionStore::Recover() {
  RecoveredLog log;
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, kSelectUnfinished, &stmt); !s.ok()) return s;
  Result<std::vector<DecisionRecord>> unfinished = CollectRecords(stmt);
  if (!unfinished.ok()) return unfinished.status();
  log.unfinished = std::move(unfinished).value();
  Result<std::vector<RegistryEntry>> registry = Registry();
  if (!registry.ok()) return registry.status();
  log.registry = std::move(registry).value();
  Result<int64_t> heuristic = Count(std::nullopt, true);
  if (!heuristic.ok()) return heuristic.status();
  log.heuristic_decisions = static_cast<uint64_t>(*heuristic);
  return log;
}

Status DecisionStore::ForEach(const std::function<Status(const DecisionRecord&)>& fn) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, kSelectAll, &stmt); !s.ok()) return s;
  return ReadRecords(stmt, [&fn](DecisionRecord r) { return fn(r); });
}

Result<int64_t> DecisionStore::Count(std::optional<Outcome> outcome, bool heuristic_only) {
  std::string sql = "SELECT count(*) FROM decisions WHERE 1";
  if (outcome) sql += " AND outcome = ?1";
  if (heuristic_only) sql += " AND heuristic = 1";
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, sql, &stmt); !s.ok()) return s;
  if (outcome) stmt->Bind(1, OutcomeName(*outcome));
  int64_t n = stmt->Step() ? stmt->Int(0) : 0;
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return n;
}

int64_t KeyHash(const std::string& key) {
  const auth::Digest digest = auth::Sha256(key);
  int64_t hash = 0;
  std::memcpy(&hash, digest.data(), sizeof(hash));
  return hash;
}

namespace {

// Inside a savepoint: what was forgotten is remembered together with the deletion, or neither.
Status ForgetRows(sqlite::Database& db, int64_t cutoff_ms, int64_t keys_cutoff_ms, std::size_t limit,
                  std::size_t* forgotten) {
  sqlite::Statement* select;
  if (Status s = Prepare(db,
                         // INDEXED BY: the planner must not scan and sort every
                         // finished row, each time.
                         "SELECT txid, idempotency_key FROM decisions INDEXED BY decisions_finished_order "
                         "WHERE finished = 1 AND finished_ms < ?1 ORDER BY finished_ms, txid LIMIT ?2",
                         &select);
      !s.ok())
    return s;
  select->Bind(1, cutoff_ms).Bind(2, static_cast<int64_t>(std::min<std::size_t>(limit, 1'000'000)));
  std::vector<std::pair<std::string, std::string>> rows;
  while (select->Step()) rows.emplace_back(select->Text(0), select->Text(1));
  Status step = select->status();
  select->Reset();
  if (!step.ok()) return step;
  sqlite::Statement* horizon;
  if (Status s = Prepare(db,
                         "INSERT INTO forgotten_txids(coordinator, incarnation, max_sequence) VALUES (?1, ?2, ?3) "
                         "ON CONFLICT(coordinator, incarnation) DO UPDATE SET "
                         "max_sequence = max(max_sequence, excluded.max_sequence)",
                         &horizon);
      !s.ok())
    return s;
  sqlite::Statement* key;
  if (Status s = Prepare(db,
                         "INSERT INTO forgotten_keys(key_hash, forgotten_ms) VALUES (?1, ?2) ON CONFLICT(key_hash) "
                         "DO UPDATE SET forgotten_ms = max(forgotten_ms, excluded.forgotten_ms)",
                         &key);
      !s.ok())
    return s;
  sqlite::Statement* erase;
  if (Status s = Prepare(db, "DELETE FROM decisions WHERE txid = ?1", &erase); !s.ok()) return s;
  constexpr uint64_t kMaxSequence = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  for (const auto& [txid, idempotency_key] : rows) {
    if (std::optional<TxidParts> parts = ParseTxid(txid)) {
      horizon->Bind(1, parts->coordinator)
          .Bind(2, static_cast<int64_t>(std::min(parts->incarnation, kMaxSequence)))
          .Bind(3, static_cast<int64_t>(std::min(parts->sequence, kMaxSequence)));
      if (Status s = horizon->Run(); !s.ok()) return s;
    }
    if (!idempotency_key.empty()) {
      key->Bind(1, KeyHash(idempotency_key)).Bind(2, cutoff_ms);
      if (Status s = key->Run(); !s.ok()) return s;
    }
    erase->Bind(1, txid);
    if (Status s = erase->Run(); !s.ok()) return s;
  }
  *forgotten = rows.size();
  if (!rows.empty()) {
    sqlite::Statement* meta;
    if (Status s = Prepare(db,
                           "INSERT INTO meta(key, value) VALUES ('forgotten_before_ms', ?1) "
                           "ON CONFLICT(key) DO UPDATE SET value = excluded.value "
                           "WHERE CAST(value AS INTEGER) < CAST(excluded.value AS INTEGER)",
                           &meta);
        !s.ok())
      return s;
    meta->Bind(1, std::to_string(cutoff_ms));
    if (Status s = meta->Run(); !s.ok()) return s;
  }
  // Keys forgotten long enough are let go, as many per call as decisions
  // may be deleted: they were forgotten one per deleted decision, so this
  // keeps pace. Ordered, so every group member lets go of the same ones.
  sqlite::Statement* expire;
  if (Status s = Prepare(db,
                         "DELETE FROM forgotten_keys WHERE key_hash IN (SELECT key_hash FROM forgotten_keys "
                         "WHERE forgotten_ms < ?1 ORDER BY forgotten_ms, key_hash LIMIT ?2)",
                         &expire);
      !s.ok())
    return s;
  expire->Bind(1, keys_cutoff_ms).Bind(2, static_cast<int64_t>(std::min<std::size_t>(limit, 1'000'000)));
  return expire->Run();
}

}  // namespace

Result<std::size_t> DecisionStore::ForgetFinishedBefore(int64_t cutoff_ms, int64_t keys_cutoff_ms, std::size_t limit) {
  if (Status s = db_.Exec("SAVEPOINT forget_finished"); !s.ok()) return s;
  std::size_t forgotten = 0;
  Status s = ForgetRows(db_, cutoff_ms, keys_cutoff_ms, limit, &forgotten);
  if (!s.ok()) {
    db_.Exec("ROLLBACK TO forget_finished");
    db_.Exec("RELEASE forget_finished");
    return s;
  }
  if (Status r = db_.Exec("RELEASE forget_finished"); !r.ok()) return r;
  return forgotten;
}

Result<bool> DecisionStore::TxidForgotten(const std::string& txid) {
  std::optional<TxidParts> parts = ParseTxid(txid);
  if (!parts) return false;
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_,
                         "SELECT 1 FROM forgotten_txids WHERE coordinator = ?1 AND incarnation = ?2 "
                         "AND max_sequence >= ?3",
                         &stmt);
      !s.ok())
    return s;
  stmt->Bind(1, parts->coordinator)
      .Bind(2, static_cast<int64_t>(std::min(parts->incarnation, kMax)))
      .Bind(3, static_cast<int64_t>(std::min(parts->sequence, kMax)));
  const bool found = stmt->Step();
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return found;
}

Result<bool> DecisionStore::KeyForgotten(const std::string& key) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, "SELECT 1 FROM forgotten_keys WHERE key_hash = ?1", &stmt); !s.ok()) return s;
  stmt->Bind(1, KeyHash(key));
  const bool found = stmt->Step();
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return found;
}

Result<ForgottenState> DecisionStore::Forgotten() {
  ForgottenState out;
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, "SELECT coordinator, incarnation, max_sequence FROM forgotten_txids "
                              "ORDER BY coordinator, incarnation", &stmt);
      !s.ok())
    return s;
  while (stmt->Step()) out.txids.push_back({stmt->Text(0), stmt->Int(1), stmt->Int(2)});
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  if (s = Prepare(db_, "SELECT key_hash, forgotten_ms FROM forgotten_keys ORDER BY key_hash", &stmt); !s.ok()) {
    return s;
  }
  while (stmt->Step()) out.keys.push_back({stmt->Int(0), stmt->Int(1)});
  s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  if (s = Prepare(db_, "SELECT value FROM meta WHERE key = 'forgotten_before_ms'", &stmt); !s.ok()) return s;
  if (stmt->Step()) out.before_ms = std::atoll(stmt->Text(0).c_str());
  s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return out;
}

Status DecisionStore::RestoreForgotten(const ForgottenState& state) {
  if (Status s = db_.Exec("DELETE FROM forgotten_txids; DELETE FROM forgotten_keys; "
                          "DELETE FROM meta WHERE key = 'forgotten_before_ms'");
      !s.ok())
    return s;
  sqlite::Statement* stmt;
  if (Status s = Prepare(db_, "INSERT OR REPLACE INTO forgotten_txids(coordinator, incarnation, max_sequence) "
                              "VALUES (?1, ?2, ?3)", &stmt);
      !s.ok())
    return s;
  for (const auto& t : state.txids) {
    stmt->Bind(1, t.coordinator).Bind(2, t.incarnation).Bind(3, t.max_sequence);
    if (Status s = stmt->Run(); !s.ok()) return s;
  }
  if (Status s = Prepare(db_, "INSERT OR REPLACE INTO forgotten_keys(key_hash, forgotten_ms) VALUES (?1, ?2)", &stmt);
      !s.ok())
    return s;
  for (const ForgottenState::Key& k : state.keys) {
    stmt->Bind(1, k.hash).Bind(2, k.forgotten_ms);
    if (Status s = stmt->Run(); !s.ok()) return s;
  }
  if (state.before_ms != 0) return SetMetaValue(db_, "forgotten_before_ms", std::to_string(state.before_ms));
  return Status::Ok();
}

}  // namespace commitd::coordinator
