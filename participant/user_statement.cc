#include "participant/user_statement.h"

#include <cstring>
#include <exception>
#include <limits>
#include <utility>

#include "common/hex.h"
#include "participant/sql_sandbox.h"

namespace commitd::participant {
namespace {

using nlohmann::json;

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
      return Hex(sqlite3_column_blob(stmt, column), static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
    }
    default:
      return nullptr;
  }
}

}  // namespace

std::string InterruptedReason(int64_t timeout_ms) {
  return "the statement ran longer than " + std::to_string(timeout_ms) +
         " ms (sql_statement_timeout_ms) and was interrupted";
}

std::string RunUserStatement(sqlite::Database& db, const UserStatement& statement, StatementBudget* budget,
                             json* rows, std::size_t* row_count, int64_t* changes) {
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
  StatementDeadline deadline(db.handle(), budget->timeout_ms);
  for (;;) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      std::string why = !refusal.empty() ? refusal : std::string(sqlite3_errmsg(db.handle()));
      if (rc == SQLITE_INTERRUPT && deadline.expired()) {
        budget->interrupted = true;
        why = InterruptedReason(budget->timeout_ms);
      }
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

namespace {

// What a C++ procedure sees; lives for one call on the storage thread.
class CallContext final : public ProcedureContext {
 public:
  CallContext(sqlite::Database& db, const std::string& txid, const json& args, StatementBudget* budget, json* rows,
              std::size_t* row_count)
      : db_(db), txid_(txid), args_(args), budget_(budget), rows_(rows), row_count_(row_count) {}

  const std::string& txid() const override { return txid_; }
  const json& args() const override { return args_; }
  sqlite3* db() override { return db_.handle(); }
  void AddRow(json row) override { rows_->push_back(std::move(row)); }

  Result<StatementResult> Run(const std::string& sql, const json& params) override {
    static const std::string kLabel = "SQL";
    StatementResult out;
    UserStatement statement{&sql, kLabel, std::nullopt,
                            [&](sqlite3_stmt* s) { return BindNamed(s, params, txid_); }};
    std::string why = RunUserStatement(db_, statement, budget_, &out.rows, row_count_, &out.changes);
    if (why.empty()) return out;
    if (why.rfind(kLabel + ": ", 0) == 0) why.erase(0, kLabel.size() + 2);
    return Status::InvalidArgument(std::move(why));
  }

 private:
  sqlite::Database& db_;
  const std::string& txid_;
  const json& args_;
  StatementBudget* budget_;
  json* rows_;
  std::size_t* row_count_;
};

}  // namespace

std::string RunCallable(sqlite::Database& db, const Procedure& proc, const json& args, const std::string& txid,
                        StatementBudget* budget, json* rows, std::size_t* row_count) {
  const std::string label = "procedure '" + proc.name + "'";
  std::string refusal;
  UserSqlScope scope(&refusal);
  CallContext context(db, txid, args, budget, rows, row_count);
  Status status;
  std::string thrown;  // why the callable threw, if it did
  {
    StatementDeadline deadline(db.handle(), budget->timeout_ms);
    try {
      status = proc.callable(context);
    } catch (const std::exception& e) {
      thrown = label + " threw: " + e.what();
    } catch (...) {
      thrown = label + " threw an exception";
    }
    if (deadline.expired()) budget->interrupted = true;
  }
  // An interrupted statement is the reason, whatever the callable made of it.
  if (budget->interrupted) return label + ": " + InterruptedReason(budget->timeout_ms);
  if (!thrown.empty()) return thrown;
  if (!status.ok()) return label + ": " + status.message();
  if (!refusal.empty()) return label + ": " + refusal;
  if (!db.InTransaction()) return label + ": the enclosing transaction was rolled back";
  return {};
}

}  // namespace commitd::participant
