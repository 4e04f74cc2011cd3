#include "participant/resource_manager.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "participant/changeset_apply.h"
#include "participant/changeset_record.h"

namespace commitd::participant {

namespace {

using nlohmann::json;

// WITHOUT ROWID: one B-tree keyed by txid per table, so that inserting or
// deleting a record dirties one page instead of a table page and an index page
// (every group commit writes each page it dirtied whole to the WAL). Databases
// created before keep their rowid tables; both work.
constexpr char kSchema[] = R"sql(
SAVEPOINT commitd_open;
CREATE TABLE IF NOT EXISTS _commitd_prepared(
  txid TEXT PRIMARY KEY,
  protocol TEXT NOT NULL,
  state TEXT NOT NULL,
  changeset BLOB NOT NULL,
  lock_keys TEXT NOT NULL,
  coordinator TEXT NOT NULL,
  participants TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _commitd_finished(
  txid TEXT PRIMARY KEY,
  outcome TEXT NOT NULL,
  finished_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS _commitd_finished_by_time ON _commitd_finished(finished_ms);
RELEASE commitd_open;
)sql";

constexpr std::string_view kReservedPrefix = "_commitd_";
constexpr std::size_t kMaxResultRows = 10000;

// ---------------------------------------------------------------------------
// Table schema, as far as lock keys need it.

enum class Collation { kBinary, kNocase, kRtrim };

Collation CollationNamed(const std::string& name) {
  if (sqlite3_stricmp(name.c_str(), "NOCASE") == 0) return Collation::kNocase;
  if (sqlite3_stricmp(name.c_str(), "RTRIM") == 0) return Collation::kRtrim;
  return Collation::kBinary;
}

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

Result<int64_t> SchemaVersion(sqlite::Database& db) {
  Status error;
  sqlite::Statement* stmt = db.Prepare("PRAGMA main.schema_version", &error);
  if (stmt == nullptr) return error;
  if (!stmt->Step()) return stmt->status().ok() ? Status::Internal("schema_version: no row") : stmt->status();
  int64_t version = stmt->Int(0);
  stmt->Reset();
  return version;
}

// Ok with schema->columns empty if the table does not exist.
Status LoadTableSchema(sqlite::Database& db, const std::string& name, TableSchema* schema) {
  Status error;
  schema->name = name;

  sqlite::Statement* cols = db.Prepare("SELECT cid, name, pk FROM pragma_table_info(?1, 'main') ORDER BY cid", &error);
  if (cols == nullptr) return error;
  cols->Bind(1, name);
  std::vector<std::pair<int64_t, int>> pk_order;
  while (cols->Step()) {
    schema->columns.push_back(cols->Text(1));
    if (cols->Int(2) > 0) pk_order.emplace_back(cols->Int(2), static_cast<int>(cols->Int(0)));
  }
  if (!cols->status().ok()) return cols->status();
  cols->Reset();
  if (schema->columns.empty()) return Status::Ok();
  std::sort(pk_order.begin(), pk_order.end());
  for (const auto& [seq, cid] : pk_order) schema->pk_declared.push_back(cid);
  schema->pk = schema->pk_declared;
  std::sort(schema->pk.begin(), schema->pk.end());
  schema->collations.assign(schema->columns.size(), Collation::kBinary);

  struct IndexRow {
    std::string name;
    bool pk;
  };
  std::vector<IndexRow> indexes;
  sqlite::Statement* list = db.Prepare("SELECT name, origin FROM pragma_index_list(?1, 'main') WHERE \"unique\" = 1",
                                       &error);
  if (list == nullptr) return error;
  list->Bind(1, name);
  while (list->Step()) indexes.push_back({list->Text(0), list->Text(1) == "pk"});
  if (!list->status().ok()) return list->status();
  list->Reset();

  for (const IndexRow& row : indexes) {
    UniqueIndex index;
    index.name = row.name;
    sqlite::Statement* info =
        db.Prepare("SELECT cid, coll FROM pragma_index_xinfo(?1, 'main') WHERE key = 1 ORDER BY seqno", &error);
    if (info == nullptr) return error;
    info->Bind(1, row.name);
    while (info->Step()) {
      int64_t cid = info->Int(0);
      if (cid < 0 || cid >= static_cast<int64_t>(schema->columns.size())) {
        index.whole = true;
        continue;
      }
      index.columns.push_back(static_cast<int>(cid));
      index.collations.push_back(CollationNamed(info->Text(1)));
    }
    if (!info->status().ok()) return info->status();
    info->Reset();
    if (row.pk) {
      for (std::size_t i = 0; i < index.columns.size(); ++i) schema->collations[index.columns[i]] = index.collations[i];
    } else {
      schema->uniques.push_back(std::move(index));
    }
  }

  sqlite::Statement* fks = db.Prepare(
      "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1, 'main') ORDER BY id, seq", &error);
  if (fks == nullptr) return error;
  fks->Bind(1, name);
  int64_t current_id = -1;
  bool usable = true;
  while (fks->Step()) {
    if (fks->Int(0) != current_id) {
      if (!usable) schema->foreign_keys.pop_back();
      current_id = fks->Int(0);
      usable = true;
      schema->foreign_keys.push_back({fks->Text(1), {}, {}});
    }
    ForeignKey& fk = schema->foreign_keys.back();
    auto col = std::find(schema->columns.begin(), schema->columns.end(), fks->Text(2));
    if (col == schema->columns.end()) usable = false;
    fk.columns.push_back(static_cast<int>(col - schema->columns.begin()));
    if (!fks->IsNull(3)) fk.parent_columns.push_back(fks->Text(3));
  }
  if (!fks->status().ok()) return fks->status();
  fks->Reset();
  if (!usable) schema->foreign_keys.pop_back();

  if (!schema->pk.empty()) {
    std::string sql = "SELECT ";
    for (std::size_t i = 0; i < schema->columns.size(); ++i) {
      if (i > 0) sql += ", ";
      sql += sqlite::QuoteIdentifier(schema->columns[i]);
    }
    sql += " FROM main." + sqlite::QuoteIdentifier(name) + " WHERE ";
    for (std::size_t i = 0; i < schema->pk.size(); ++i) {
      if (i > 0) sql += " AND ";
      sql += sqlite::QuoteIdentifier(schema->columns[schema->pk[i]]) + " = ?" + std::to_string(i + 1);
    }
    schema->select_by_pk = std::move(sql);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Lock keys: "<table>|pk|<values>" and "<table>|unique:<index>|<values>", with
// '|' and '\' escaped in names and every value typed and length-prefixed, so
// that distinct keys never collide and 1 differs from '1'.

std::string EscapeName(const std::string& name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == '|' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string PkPrefix(const std::string& table) { return EscapeName(table) + "|pk|"; }
std::string UniquePrefix(const std::string& table, const std::string& index) {
  return EscapeName(table) + "|unique:" + EscapeName(index) + "|";
}

// Exactly what nlohmann::json accepts as a string when it dumps one.
bool IsUtf8(const char* data, std::size_t size) {
  try {
    (void)json(std::string(data, size)).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

// Keys are stored as JSON strings, which must be UTF-8: text that is not, and
// every blob, is written in hex under its own tag so that encodings stay distinct.
void AppendText(std::string* out, char tag, const char* data, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool hex = tag == 'b' || !IsUtf8(data, size);
  *out += hex ? static_cast<char>(tag == 'b' ? 'b' : 'u') : tag;
  *out += std::to_string(size);
  *out += ':';
  if (!hex) {
    out->append(data, size);
    return;
  }
  for (std::size_t i = 0; i < size; ++i) {
    const auto byte = static_cast<unsigned char>(data[i]);
    *out += kHex[byte >> 4];
    *out += kHex[byte & 15];
  }
}

// Values equal under SQLite's comparison with `collation` encode equally:
// 1 and 1.0 both as an integer, NOCASE text lower-cased, RTRIM text trimmed.
void AppendValue(std::string* out, sqlite3_value* value, Collation collation) {
  switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER:
      *out += 'i';
      *out += std::to_string(sqlite3_value_int64(value));
      *out += ';';
      return;
    case SQLITE_FLOAT: {
      double d = sqlite3_value_double(value);
      if (std::floor(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        *out += 'i';
        *out += std::to_string(static_cast<int64_t>(d));
        *out += ';';
      } else {
        char buf[40];
        std::snprintf(buf, sizeof(buf), "r%.17g;", d);
        *out += buf;
      }
      return;
    }
    case SQLITE_TEXT: {
      const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(value));
      std::string text(p == nullptr ? "" : p, sqlite3_value_bytes(value));
      if (collation == Collation::kNocase) {
        for (char& c : text) {
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        }
      } else if (collation == Collation::kRtrim) {
        text.erase(text.find_last_not_of(' ') + 1);
      }
      AppendText(out, 't', text.data(), text.size());
      return;
    }
    case SQLITE_BLOB: {
      const auto* p = static_cast<const char*>(sqlite3_value_blob(value));
      AppendText(out, 'b', p == nullptr ? "" : p, sqlite3_value_bytes(value));
      return;
    }
    default:
      *out += 'n';
      return;
  }
}

bool IsNull(sqlite3_value* value) { return value == nullptr || sqlite3_value_type(value) == SQLITE_NULL; }

// A row of a table, column by column; nullptr where a changeset does not carry
// the column. Owns the values it copied.
class Row {
 public:
  explicit Row(std::size_t columns) : values_(columns, nullptr) {}
  ~Row() {
    for (sqlite3_value* v : owned_) sqlite3_value_free(v);
  }
  Row(const Row&) = delete;
  Row& operator=(const Row&) = delete;

  sqlite3_value*& operator[](std::size_t i) { return values_[i]; }
  sqlite3_value* operator[](std::size_t i) const { return values_[i]; }
  std::size_t size() const { return values_.size(); }
  bool Own(std::size_t i, sqlite3_value* copy) {
    if (copy == nullptr) return false;
    owned_.push_back(copy);
    values_[i] = copy;
    return true;
  }

 private:
  std::vector<sqlite3_value*> values_;
  std::vector<sqlite3_value*> owned_;
};

// The key of `index` for `row`, or nothing if a column is NULL (NULLs never
// conflict in a UNIQUE index).
std::optional<std::string> UniqueKey(const std::string& table, const UniqueIndex& index, const Row& row) {
  std::string key = UniquePrefix(table, index.name);
  if (index.whole) return key + "*";
  for (std::size_t i = 0; i < index.columns.size(); ++i) {
    sqlite3_value* v = row[index.columns[i]];
    if (v == nullptr) return key + "*";
    if (IsNull(v)) return std::nullopt;
    AppendValue(&key, v, index.collations[i]);
  }
  return key;
}

using TableLookup = std::function<const TableSchema*(const std::string&)>;

// The key a child row's foreign key locks in its parent: the parent's primary
// key or the UNIQUE index the foreign key refers to.
std::optional<std::string> ParentKey(const ForeignKey& fk, const Row& child, const TableLookup& lookup) {
  const TableSchema* parent = lookup(fk.parent);
  if (parent == nullptr || parent->columns.empty()) return std::nullopt;
  // parent column number for each child column of the foreign key
  std::vector<int> target;
  if (fk.parent_columns.empty()) {
    if (parent->pk_declared.size() != fk.columns.size()) return std::nullopt;
    target = parent->pk_declared;
  } else {
    if (fk.parent_columns.size() != fk.columns.size()) return std::nullopt;
    for (const std::string& name : fk.parent_columns) {
      auto it = std::find_if(parent->columns.begin(), parent->columns.end(),
                             [&](const std::string& c) { return sqlite3_stricmp(c.c_str(), name.c_str()) == 0; });
      if (it == parent->columns.end()) return std::nullopt;
      target.push_back(static_cast<int>(it - parent->columns.begin()));
    }
  }
  for (int col : fk.columns) {
    if (IsNull(child[col])) return std::nullopt;
  }
  auto child_value = [&](int parent_col) -> sqlite3_value* {
    for (std::size_t k = 0; k < target.size(); ++k) {
      if (target[k] == parent_col) return child[fk.columns[k]];
    }
    return nullptr;
  };
  auto encode = [&](std::string key, const std::vector<int>& parent_cols,
                    const std::vector<Collation>& collations) -> std::optional<std::string> {
    for (std::size_t i = 0; i < parent_cols.size(); ++i) {
      sqlite3_value* v = child_value(parent_cols[i]);
      if (v == nullptr) return std::nullopt;
      AppendValue(&key, v, collations[i]);
    }
    return key;
  };
  std::vector<int> sorted_target = target;
  std::sort(sorted_target.begin(), sorted_target.end());
  if (sorted_target == parent->pk) {
    std::vector<Collation> collations;
    for (int col : parent->pk) collations.push_back(parent->collations[col]);
    return encode(PkPrefix(parent->name), parent->pk, collations);
  }
  for (const UniqueIndex& index : parent->uniques) {
    std::vector<int> sorted_index = index.columns;
    std::sort(sorted_index.begin(), sorted_index.end());
    if (!index.whole && sorted_index == sorted_target) {
      return encode(UniquePrefix(parent->name, index.name), index.columns, index.collations);
    }
  }
  return std::nullopt;
}

// Reads the committed row with the primary key in `pk_source` into `row`.
Status ReadCommittedRow(sqlite::Database& db, const TableSchema& table, const Row& pk_source, Row* row, bool* found) {
  Status error;
  sqlite::Statement* stmt = db.Prepare(table.select_by_pk, &error);
  if (stmt == nullptr) return error;
  for (std::size_t i = 0; i < table.pk.size(); ++i) {
    sqlite3_bind_value(stmt->handle(), static_cast<int>(i + 1), pk_source[table.pk[i]]);
  }
  *found = stmt->Step();
  if (*found) {
    for (std::size_t i = 0; i < table.columns.size(); ++i) {
      if (!row->Own(i, sqlite3_value_dup(sqlite3_column_value(stmt->handle(), static_cast<int>(i))))) {
        stmt->Reset();
        return Status::Internal("out of memory copying a row");
      }
    }
  }
  Status s = stmt->status();
  stmt->Reset();
  return s;
}

// Derives the lock keys of a changeset against the committed state of `db`.
Status DeriveLockKeys(sqlite::Database& db, const std::string& changeset, const TableLookup& lookup,
                      std::vector<std::string>* keys) {
  keys->clear();
  if (changeset.empty()) return Status::Ok();
  sqlite3_changeset_iter* iter = nullptr;
  int rc = sqlite3changeset_start(&iter, static_cast<int>(changeset.size()), const_cast<char*>(changeset.data()));
  if (rc != SQLITE_OK) return Status::Internal(std::string("changeset: ") + sqlite3_errstr(rc));
  Status status;
  while (status.ok() && sqlite3changeset_next(iter) == SQLITE_ROW) {
    const char* table_name = nullptr;
    int ncol = 0;
    int op = 0;
    int indirect = 0;
    sqlite3changeset_op(iter, &table_name, &ncol, &op, &indirect);
    unsigned char* pk_flags = nullptr;
    sqlite3changeset_pk(iter, &pk_flags, &ncol);
    const std::string table = table_name;
    const auto n = static_cast<std::size_t>(ncol);

    Row old_row(n);
    Row new_row(n);
    for (int i = 0; i < ncol; ++i) {
      if (op != SQLITE_INSERT) sqlite3changeset_old(iter, i, &old_row[i]);
      if (op != SQLITE_DELETE) sqlite3changeset_new(iter, i, &new_row[i]);
    }

    const Row& key_row = op == SQLITE_INSERT ? new_row : old_row;
    std::string pk_key = PkPrefix(table);
    const TableSchema* schema = lookup(table);
    bool schema_matches = schema != nullptr && schema->columns.size() == n;
    for (int i = 0; i < ncol; ++i) {
      if (pk_flags[i] == 0) continue;
      AppendValue(&pk_key, key_row[i], schema_matches ? schema->collations[i] : Collation::kBinary);
    }
    keys->push_back(std::move(pk_key));

    if (!schema_matches) {
      if (schema != nullptr) {
        for (const UniqueIndex& index : schema->uniques) keys->push_back(UniquePrefix(table, index.name) + "*");
      }
      continue;
    }

    if (op == SQLITE_UPDATE) {
      auto modified = [&](const std::vector<int>& cols) {
        return std::any_of(cols.begin(), cols.end(), [&](int c) { return new_row[c] != nullptr; });
      };
      bool need_row = std::any_of(schema->uniques.begin(), schema->uniques.end(),
                                  [&](const UniqueIndex& ix) { return ix.whole || modified(ix.columns); }) ||
                      std::any_of(schema->foreign_keys.begin(), schema->foreign_keys.end(),
                                  [&](const ForeignKey& fk) { return modified(fk.columns); });
      if (!need_row) continue;
      Row committed(n);
      bool found = false;
      status = ReadCommittedRow(db, *schema, old_row, &committed, &found);
      if (!status.ok()) break;
      Row before(n);
      Row after(n);
      for (std::size_t i = 0; i < n; ++i) {
        before[i] = found ? committed[i] : old_row[i];
        after[i] = new_row[i] != nullptr ? new_row[i] : before[i];
      }
      for (const UniqueIndex& index : schema->uniques) {
        if (!index.whole && !modified(index.columns)) continue;
        if (auto key = UniqueKey(table, index, before)) keys->push_back(std::move(*key));
        if (auto key = UniqueKey(table, index, after)) keys->push_back(std::move(*key));
      }
      for (const ForeignKey& fk : schema->foreign_keys) {
        if (!modified(fk.columns)) continue;
        if (auto key = ParentKey(fk, after, lookup)) keys->push_back(std::move(*key));
      }
    } else {
      const Row& row = op == SQLITE_INSERT ? new_row : old_row;
      for (const UniqueIndex& index : schema->uniques) {
        if (auto key = UniqueKey(table, index, row)) keys->push_back(std::move(*key));
      }
      if (op == SQLITE_INSERT) {
        for (const ForeignKey& fk : schema->foreign_keys) {
          if (auto key = ParentKey(fk, row, lookup)) keys->push_back(std::move(*key));
        }
      }
    }
  }
  rc = sqlite3changeset_finalize(iter);
  if (status.ok() && rc != SQLITE_OK) status = Status::Internal(std::string("changeset: ") + sqlite3_errstr(rc));
  std::sort(keys->begin(), keys->end());
  keys->erase(std::unique(keys->begin(), keys->end()), keys->end());
  return status;
}

// ---------------------------------------------------------------------------
// Running a transaction's ops.

// While a user statement is prepared or stepped, the reason the authorizer
// refused it (empty: not refused); nullptr outside user statements. The RM is
// used by one thread, and the authorizer runs on the caller's thread.
thread_local std::string* t_user_sql_refusal = nullptr;

class UserSqlScope {
 public:
  explicit UserSqlScope(std::string* refusal) : saved_(t_user_sql_refusal) { t_user_sql_refusal = refusal; }
  ~UserSqlScope() { t_user_sql_refusal = saved_; }
  UserSqlScope(const UserSqlScope&) = delete;
  UserSqlScope& operator=(const UserSqlScope&) = delete;

 private:
  std::string* saved_;
};

bool IsReserved(const char* table) {
  return table != nullptr && std::strncmp(table, kReservedPrefix.data(), kReservedPrefix.size()) == 0;
}

bool IsSqliteInternal(const char* table) { return table != nullptr && sqlite3_strnicmp(table, "sqlite_", 7) == 0; }

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
      if (IsReserved(arg1)) return "table '" + std::string(arg1) + "' is reserved";
      if (IsSqliteInternal(arg1)) {
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

using WrittenTables = std::set<std::pair<std::string, std::string>>;  // (database, table)

void OnUpdate(void* arg, int, const char* db_name, const char* table, sqlite3_int64) {
  static_cast<WrittenTables*>(arg)->emplace(db_name, table);
}

class UpdateHookScope {
 public:
  UpdateHookScope(sqlite3* db, WrittenTables* written) : db_(db) { sqlite3_update_hook(db_, OnUpdate, written); }
  ~UpdateHookScope() { sqlite3_update_hook(db_, nullptr, nullptr); }
  UpdateHookScope(const UpdateHookScope&) = delete;
  UpdateHookScope& operator=(const UpdateHookScope&) = delete;

 private:
  sqlite3* db_;
};

// Binds a JSON scalar; empty on success, else why not.
std::string BindJson(sqlite3_stmt* stmt, int index, const json& value) {
  int rc = SQLITE_OK;
  switch (value.type()) {
    case json::value_t::null:
      rc = sqlite3_bind_null(stmt, index);
      break;
    case json::value_t::boolean:
      rc = sqlite3_bind_int(stmt, index, value.get<bool>() ? 1 : 0);
      break;
    case json::value_t::number_integer:
      rc = sqlite3_bind_int64(stmt, index, value.get<int64_t>());
      break;
    case json::value_t::number_unsigned:
      if (value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return "integer out of range";
      }
      rc = sqlite3_bind_int64(stmt, index, value.get<int64_t>());
      break;
    case json::value_t::number_float:
      rc = sqlite3_bind_double(stmt, index, value.get<double>());
      break;
    case json::value_t::string: {
      const std::string& s = value.get_ref<const std::string&>();
      rc = sqlite3_bind_text64(stmt, index, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
      break;
    }
    default:
      return "must be a string, number, boolean or null";
  }
  return rc == SQLITE_OK ? std::string() : sqlite3_errstr(rc);
}

json ColumnJson(sqlite3_stmt* stmt, int column) {
  switch (sqlite3_column_type(stmt, column)) {
    case SQLITE_INTEGER:
      return sqlite3_column_int64(stmt, column);
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt, column);
    case SQLITE_TEXT: {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
      return std::string(p == nullptr ? "" : p, sqlite3_column_bytes(stmt, column));
    }
    case SQLITE_BLOB: {
      static constexpr char kHex[] = "0123456789abcdef";
      const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, column));
      int n = sqlite3_column_bytes(stmt, column);
      std::string hex;
      hex.reserve(static_cast<std::size_t>(n) * 2);
      for (int i = 0; i < n; ++i) {
        hex += kHex[p[i] >> 4];
        hex += kHex[p[i] & 15];
      }
      return hex;
    }
    default:
      return nullptr;
  }
}

// One user statement: its binder fills parameters and returns an error text.
struct UserStatement {
  const std::string* sql;
  std::string label;                      // "procedure 'debit'" or "ops[2]"
  std::optional<int64_t> expect_changes;  // with a procedure label
  std::function<std::string(sqlite3_stmt*)> bind;
};

// Runs `statement`, appending its rows to `rows`; empty on success, else the
// reason. *changes (if given) gets the rows a writing statement changed.
std::string RunUserStatement(sqlite::Database& db, const UserStatement& statement, json* rows, std::size_t* row_count,
                             int64_t* changes = nullptr) {
  std::string refusal;
  UserSqlScope scope(&refusal);
  Status error;
  sqlite::Statement* prepared = db.Prepare(*statement.sql, &error, "ops");
  if (prepared == nullptr) {
    std::string why = refusal.empty() ? std::string(sqlite3_errmsg(db.handle())) : refusal;
    return statement.label + ": " + why;
  }
  sqlite3_stmt* stmt = prepared->handle();
  if (stmt == nullptr) return statement.label + ": empty SQL statement";
  struct ResetOnExit {
    sqlite3_stmt* stmt;
    ~ResetOnExit() {
      sqlite3_reset(stmt);
      sqlite3_clear_bindings(stmt);
    }
  } reset_on_exit{stmt};

  std::size_t compiled = std::strlen(sqlite3_sql(stmt));
  if (compiled < statement.sql->size() &&
      statement.sql->find_first_not_of(" \t\r\n;", compiled) != std::string::npos) {
    sqlite3_stmt* next = nullptr;
    const std::string tail = statement.sql->substr(compiled);
    int rc = sqlite3_prepare_v2(db.handle(), tail.c_str(), static_cast<int>(tail.size()), &next, nullptr);
    bool more = rc != SQLITE_OK || next != nullptr;
    sqlite3_finalize(next);
    if (more) return statement.label + ": more than one SQL statement in one string; use an array of statements";
  }

  if (std::string why = statement.bind(stmt); !why.empty()) return statement.label + ": " + why;

  const bool writes = sqlite3_stmt_readonly(stmt) == 0;
  for (;;) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      std::string why = !refusal.empty() ? refusal : std::string(sqlite3_errmsg(db.handle()));
      if (!db.InTransaction()) why += " (the statement rolled back the whole transaction)";
      return statement.label + ": " + why;
    }
    if (++*row_count > kMaxResultRows) {
      return statement.label + ": the ops return more than " + std::to_string(kMaxResultRows) + " rows";
    }
    json row = json::object();
    int columns = sqlite3_column_count(stmt);
    for (int c = 0; c < columns; ++c) row[sqlite3_column_name(stmt, c)] = ColumnJson(stmt, c);
    rows->push_back(std::move(row));
  }
  if (changes != nullptr) *changes = writes ? sqlite3_changes64(db.handle()) : 0;
  if (writes && statement.expect_changes.has_value()) {
    int64_t changes = sqlite3_changes64(db.handle());
    if (changes != *statement.expect_changes) {
      return statement.label + " expected " + std::to_string(*statement.expect_changes) + " changed row" +
             (*statement.expect_changes == 1 ? "" : "s") + ", got " + std::to_string(changes);
    }
  }
  return {};
}

std::string BindNamed(sqlite3_stmt* stmt, const json& args, const std::string& txid) {
  int count = sqlite3_bind_parameter_count(stmt);
  for (int i = 1; i <= count; ++i) {
    const char* raw = sqlite3_bind_parameter_name(stmt, i);
    if (raw == nullptr || raw[0] == '?') return "positional parameters are not supported in procedures; use :name";
    std::string name(raw + 1);
    if (name == "txid") {
      sqlite3_bind_text64(stmt, i, txid.data(), txid.size(), SQLITE_STATIC, SQLITE_UTF8);
      continue;
    }
    auto it = args.is_object() ? args.find(name) : args.end();
    if (it == args.end()) return "missing argument '" + name + "'";
    if (std::string why = BindJson(stmt, i, *it); !why.empty()) return "argument '" + name + "': " + why;
  }
  return {};
}

// params[k] binds the k-th parameter that is not named, so that :txid can
// stand anywhere without taking a position.
std::string BindPositional(sqlite3_stmt* stmt, const json& params, const std::string& txid) {
  int count = sqlite3_bind_parameter_count(stmt);
  std::size_t given = params.is_array() ? params.size() : 0;
  std::size_t position = 0;
  for (int i = 1; i <= count; ++i) {
    const char* raw = sqlite3_bind_parameter_name(stmt, i);
    if (raw != nullptr && raw[0] != '?') {
      if (std::strcmp(raw + 1, "txid") != 0) {
        return "named parameter '" + std::string(raw) + "' has no value (raw SQL takes positional params and :txid)";
      }
      sqlite3_bind_text64(stmt, i, txid.data(), txid.size(), SQLITE_STATIC, SQLITE_UTF8);
      continue;
    }
    if (position >= given) {
      return "parameter ?" + std::to_string(position + 1) + " has no value (" + std::to_string(given) +
             " params given)";
    }
    if (std::string why = BindJson(stmt, i, params[position]); !why.empty()) {
      return "params[" + std::to_string(position) + "]: " + why;
    }
    ++position;
  }
  if (given > position) {
    return std::to_string(given) + " params given, the statement takes " + std::to_string(position);
  }
  return {};
}

// What a C++ procedure sees; lives for one call on the storage thread.
class CallContext final : public ProcedureContext {
 public:
  CallContext(sqlite::Database& db, const std::string& txid, const json& args, json* rows, std::size_t* row_count)
      : db_(db), txid_(txid), args_(args), rows_(rows), row_count_(row_count) {}

  const std::string& txid() const override { return txid_; }
  const json& args() const override { return args_; }
  sqlite3* db() override { return db_.handle(); }
  void AddRow(json row) override { rows_->push_back(std::move(row)); }

  Result<StatementResult> Run(const std::string& sql, const json& params) override {
    static const std::string kLabel = "SQL";
    StatementResult out;
    UserStatement statement{&sql, kLabel, std::nullopt,
                            [&](sqlite3_stmt* s) { return BindNamed(s, params, txid_); }};
    std::string why = RunUserStatement(db_, statement, &out.rows, row_count_, &out.changes);
    if (why.empty()) return out;
    if (why.rfind(kLabel + ": ", 0) == 0) why.erase(0, kLabel.size() + 2);
    return Status::InvalidArgument(std::move(why));
  }

 private:
  sqlite::Database& db_;
  const std::string& txid_;
  const json& args_;
  json* rows_;
  std::size_t* row_count_;
};

// Runs a C++ procedure under the same authorizer as SQL ops; empty on
// success, else the reason for the no vote.
std::string RunCallable(sqlite::Database& db, const Procedure& proc, const json& args, const std::string& txid,
                        json* rows, std::size_t* row_count) {
  const std::string label = "procedure '" + proc.name + "'";
  std::string refusal;
  UserSqlScope scope(&refusal);
  CallContext context(db, txid, args, rows, row_count);
  Status status;
  try {
    status = proc.callable(context);
  } catch (const std::exception& e) {
    return label + " threw: " + e.what();
  } catch (...) {
    return label + " threw an exception";
  }
  if (!status.ok()) return label + ": " + status.message();
  if (!refusal.empty()) return label + ": " + refusal;
  if (!db.InTransaction()) return label + ": the enclosing transaction was rolled back";
  return {};
}

int DeferredForeignKeyViolations(sqlite3* db) {
  int current = 0;
  int highwater = 0;
  sqlite3_db_status(db, SQLITE_DBSTATUS_DEFERRED_FKS, &current, &highwater, 0);
  return current;
}

Status ExecOrIo(sqlite::Database& db, const char* sql) {
  Status s = db.Exec(sql);
  return s.ok() ? s : Status::IoError(std::string(sql) + ": " + s.message());
}

Result<std::vector<std::string>> ParseLockKeys(const std::string& txid, const std::string& text) {
  json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array()) {
    return Status::Corruption("_commitd_prepared '" + txid + "': lock_keys is not a JSON array");
  }
  std::vector<std::string> keys;
  for (const json& key : parsed) {
    if (!key.is_string()) return Status::Corruption("_commitd_prepared '" + txid + "': lock_keys holds a non-string");
    keys.push_back(key.get<std::string>());
  }
  return keys;
}

}  // namespace

struct ResourceManager::TableInfo : TableSchema {};

ResourceManager::ResourceManager(sqlite::Database& db, Procedures procedures, ResourceManagerOptions options)
    : db_(db),
      procedures_(std::move(procedures)),
      options_(options),
      applier_(std::make_unique<ChangesetApplier>(db)),
      recorder_(std::make_unique<ChangesetRecorder>(db)) {}

ResourceManager::~ResourceManager() { sqlite3_set_authorizer(db_.handle(), nullptr, nullptr); }

Result<std::unique_ptr<ResourceManager>> ResourceManager::Open(sqlite::Database& db, Procedures procedures,
                                                               ResourceManagerOptions options) {
  if (Status s = db.Exec(kSchema); !s.ok()) {
    db.Exec("ROLLBACK TO commitd_open; RELEASE commitd_open");
    return Status::IoError("create _commitd_ tables in " + db.path() + ": " + s.message());
  }
  // Set once: changing the authorizer expires every prepared statement.
  sqlite3_set_authorizer(db.handle(), Authorize, nullptr);
  std::unique_ptr<ResourceManager> rm(new ResourceManager(db, std::move(procedures), options));
  if (Status s = rm->RebuildLocks(); !s.ok()) return s;
  return rm;
}

Status ResourceManager::RebuildLocks() {
  auto records = LoadPrepared();
  if (!records.ok()) return records.status();
  locks_.Clear();
  // Records were prepared under the lock table, so their keys cannot overlap.
  for (const PreparedRecord& r : *records) locks_.TryAcquire(r.txid, r.lock_keys);
  return Status::Ok();
}

void PrepareJob::Scratch(ResourceManager& rm) { execution = rm.Execute(record.txid, ops); }

void PrepareJob::Durable(ResourceManager& rm) { result = rm.Prepare(record, ops, std::move(execution)); }

PrepareResult ResourceManager::Prepare(PreparedRecord& record, const std::vector<wire::Op>& ops,
                                       ExecutionResult execution) {
  // Only an execution that passed and met no held key is surely current: the
  // rows it writes changed in no commit since. A failed one runs again too (a
  // commit earlier in this batch may have made it possible); failures are rare.
  if (!execution.ran || !execution.ok || execution.met_held_key) execution = Execute(record.txid, ops);
  PrepareResult result;
  if (!execution.ok) {
    result.reason = std::move(execution.reason);
    return result;
  }
  if (auto holder = locks_.FirstHolder(record.txid, execution.lock_keys)) {
    result.reason = "lock conflict with " + *holder;
    return result;
  }
  record.changeset = std::move(execution.changeset);
  record.lock_keys = std::move(execution.lock_keys);
  if (Status s = PersistPrepared(record); !s.ok()) {
    result.reason = "could not persist the prepared record: " + s.message();
    return result;
  }
  locks_.TryAcquire(record.txid, record.lock_keys);
  result.yes = true;
  result.results = std::move(execution.results);
  result.lock_keys = record.lock_keys;
  return result;
}

namespace {
// Runs steps in a savepoint that is rolled back unless they succeed (or keep says so).
template <class Steps>
Status InSavepoint(sqlite::Database& db, Steps&& steps) {
  if (Status s = ExecOrIo(db, "SAVEPOINT commitd_decide"); !s.ok()) return s;
  auto [status, keep] = steps();
  if (!keep) db.Exec("ROLLBACK TO commitd_decide");
  db.Exec("RELEASE commitd_decide");
  return status;
}
}  // namespace

Status ResourceManager::Commit(const std::string& txid, int64_t now_ms) {
  Status s = InSavepoint(db_, [&] {
    Status applied = ApplyCommit(txid);
    // A conflict is kept (the record is marked); anything else failing undoes both steps.
    if (applied.code() == StatusCode::kConflict) return std::pair{applied, true};
    if (applied.ok()) applied = RememberOutcome(txid, "committed", now_ms);
    return std::pair{applied, applied.ok()};
  });
  if (s.ok()) locks_.Release(txid);
  return s;
}

Status ResourceManager::Abort(const std::string& txid, int64_t now_ms) {
  Status s = InSavepoint(db_, [&] {
    Status discarded = DiscardPrepared(txid);
    if (discarded.ok()) discarded = RememberOutcome(txid, "aborted", now_ms);
    return std::pair{discarded, discarded.ok()};
  });
  if (s.ok()) locks_.Release(txid);
  return s;
}

const ResourceManager::TableInfo* ResourceManager::Table(const std::string& name, int64_t schema_version) {
  auto it = tables_.find(name);
  if (it != tables_.end() && it->second->schema_version == schema_version) return it->second.get();
  auto info = std::make_unique<TableInfo>();
  if (!LoadTableSchema(db_, name, info.get()).ok()) {
    tables_.erase(name);
    return nullptr;
  }
  info->schema_version = schema_version;
  const TableInfo* result = info.get();
  tables_[name] = std::move(info);
  return result;
}

Status ResourceManager::Validate(const std::vector<wire::Op>& ops) const {
  for (const wire::Op& op : ops) {
    if (op.is_raw()) {
      if (!options_.allow_raw_sql) return Status::InvalidArgument("raw SQL is not allowed on this agent");
    } else if (op.procedure.has_value()) {
      if (procedures_.Find(*op.procedure) == nullptr) {
        return Status::InvalidArgument("unknown procedure '" + *op.procedure + "'");
      }
    } else {
      return Status::InvalidArgument("an op needs a procedure or sql");
    }
  }
  return Status::Ok();
}

ExecutionResult ResourceManager::Execute(const std::string& txid, const std::vector<wire::Op>& ops) {
  ExecutionResult result;
  result.ran = true;
  if (Status s = Validate(ops); !s.ok()) {
    result.reason = s.message();
    return result;
  }
  const int deferred_fks_before = DeferredForeignKeyViolations(db_.handle());
  if (Status s = db_.Exec("SAVEPOINT commitd_execute"); !s.ok()) {
    result.reason = "cannot open a savepoint: " + s.message();
    return result;
  }

  std::string reason;
  // Ops cannot change the schema: one read serves every table lookup below.
  Result<int64_t> schema_version = SchemaVersion(db_);
  if (!schema_version.ok()) reason = "cannot read the schema version: " + schema_version.status().message();
  WrittenTables written;
  {
    struct StopRecording {
      ChangesetRecorder& recorder;
      ~StopRecording() { recorder.Stop(); }
    } stop_recording{*recorder_};
    if (Status s = recorder_->Start(); !s.ok() && reason.empty()) reason = "cannot record the changes: " + s.message();

    std::size_t row_count = 0;
    if (reason.empty()) {
      UpdateHookScope hook(db_.handle(), &written);
      for (std::size_t i = 0; i < ops.size() && reason.empty(); ++i) {
        const wire::Op& op = ops[i];
        json rows = json::array();
        if (op.is_raw()) {
          UserStatement statement{&*op.sql, "ops[" + std::to_string(i) + "]", std::nullopt,
                                  [&](sqlite3_stmt* s) { return BindPositional(s, op.params, txid); }};
          reason = RunUserStatement(db_, statement, &rows, &row_count);
        } else {
          const Procedure* proc = procedures_.Find(*op.procedure);
          if (proc->callable) reason = RunCallable(db_, *proc, op.args, txid, &rows, &row_count);
          for (std::size_t k = 0; k < proc->statements.size() && reason.empty(); ++k) {
            const std::string& sql = proc->statements[k];
            UserStatement statement{&sql, "procedure '" + proc->name + "'", proc->expect_changes,
                                    [&](sqlite3_stmt* s) { return BindNamed(s, op.args, txid); }};
            reason = RunUserStatement(db_, statement, &rows, &row_count);
          }
        }
        result.results.push_back(std::move(rows));
      }
    }

    if (reason.empty()) {
      for (const auto& [db_name, table] : written) {
        if (db_name != "main") {
          reason = "table '" + db_name + "." + table +
                   "' is not in the main database; commitd cannot lock or replay writes to it";
        } else if (IsReserved(table.c_str()) || IsSqliteInternal(table.c_str())) {
          reason = "table '" + table + "' is reserved";
        } else if (const TableInfo* info = Table(table, *schema_version);
                   info == nullptr || info->columns.empty()) {
          reason = "cannot read the schema of table '" + table + "'";
        } else if (info->pk.empty()) {
          reason = "table '" + table + "' has no PRIMARY KEY; commitd cannot lock or replay writes to it";
        }
        if (!reason.empty()) break;
      }
    }

    // Deferred foreign keys are only checked at the outer COMMIT, long after
    // this vote: a violation the ops left behind must be a no now.
    if (reason.empty() && DeferredForeignKeyViolations(db_.handle()) > deferred_fks_before) {
      reason = "FOREIGN KEY constraint failed (deferred foreign key left violated)";
    }
    if (reason.empty()) {
      Result<std::string> changeset = recorder_->Changeset();
      if (changeset.ok()) {
        result.changeset = std::move(changeset).value();
      } else if (changeset.status().code() == StatusCode::kInvalidArgument) {
        reason = "cannot record the changes: a written table has generated columns, which changesets "
                 "(SQLite's session format) do not hold";
      } else {
        reason = "cannot record the changes: " + changeset.status().message();
      }
    }
  }

  if (db_.InTransaction()) {
    Status undo = db_.Exec("ROLLBACK TO commitd_execute");
    if (undo.ok()) undo = db_.Exec("RELEASE commitd_execute");
    if (!undo.ok() && reason.empty()) reason = "cannot roll back the savepoint: " + undo.message();
  } else if (reason.empty()) {
    reason = "the enclosing transaction was rolled back";
  }

  if (reason.empty()) {
    std::map<std::string, const TableSchema*> seen;
    auto lookup = [this, &seen, version = *schema_version](const std::string& name) -> const TableSchema* {
      auto it = seen.find(name);
      if (it == seen.end()) it = seen.emplace(name, Table(name, version)).first;
      return it->second;
    };
    Status s = DeriveLockKeys(db_, result.changeset, lookup, &result.lock_keys);
    if (!s.ok()) reason = "cannot derive lock keys: " + s.message();
  }

  if (!reason.empty()) {
    result.reason = std::move(reason);
    result.changeset.clear();
    result.lock_keys.clear();
    return result;
  }
  result.ok = true;
  result.met_held_key = locks_.FirstHolder(txid, result.lock_keys).has_value();
  return result;
}

Status ResourceManager::PersistPrepared(const PreparedRecord& record) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "INSERT OR REPLACE INTO _commitd_prepared(txid, protocol, state, changeset, lock_keys, coordinator, "
      "participants, created_ms, deadline_ms, last_error) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
      &error);
  if (stmt == nullptr) return error;
  json keys = record.lock_keys;
  stmt->Bind(1, record.txid)
      .Bind(2, record.protocol)
      .Bind(3, record.state)
      .BindBlob(4, record.changeset)
      .Bind(5, keys.dump())
      .Bind(6, record.coordinator)
      .Bind(7, record.participants.dump())
      .Bind(8, record.created_ms)
      .Bind(9, record.deadline_ms)
      .Bind(10, record.last_error);
  return stmt->Run();
}

