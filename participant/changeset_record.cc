#include "participant/changeset_record.h"

#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <utility>

namespace commitd::participant {
namespace {

constexpr char kReservedPrefix[] = "_commitd_";

struct FinalizeStatement {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, FinalizeStatement>;

// Changeset values: a type byte (0 undefined, 1 integer, 2 real, 3 text,
// 4 blob, 5 null), then 8 big-endian bytes for numbers, or a varint length
// and the bytes for text and blobs. Varints are SQLite's.
void PutVarint(std::string* out, uint64_t v) {
  unsigned char buf[10];
  if ((v & (static_cast<uint64_t>(0xff000000) << 32)) != 0) {
    buf[8] = static_cast<unsigned char>(v);
    v >>= 8;
    for (int i = 7; i >= 0; --i) {
      buf[i] = static_cast<unsigned char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out->append(reinterpret_cast<const char*>(buf), 9);
    return;
  }
  int n = 0;
  do {
    buf[n++] = static_cast<unsigned char>((v & 0x7f) | 0x80);
    v >>= 7;
  } while (v != 0);
  buf[0] &= 0x7f;
  for (int j = n - 1; j >= 0; --j) out->push_back(static_cast<char>(buf[j]));
}

// Bytes read; *v gets the value.
std::size_t GetVarint(const unsigned char* p, uint64_t* v) {
  uint64_t result = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    result = (result << 7) | (p[i] & 0x7f);
    if ((p[i] & 0x80) == 0) {
      *v = result;
      return i + 1;
    }
  }
  *v = (result << 8) | p[8];
  return 9;
}

void PutBigEndian(std::string* out, uint64_t bits) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((bits >> shift) & 0xff));
}

uint64_t GetBigEndian(const unsigned char* p) {
  uint64_t bits = 0;
  for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
  return bits;
}

void Encode(std::string* out, sqlite3_value* value) {
  switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER:
      out->push_back(SQLITE_INTEGER);
      PutBigEndian(out, static_cast<uint64_t>(sqlite3_value_int64(value)));
      return;
    case SQLITE_FLOAT: {
      const double d = sqlite3_value_double(value);
      uint64_t bits = 0;
      std::memcpy(&bits, &d, sizeof bits);
      out->push_back(SQLITE_FLOAT);
      PutBigEndian(out, bits);
      return;
    }
    case SQLITE_TEXT: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(value));
      const auto size = static_cast<std::size_t>(sqlite3_value_bytes(value));
      out->push_back(SQLITE_TEXT);
      PutVarint(out, size);
      out->append(text == nullptr ? "" : text, size);
      return;
    }
    case SQLITE_BLOB: {
      const auto size = static_cast<std::size_t>(sqlite3_value_bytes(value));
      const auto* blob = static_cast<const char*>(sqlite3_value_blob(value));
      out->push_back(SQLITE_BLOB);
      PutVarint(out, size);
      out->append(blob == nullptr ? "" : blob, size);
      return;
    }
    default:
      out->push_back(SQLITE_NULL);
      return;
  }
}

// One encoded value at p: its type, total size, and payload.
struct Encoded {
  int type = 0;
  std::size_t size = 1;
  const unsigned char* data = nullptr;
  uint64_t length = 0;  // of text or blob
};

Encoded Decode(const unsigned char* p) {
  Encoded e;
  e.type = p[0];
  if (e.type == SQLITE_INTEGER || e.type == SQLITE_FLOAT) {
    e.size = 9;
    e.data = p + 1;
  } else if (e.type == SQLITE_TEXT || e.type == SQLITE_BLOB) {
    const std::size_t header = 1 + GetVarint(p + 1, &e.length);
    e.size = header + e.length;
    e.data = p + header;
  }
  return e;
}

int Bind(sqlite3_stmt* stmt, int index, const Encoded& e) {
  switch (e.type) {
    case SQLITE_INTEGER:
      return sqlite3_bind_int64(stmt, index, static_cast<sqlite3_int64>(GetBigEndian(e.data)));
    case SQLITE_FLOAT: {
      const uint64_t bits = GetBigEndian(e.data);
      double d = 0;
      std::memcpy(&d, &bits, sizeof d);
      return sqlite3_bind_double(stmt, index, d);
    }
    case SQLITE_TEXT:
      return sqlite3_bind_text64(stmt, index, reinterpret_cast<const char*>(e.data), e.length, SQLITE_STATIC,
                                 SQLITE_UTF8);
    case SQLITE_BLOB:
      return sqlite3_bind_blob64(stmt, index, e.data, e.length, SQLITE_STATIC);
    default:
      return sqlite3_bind_null(stmt, index);
  }
}

