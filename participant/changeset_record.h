// Records the changes a transaction's ops make to the main database as a
// changeset in sqlite3session's format, from SQLite's preupdate hook.
//
// It does what an sqlite3session attached to every table does (first old
// values of each row, current values read back at the end, no-op updates
// dropped, tables in order of first change, rows without a PRIMARY KEY or
// with a NULL in it ignored), but keeps its table information and statements
// from one transaction to the next: a session is created per transaction and
// parses a PRAGMA and a SELECT for every table it meets.
//
// Thread: the one that owns `db` (the storage thread).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"

namespace commitd::participant {

class ChangesetRecorder {
 public:
  explicit ChangesetRecorder(sqlite::Database& db);  // db outlives the recorder
  ~ChangesetRecorder();
  ChangesetRecorder(const ChangesetRecorder&) = delete;
  ChangesetRecorder& operator=(const ChangesetRecorder&) = delete;

  // Forgets what was recorded and records every later change to a table of
  // the main database whose name does not start with `_commitd_`, until Stop().
  Status Start();
  void Stop();

  // The changeset from what was recorded to the database's current state.
  // SQLITE_SCHEMA-like failure (a written table has generated or hidden
  // columns) is InvalidArgument; any other failure is IoError.
  Result<std::string> Changeset();

 private:
  struct Table;
  struct Row {
    bool existed = false;   // the row was there at the first change (its old values are in `old`)
    bool indirect = true;   // every change to it came from a trigger
    std::string old;        // the row's first old values, changeset-encoded, when it existed
  };

  static void OnPreupdate(void* self, sqlite3* db, int op, const char* db_name, const char* table,
                          sqlite3_int64 key1, sqlite3_int64 key2);
  void Record(int op, const char* table_name);
  void Touch(Table& table, bool from_new, bool existed);
  Table* Lookup(const char* name);

  sqlite::Database& db_;
  int64_t schema_version_ = -1;
  std::map<std::string, std::unique_ptr<Table>> tables_;
  std::vector<Table*> order_;  // tables changed since Start(), in order of first change
  Status error_;
  std::string scratch_;
};

}  // namespace commitd::participant
