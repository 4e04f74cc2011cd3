// The start-up check of an agent's procedures against its database: every
// statement of every SQL procedure must prepare against the schema (its
// tables and columns exist), or the agent refuses to start.
#pragma once

#include "common/sqlite_db.h"
#include "common/status.h"
#include "participant/procedures.h"

namespace commitd::participant {

// Prepares (and finalizes) each statement of each SQL procedure. The first
// that does not prepare is an InvalidArgument naming the procedure, the
// statement and SQLite's reason: "procedure 'debit', statement 1 of 1 (UPDATE
// accounts ...): no such table: accounts". C++ procedures are not checked.
// What the SQL sandbox refuses is refused when a statement runs, not here.
Status CheckProceduresAgainstSchema(sqlite::Database& db, const Procedures& procedures);

}  // namespace commitd::participant
