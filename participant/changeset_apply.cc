#include "participant/changeset_apply.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace commitd::participant {
namespace {

struct FinalizeStatement {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, FinalizeStatement>;

struct FinalizeIterator {
  void operator()(sqlite3_changeset_iter* iter) const { sqlite3changeset_finalize(iter); }
};
using IteratorPtr = std::unique_ptr<sqlite3_changeset_iter, FinalizeIterator>;

// Whether `changeset` is a sequence of well-formed table headers and changes,
// each inside the bytes: SQLite's iterator is only given such bytes (the
// SQLite of Debian 12, 3.40, loops forever on a table name without its
// terminating NUL at the end of a changeset). Format: a table header is 'T',
// a varint column count, one primary key byte per column and the
// NUL-terminated name; a change is its op (INSERT, UPDATE, DELETE), an
// indirect byte, and one value per column (two for an UPDATE: old then new).
// A value is its type byte: 0 (undefined) or 5 (null) alone, 1 or 2 with 8
// bytes, 3 or 4 with a varint length and that many bytes.
bool WellFramed(std::string_view changeset) {
  const auto* p = reinterpret_cast<const unsigned char*>(changeset.data());
  const auto* end = p + changeset.size();
  auto varint = [&](uint64_t* v) {
    *v = 0;
    for (int i = 0; i < 9; ++i) {
      if (p == end) return false;
      const unsigned char byte = *p++;
      if (i == 8) {
        *v = (*v << 8) | byte;
        return true;
      }
      *v = (*v << 7) | (byte & 0x7f);
      if ((byte & 0x80) == 0) return true;
    }
    return true;
  };
  auto value = [&]() {
    if (p == end) return false;
    switch (*p++) {
      case 0:
      case SQLITE_NULL:
        return true;
      case SQLITE_INTEGER:
      case SQLITE_FLOAT:
        if (end - p < 8) return false;
        p += 8;
        return true;
      case SQLITE_TEXT:
      case SQLITE_BLOB: {
        uint64_t n = 0;
        if (!varint(&n) || n > static_cast<uint64_t>(end - p)) return false;
        p += n;
        return true;
      }
      default:
        return false;
    }
  };
  uint64_t columns = 0;
  while (p != end) {
    const unsigned char kind = *p++;
    if (kind == 'T') {
      if (!varint(&columns) || columns == 0 || columns > 32767 || columns > static_cast<uint64_t>(end - p)) {
        return false;
      }
      p += columns;
      const auto* nul = static_cast<const unsigned char*>(std::memchr(p, 0, static_cast<std::size_t>(end - p)));
      if (nul == nullptr) return false;
      p = nul + 1;
      continue;
    }
    if (columns == 0 || (kind != SQLITE_INSERT && kind != SQLITE_UPDATE && kind != SQLITE_DELETE)) return false;
    if (p == end) return false;
    ++p;  // indirect
    const uint64_t values = kind == SQLITE_UPDATE ? 2 * columns : columns;
    for (uint64_t i = 0; i < values; ++i) {
      if (!value()) return false;
    }
  }
  return true;
}

IteratorPtr Start(std::string_view changeset, int* rc) {
  sqlite3_changeset_iter* iter = nullptr;
  *rc = sqlite3changeset_start(&iter, static_cast<int>(changeset.size()), const_cast<char*>(changeset.data()));
  return IteratorPtr(iter);
}

// The iterator's status once it is done, freeing it.
int Finish(IteratorPtr iter) { return sqlite3changeset_finalize(iter.release()); }

std::string Lower(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

std::string SqlLiteral(sqlite3_value* value) {
  if (value == nullptr) return "?";
  switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER:
      return std::to_string(sqlite3_value_int64(value));
    case SQLITE_FLOAT: {
      char buf[40];
      std::snprintf(buf, sizeof(buf), "%.17g", sqlite3_value_double(value));
      return buf;
    }
    case SQLITE_TEXT: {
      const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(value));
      std::string out = "'";
      for (int i = 0; i < sqlite3_value_bytes(value); ++i) {
        if (p[i] == '\'') out += '\'';
        out += p[i];
      }
      return out + "'";
    }
    case SQLITE_BLOB: {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const auto* p = static_cast<const unsigned char*>(sqlite3_value_blob(value));
      std::string out = "X'";
      for (int i = 0; i < sqlite3_value_bytes(value); ++i) {
        out += kHex[p[i] >> 4];
        out += kHex[p[i] & 15];
      }
      return out + "'";
    }
    default:
      return "NULL";
  }
}

// type: SQLITE_CHANGESET_DATA, _NOTFOUND, _CONFLICT or _CONSTRAINT.
Status DescribeConflict(int type, sqlite3_changeset_iter* iter) {
  const char* table = nullptr;
  int ncol = 0;
  int op = 0;
  int indirect = 0;
  sqlite3changeset_op(iter, &table, &ncol, &op, &indirect);
  unsigned char* pk_flags = nullptr;
  sqlite3changeset_pk(iter, &pk_flags, &ncol);
  std::string pk;
  for (int i = 0; i < ncol; ++i) {
    if (pk_flags[i] == 0) continue;
    sqlite3_value* v = nullptr;
    if (op == SQLITE_INSERT) {
      sqlite3changeset_new(iter, i, &v);
    } else {
      sqlite3changeset_old(iter, i, &v);
    }
    if (!pk.empty()) pk += ", ";
    pk += SqlLiteral(v);
  }
  const char* name = "CONFLICT";
  const char* what = "a row with this primary key was inserted outside commitd";
  switch (type) {
    case SQLITE_CHANGESET_DATA:
      name = "DATA";
      what = "row changed outside commitd";
      break;
    case SQLITE_CHANGESET_NOTFOUND:
      name = "NOTFOUND";
      what = "row deleted outside commitd";
      break;
    case SQLITE_CHANGESET_CONSTRAINT:
      name = "CONSTRAINT";
      what = "a constraint fails against data changed outside commitd";
      break;
    default:
      break;
  }
  return Status::Conflict("changeset conflict on " + std::string(table) + " (" + name + ", pk=(" + pk + ")): " + what);
}

// SQLITE_DBSTATUS_DEFERRED_FKS: nonzero while a deferred foreign key is violated.
int DeferredForeignKeys(sqlite3* db) {
  int current = 0;
  int highwater = 0;
  sqlite3_db_status(db, SQLITE_DBSTATUS_DEFERRED_FKS, &current, &highwater, 0);
  return current;
}

bool ForeignKeysEnforced(sqlite3* db) {
  int on = 0;
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FKEY, -1, &on);
  return on != 0;
}

}  // namespace

