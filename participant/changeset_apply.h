// Applies sqlite3session changesets to the main database, as
// sqlite3changeset_apply does with a conflict handler that aborts at the
// first conflict, but with its statements prepared once per table and kept.
//
// sqlite3changeset_apply parses fresh INSERT/UPDATE/DELETE/SELECT statements
// on every call, and its PRAGMA defer_foreign_keys expires every prepared
// statement of the connection twice per call. Here foreign keys are deferred
// (with that pragma) only when a changed table takes part in a foreign key.
//
// Same rules as SQLite's: a DELETE or UPDATE must find the row with every old
// value the changeset holds (else DATA if the primary key is there, NOTFOUND
// if not); an INSERT whose primary key exists is CONFLICT; a change failing
// another constraint is retried after the rest of its table, and is CONSTRAINT
// once a round of retries makes no progress; foreign keys are checked at the
// end (FOREIGN_KEY).
//
// Thread: the one that owns `db` (the storage thread).
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "common/sqlite_db.h"
#include "common/status.h"

namespace commitd::participant {

class ChangesetApplier {
 public:
  explicit ChangesetApplier(sqlite::Database& db);  // db outlives the applier
  ~ChangesetApplier();
  ChangesetApplier(const ChangesetApplier&) = delete;
  ChangesetApplier& operator=(const ChangesetApplier&) = delete;

  // Ok: applied. Conflict: its message says which row and why, e.g.
  // "changeset conflict on accounts (DATA, pk=('bob')): row changed outside commitd",
  // or that a table is gone or changed shape (then nothing was written).
  // Anything else: SQLite failed. On any error, changes made before it stay:
  // call this inside a savepoint and roll that back.
  Status Apply(std::string_view changeset);

 private:
  struct Table;
  class Run;

  // nullptr with *error set if the schema cannot be read; a table that does
  // not exist has no columns.
  Table* Lookup(const std::string& name, Status* error);
  Status RefreshSchema();

  sqlite::Database& db_;
  int64_t schema_version_ = -1;
  bool any_foreign_key_ = false;
  bool any_trigger_ = false;
  std::set<std::string> foreign_key_tables_;  // lower-cased: every child and parent of a foreign key
  std::map<std::string, std::unique_ptr<Table>> tables_;
};

}  // namespace commitd::participant
