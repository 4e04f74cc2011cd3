// The SQLite resource manager of an agent.
//
// SQLite cannot keep a prepared transaction open, so Execute() runs a
// transaction's ops inside a savepoint while a ChangesetRecorder records their
// changes, takes the changeset, and rolls the savepoint back: the database keeps only
// committed data, and the changeset (plus the lock keys derived from it) is
// what gets persisted in _commitd_prepared and applied at commit.
//
// It also holds the lock table: the keys of every durable
// prepared record. Prepare() takes them as it writes the record, Commit() and
// Abort() release them once the record is gone; a batch rolled back after
// that calls RebuildLocks().
//
// Thread: storage thread only. Every method except Open/LoadPrepared is called
// inside a batch transaction opened by BatchWriter on db().
#pragma once

#include <map>
#include <functional>
#include <memory>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/sqlite_db.h"
#include "common/status.h"
#include "common/wire.h"
#include "participant/lock_table.h"
#include "participant/outcome.h"
#include "participant/prepared_record_store.h"
#include "participant/procedures.h"
#include "participant/table_schema.h"

namespace commitd::participant {

class ChangesetApplier;
class ChangesetRecorder;

struct ExecutionResult {
  bool ok = false;
  std::string reason;                    // why not ok: constraint message, expect_changes, no PRIMARY KEY...
  std::string changeset;                 // changeset bytes, sqlite3session format (may be empty: read-only)
  std::vector<std::string> lock_keys;    // sorted, unique
  nlohmann::json results = nlohmann::json::array();  // one array of row objects per op
  bool ran = false;          // Execute() ran (false: a prepare's execution was never reached)
  bool met_held_key = false;  // one of lock_keys was held by another transaction when it ran
  bool interrupted = false;   // a statement ran past sql_statement_timeout_ms (a no that is not run again)
};

// What a prepare's storage job found of its txid among the remembered
// outcomes (_commitd_finished) before it wrote anything.
struct EarlierOutcome {
  enum class Kind : uint8_t {
    kNotRead,     // the job never got to read (its batch failed first): nothing is known
    kNone,        // a txid not finished here: the prepare went on
    kFound,       // finished here before, as `outcome`: no record was written, nothing of it stays
    kUnreadable,  // the row could not be read (`error`): no record was written, nothing of it stays
  };
  Kind kind = Kind::kNotRead;
  Outcome outcome = Outcome::kAborted;
  Status error;

  // What a read of the txid's remembered outcome (FindOutcome) found.
  static EarlierOutcome From(const Result<std::optional<StoredOutcome>>& read);
};

// What a prepare came to: a yes (the record is durable once the batch
// commits, its keys are held) or a no and why.
struct PrepareResult {
  bool yes = false;
  std::string reason;
  bool lock_conflict = false;  // a no because another transaction holds a key
  std::string lock_holder;     // lock_conflict: the transaction that holds the first key met
  // lock_conflict: the prepare as it came (SqliteStore hands it back), so
  // that the engine can run it again once the holder is done.
  std::vector<wire::Op> ops;
  PreparedRecord record;
  nlohmann::json results = nlohmann::json::array();
  std::vector<std::string> lock_keys;  // taken (yes only)
  EarlierOutcome earlier;
};

struct ResourceManagerOptions {
  bool allow_raw_sql = false;
  int64_t sql_statement_timeout_ms = Config{}.sql_statement_timeout_ms;  // each statement of an op
};

class ResourceManager;

// One prepare as a storage job in the two steps of a batch (BatchWriter::Job):
// Scratch() executes the ops in the batch's scratch step, Durable() takes the
// keys and writes the record in its durable step; `result` is the vote.
struct PrepareJob {
  std::vector<wire::Op> ops;
  PreparedRecord record;  // without changeset and lock keys until Durable()
  ExecutionResult execution;
  PrepareResult result;

  void Scratch(ResourceManager& rm);
  void Durable(ResourceManager& rm);
};

class ResourceManager {
 public:
  // Opens (creating the _commitd_* tables if needed). `db` must outlive the RM.
  // InvalidArgument if a statement of a SQL procedure does not prepare against
  // the database's schema (a missing table or column), naming both.
  static Result<std::unique_ptr<ResourceManager>> Open(sqlite::Database& db, Procedures procedures,
                                                       ResourceManagerOptions options);
  ~ResourceManager();