struct ChangesetApplier::Table {
  std::vector<std::string> columns;  // empty: no such table
  std::vector<bool> pk;
  bool foreign_keys = false;  // has a foreign key or is referenced by one
  StatementPtr insert;
  StatementPtr remove;
  StatementPtr select;  // does the row with this primary key exist
  // By the columns an UPDATE sets and checks: one char per column, bit 0 new value, bit 1 old value.
  std::unordered_map<std::string, StatementPtr> updates;
  std::string quoted;  // main."name"
};

namespace {

Status Prepare(sqlite3* db, const std::string& sql, StatementPtr* slot) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw,
                              nullptr);
  if (rc != SQLITE_OK) return Status::IoError("prepare " + sql + ": " + sqlite::ErrorText(db, rc));
  slot->reset(raw);
  return Status::Ok();
}

}  // namespace

// One Apply: the changes in order, each table's constraint failures retried
// once the rest of the table is in (SQLite's order).
class ChangesetApplier::Run {
 public:
  Run(sqlite3* db, std::string_view changeset, const std::vector<Table*>& tables)
      : db_(db), changeset_(changeset), tables_(tables) {}

  Status Go() {
    int rc = SQLITE_OK;
    IteratorPtr iter = Start(changeset_, &rc);
    if (rc != SQLITE_OK) return Status::Conflict("the changeset is corrupt");
    std::size_t index = 0;
    std::size_t next_table = 0;
    Table* table = nullptr;
    std::string table_name;
    std::vector<std::size_t> deferred;
    while (sqlite3changeset_next(iter.get()) == SQLITE_ROW) {
      const char* name = nullptr;
      int ncol = 0;
      int op = 0;
      int indirect = 0;
      sqlite3changeset_op(iter.get(), &name, &ncol, &op, &indirect);
      if (table == nullptr || table_name != name) {
        if (table != nullptr) {
          if (Status s = Retry(*table, std::move(deferred)); !s.ok()) return s;
          deferred.clear();
        }
        if (next_table >= tables_.size()) return Status::Conflict("the changeset is corrupt");
        table = tables_[next_table++];
        table_name = name;
      }
      bool deferred_now = false;
      if (Status s = ApplyOne(iter.get(), *table, true, &deferred_now); !s.ok()) return s;
      if (deferred_now) deferred.push_back(index);
      ++index;
    }
    if (Finish(std::move(iter)) != SQLITE_OK) return Status::Conflict("the changeset is corrupt");
    return table == nullptr ? Status::Ok() : Retry(*table, std::move(deferred));
  }

