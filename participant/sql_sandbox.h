// The SQL sandbox: what the statements of ops (procedures, C++ procedures and
// raw SQL) may do on the agent's connection, and for how long.
//
// What: an authorizer installed once on the connection refuses, while a
// UserSqlScope is active on the calling thread, transaction control,
// ATTACH/DETACH, PRAGMAs other than table introspection, schema changes, writes
// to _commitd_* and sqlite_* tables or to other databases than main, reads of
// the introspection tables dbstat, sqlite_dbpage and sqlite_stmt, and every SQL
// function not on an allow-list (no load_extension, fts3_tokenizer, readfile,
// writefile, edit...: nothing that reaches files, pointers or the process).
// Statements outside a scope (commitd's own) pass. InstallSqlSandbox also turns
// SQLite's defensive mode on and extension loading off for the connection.
//
// How long: a StatementDeadline interrupts a statement that runs past its
// timeout. The deadline is a steady-clock instant checked by a progress
// handler every few thousand virtual-machine steps; reading the clock there is
// this adapter's business, not the resource manager's.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace commitd::participant {

// Tables whose name starts with this belong to commitd (_commitd_prepared, _commitd_finished).
inline constexpr char kReservedTablePrefix[] = "_commitd_";

bool IsReservedTable(const char* table);
bool IsSqliteInternalTable(const char* table);

// True for the SQL functions ops may call (case-insensitive).
bool IsAllowedSqlFunction(const char* name);

// Sets the sandbox's authorizer on `db` (once: changing the authorizer
// expires every prepared statement of the connection), defensive mode on and
// extension loading off; Remove clears the authorizer.
void InstallSqlSandbox(sqlite3* db);
void RemoveSqlSandbox(sqlite3* db);

// While alive, statements prepared or stepped on this thread are checked by
// the sandbox; the first refusal's reason goes to *refusal (left empty if
// none). Scopes nest; the innermost one gets the reason.
// Thread: the thread that runs the statements (the storage thread).
class UserSqlScope {
 public:
  explicit UserSqlScope(std::string* refusal);
  ~UserSqlScope();
  UserSqlScope(const UserSqlScope&) = delete;
  UserSqlScope& operator=(const UserSqlScope&) = delete;

 private:
  std::string* saved_;
};

// While alive, a statement on `db` still running `timeout_ms` after the
// deadline was set is interrupted (sqlite3_step returns SQLITE_INTERRUPT; a
// writing statement interrupted rolls back the whole transaction, as any
// interrupt does). Deadlines nest: the innermost one is checked, and the outer
// one again once the inner is gone.
// Thread: the thread that runs the statements (the storage thread).
class StatementDeadline {
 public:
  StatementDeadline(sqlite3* db, int64_t timeout_ms);
  ~StatementDeadline();
  StatementDeadline(const StatementDeadline&) = delete;
  StatementDeadline& operator=(const StatementDeadline&) = delete;

  // The deadline passed and a statement was interrupted for it.
  bool expired() const { return expired_; }

 private:
  static int OnProgress(void* self);

  sqlite3* db_;
  std::chrono::steady_clock::time_point deadline_;
  bool expired_ = false;
  StatementDeadline* outer_;
};

}  // namespace commitd::participant
