// The lock keys of a changeset: "<table>|pk|<values>" for every
// row it touches, "<table>|unique:<index>|<values>" for the UNIQUE index
// entries it adds or removes, and the parent key each inserted or re-pointed
// foreign key refers to.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"
#include "participant/table_schema.h"

namespace commitd::participant {

// The schema of a table by name; nullptr if it cannot be read.
using TableLookup = std::function<const TableSchema*(const std::string&)>;

// Derives the lock keys of a changeset against the committed state of `db`
// (an update of part of a UNIQUE key reads the row's other columns); sorted, unique.
Status DeriveLockKeys(sqlite::Database& db, const std::string& changeset, const TableLookup& lookup,
                      std::vector<std::string>* keys);

}  // namespace commitd::participant