Status ResourceManager::UpdatePrepared(const std::string& txid, const std::string& state,
                                       const std::string& last_error) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "UPDATE _commitd_prepared SET state = CASE WHEN ?2 = '' THEN state ELSE ?2 END, last_error = ?3 "
      "WHERE txid = ?1",
      &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, txid).Bind(2, state).Bind(3, last_error);
  if (Status s = stmt->Run(); !s.ok()) return s;
  if (sqlite3_changes(db_.handle()) == 0) return Status::NotFound("no prepared transaction '" + txid + "'");
  return Status::Ok();
}

Status ResourceManager::ApplyCommit(const std::string& txid) {
  Status error;
  sqlite::Statement* read = db_.Prepare("SELECT changeset FROM _commitd_prepared WHERE txid = ?1", &error);
  if (read == nullptr) return error;
  read->Bind(1, txid);
  if (!read->Step()) {
    Status s = read->status();
    read->Reset();
    return s.ok() ? Status::NotFound("no prepared transaction '" + txid + "'") : s;
  }
  const std::string changeset = read->Blob(0);
  read->Reset();

  if (Status s = ExecOrIo(db_, "SAVEPOINT commitd_apply"); !s.ok()) return s;
  std::string conflict;
  Status failure;
  if (Status applied = applier_->Apply(changeset); applied.code() == StatusCode::kConflict) {
    conflict = applied.message();
  } else if (!applied.ok()) {
    failure = Status::IoError("apply changeset of '" + txid + "': " + applied.message());
  }
  if (conflict.empty() && failure.ok()) {
    sqlite::Statement* remove = db_.Prepare("DELETE FROM _commitd_prepared WHERE txid = ?1", &error);
    failure = remove == nullptr ? error : remove->Bind(1, txid).Run();
    if (failure.ok()) return ExecOrIo(db_, "RELEASE commitd_apply");
  }
  if (Status s = ExecOrIo(db_, "ROLLBACK TO commitd_apply"); !s.ok()) return s;
  if (Status s = ExecOrIo(db_, "RELEASE commitd_apply"); !s.ok()) return s;
  if (!failure.ok()) return failure;
  sqlite::Statement* mark = db_.Prepare(
      "UPDATE _commitd_prepared SET state = 'conflict', last_error = ?2 WHERE txid = ?1", &error);
  if (mark == nullptr) return error;
  if (Status s = mark->Bind(1, txid).Bind(2, conflict).Run(); !s.ok()) return s;
  return Status::Conflict(conflict);
}

