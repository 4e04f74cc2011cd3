#include "coordinator/sqlite_decision_log.h"

#include <boost/asio/post.hpp>
#include <algorithm>
#include <future>
#include <limits>

namespace commitd::coordinator {

namespace {

using nlohmann::json;

constexpr std::string_view kSchemaVersion = "1";

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
  finished_ms INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS decisions_idempotency_key
  ON decisions(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS decisions_finished ON decisions(finished);
CREATE INDEX IF NOT EXISTS decisions_decided_ms ON decisions(decided_ms);
CREATE TABLE IF NOT EXISTS participants (
  name TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  updated_ms INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
)sql";

constexpr char kColumns[] =
    "txid, protocol, outcome, participants, reason, idempotency_key, reply, created_ms, decided_ms, finished, "
    "finished_ms";

const std::string kInsertDecision = std::string("INSERT OR IGNORE INTO decisions(") + kColumns +
                                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const std::string kSelectByTxid = std::string("SELECT ") + kColumns + " FROM decisions WHERE txid = ?1";
const std::string kSelectByKey = std::string("SELECT ") + kColumns + " FROM decisions WHERE idempotency_key = ?1";
const std::string kSelectUnfinished =
    std::string("SELECT ") + kColumns + " FROM decisions WHERE finished = 0 ORDER BY decided_ms, txid";

Status Prepare(sqlite::Database& db, const std::string& sql, sqlite::Statement** stmt) {
  Status error;
  *stmt = db.Prepare(sql, &error);
  if (*stmt == nullptr) return Status::Internal("prepare " + sql + ": " + error.message());
  return Status::Ok();
}

std::string ParticipantsToJson(const std::vector<ParticipantRef>& participants) {
  json j = json::array();
  for (const ParticipantRef& p : participants) j.push_back({{"name", p.name}, {"url", p.url}});
  return j.dump();
}

Status ParticipantsFromJson(const std::string& text, std::vector<ParticipantRef>* out) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_array()) return Status::Corruption("participants is not a JSON array: " + text);
  for (const json& p : j) {
    auto name = p.find("name");
    auto url = p.find("url");
    if (!p.is_object() || name == p.end() || url == p.end() || !name->is_string() || !url->is_string()) {
      return Status::Corruption("bad participant entry: " + p.dump());
    }
    out->push_back(ParticipantRef{name->get<std::string>(), url->get<std::string>()});
  }
  return Status::Ok();
}

// The current row of a statement selecting kColumns.
Result<DecisionRecord> ReadRecord(const sqlite::Statement& stmt) {
  DecisionRecord r;
  r.txid = stmt.Text(0);
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
  if (Status s = ParticipantsFromJson(stmt.Text(3), &r.participants); !s.ok()) {
    return Status::Corruption("decision " + r.txid + ": " + s.message());
  }
  r.reason = stmt.Text(4);
  r.idempotency_key = stmt.Text(5);
  std::string reply = stmt.Text(6);
  r.reply = json::parse(reply, nullptr, false);
  if (r.reply.is_discarded()) return Status::Corruption("decision " + r.txid + ": reply is not JSON");
  r.created_ms = stmt.Int(7);
  r.decided_ms = stmt.Int(8);
  r.finished = stmt.Int(9) != 0;
  r.finished_ms = stmt.Int(10);
  return r;
}

// Every row of a prepared (and bound) statement selecting kColumns.
Result<std::vector<DecisionRecord>> ReadRecords(sqlite::Statement* stmt) {
  std::vector<DecisionRecord> out;
  while (stmt->Step()) {
    Result<DecisionRecord> r = ReadRecord(*stmt);
    if (!r.ok()) {
      stmt->Reset();
      return r.status();
    }
    out.push_back(std::move(r).value());
  }
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return out;
}

Result<std::optional<DecisionRecord>> FindOne(sqlite::Database& db, const std::string& sql, const std::string& key) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, sql, &stmt); !s.ok()) return s;
  stmt->Bind(1, key);
  Result<std::vector<DecisionRecord>> rows = ReadRecords(stmt);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<DecisionRecord>();
  return std::optional<DecisionRecord>(std::move(rows->front()));
}

// Why INSERT OR IGNORE did not insert `r`.
Status ExplainConflict(sqlite::Database& db, const DecisionRecord& r) {
  Result<std::optional<DecisionRecord>> existing = FindOne(db, kSelectByTxid, r.txid);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return Status::Conflict("decision for " + r.txid + " already recorded: " +
                            std::string(OutcomeName((*existing)->outcome)));
  }
  if (!r.idempotency_key.empty()) {
    existing = FindOne(db, kSelectByKey, r.idempotency_key);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) {
      return Status::Conflict("idempotency key '" + r.idempotency_key + "' already used by " + (*existing)->txid);
    }
  }
  return Status::Internal("decision for " + r.txid + " was not inserted");
}