 private:
  // Changes `pending` (indexes into the changeset, ascending) failed a
  // constraint; apply them again while that makes progress, then once more
  // without deferring so that the first one still failing is the conflict.
  Status Retry(Table& table, std::vector<std::size_t> pending) {
    bool defer = true;
    while (!pending.empty()) {
      std::vector<std::size_t> again;
      int rc = SQLITE_OK;
      IteratorPtr iter = Start(changeset_, &rc);
      if (rc != SQLITE_OK) return Status::Conflict("the changeset is corrupt");
      std::size_t index = 0;
      for (std::size_t k = 0; k < pending.size() && sqlite3changeset_next(iter.get()) == SQLITE_ROW; ++index) {
        if (index != pending[k]) continue;
        ++k;
        bool deferred_now = false;
        if (Status s = ApplyOne(iter.get(), table, defer, &deferred_now); !s.ok()) return s;
        if (deferred_now) again.push_back(index);
      }
      if (again.size() >= pending.size()) defer = false;
      pending = std::move(again);
    }
    return Status::Ok();
  }

  // Applies the change `iter` is on. Ok, with *deferred set if it failed a
  // constraint and defer_constraints allowed putting it off; else a conflict
  // or an error.
  Status ApplyOne(sqlite3_changeset_iter* iter, Table& table, bool defer_constraints, bool* deferred) {
    const char* name = nullptr;
    int ncol = 0;
    int op = 0;
    int indirect = 0;
    sqlite3changeset_op(iter, &name, &ncol, &op, &indirect);
    sqlite3_stmt* stmt = nullptr;
    Status status;
    if (op == SQLITE_INSERT) {
      status = BindRow(iter, table, sqlite3changeset_new, &table.insert, &stmt);
    } else if (op == SQLITE_DELETE) {
      status = BindRow(iter, table, sqlite3changeset_old, &table.remove, &stmt);
    } else {
      status = BindUpdate(iter, table, &stmt);
    }
    if (!status.ok()) return status;

    sqlite3_step(stmt);
    const int rc = sqlite3_reset(stmt);
    if (op != SQLITE_INSERT && rc == SQLITE_OK && sqlite3_changes(db_) == 0) {
      bool exists = false;
      if (Status s = RowExists(iter, table, op, &exists); !s.ok()) return s;
      return DescribeConflict(exists ? SQLITE_CHANGESET_DATA : SQLITE_CHANGESET_NOTFOUND, iter);
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
      if (op == SQLITE_INSERT) {
        bool exists = false;
        if (Status s = RowExists(iter, table, op, &exists); !s.ok()) return s;
        if (exists) return DescribeConflict(SQLITE_CHANGESET_CONFLICT, iter);
      }
      if (!defer_constraints) return DescribeConflict(SQLITE_CHANGESET_CONSTRAINT, iter);
      *deferred = true;
      return Status::Ok();
    }
    if (rc != SQLITE_OK) return Status::IoError(sqlite::ErrorText(db_, rc));
    return Status::Ok();
  }