// Whether the current value of column i differs from the encoded old one,
// compared as sqlite3session compares them.
bool Changed(const Encoded& old, sqlite3_stmt* stmt, int i) {
  const int type = sqlite3_column_type(stmt, i);
  if (old.type != type) return true;
  switch (type) {
    case SQLITE_NULL:
      return false;
    case SQLITE_INTEGER:
      return static_cast<sqlite3_int64>(GetBigEndian(old.data)) != sqlite3_column_int64(stmt, i);
    case SQLITE_FLOAT: {
      const uint64_t bits = GetBigEndian(old.data);
      double d = 0;
      std::memcpy(&d, &bits, sizeof d);
      return d != sqlite3_column_double(stmt, i);
    }
    default: {
      const void* now = type == SQLITE_TEXT ? static_cast<const void*>(sqlite3_column_text(stmt, i))
                                            : sqlite3_column_blob(stmt, i);
      const auto size = static_cast<uint64_t>(sqlite3_column_bytes(stmt, i));
      return size != old.length || (size != 0 && std::memcmp(now, old.data, size) != 0);
    }
  }
}

}  // namespace

struct ChangesetRecorder::Table {
  std::string name;
  std::vector<std::string> columns;
  std::vector<unsigned char> pk;  // per column: its place in the PRIMARY KEY (1-based), 0 if not in it
  bool has_pk = false;
  bool hidden_columns = false;    // generated or hidden: the changeset could not hold the row
  StatementPtr select;            // the current row with a given primary key
  // Rows changed since Start(), in order of first change, and by encoded primary key.
  std::vector<std::pair<std::string, Row>> rows;
  std::unordered_map<std::string, std::size_t> index;
  bool changed = false;
};

ChangesetRecorder::ChangesetRecorder(sqlite::Database& db) : db_(db) {}

ChangesetRecorder::~ChangesetRecorder() { Stop(); }

Status ChangesetRecorder::Start() {
  for (Table* t : order_) {
    t->rows.clear();
    t->index.clear();
    t->changed = false;
  }
  order_.clear();
  error_ = Status::Ok();

  Status error;
  sqlite::Statement* version = db_.Prepare("PRAGMA main.schema_version", &error);
  if (version == nullptr) return error;
  if (!version->Step()) return version->status().ok() ? Status::IoError("schema_version: no row") : version->status();
  const int64_t current = version->Int(0);
  version->Reset();
  if (current != schema_version_) {
    tables_.clear();
    schema_version_ = current;
  }
  sqlite3_preupdate_hook(db_.handle(), OnPreupdate, this);
  return Status::Ok();
}

void ChangesetRecorder::Stop() { sqlite3_preupdate_hook(db_.handle(), nullptr, nullptr); }

void ChangesetRecorder::OnPreupdate(void* self, sqlite3*, int op, const char* db_name, const char* table,
                                    sqlite3_int64, sqlite3_int64) {
  if (std::strcmp(db_name, "main") != 0 || std::strncmp(table, kReservedPrefix, sizeof kReservedPrefix - 1) == 0) {
    return;
  }
  static_cast<ChangesetRecorder*>(self)->Record(op, table);
}

ChangesetRecorder::Table* ChangesetRecorder::Lookup(const char* name) {
  auto it = tables_.find(name);
  if (it != tables_.end()) return it->second.get();
  auto table = std::make_unique<Table>();
  table->name = name;
  // A PRAGMA, not pragma_table_xinfo(): this may run inside a user statement,
  // whose authorizer refuses what creating that virtual table does.
  const std::string sql = "PRAGMA main.table_xinfo(" + sqlite::QuoteIdentifier(table->name) + ")";
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_.handle(), sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr);
  StatementPtr cols(raw);
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    if ((rc = sqlite3_step(cols.get())) != SQLITE_ROW) break;
    const auto* name = reinterpret_cast<const char*>(sqlite3_column_text(cols.get(), 1));
    const int pk = sqlite3_column_int(cols.get(), 5);
    table->columns.emplace_back(name == nullptr ? "" : name);
    table->pk.push_back(static_cast<unsigned char>(pk));
    table->has_pk = table->has_pk || pk > 0;
    table->hidden_columns = table->hidden_columns || sqlite3_column_int(cols.get(), 6) != 0;
  }
  if (rc != SQLITE_DONE) {
    error_ = Status::IoError("table information of '" + table->name + "': " + sqlite::ErrorText(db_.handle(), rc));
    return nullptr;
  }
  return tables_.emplace(table->name, std::move(table)).first->second.get();
}

void ChangesetRecorder::Record(int op, const char* table_name) {
  if (!error_.ok()) return;
  Table* table = Lookup(table_name);
  if (table == nullptr || !table->has_pk) return;
  if (table->hidden_columns || sqlite3_preupdate_count(db_.handle()) != static_cast<int>(table->columns.size())) {
    error_ = Status::InvalidArgument("table '" + table->name + "' has generated or hidden columns");
    return;
  }
  if (op == SQLITE_INSERT) {
    Touch(*table, true, false);
  } else {
    Touch(*table, false, true);
    if (op == SQLITE_UPDATE) Touch(*table, true, false);  // the primary key may have changed
  }
}