Status InsertDecision(sqlite::Database& db, const DecisionRecord& r) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, kInsertDecision, &stmt); !s.ok()) return s;
  stmt->Bind(1, r.txid)
      .Bind(2, wire::ProtocolName(r.protocol))
      .Bind(3, OutcomeName(r.outcome))
      .Bind(4, ParticipantsToJson(r.participants))
      .Bind(5, r.reason);
  if (r.idempotency_key.empty()) {
    stmt->BindNull(6);
  } else {
    stmt->Bind(6, r.idempotency_key);
  }
  stmt->Bind(7, r.reply.dump())
      .Bind(8, r.created_ms)
      .Bind(9, r.decided_ms)
      .Bind(10, static_cast<int64_t>(r.finished ? 1 : 0))
      .Bind(11, r.finished_ms);
  if (Status s = stmt->Run(); !s.ok()) return s;
  if (sqlite3_changes(db.handle()) == 0) return ExplainConflict(db, r);
  return Status::Ok();
}

Status UpdateFinished(sqlite::Database& db, const std::string& txid, int64_t finished_ms) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, "UPDATE decisions SET finished = 1, finished_ms = ?1 WHERE txid = ?2 AND finished = 0",
                         &stmt);
      !s.ok())
    return s;
  stmt->Bind(1, finished_ms).Bind(2, txid);
  if (Status s = stmt->Run(); !s.ok()) return s;
  if (sqlite3_changes(db.handle()) > 0) return Status::Ok();
  // Not updated: already finished (fine, the first time stays) or unknown.
  Result<std::optional<DecisionRecord>> existing = FindOne(db, kSelectByTxid, txid);
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) return Status::NotFound("no decision recorded for " + txid);
  return Status::Ok();
}

Status UpsertParticipant(sqlite::Database& db, const RegistryEntry& e) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db,
                         "INSERT INTO participants(name, url, updated_ms) VALUES (?1, ?2, ?3) "
                         "ON CONFLICT(name) DO UPDATE SET url = excluded.url, updated_ms = excluded.updated_ms",
                         &stmt);
      !s.ok())
    return s;
  stmt->Bind(1, e.name).Bind(2, e.url).Bind(3, e.updated_ms);
  return stmt->Run();
}

Result<std::vector<DecisionRecord>> List(sqlite::Database& db, const ListFilter& filter) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM decisions";
  if (filter.outcome && filter.unfinished_only) {
    sql += " WHERE outcome = ?1 AND finished = 0";
  } else if (filter.outcome) {
    sql += " WHERE outcome = ?1";
  } else if (filter.unfinished_only) {
    sql += " WHERE finished = 0";
  }
  sql += " ORDER BY decided_ms DESC, txid LIMIT ?2";
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, sql, &stmt); !s.ok()) return s;
  if (filter.outcome) stmt->Bind(1, OutcomeName(*filter.outcome));
  uint64_t limit = std::min<uint64_t>(filter.limit, std::numeric_limits<int64_t>::max());
  stmt->Bind(2, static_cast<int64_t>(limit));
  return ReadRecords(stmt);
}

Result<std::vector<RegistryEntry>> Registry(sqlite::Database& db) {
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, "SELECT name, url, updated_ms FROM participants ORDER BY name", &stmt); !s.ok()) {
    return s;
  }
  std::vector<RegistryEntry> out;
  while (stmt->Step()) out.push_back(RegistryEntry{stmt->Text(0), stmt->Text(1), stmt->Int(2)});
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return out;
}

Result<RecoveredLog> RecoverFrom(sqlite::Database& db) {
  RecoveredLog log;
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, kSelectUnfinished, &stmt); !s.ok()) return s;
  Result<std::vector<DecisionRecord>> unfinished = ReadRecords(stmt);
  if (!unfinished.ok()) return unfinished.status();
  log.unfinished = std::move(unfinished).value();
  Result<std::vector<RegistryEntry>> registry = Registry(db);
  if (!registry.ok()) return registry.status();
  log.registry = std::move(registry).value();
  return log;
}