  using ValueFn = int (*)(sqlite3_changeset_iter*, int, sqlite3_value**);

  // INSERT (new values) or DELETE (old values): every column, in order.
  Status BindRow(sqlite3_changeset_iter* iter, Table& table, ValueFn values, StatementPtr* slot,
                 sqlite3_stmt** stmt) {
    if (!*slot) {
      const bool insert = slot == &table.insert;
      std::string sql = insert ? "INSERT INTO " + table.quoted + "(" : "DELETE FROM " + table.quoted + " WHERE ";
      for (std::size_t i = 0; i < table.columns.size(); ++i) {
        const std::string n = std::to_string(i + 1);
        if (insert) {
          sql += (i == 0 ? "" : ", ") + sqlite::QuoteIdentifier(table.columns[i]);
        } else {
          sql += (i == 0 ? "" : " AND ") + sqlite::QuoteIdentifier(table.columns[i]) +
                 (table.pk[i] ? " = ?" : " IS ?") + n;
        }
      }
      if (insert) {
        sql += ") VALUES(";
        for (std::size_t i = 0; i < table.columns.size(); ++i) sql += (i == 0 ? "?" : ", ?") + std::to_string(i + 1);
        sql += ")";
      }
      if (Status s = Prepare(db_, sql, slot); !s.ok()) return s;
    }
    *stmt = slot->get();
    for (std::size_t i = 0; i < table.columns.size(); ++i) {
      sqlite3_value* v = nullptr;
      values(iter, static_cast<int>(i), &v);
      if (v == nullptr) return Status::Conflict("the changeset is corrupt");
      sqlite3_bind_value(*stmt, static_cast<int>(i + 1), v);
    }
    return Status::Ok();
  }

  // UPDATE: sets the columns with a new value, where the primary key and
  // every old value the changeset holds match. Parameter 2i+1 is column i's
  // new value, 2i+2 its old one.
  Status BindUpdate(sqlite3_changeset_iter* iter, Table& table, sqlite3_stmt** stmt) {
    const std::size_t n = table.columns.size();
    olds_.assign(n, nullptr);
    news_.assign(n, nullptr);
    mask_.assign(n, '0');
    bool sets = false;
    for (std::size_t i = 0; i < n; ++i) {
      sqlite3changeset_old(iter, static_cast<int>(i), &olds_[i]);
      sqlite3changeset_new(iter, static_cast<int>(i), &news_[i]);
      if (table.pk[i]) {
        if (olds_[i] == nullptr) return Status::Conflict("the changeset is corrupt");
        news_[i] = nullptr;
      }
      sets = sets || news_[i] != nullptr;
      mask_[i] = static_cast<char>('0' + (news_[i] != nullptr ? 1 : 0) + (olds_[i] != nullptr ? 2 : 0));
    }
    if (!sets) return Status::Conflict("the changeset is corrupt");
    StatementPtr& slot = table.updates[mask_];
    if (!slot) {
      std::string set;
      std::string where;
      for (std::size_t i = 0; i < n; ++i) {
        const std::string column = sqlite::QuoteIdentifier(table.columns[i]);
        if (news_[i] != nullptr) set += (set.empty() ? "" : ", ") + column + " = ?" + std::to_string(2 * i + 1);
        if (olds_[i] != nullptr) where += (where.empty() ? "" : " AND ") + column + " IS ?" + std::to_string(2 * i + 2);
      }
      if (Status s = Prepare(db_, "UPDATE " + table.quoted + " SET " + set + " WHERE " + where, &slot); !s.ok()) {
        table.updates.erase(mask_);
        return s;
      }
    }
    *stmt = slot.get();
    for (std::size_t i = 0; i < n; ++i) {
      if (news_[i] != nullptr) sqlite3_bind_value(*stmt, static_cast<int>(2 * i + 1), news_[i]);
      if (olds_[i] != nullptr) sqlite3_bind_value(*stmt, static_cast<int>(2 * i + 2), olds_[i]);
    }
    return Status::Ok();
  }