void ChangesetRecorder::Touch(Table& table, bool from_new, bool existed) {
  sqlite3* db = db_.handle();
  const bool indirect = sqlite3_preupdate_depth(db) > 0;
  auto value = [&](int i) {
    sqlite3_value* v = nullptr;
    (from_new ? sqlite3_preupdate_new : sqlite3_preupdate_old)(db, i, &v);
    return v;
  };
  scratch_.clear();
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    if (table.pk[i] == 0) continue;
    sqlite3_value* v = value(static_cast<int>(i));
    if (v == nullptr || sqlite3_value_type(v) == SQLITE_NULL) return;
    Encode(&scratch_, v);
  }
  auto [it, inserted] = table.index.try_emplace(scratch_, table.rows.size());
  if (!inserted) {
    if (!indirect) table.rows[it->second].second.indirect = false;
    return;
  }
  Row row;
  row.existed = existed;
  row.indirect = indirect;
  if (existed) {
    for (std::size_t i = 0; i < table.columns.size(); ++i) Encode(&row.old, value(static_cast<int>(i)));
  }
  table.rows.emplace_back(scratch_, std::move(row));
  if (!table.changed) {
    table.changed = true;
    order_.push_back(&table);
  }
}

Result<std::string> ChangesetRecorder::Changeset() {
  if (!error_.ok()) return error_;
  sqlite3* db = db_.handle();
  std::string out;
  std::string old_record;
  std::string new_record;
  for (Table* table : order_) {
    if (!table->select) {
      std::string sql = "SELECT ";
      for (std::size_t i = 0; i < table->columns.size(); ++i)
        sql += (i == 0 ? "" : ", ") + sqlite::QuoteIdentifier(table->columns[i]);
      sql += " FROM main." + sqlite::QuoteIdentifier(table->name) + " WHERE ";
      int k = 0;
      for (std::size_t i = 0; i < table->columns.size(); ++i) {
        if (table->pk[i] == 0) continue;
        sql += (k == 0 ? "" : " AND ") + sqlite::QuoteIdentifier(table->columns[i]) + " IS ?" + std::to_string(k + 1);
        ++k;
      }
      sqlite3_stmt* raw = nullptr;
      int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw,
                                  nullptr);
      if (rc != SQLITE_OK) return Status::IoError("prepare " + sql + ": " + sqlite::ErrorText(db, rc));
      table->select.reset(raw);
    }
    sqlite3_stmt* select = table->select.get();
    const int ncol = static_cast<int>(table->columns.size());

    const std::size_t header_at = out.size();
    out.push_back('T');
    PutVarint(&out, table->columns.size());
    out.append(reinterpret_cast<const char*>(table->pk.data()), table->pk.size());
    out.append(table->name);
    out.push_back('\0');
    const std::size_t body_at = out.size();

    for (const auto& [key, row] : table->rows) {
      const auto* p = reinterpret_cast<const unsigned char*>(key.data());
      for (int k = 1; p < reinterpret_cast<const unsigned char*>(key.data()) + key.size(); ++k) {
        const Encoded e = Decode(p);
        Bind(select, k, e);
        p += e.size;
      }
      const int step = sqlite3_step(select);
      if (step != SQLITE_ROW && step != SQLITE_DONE) {
        const int rc = sqlite3_reset(select);
        return Status::IoError("read back a changed row of '" + table->name + "': " + sqlite::ErrorText(db, rc));
      }
      const bool present = step == SQLITE_ROW;
      if (present && !row.existed) {
        out.push_back(SQLITE_INSERT);
        out.push_back(row.indirect ? 1 : 0);
        for (int i = 0; i < ncol; ++i) Encode(&out, sqlite3_column_value(select, i));
      } else if (present) {
        old_record.clear();
        new_record.clear();
        bool noop = true;
        const auto* q = reinterpret_cast<const unsigned char*>(row.old.data());
        for (int i = 0; i < ncol; ++i) {
          const Encoded old = Decode(q);
          const bool changed = Changed(old, select, i);
          noop = noop && !changed;
          if (changed || table->pk[i] != 0) {
            old_record.append(reinterpret_cast<const char*>(q), old.size);
          } else {
            old_record.push_back(0);
          }
          if (changed) {
            Encode(&new_record, sqlite3_column_value(select, i));
          } else {
            new_record.push_back(0);
          }
          q += old.size;
        }
        if (!noop) {
          out.push_back(SQLITE_UPDATE);
          out.push_back(row.indirect ? 1 : 0);
          out += old_record;
          out += new_record;
        }
      } else if (row.existed) {
        out.push_back(SQLITE_DELETE);
        out.push_back(row.indirect ? 1 : 0);
        out += row.old;
      }
      sqlite3_reset(select);
    }
    sqlite3_clear_bindings(select);
    if (out.size() == body_at) out.resize(header_at);
  }
  return out;
}

}  // namespace commitd::participant
