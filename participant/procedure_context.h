// Public: what a C++ procedure registered with Agent::RegisterProcedure sees.
//
// A callable procedure runs like a SQL procedure from the procedures file:
// on the agent's storage thread, inside the prepare savepoint, with a session
// recording every change it makes to the agent's database. Its writes become
// the transaction's changeset (rolled back at once, replayed at commit) and
// its lock keys are derived from them like any other op's.
//
// Rules for a procedure:
//  - use only this context's connection, and only during the call;
//  - no transaction control, ATTACH, PRAGMA or schema changes (refused, the
//    same as for SQL procedures), no writes to _commitd_* tables;
//  - write only tables with a PRIMARY KEY;
//  - return a non-ok Status to vote no; its message is the reason the client
//    sees. An exception escaping the procedure is a no vote too.
//
// Thread: the storage thread; the context lives for one call only.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace commitd::participant {

struct StatementResult {
  nlohmann::json rows = nlohmann::json::array();  // one object per row: {"column": value}
  int64_t changes = 0;                            // rows changed by a writing statement
};

class ProcedureContext {
 public:
  virtual ~ProcedureContext() = default;

  virtual const std::string& txid() const = 0;
  // The op's "args" object, as the client sent it (scalars only).
  virtual const nlohmann::json& args() const = 0;

  // Runs one SQL statement. Named parameters (:name, @name, $name) are bound
  // from `params`, and :txid from the transaction id. InvalidArgument with
  // SQLite's message (e.g. "CHECK constraint failed: ...") on failure.
  virtual Result<StatementResult> Run(const std::string& sql,
                                      const nlohmann::json& params = nlohmann::json::object()) = 0;

  // The agent's connection, for what Run() cannot express. Statements
  // prepared on it are checked by the same authorizer as Run()'s.
  virtual sqlite3* db() = 0;

  // Appends a row to this op's results (returned in the prepare vote and to
  // the client in "results").
  virtual void AddRow(nlohmann::json row) = 0;
};

using ProcedureFn = std::function<Status(ProcedureContext&)>;

}  // namespace commitd::participant
