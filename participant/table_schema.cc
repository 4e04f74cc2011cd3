#include "participant/table_schema.h"

#include <algorithm>
#include <utility>

namespace commitd::participant {
namespace {

Collation CollationNamed(const std::string& name) {
  if (sqlite3_stricmp(name.c_str(), "NOCASE") == 0) return Collation::kNocase;
  if (sqlite3_stricmp(name.c_str(), "RTRIM") == 0) return Collation::kRtrim;
  return Collation::kBinary;
}

}  // namespace

Result<int64_t> SchemaVersion(sqlite::Database& db) {
  Status error;
  sqlite::Statement* stmt = db.Prepare("PRAGMA main.schema_version", &error);
  if (stmt == nullptr) return error;
  if (!stmt->Step()) return stmt->status().ok() ? Status::Internal("schema_version: no row") : stmt->status();
  int64_t version = stmt->Int(0);
  stmt->Reset();
  return version;
}


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

const TableSchema* TableSchemaCache::Find(const std::string& name, int64_t schema_version) {
  auto it = tables_.find(name);
  if (it != tables_.end() && it->second->schema_version == schema_version) return it->second.get();
  auto schema = std::make_unique<TableSchema>();
  if (!LoadTableSchema(db_, name, schema.get()).ok()) {
    tables_.erase(name);
    return nullptr;
  }
  schema->schema_version = schema_version;
  const TableSchema* result = schema.get();
  tables_[name] = std::move(schema);
  return result;
}

}  // namespace commitd::participant
