#include "participant/resource_manager.h"

#include <functional>
#include <set>
#include <utility>

#include "participant/changeset_apply.h"
#include "participant/changeset_record.h"
#include "participant/lock_keys.h"
#include "participant/procedure_check.h"
#include "participant/sql_sandbox.h"
#include "participant/user_statement.h"

namespace commitd::participant {

namespace {

using nlohmann::json;

using WrittenTables = std::set<std::pair<std::string, std::string>>;  // (database, table)

void OnUpdate(void* arg, int, const char* db_name, const char* table, sqlite3_int64) {
  static_cast<WrittenTables*>(arg)->emplace(db_name, table);
}

class UpdateHookScope {
 public:
  UpdateHookScope(sqlite3* db, WrittenTables* written) : db_(db) { sqlite3_update_hook(db_, OnUpdate, written); }
  ~UpdateHookScope() { sqlite3_update_hook(db_, nullptr, nullptr); }
  UpdateHookScope(const UpdateHookScope&) = delete;
  UpdateHookScope& operator=(const UpdateHookScope&) = delete;

 private:
  sqlite3* db_;
};

int DeferredForeignKeyViolations(sqlite3* db) {
  int current = 0;
  int highwater = 0;
  sqlite3_db_status(db, SQLITE_DBSTATUS_DEFERRED_FKS, &current, &highwater, 0);
  return current;
}

Status ExecOrIo(sqlite::Database& db, const char* sql) {
  Status s = db.Exec(sql);
  return s.ok() ? s : Status::IoError(std::string(sql) + ": " + s.message());
}

}  // namespace

ResourceManager::ResourceManager(sqlite::Database& db, Procedures procedures, ResourceManagerOptions options)
    : db_(db),
      procedures_(std::move(procedures)),
      options_(options),
      store_(db),
      schemas_(db),
      applier_(std::make_unique<ChangesetApplier>(db)),
      recorder_(std::make_unique<ChangesetRecorder>(db)) {}

ResourceManager::~ResourceManager() { RemoveSqlSandbox(db_.handle()); }

Result<std::unique_ptr<ResourceManager>> ResourceManager::Open(sqlite::Database& db, Procedures procedures,
                                                               ResourceManagerOptions options) {
  if (Status s = PreparedRecordStore(db).CreateTables(); !s.ok()) return s;
  if (Status s = CheckProceduresAgainstSchema(db, procedures); !s.ok()) return s;
  InstallSqlSandbox(db.handle());
  std::unique_ptr<ResourceManager> rm(new ResourceManager(db, std::move(procedures), options));
  if (Status s = rm->RebuildLocks(); !s.ok()) return s;
  return rm;
}

Status ResourceManager::RebuildLocks() {
  auto records = LoadPrepared();
  if (!records.ok()) return records.status();
  locks_.Clear();
  // Records were prepared under the lock table, so their keys cannot overlap.
  for (const PreparedRecord& r : *records) locks_.TryAcquire(r.txid, r.lock_keys);
  return Status::Ok();
}

void PrepareJob::Scratch(ResourceManager& rm) { execution = rm.Execute(record.txid, ops); }

EarlierOutcome EarlierOutcome::From(const Result<std::optional<StoredOutcome>>& read) {
  if (!read.ok()) return {Kind::kUnreadable, Outcome::kAborted, read.status()};
  if (!read->has_value()) return {Kind::kNone, Outcome::kAborted, Status::Ok()};
  return {Kind::kFound, (*read)->outcome, Status::Ok()};
}

void PrepareJob::Durable(ResourceManager& rm) {
  // In the durable step, so that an outcome written earlier in this batch (a
  // tombstone) is seen.
  EarlierOutcome earlier = EarlierOutcome::From(rm.FindOutcome(record.txid));
  if (earlier.kind != EarlierOutcome::Kind::kNone) {
    result.earlier = std::move(earlier);
    return;
  }
  result = rm.Prepare(record, ops, std::move(execution));
  result.earlier = std::move(earlier);
}

PrepareResult ResourceManager::Prepare(PreparedRecord& record, const std::vector<wire::Op>& ops,
                                       ExecutionResult execution) {
  // Only an execution that passed and met no held key is surely current: the
  // rows it writes changed in no commit since. A failed one runs again too (a
  // commit earlier in this batch may have made it possible); failures are rare.
  if (!execution.ran || (!execution.ok && !execution.interrupted) || execution.met_held_key) execution = Execute(record.txid, ops);
  PrepareResult result;
  if (!execution.ok) {
    result.reason = std::move(execution.reason);
    return result;
  }
  if (auto holder = locks_.FirstHolder(record.txid, execution.lock_keys)) {
    result.reason = "lock conflict with " + *holder;
    result.lock_conflict = true;
    result.lock_holder = *holder;
    return result;
  }
  record.changeset = std::move(execution.changeset);
  record.lock_keys = std::move(execution.lock_keys);
  if (Status s = PersistPrepared(record); !s.ok()) {
    result.reason = "could not persist the prepared record: " + s.message();
    return result;
  }
  locks_.TryAcquire(record.txid, record.lock_keys);
  result.yes = true;
  result.results = std::move(execution.results);
  result.lock_keys = record.lock_keys;
  return result;
}

namespace {
// Runs steps in a savepoint that is rolled back unless they succeed (or keep says so).
template <class Steps>
Status InSavepoint(sqlite::Database& db, Steps&& steps) {
  if (Status s = ExecOrIo(db, "SAVEPOINT commitd_decide"); !s.ok()) return s;
  auto [status, keep] = steps();
  if (!keep) db.Exec("ROLLBACK TO commitd_decide");
  db.Exec("RELEASE commitd_decide");
  return status;
}
}  // namespace

Status ResourceManager::Commit(const std::string& txid, int64_t now_ms) {
  Status s = ApplyInSavepoint(txid, [&] { return RememberOutcome(txid, "committed", now_ms); });
  if (s.ok()) locks_.Release(txid);
  return s;
}

Status ResourceManager::Abort(const std::string& txid, int64_t now_ms) {
  Status s = InSavepoint(db_, [&] {
    Status discarded = DiscardPrepared(txid);
    if (discarded.ok()) discarded = RememberOutcome(txid, "aborted", now_ms);
    return std::pair{discarded, discarded.ok()};
  });
  if (s.ok()) locks_.Release(txid);
  return s;
}

Status ResourceManager::Validate(const std::vector<wire::Op>& ops) const {
  for (const wire::Op& op : ops) {
    if (op.is_raw()) {
      if (!options_.allow_raw_sql) return Status::InvalidArgument("raw SQL is not allowed on this agent");
    } else if (op.procedure.has_value()) {
      if (procedures_.Find(*op.procedure) == nullptr) {
        return Status::InvalidArgument("unknown procedure '" + *op.procedure + "'");
      }
    } else {
      return Status::InvalidArgument("an op needs a procedure or sql");
    }
  }
  return Status::Ok();
}

ExecutionResult ResourceManager::Execute(const std::string& txid, const std::vector<wire::Op>& ops) {
  ExecutionResult result;
  result.ran = true;
  if (Status s = Validate(ops); !s.ok()) {
    result.reason = s.message();
    return result;
  }
  const int deferred_fks_before = DeferredForeignKeyViolations(db_.handle());
  if (Status s = db_.Exec("SAVEPOINT commitd_execute"); !s.ok()) {
    result.reason = "cannot open a savepoint: " + s.message();
    return result;
  }

  std::string reason;
  // Ops cannot change the schema: one read serves every table lookup below.
  Result<int64_t> schema_version = SchemaVersion(db_);
  if (!schema_version.ok()) reason = "cannot read the schema version: " + schema_version.status().message();
  WrittenTables written;
  {
    struct StopRecording {
      ChangesetRecorder& recorder;
      ~StopRecording() { recorder.Stop(); }
    } stop_recording{*recorder_};
    if (Status s = recorder_->Start(); !s.ok() && reason.empty()) reason = "cannot record the changes: " + s.message();

    std::size_t row_count = 0;
    StatementBudget budget{options_.sql_statement_timeout_ms};
    if (reason.empty()) {
      UpdateHookScope hook(db_.handle(), &written);
      for (std::size_t i = 0; i < ops.size() && reason.empty(); ++i) {
        const wire::Op& op = ops[i];
        json rows = json::array();
        if (op.is_raw()) {
          UserStatement statement{&*op.sql, "ops[" + std::to_string(i) + "]", std::nullopt,
                                  [&](sqlite3_stmt* s) { return BindPositional(s, op.params, txid); }};
          reason = RunUserStatement(db_, statement, &budget, &rows, &row_count);
        } else {
          const Procedure* proc = procedures_.Find(*op.procedure);
          if (proc->callable) reason = RunCallable(db_, *proc, op.args, txid, &budget, &rows, &row_count);
          for (std::size_t k = 0; k < proc->statements.size() && reason.empty(); ++k) {
            const std::string& sql = proc->statements[k];
            UserStatement statement{&sql, "procedure '" + proc->name + "'", proc->expect_changes,
                                    [&](sqlite3_stmt* s) { return BindNamed(s, op.args, txid); }};
            reason = RunUserStatement(db_, statement, &budget, &rows, &row_count);
          }
        }
        result.results.push_back(std::move(rows));
      }
      result.interrupted = budget.interrupted;
    }

    if (reason.empty()) {
      for (const auto& [db_name, table] : written) {
        if (db_name != "main") {
          reason = "table '" + db_name + "." + table +
                   "' is not in the main database; commitd cannot lock or replay writes to it";
        } else if (IsReservedTable(table.c_str()) || IsSqliteInternalTable(table.c_str())) {
          reason = "table '" + table + "' is reserved";
        } else if (const TableSchema* info = schemas_.Find(table, *schema_version);
                   info == nullptr || info->columns.empty()) {
          reason = "cannot read the schema of table '" + table + "'";
        } else if (info->pk.empty()) {
          reason = "table '" + table + "' has no PRIMARY KEY; commitd cannot lock or replay writes to it";
        }
        if (!reason.empty()) break;
      }
    }

    // Deferred foreign keys are only checked at the outer COMMIT, long after
    // this vote: a violation the ops left behind must be a no now.
    if (reason.empty() && DeferredForeignKeyViolations(db_.handle()) > deferred_fks_before) {
      reason = "FOREIGN KEY constraint failed (deferred foreign key left violated)";
    }
    if (reason.empty()) {
      Result<std::string> changeset = recorder_->Changeset();
      if (changeset.ok()) {
        result.changeset = std::move(changeset).value();
      } else if (changeset.status().code() == StatusCode::kInvalidArgument) {
        reason = "cannot record the changes: a written table has generated columns, which changesets "
                 "(SQLite's session format) do not hold";
      } else {
        reason = "cannot record the changes: " + changeset.status().message();
      }
    }
  }

  if (db_.InTransaction()) {
    Status undo = db_.Exec("ROLLBACK TO commitd_execute");
    if (undo.ok()) undo = db_.Exec("RELEASE commitd_execute");
    if (!undo.ok() && reason.empty()) reason = "cannot roll back the savepoint: " + undo.message();
  } else if (reason.empty()) {
    reason = "the enclosing transaction was rolled back";
  }

  if (reason.empty()) {
    std::map<std::string, const TableSchema*> seen;
    auto lookup = [this, &seen, version = *schema_version](const std::string& name) -> const TableSchema* {
      auto it = seen.find(name);
      if (it == seen.end()) it = seen.emplace(name, schemas_.Find(name, version)).first;
      return it->second;
    };
    Status s = DeriveLockKeys(db_, result.changeset, lookup, &result.lock_keys);
    if (!s.ok()) reason = "cannot derive lock keys: " + s.message();
  }

  if (!reason.empty()) {
    result.reason = std::move(reason);
    result.changeset.clear();
    result.lock_keys.clear();
    return result;
  }
  result.ok = true;
  result.met_held_key = locks_.FirstHolder(txid, result.lock_keys).has_value();
  return result;
}

Status ResourceManager::PersistPrepared(const PreparedRecord& record) { return store_.Persist(record); }

Status ResourceManager::UpdatePrepared(const std::string& txid, const std::string& state,
                                       const std::string& last_error) {
  return store_.Update(txid, state, last_error);
}

Status ResourceManager::AdoptPrepared(const std::string& txid, const Adoption& adoption) {
  return store_.Adopt(txid, adoption);
}

Status ResourceManager::ApplyInSavepoint(const std::string& txid, const std::function<Status()>& then) {
  if (Status s = ExecOrIo(db_, "SAVEPOINT commitd_apply"); !s.ok()) return s;
  std::string conflict;
  Status result;
  if (Result<std::string> changeset = store_.Changeset(txid); !changeset.ok()) {
    result = changeset.status();
  } else if (Status applied = applier_->Apply(*changeset); applied.code() == StatusCode::kConflict) {
    conflict = applied.message();
  } else if (!applied.ok()) {
    result = Status::IoError("apply changeset of '" + txid + "': " + applied.message());
  } else {
    result = store_.Delete(txid);
  }
  if (result.ok() && conflict.empty() && then) result = then();
  if (result.ok() && conflict.empty()) return ExecOrIo(db_, "RELEASE commitd_apply");
  if (Status s = ExecOrIo(db_, "ROLLBACK TO commitd_apply"); !s.ok()) return s;
  if (!conflict.empty()) {
    result = store_.MarkConflict(txid, conflict);
    if (result.ok()) result = Status::Conflict(conflict);
  }
  if (Status s = ExecOrIo(db_, "RELEASE commitd_apply"); !s.ok()) return s;
  return result;
}

Status ResourceManager::ApplyCommit(const std::string& txid) { return ApplyInSavepoint(txid, nullptr); }

Status ResourceManager::DiscardPrepared(const std::string& txid) { return store_.Delete(txid); }

Status ResourceManager::RememberOutcome(const std::string& txid, const std::string& outcome, int64_t now_ms) {
  return store_.RememberOutcome(txid, outcome, now_ms);
}

Status ResourceManager::ForgetOutcomesBefore(int64_t cutoff_ms) { return store_.ForgetOutcomesBefore(cutoff_ms); }

Result<std::vector<PreparedRecord>> ResourceManager::LoadPrepared() { return store_.LoadPrepared(); }

Result<std::map<std::string, std::string>> ResourceManager::LoadOutcomes() { return store_.LoadOutcomes(); }
Result<std::optional<StoredOutcome>> ResourceManager::FindOutcome(const std::string& txid) {
  return store_.FindOutcome(txid);
}

}  // namespace commitd::participant
