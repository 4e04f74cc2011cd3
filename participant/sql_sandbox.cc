#include "participant/sql_sandbox.h"

#include <cstring>

namespace commitd::participant {
namespace {

// While a user statement is prepared or stepped, the reason the authorizer
// refused it (empty: not refused); nullptr outside user statements. The RM is
// used by one thread, and the authorizer runs on the caller's thread.
thread_local std::string* t_user_sql_refusal = nullptr;

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

std::string AuthorizerRefusal(int action, const char* arg1, const char* db_name) {
  switch (action) {
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

int Authorize(void*, int action, const char* arg1, const char*, const char* db_name, const char*) {
  if (t_user_sql_refusal == nullptr) return SQLITE_OK;
  std::string refusal = AuthorizerRefusal(action, arg1, db_name);
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

void InstallSqlSandbox(sqlite3* db) { sqlite3_set_authorizer(db, Authorize, nullptr); }

void RemoveSqlSandbox(sqlite3* db) { sqlite3_set_authorizer(db, nullptr, nullptr); }

UserSqlScope::UserSqlScope(std::string* refusal) : saved_(t_user_sql_refusal) { t_user_sql_refusal = refusal; }

UserSqlScope::~UserSqlScope() { t_user_sql_refusal = saved_; }

}  // namespace commitd::participant