  // Whether a row with the change's primary key (new for an INSERT, else old) exists.
  Status RowExists(sqlite3_changeset_iter* iter, Table& table, int op, bool* exists) {
    if (!table.select) {
      std::string sql = "SELECT 1 FROM " + table.quoted + " WHERE ";
      int k = 0;
      for (std::size_t i = 0; i < table.columns.size(); ++i) {
        if (!table.pk[i]) continue;
        sql += (k == 0 ? "" : " AND ") + sqlite::QuoteIdentifier(table.columns[i]) + " IS ?" + std::to_string(k + 1);
        ++k;
      }
      if (Status s = Prepare(db_, sql, &table.select); !s.ok()) return s;
    }
    sqlite3_stmt* stmt = table.select.get();
    int k = 0;
    for (std::size_t i = 0; i < table.columns.size(); ++i) {
      if (!table.pk[i]) continue;
      sqlite3_value* v = nullptr;
      if (op == SQLITE_INSERT) {
        sqlite3changeset_new(iter, static_cast<int>(i), &v);
      } else {
        sqlite3changeset_old(iter, static_cast<int>(i), &v);
      }
      sqlite3_bind_value(stmt, ++k, v);
    }
    const int step = sqlite3_step(stmt);
    const int rc = sqlite3_reset(stmt);
    if (step != SQLITE_ROW && rc != SQLITE_OK) return Status::IoError(sqlite::ErrorText(db_, rc));
    *exists = step == SQLITE_ROW;
    return Status::Ok();
  }

  sqlite3* db_;
  std::string_view changeset_;
  const std::vector<Table*>& tables_;
  std::vector<sqlite3_value*> olds_;
  std::vector<sqlite3_value*> news_;
  std::string mask_;
};

ChangesetApplier::ChangesetApplier(sqlite::Database& db) : db_(db) {}
ChangesetApplier::~ChangesetApplier() = default;

Status ChangesetApplier::RefreshSchema() {
  Status error;
  sqlite::Statement* version = db_.Prepare("PRAGMA main.schema_version", &error);
  if (version == nullptr) return error;
  if (!version->Step()) return version->status().ok() ? Status::IoError("schema_version: no row") : version->status();
  const int64_t current = version->Int(0);
  version->Reset();
  if (current == schema_version_) return Status::Ok();

  tables_.clear();
  std::set<std::string> related;
  sqlite::Statement* fks = db_.Prepare(
      "SELECT s.name, f.\"table\" FROM main.sqlite_schema s, pragma_foreign_key_list(s.name, 'main') f "
      "WHERE s.type = 'table'",
      &error);
  if (fks == nullptr) return error;
  while (fks->Step()) {
    related.insert(Lower(fks->Text(0)));
    related.insert(Lower(fks->Text(1)));
  }
  if (!fks->status().ok()) return fks->status();
  fks->Reset();
  sqlite::Statement* triggers =
      db_.Prepare("SELECT EXISTS(SELECT 1 FROM main.sqlite_schema WHERE type = 'trigger')", &error);
  if (triggers == nullptr) return error;
  if (!triggers->Step()) return triggers->status().ok() ? Status::IoError("sqlite_schema: no row") : triggers->status();
  any_trigger_ = triggers->Int(0) != 0;
  triggers->Reset();
  any_foreign_key_ = !related.empty();
  foreign_key_tables_ = std::move(related);
  schema_version_ = current;
  return Status::Ok();
}

