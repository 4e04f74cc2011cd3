// The schema of a table as far as lock keys need it: columns, the PRIMARY
// KEY and its collations, UNIQUE indexes and foreign keys, read from
// SQLite's table, index and foreign-key pragmas.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"

namespace commitd::participant {

enum class Collation { kBinary, kNocase, kRtrim };

struct UniqueIndex {
  std::string name;
  std::vector<int> columns;  // column numbers, in index order
  std::vector<Collation> collations;
  bool whole = false;        // on an expression or the rowid: lock the index as a whole
};

struct ForeignKey {
  std::string parent;
  std::vector<int> columns;                 // child column numbers
  std::vector<std::string> parent_columns;  // empty: the parent's PRIMARY KEY
};

struct TableSchema {
  std::string name;
  int64_t schema_version = -1;
  std::vector<std::string> columns;
  std::vector<int> pk;                   // column numbers, in column order (as in changesets)
  std::vector<int> pk_declared;          // column numbers, in PRIMARY KEY declaration order
  std::vector<Collation> collations;     // per column, from the PRIMARY KEY's index
  std::vector<UniqueIndex> uniques;
  std::vector<ForeignKey> foreign_keys;
  std::string select_by_pk;              // every column of the row with the given primary key
};

// PRAGMA main.schema_version: changes with every schema change.
Result<int64_t> SchemaVersion(sqlite::Database& db);

// Ok with schema->columns empty if the table does not exist.
Status LoadTableSchema(sqlite::Database& db, const std::string& name, TableSchema* schema);

// Table schemas by name, each reloaded when the schema version changed.
// Thread: the storage thread (the thread of `db`).
class TableSchemaCache {
 public:
  explicit TableSchemaCache(sqlite::Database& db) : db_(db) {}
  // nullptr if the schema cannot be read; columns empty if there is no such table.
  const TableSchema* Find(const std::string& name, int64_t schema_version);

 private:
  sqlite::Database& db_;
  std::map<std::string, std::unique_ptr<TableSchema>> tables_;
};

}  // namespace commitd::participant