Status ResourceManager::DiscardPrepared(const std::string& txid) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare("DELETE FROM _commitd_prepared WHERE txid = ?1", &error);
  if (stmt == nullptr) return error;
  return stmt->Bind(1, txid).Run();
}

Status ResourceManager::RememberOutcome(const std::string& txid, const std::string& outcome, int64_t now_ms) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "INSERT OR REPLACE INTO _commitd_finished(txid, outcome, finished_ms) VALUES(?1, ?2, ?3)", &error);
  if (stmt == nullptr) return error;
  return stmt->Bind(1, txid).Bind(2, outcome).Bind(3, now_ms).Run();
}

Status ResourceManager::ForgetOutcomesBefore(int64_t cutoff_ms) {
  Status error;
  sqlite::Statement* stmt = db_.Prepare("DELETE FROM _commitd_finished WHERE finished_ms < ?1", &error);
  if (stmt == nullptr) return error;
  return stmt->Bind(1, cutoff_ms).Run();
}

Result<std::vector<PreparedRecord>> ResourceManager::LoadPrepared() {
  Status error;
  sqlite::Statement* stmt = db_.Prepare(
      "SELECT txid, protocol, state, changeset, lock_keys, coordinator, participants, created_ms, deadline_ms, "
      "last_error FROM _commitd_prepared ORDER BY created_ms, txid",
      &error);
  if (stmt == nullptr) return error;
  std::vector<PreparedRecord> records;
  while (stmt->Step()) {
    PreparedRecord r;
    r.txid = stmt->Text(0);
    r.protocol = stmt->Text(1);
    r.state = stmt->Text(2);
    r.changeset = stmt->Blob(3);
    Result<std::vector<std::string>> keys = ParseLockKeys(r.txid, stmt->Text(4));
    if (!keys.ok()) {
      stmt->Reset();
      return keys.status();
    }
    r.lock_keys = std::move(keys).value();
    r.coordinator = stmt->Text(5);
    r.participants = json::parse(stmt->Text(6), nullptr, false);
    if (r.participants.is_discarded() || !r.participants.is_array()) {
      stmt->Reset();
      return Status::Corruption("_commitd_prepared '" + r.txid + "': participants is not a JSON array");
    }
    r.created_ms = stmt->Int(7);
    r.deadline_ms = stmt->Int(8);
    r.last_error = stmt->Text(9);
    records.push_back(std::move(r));
  }
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return records;
}

Result<std::map<std::string, std::string>> ResourceManager::LoadOutcomes() {
  Status error;
  sqlite::Statement* stmt = db_.Prepare("SELECT txid, outcome FROM _commitd_finished", &error);
  if (stmt == nullptr) return error;
  std::map<std::string, std::string> outcomes;
  while (stmt->Step()) outcomes[stmt->Text(0)] = stmt->Text(1);
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return outcomes;
}

}  // namespace commitd::participant
