#include "tools/commitctl/offline_files.h"

#include <filesystem>

#include "coordinator/decision_store.h"

namespace commitd::commitctl {

Result<std::unique_ptr<sqlite::Database>> OpenOffline(const std::string& path, const std::string& owner) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::NotFound("no database file at " + path);
  sqlite::OpenOptions options;
  options.create = false;
  options.wal = false;  // journal_mode would read the file before the locking mode is set
  options.busy_timeout_ms = 1000;
  auto db = sqlite::Database::Open(path, options);
  if (!db.ok()) return db.status();
  if (Status s = (*db)->Exec("PRAGMA locking_mode=EXCLUSIVE"); !s.ok()) return s;
  if (Status s = (*db)->Exec("BEGIN EXCLUSIVE"); !s.ok()) {
    const int code = sqlite3_errcode((*db)->handle()) & 0xff;
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED || s.message().find("locked") != std::string::npos) {
      return Status::Unavailable(path + " is in use: a running " + owner +
                                 " (or another commitctl) has it open. Offline commands must not run beside a "
                                 "live service: stop it first, or use the online commands (`commitctl in-doubt`, "
                                 "`commitctl resolve`) against it.");
    }
    return Status::IoError("lock " + path + ": " + s.message());
  }
  if (Status s = (*db)->Exec("COMMIT"); !s.ok()) return Status::IoError("lock " + path + ": " + s.message());
  return db;
}

Result<std::unique_ptr<sqlite::Database>> OpenDecisionLog(const std::string& data_dir, bool read_only) {
  const std::string path = (std::filesystem::path(data_dir) / "decisions.db").string();
  auto db = OpenOffline(path, "commitd");
  if (!db.ok()) {
    if (db.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("no decision log at " + path + ": check --data-dir (the coordinator's --data-dir)");
    }
    return db.status();
  }
  if (read_only) {
    // Read from an in-memory copy taken under the lock: an older schema is
    // upgraded there, and the file itself is never changed.
    auto copy = sqlite::Database::Open(":memory:");
    if (!copy.ok()) return copy.status();
    sqlite3_backup* backup = sqlite3_backup_init((*copy)->handle(), "main", (*db)->handle(), "main");
    if (backup == nullptr) return (*copy)->LastError("copy " + path);
    const int rc = sqlite3_backup_step(backup, -1);
    sqlite3_backup_finish(backup);
    if (rc != SQLITE_DONE) return Status::IoError("copy " + path + ": " + sqlite3_errstr(rc));
    db = std::move(copy);
  }
  if (Status s = coordinator::DecisionStore(**db).CreateSchema(); !s.ok()) return s;
  return db;
}

Result<ParticipantFile> OpenParticipantDb(const std::string& path) {
  ParticipantFile file;
  file.path = path;
  auto db = OpenOffline(path, "commit-agent");
  if (!db.ok()) return db.status();
  file.db = std::move(db).value();
  Status error;
  sqlite::Statement* stmt =
      file.db->Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_commitd_prepared'", &error);
  if (stmt == nullptr) return Status::IoError(path + ": " + error.message());
  const bool is_agent_db = stmt->Step();
  stmt->Reset();
  if (!is_agent_db) {
    return Status::InvalidArgument(path + " has no _commitd_prepared table: it is not the database of a "
                                          "commit-agent (check --participant-db)");
  }
  auto rm = participant::ResourceManager::Open(*file.db, participant::Procedures(), {});
  if (!rm.ok()) return rm.status();
  file.rm = std::move(rm).value();
  return file;
}

nlohmann::json DecisionToJson(const coordinator::DecisionRecord& r) {
  nlohmann::json j = {{"txid", r.txid},
                      {"protocol", wire::ProtocolName(r.protocol)},
                      {"outcome", coordinator::OutcomeName(r.outcome)},
                      {"participants", r.participants},
                      {"created_ms", r.created_ms},
                      {"decided_ms", r.decided_ms},
                      {"finished", r.finished},
                      {"heuristic", r.heuristic}};
  if (r.finished) j["finished_ms"] = r.finished_ms;
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (!r.idempotency_key.empty()) j["idempotency_key"] = r.idempotency_key;
  return j;
}

nlohmann::json PreparedToJson(const participant::PreparedRecord& r, int64_t now_ms) {
  return {{"txid", r.txid},
          {"protocol", r.protocol},
          {"state", r.state},
          {"coordinator", r.coordinator},
          {"participants", r.participants},
          {"age_ms", now_ms - r.created_ms},
          {"deadline_ms", r.deadline_ms},
          {"lock_keys", r.lock_keys.size()},
          {"last_error", r.last_error}};
}

}  // namespace commitd::commitctl