  // Checks ops against the procedures and the raw-SQL policy without running
  // anything: "unknown procedure 'x'", "raw SQL is not allowed on this agent".
  Status Validate(const std::vector<wire::Op>& ops) const;

  // Runs ops in a savepoint, recording changes to every non-_commitd_
  // table, binds :txid and named args, checks expect_changes, refuses writes
  // to tables without a PRIMARY KEY, takes the changeset, derives lock keys
  // (primary key and every UNIQUE index, old and new values), and rolls back.
  ExecutionResult Execute(const std::string& txid, const std::vector<wire::Op>& ops);

  // A prepare's second step, in the durable transaction: takes the
  // execution's lock keys and writes the record (`record` comes without
  // changeset and keys; they are filled in from the execution). An execution that met a held
  // key, failed, or never ran, runs (again) here first: the holder may have
  // committed since, and the ops must see its commit (an execution
  // interrupted at sql_statement_timeout_ms is not run again). A key still held is a no
  // ("lock conflict with <txid>"); nothing is written or taken then.
  PrepareResult Prepare(PreparedRecord& record, const std::vector<wire::Op>& ops, ExecutionResult execution);
  // Commit: ApplyCommit's steps and RememberOutcome in one savepoint, then
  // the record's keys are released. A conflict keeps the record and its keys.
  Status Commit(const std::string& txid, int64_t now_ms);
  // Abort: DiscardPrepared and RememberOutcome in one savepoint, then the keys are released.
  Status Abort(const std::string& txid, int64_t now_ms);
  // The lock table again from _commitd_prepared, after a batch was rolled back.
  Status RebuildLocks();
  const LockTable& locks() const { return locks_; }

  // The steps below write the record only; they neither take nor release keys.
  // INSERT OR REPLACE into _commitd_prepared.
  Status PersistPrepared(const PreparedRecord& record);
  // Updates state (e.g. "precommitted") and/or last_error of a record.
  Status UpdatePrepared(const std::string& txid, const std::string& state, const std::string& last_error);
  // The record's abort_key, commit_check and adopted_by become the
  // adoption's. NotFound if there is no such record.
  Status AdoptPrepared(const std::string& txid, const Adoption& adoption);
  // Applies the record's changeset and deletes the record, in a savepoint. If
  // the changeset does not apply cleanly nothing changes except that the record
  // gets state "conflict" and last_error describing the conflict; returns Conflict.
  // NotFound if there is no such record.
  Status ApplyCommit(const std::string& txid);
  // Deletes the record (abort). Ok if absent.
  Status DiscardPrepared(const std::string& txid);
  // Remembers a finished txid ("committed" | "aborted") in _commitd_finished.
  Status RememberOutcome(const std::string& txid, const std::string& outcome, int64_t now_ms);
  // Forgets outcomes older than cutoff_ms.
  Status ForgetOutcomesBefore(int64_t cutoff_ms);

  // Every prepared record (Open() builds the lock table from them), and every remembered outcome.
  Result<std::vector<PreparedRecord>> LoadPrepared();
  Result<std::map<std::string, std::string>> LoadOutcomes();
  // One remembered outcome. Storage thread only.
  Result<std::optional<StoredOutcome>> FindOutcome(const std::string& txid);

  sqlite::Database& db() { return db_; }
  const Procedures& procedures() const { return procedures_; }

 private:
  ResourceManager(sqlite::Database& db, Procedures procedures, ResourceManagerOptions options);
  // In one savepoint: the record's changeset applied, the record deleted,
  // then `then` (if set). A conflict undoes the changeset and marks the
  // record (Conflict); anything else failing undoes every step.
  Status ApplyInSavepoint(const std::string& txid, const std::function<Status()>& then);

  sqlite::Database& db_;
  Procedures procedures_;
  ResourceManagerOptions options_;
  PreparedRecordStore store_;
  TableSchemaCache schemas_;  // for lock keys and the written-table checks
  std::unique_ptr<ChangesetApplier> applier_;
  std::unique_ptr<ChangesetRecorder> recorder_;
  LockTable locks_;
};

}  // namespace commitd::participant
