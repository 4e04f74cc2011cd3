#include "participant/lock_keys.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

#include "common/hex.h"
#include "common/utf8.h"

namespace commitd::participant {
namespace {

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

// Keys are stored as JSON strings, which must be UTF-8: text that is not, and
// every blob, is written in hex under its own tag so that encodings stay distinct.
void AppendText(std::string* out, char tag, const char* data, std::size_t size) {
  const bool hex = tag == 'b' || !IsUtf8(std::string_view(data, size));
  *out += hex ? static_cast<char>(tag == 'b' ? 'b' : 'u') : tag;
  *out += std::to_string(size);
  *out += ':';
  if (!hex) {
    out->append(data, size);
    return;
  }
  AppendHex(out, data, size);
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

}  // namespace

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

}  // namespace commitd::participant
