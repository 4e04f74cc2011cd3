#include "participant/sql_sandbox.h"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace commitd::participant {
namespace {

// While a user statement is prepared or stepped, the reason the authorizer
// refused it (empty: not refused); nullptr outside user statements. The RM is
// used by one thread, and the authorizer runs on the caller's thread.
thread_local std::string* t_user_sql_refusal = nullptr;

// The innermost live StatementDeadline of this thread.
thread_local StatementDeadline* t_deadline = nullptr;

// Progress handler period, in virtual-machine steps: a few microseconds of work
// between two clock reads.
constexpr int kProgressSteps = 1000;

// SQLite's built-in functions that only compute on their arguments (scalar,
// aggregate, window, date and time, math, JSON, full-text ranking). Not here:
// load_extension, fts3_tokenizer (hands out and takes function pointers),
// readfile/writefile/edit/lsmode (files, processes), fts5 (hands out an API
// pointer), optimize (rewrites an FTS index), sqlite_* (build and logging
// details), and any function an application registers on the connection.
constexpr const char* kAllowedFunctions[] = {
    // core scalar
    "abs", "changes", "char", "coalesce", "format", "glob", "hex", "ifnull", "iif", "instr",
    "last_insert_rowid", "length", "like", "likelihood", "likely", "lower", "ltrim", "max", "min", "nullif",
    "printf", "quote", "random", "randomblob", "replace", "round", "rtrim", "sign", "soundex", "sqlite_version",
    "substr", "substring", "total_changes", "trim", "typeof", "unicode", "unlikely", "upper", "zeroblob",
    // aggregate
    "avg", "count", "group_concat", "sum", "total",
    // window
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value",
    "last_value", "nth_value",
    // date and time
    "date", "time", "datetime", "julianday", "unixepoch", "strftime", "current_date", "current_time",
    "current_timestamp",
    // math
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh", "degrees", "exp",
    "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power", "radians", "sin", "sinh", "sqrt", "tan",
    "tanh", "trunc",
    // JSON
    "json", "json_array", "json_array_length", "json_extract", "json_insert", "json_object", "json_patch",
    "json_quote", "json_remove", "json_replace", "json_set", "json_type", "json_valid", "json_group_array",
    "json_group_object", "->", "->>",
    // full-text search ranking and snippets (FTS3/4 and FTS5 tables)
    "match", "matchinfo", "offsets", "snippet", "highlight", "bm25",
};

// Eponymous virtual tables that expose the file's pages or the connection's
// statements. SQLite 3.40 already announces every eponymous virtual table
// (table-valued function) with a write to sqlite_master, which is refused as a
// schema change first; this holds should that announcement ever go away.
bool IsIntrospectionTable(const char* table) {
  if (table == nullptr) return false;
  for (const char* name : {"dbstat", "sqlite_dbpage", "sqlite_stmt"}) {
    if (sqlite3_stricmp(table, name) == 0) return true;
  }
  return false;
}

bool IsSchemaTable(const char* table) {
  return sqlite3_stricmp(table, "sqlite_master") == 0 || sqlite3_stricmp(table, "sqlite_schema") == 0 ||
         sqlite3_stricmp(table, "sqlite_temp_master") == 0 || sqlite3_stricmp(table, "sqlite_temp_schema") == 0;
}

// Introspection of table information, harmless in ops.
bool IsReadOnlyPragma(const char* name) {
  for (const char* allowed : {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
                              "foreign_key_list"}) {
    if (name != nullptr && sqlite3_stricmp(name, allowed) == 0) return true;
  }
  return false;
}

std::string AuthorizerRefusal(int action, const char* arg1, const char* arg2, const char* db_name) {
  switch (action) {
    case SQLITE_FUNCTION:
      // arg2: the function's name.
      if (IsAllowedSqlFunction(arg2)) return {};
      return "SQL function '" + std::string(arg2 == nullptr ? "" : arg2) + "' is not allowed in ops";
    case SQLITE_READ:
      if (IsIntrospectionTable(arg1)) return "table '" + std::string(arg1) + "' is not allowed in ops";
      return {};
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return "transaction control statements are not allowed in ops";
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return "ATTACH and DETACH are not allowed in ops";
    case SQLITE_PRAGMA:
      return IsReadOnlyPragma(arg1) ? std::string() : "PRAGMA statements are not allowed in ops";
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_VIEW:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_VIEW:
    case SQLITE_ALTER_TABLE:
    case SQLITE_REINDEX:
    case SQLITE_ANALYZE:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
      return "schema changes are not allowed in ops";
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
      if (IsReservedTable(arg1)) return "table '" + std::string(arg1) + "' is reserved";
      if (IsSqliteInternalTable(arg1)) {
        if (IsSchemaTable(arg1)) return "schema changes are not allowed in ops";
        return "table '" + std::string(arg1) + "' is internal to SQLite";
      }
      if (db_name != nullptr && std::strcmp(db_name, "main") != 0) {
        return "table '" + std::string(db_name) + "." + (arg1 ? arg1 : "") +
               "' is not in the main database; commitd cannot lock or replay writes to it";
      }
      return {};
    default:
      return {};
  }
}

int Authorize(void*, int action, const char* arg1, const char* arg2, const char* db_name, const char*) {
  if (t_user_sql_refusal == nullptr) return SQLITE_OK;
  std::string refusal = AuthorizerRefusal(action, arg1, arg2, db_name);
  if (refusal.empty()) return SQLITE_OK;
  if (t_user_sql_refusal->empty()) *t_user_sql_refusal = std::move(refusal);
  return SQLITE_DENY;
}

}  // namespace

bool IsReservedTable(const char* table) {
  return table != nullptr && std::strncmp(table, kReservedTablePrefix, sizeof(kReservedTablePrefix) - 1) == 0;
}

bool IsSqliteInternalTable(const char* table) {
  return table != nullptr && sqlite3_strnicmp(table, "sqlite_", 7) == 0;
}

bool IsAllowedSqlFunction(const char* name) {
  if (name == nullptr) return false;
  return std::any_of(std::begin(kAllowedFunctions), std::end(kAllowedFunctions),
                     [&](const char* allowed) { return sqlite3_stricmp(name, allowed) == 0; });
}

void InstallSqlSandbox(sqlite3* db) {
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_set_authorizer(db, Authorize, nullptr);
}

void RemoveSqlSandbox(sqlite3* db) { sqlite3_set_authorizer(db, nullptr, nullptr); }

UserSqlScope::UserSqlScope(std::string* refusal) : saved_(t_user_sql_refusal) { t_user_sql_refusal = refusal; }

UserSqlScope::~UserSqlScope() { t_user_sql_refusal = saved_; }

StatementDeadline::StatementDeadline(sqlite3* db, int64_t timeout_ms)
    : db_(db),
      deadline_(std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms)),
      outer_(t_deadline) {
  t_deadline = this;
  sqlite3_progress_handler(db_, kProgressSteps, &StatementDeadline::OnProgress, this);
}

StatementDeadline::~StatementDeadline() {
  t_deadline = outer_;
  if (outer_ != nullptr && outer_->db_ == db_) {
    sqlite3_progress_handler(db_, kProgressSteps, &StatementDeadline::OnProgress, outer_);
  } else {
    sqlite3_progress_handler(db_, 0, nullptr, nullptr);
  }
}

int StatementDeadline::OnProgress(void* self) {
  auto* deadline = static_cast<StatementDeadline*>(self);
  if (std::chrono::steady_clock::now() < deadline->deadline_) return 0;
  deadline->expired_ = true;
  return 1;
}

}  // namespace commitd::participant