Status CreateSchema(sqlite::Database& db) {
  sqlite::Transaction txn(db);
  if (!txn.status().ok()) return txn.status();
  if (Status s = db.Exec(kSchema); !s.ok()) return Status::IoError("create schema: " + s.message());
  sqlite::Statement* stmt;
  if (Status s = Prepare(db, "SELECT value FROM meta WHERE key = 'schema_version'", &stmt); !s.ok()) return s;
  std::string version = stmt->Step() ? stmt->Text(0) : std::string();
  Status step = stmt->status();
  stmt->Reset();
  if (!step.ok()) return step;
  if (version != kSchemaVersion) {
    return Status::Corruption(db.path() + ": unsupported schema_version '" + version + "' (want " +
                              std::string(kSchemaVersion) + ")");
  }
  return txn.Commit();
}

// Runs a read on the storage thread and posts its result to io.
template <class T>
void PostRead(BatchWriter& writer, boost::asio::any_io_executor io, std::function<T(sqlite::Database&)> read,
              std::function<void(T)> done) {
  writer.Read([io = std::move(io), read = std::move(read), done = std::move(done)](sqlite::Database& db) mutable {
    boost::asio::post(io, [done = std::move(done), result = read(db)]() mutable { done(std::move(result)); });
  });
}

}  // namespace

Result<std::unique_ptr<SqliteDecisionLog>> SqliteDecisionLog::Open(const std::string& path,
                                                                   boost::asio::any_io_executor io,
                                                                   std::size_t max_batch) {
  Result<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(path);
  if (!db.ok()) return db.status();
  if (Status s = CreateSchema(**db); !s.ok()) return s;
  return std::unique_ptr<SqliteDecisionLog>(new SqliteDecisionLog(std::move(db).value(), std::move(io), max_batch));
}

SqliteDecisionLog::SqliteDecisionLog(std::unique_ptr<sqlite::Database> db, boost::asio::any_io_executor io,
                                     std::size_t max_batch)
    : io_(std::move(io)), db_(std::move(db)), writer_(std::make_unique<BatchWriter>(*db_, io_, max_batch)) {}

SqliteDecisionLog::~SqliteDecisionLog() {
  writer_.reset();  // drains queued writes and joins the storage thread
  db_.reset();
}

Result<RecoveredLog> SqliteDecisionLog::Recover() {
  // Blocking the io thread is fine here: it runs once, before serving, and
  // the storage thread never waits for the io thread.
  std::promise<Result<RecoveredLog>> promise;
  std::future<Result<RecoveredLog>> future = promise.get_future();
  writer_->Read([&promise](sqlite::Database& db) { promise.set_value(RecoverFrom(db)); });
  return future.get();
}

void SqliteDecisionLog::AppendDecision(DecisionRecord record, std::function<void(Status)> done) {
  // Serializing the record happens on the storage thread, off the io thread.
  writer_->Submit(BatchWriter::Job{
      [record = std::move(record)](sqlite::Database& db) { return InsertDecision(db, record); }, std::move(done)});
}

void SqliteDecisionLog::MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) {
  writer_->Submit(BatchWriter::Job{
      [txid = std::move(txid), finished_ms](sqlite::Database& db) { return UpdateFinished(db, txid, finished_ms); },
      std::move(done)});
}

void SqliteDecisionLog::PutParticipant(RegistryEntry entry, std::function<void(Status)> done) {
  writer_->Submit(BatchWriter::Job{
      [entry = std::move(entry)](sqlite::Database& db) { return UpsertParticipant(db, entry); }, std::move(done)});
}

void SqliteDecisionLog::FindDecision(std::string txid,
                                     std::function<void(Result<std::optional<DecisionRecord>>)> done) {
  PostRead<Result<std::optional<DecisionRecord>>>(
      *writer_, io_, [txid = std::move(txid)](sqlite::Database& db) { return FindOne(db, kSelectByTxid, txid); },
      std::move(done));
}

void SqliteDecisionLog::FindByIdempotencyKey(std::string key,
                                             std::function<void(Result<std::optional<DecisionRecord>>)> done) {
  PostRead<Result<std::optional<DecisionRecord>>>(
      *writer_, io_, [key = std::move(key)](sqlite::Database& db) { return FindOne(db, kSelectByKey, key); },
      std::move(done));
}

void SqliteDecisionLog::ListDecisions(ListFilter filter,
                                      std::function<void(Result<std::vector<DecisionRecord>>)> done) {
  PostRead<Result<std::vector<DecisionRecord>>>(
      *writer_, io_, [filter](sqlite::Database& db) { return List(db, filter); }, std::move(done));
}

}  // namespace commitd::coordinator
