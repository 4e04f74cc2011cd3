// The SQL sandbox: what the statements of ops (procedures, C++ procedures and
// raw SQL) may do on the agent's connection. An authorizer installed once on
// the connection refuses, while a UserSqlScope is active on the calling thread,
// transaction control, ATTACH/DETACH, PRAGMAs other than table introspection,
// schema changes and writes to _commitd_* and sqlite_* tables or to other
// databases than main. Statements outside a scope (commitd's own) pass.
#pragma once

#include <sqlite3.h>

#include <string>

namespace commitd::participant {

// Tables whose name starts with this belong to commitd (_commitd_prepared, _commitd_finished).
inline constexpr char kReservedTablePrefix[] = "_commitd_";

bool IsReservedTable(const char* table);
bool IsSqliteInternalTable(const char* table);

// Sets the sandbox's authorizer on `db` (once: changing the authorizer
// expires every prepared statement of the connection); Remove clears it.
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

}  // namespace commitd::participant
