// Running the statements of ops: one SQL statement of a procedure or a raw
// SQL op with its parameters bound from JSON and its rows returned as JSON
// objects, or a C++ procedure; each under the SQL sandbox (sql_sandbox.h).
// Every function returns an empty string on success, else the reason for the
// no vote, prefixed with the op's label.
//
// Thread: the storage thread, inside the prepare savepoint.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/sqlite_db.h"
#include "participant/procedures.h"

namespace commitd::participant {

// Rows the ops of one transaction may return in all.
inline constexpr std::size_t kMaxResultRows = 10000;

// The time limit of each statement of a transaction's ops
// (sql_statement_timeout_ms), and whether a statement ran out of it.
struct StatementBudget {
  int64_t timeout_ms = 0;
  bool interrupted = false;
};

// The reason of a no vote for a statement interrupted at its deadline.
std::string InterruptedReason(int64_t timeout_ms);

// One user statement: its binder fills parameters and returns an error text.
struct UserStatement {
  const std::string* sql;
  std::string label;                      // "procedure 'debit'" or "ops[2]"
  std::optional<int64_t> expect_changes;  // with a procedure label
  std::function<std::string(sqlite3_stmt*)> bind;
};

// Runs `statement` for at most budget->timeout_ms, appending its rows to
// `rows` (*row_count counts the rows of every op so far). *changes (if given)
// gets the rows a writing statement changed.
std::string RunUserStatement(sqlite::Database& db, const UserStatement& statement, StatementBudget* budget,
                             nlohmann::json* rows, std::size_t* row_count, int64_t* changes = nullptr);

// Binders. Named: :name/@name/$name from `args`, :txid from the transaction
// id. Positional: params[k] binds the k-th parameter that is not named, and
// :txid may stand anywhere.
std::string BindNamed(sqlite3_stmt* stmt, const nlohmann::json& args, const std::string& txid);
std::string BindPositional(sqlite3_stmt* stmt, const nlohmann::json& params, const std::string& txid);

// Runs a C++ procedure under the same sandbox as SQL ops. Each statement it
// runs with ProcedureContext::Run() has budget->timeout_ms; the statements it
// steps itself on ProcedureContext::db() share one budget->timeout_ms from the
// start of the call.
std::string RunCallable(sqlite::Database& db, const Procedure& proc, const nlohmann::json& args,
                        const std::string& txid, StatementBudget* budget, nlohmann::json* rows,
                        std::size_t* row_count);

}  // namespace commitd::participant