ChangesetApplier::Table* ChangesetApplier::Lookup(const std::string& name, Status* error) {
  auto it = tables_.find(name);
  if (it != tables_.end()) return it->second.get();
  auto table = std::make_unique<Table>();
  sqlite::Statement* cols = db_.Prepare("SELECT name, pk FROM pragma_table_info(?1, 'main') ORDER BY cid", error);
  if (cols == nullptr) return nullptr;
  cols->Bind(1, name);
  while (cols->Step()) {
    table->columns.push_back(cols->Text(0));
    table->pk.push_back(cols->Int(1) > 0);
  }
  if (!cols->status().ok()) {
    *error = cols->status();
    return nullptr;
  }
  cols->Reset();
  table->foreign_keys = foreign_key_tables_.count(Lower(name)) != 0;
  table->quoted = "main." + sqlite::QuoteIdentifier(name);
  return tables_.emplace(name, std::move(table)).first->second.get();
}

Status ChangesetApplier::Apply(std::string_view changeset) {
  if (changeset.empty()) return Status::Ok();
  if (!WellFramed(changeset)) return Status::Conflict("the changeset is corrupt");
  if (Status s = RefreshSchema(); !s.ok()) return s;

  // First the shape of every table, so that a mismatch writes nothing
  // (sqlite3changeset_apply would skip such a table without a word).
  std::vector<Table*> tables;
  bool defer_foreign_keys = any_foreign_key_ && any_trigger_;
  {
    int rc = SQLITE_OK;
    IteratorPtr iter = Start(changeset, &rc);
    if (rc != SQLITE_OK) return Status::Conflict("the changeset is corrupt");
    std::string last;
    while (sqlite3changeset_next(iter.get()) == SQLITE_ROW) {
      const char* name = nullptr;
      int ncol = 0;
      int op = 0;
      int indirect = 0;
      sqlite3changeset_op(iter.get(), &name, &ncol, &op, &indirect);
      if (!tables.empty() && last == name) continue;
      last = name;
      unsigned char* pk_flags = nullptr;
      sqlite3changeset_pk(iter.get(), &pk_flags, &ncol);
      Status error;
      Table* table = Lookup(last, &error);
      if (table == nullptr) return error;
      if (table->columns.empty()) {
        return Status::Conflict("changeset conflict on " + last + ": the table no longer exists");
      }
      bool same = table->columns.size() == static_cast<std::size_t>(ncol);
      for (int i = 0; same && i < ncol; ++i) same = table->pk[i] == (pk_flags[i] != 0);
      if (!same) {
        return Status::Conflict("changeset conflict on " + last + ": the table's columns or primary key changed");
      }
      tables.push_back(table);
      defer_foreign_keys = defer_foreign_keys || table->foreign_keys;
    }
    if (Finish(std::move(iter)) != SQLITE_OK) return Status::Conflict("the changeset is corrupt");
  }

  // Rows of related tables may arrive child first; like SQLite, check
  // foreign keys once everything is in. The pragma expires every prepared
  // statement of the connection, so it is used only when a key can be hit.
  defer_foreign_keys = defer_foreign_keys && ForeignKeysEnforced(db_.handle());
  if (defer_foreign_keys) {
    if (Status s = db_.Exec("PRAGMA defer_foreign_keys = 1"); !s.ok()) return s;
  }
  Status status = Run(db_.handle(), changeset, tables).Go();
  if (status.ok()) {
    if (int violations = DeferredForeignKeys(db_.handle()); violations != 0) {
      status = Status::Conflict("changeset conflict (FOREIGN_KEY, " + std::to_string(violations) +
                                " violation(s)): a referenced row was deleted or changed outside commitd");
    }
  }
  if (defer_foreign_keys) {
    Status off = db_.Exec("PRAGMA defer_foreign_keys = 0");
    if (status.ok() && !off.ok()) status = off;
  }
  return status;
}

}  // namespace commitd::participant
