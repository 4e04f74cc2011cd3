// The SQL sandbox at the resource manager: functions outside the allow-list,
// ATTACH, reserved tables and introspection tables are refused; a runaway
// statement is interrupted at sql_statement_timeout_ms; a procedure that does
// not match the schema stops Open.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "participant/resource_manager.h"
#include "participant/user_statement.h"

namespace commitd::participant {
namespace {

using nlohmann::json;

constexpr char kSchema[] = R"sql(
CREATE TABLE accounts(id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK(balance >= 0));
CREATE TABLE things(k INTEGER PRIMARY KEY, v);
INSERT INTO accounts VALUES('alice', 100), ('bob', 50);
)sql";

constexpr char kRunaway[] =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c";
constexpr char kRunawayWrite[] =
    "INSERT INTO things(k) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";

constexpr char kProcedures[] = R"json({ "procedures": {
  "debit": {"sql": "UPDATE accounts SET balance = balance - :amount WHERE id = :account AND balance >= :amount",
            "expect_changes": 1},
  "leak":  {"sql": "SELECT hex(fts3_tokenizer('simple')) AS p"},
  "spin":  {"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c"}
} })json";

constexpr int64_t kTimeoutMs = 100;

wire::Op Proc(const std::string& name, json args = json::object()) {
  wire::Op op;
  op.procedure = name;
  op.args = std::move(args);
  return op;
}

wire::Op Sql(const std::string& sql) {
  wire::Op op;
  op.sql = sql;
  op.params = json::array();
  return op;
}

wire::Op Debit() { return Proc("debit", {{"account", "alice"}, {"amount", 1}}); }

class Dir {
 public:
  Dir() {
    char pattern[] = "/tmp/resource_manager_sandbox_test.XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~Dir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

std::unique_ptr<sqlite::Database> OpenDb(const std::string& path, const char* schema) {
  auto db = sqlite::Database::Open(path);
  REQUIRE(db.ok());
  if (schema != nullptr) REQUIRE((*db)->Exec(schema).ok());
  return std::move(db).value();
}

class Fixture {
 public:
  explicit Fixture(Procedures procedures = Parsed(kProcedures), int64_t timeout_ms = kTimeoutMs)
      : db_(OpenDb(dir_.File("bank.db"), kSchema)) {
    ResourceManagerOptions options;
    options.allow_raw_sql = true;
    options.sql_statement_timeout_ms = timeout_ms;
    auto rm = ResourceManager::Open(*db_, std::move(procedures), options);
    REQUIRE(rm.ok());
    rm_ = std::move(rm).value();
  }

  static Procedures Parsed(const char* text) {
    auto procs = Procedures::Parse(text);
    REQUIRE(procs.ok());
    return std::move(procs).value();
  }

  sqlite::Database& db() { return *db_; }
  ResourceManager& rm() { return *rm_; }

  // Execute inside a batch transaction, as the storage thread does. The
  // transaction may be gone afterwards (an interrupted write rolls it back).
  ExecutionResult Execute(const std::string& txid, const std::vector<wire::Op>& ops) {
    REQUIRE(db_->Begin().ok());
    ExecutionResult result = rm_->Execute(txid, ops);
    if (db_->InTransaction()) REQUIRE(db_->Commit().ok());
    return result;
  }

  int64_t Count(const std::string& table) {
    sqlite::Statement* stmt = db_->Prepare("SELECT count(*) FROM " + table);
    REQUIRE(stmt != nullptr);
    REQUIRE(stmt->Step());
    int64_t n = stmt->Int(0);
    stmt->Reset();
    return n;
  }

 private:
  Dir dir_;
  std::unique_ptr<sqlite::Database> db_;
  std::unique_ptr<ResourceManager> rm_;
};

TEST_CASE("SQL functions outside the allow-list are refused in raw SQL and procedures") {
  Fixture f;
  struct Case {
    const char* sql;
    const char* function;
  };
  for (const Case& c : {Case{"SELECT hex(fts3_tokenizer('simple')) AS p", "fts3_tokenizer"},
                        Case{"SELECT fts3_tokenizer('simple', x'0000000000000000')", "fts3_tokenizer"},
                        Case{"SELECT load_extension('/tmp/nothing.so')", "load_extension"},
                        Case{"SELECT sqlite_compileoption_get(0)", "sqlite_compileoption_get"},
                        Case{"UPDATE accounts SET balance = length(load_extension('x')) WHERE id = 'bob'",
                             "load_extension"}}) {
    ExecutionResult r = f.Execute("tx", {Sql(c.sql)});
    CHECK_FALSE(r.ok);
    CHECK_MESSAGE(r.reason == "ops[0]: SQL function '" + std::string(c.function) + "' is not allowed in ops", c.sql);
  }
  ExecutionResult leak = f.Execute("tx", {Proc("leak")});
  CHECK(leak.reason == "procedure 'leak': SQL function 'fts3_tokenizer' is not allowed in ops");

  // Functions on the allow-list still work, and the agent's own statements are not sandboxed.
  ExecutionResult allowed = f.Execute(
      "tx", {Sql("SELECT abs(-2) AS a, upper('x') AS u, json_extract('{\"k\": 3}', '$.k') AS j, "
                 "'{\"k\": 4}' ->> 'k' AS arrow, round(pi(), 2) AS p, count(*) AS n, date('2026-01-02') AS d "
                 "FROM accounts")});
  REQUIRE(allowed.ok);
  CHECK(allowed.results == json::parse(
                               R"([[{"a": 2, "u": "X", "j": 3, "arrow": 4, "p": 3.14, "n": 2, "d": "2026-01-02"}]])"));
  CHECK(f.Count("accounts") == 2);
}

TEST_CASE("ATTACH, the _commitd_ tables, the schema table and page introspection are refused") {
  Fixture f;
  Dir other;
  struct Case {
    std::string sql;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"ATTACH '" + other.File("other.db") + "' AS other", "ATTACH and DETACH are not allowed in ops"},
      {"INSERT INTO _commitd_prepared(txid, protocol, state, changeset, lock_keys, coordinator, participants, "
       "created_ms, deadline_ms) VALUES('forged', '2pc', 'prepared', x'', '[]', 'http://x', '[]', 0, 0)",
       "table '_commitd_prepared' is reserved"},
      {"UPDATE _commitd_prepared SET state = 'precommitted'", "table '_commitd_prepared' is reserved"},
      {"DELETE FROM _commitd_finished", "table '_commitd_finished' is reserved"},
      {"UPDATE sqlite_master SET sql = 'x'", "table sqlite_master may not be modified"},  // SQLite's own refusal
      {"PRAGMA writable_schema = 1", "PRAGMA statements are not allowed in ops"},
      // Eponymous virtual tables (table-valued functions) announce themselves
      // with a write to the schema table before their columns are read.
      {"SELECT * FROM dbstat", "schema changes are not allowed in ops"},
      {"SELECT sql FROM sqlite_stmt", "schema changes are not allowed in ops"},
      {"SELECT value FROM json_each('[1]')", "schema changes are not allowed in ops"},
  };
  for (const Case& c : cases) {
    ExecutionResult r = f.Execute("tx", {Sql(c.sql)});
    CHECK_FALSE(r.ok);
    CHECK_MESSAGE(r.reason == "ops[0]: " + c.reason, c.sql);
  }
  CHECK(f.Count("_commitd_prepared") == 0);
  CHECK_FALSE(std::filesystem::exists(other.File("other.db")));
}

TEST_CASE("a runaway statement is interrupted at sql_statement_timeout_ms and the next transaction runs") {
  Fixture f;
  const std::string interrupted = InterruptedReason(kTimeoutMs);
  CHECK(interrupted == "the statement ran longer than 100 ms (sql_statement_timeout_ms) and was interrupted");

  SUBCASE("a read") {
    auto start = std::chrono::steady_clock::now();
    ExecutionResult r = f.Execute("runaway", {Debit(), Sql(kRunaway)});
    auto took = std::chrono::steady_clock::now() - start;
    CHECK_FALSE(r.ok);
    CHECK(r.interrupted);
    CHECK(r.reason == "ops[1]: " + interrupted);
    CHECK(r.changeset.empty());
    CHECK(took >= std::chrono::milliseconds(kTimeoutMs));
    CHECK(took < std::chrono::seconds(5));
  }
  SUBCASE("a procedure") {
    ExecutionResult r = f.Execute("runaway", {Proc("spin")});
    CHECK(r.interrupted);
    CHECK(r.reason == "procedure 'spin': " + interrupted);
  }
  SUBCASE("a write: SQLite rolls the whole transaction back") {
    ExecutionResult r = f.Execute("runaway", {Sql(kRunawayWrite)});
    CHECK(r.interrupted);
    CHECK(r.reason == "ops[0]: " + interrupted + " (the statement rolled back the whole transaction)");
    CHECK_FALSE(f.db().InTransaction());
    CHECK(f.Count("things") == 0);
  }

  ExecutionResult next = f.Execute("next", {Debit()});
  CHECK(next.ok);
  CHECK_FALSE(next.interrupted);
  CHECK(next.lock_keys == std::vector<std::string>{"accounts|pk|t5:alice"});
}

TEST_CASE("each statement has its own timeout: statements that each fit pass together") {
  constexpr int64_t kTimeout = 300;
  Fixture f(Fixture::Parsed(kProcedures), kTimeout);
  // Each between an eighth and a quarter of the timeout (measured below), so
  // a busy machine may slow one down fourfold; ten in a row exceed it.
  const std::string bounded =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) SELECT count(*) AS n FROM c";
  int64_t rows = 1000;
  for (;;) {
    wire::Op op = Sql(bounded);
    op.params = json::array({rows});
    auto start = std::chrono::steady_clock::now();
    ExecutionResult r = f.Execute("probe", {op});
    REQUIRE(r.ok);
    if (std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(kTimeout / 8)) break;
    rows *= 2;
  }
  // Ten must take longer than the timeout together. If the machine got
  // faster since the probe (its load changed), they did not: each is made
  // twice as long and the ten run again; every run must pass.
  bool longer_than_timeout = false;
  for (int attempt = 0; attempt < 6 && !longer_than_timeout; ++attempt, rows *= 2) {
    wire::Op op = Sql(bounded);
    op.params = json::array({rows});
    auto start = std::chrono::steady_clock::now();
    ExecutionResult r = f.Execute("ten-" + std::to_string(attempt), std::vector<wire::Op>(10, op));
    REQUIRE_MESSAGE(r.ok, r.reason);
    longer_than_timeout = std::chrono::steady_clock::now() - start > std::chrono::milliseconds(kTimeout);
  }
  CHECK(longer_than_timeout);
}

TEST_CASE("C++ procedures: a runaway statement through Run() or db() is interrupted, and not run again in Prepare") {
  Procedures procedures = Fixture::Parsed(kProcedures);
  int calls = 0;
  REQUIRE(procedures
              .Add("spin_run",
                   [&](ProcedureContext& ctx) {
                     ++calls;
                     auto r = ctx.Run(kRunaway);
                     return r.ok() ? Status::Ok() : r.status();
                   })
              .ok());
  REQUIRE(procedures
              .Add("spin_direct",
                   [](ProcedureContext& ctx) {
                     sqlite3_stmt* stmt = nullptr;
                     if (sqlite3_prepare_v2(ctx.db(), kRunaway, -1, &stmt, nullptr) != SQLITE_OK) {
                       return Status::Internal("prepare");
                     }
                     while (sqlite3_step(stmt) == SQLITE_ROW) {
                     }
                     sqlite3_finalize(stmt);
                     return Status::Ok();  // ignores the interrupt: still a no
                   })
              .ok());
  Fixture f(std::move(procedures));
  const std::string interrupted = InterruptedReason(kTimeoutMs);

  ExecutionResult direct = f.Execute("direct", {Proc("spin_direct")});
  CHECK(direct.interrupted);
  CHECK(direct.reason == "procedure 'spin_direct': " + interrupted);

  // Scratch, then Durable in a second transaction, as a batch runs them.
  PrepareJob job;
  job.ops = {Proc("spin_run")};
  job.record.txid = "spin";
  job.record.protocol = "2pc";
  job.record.state = "prepared";
  job.record.coordinator = "http://127.0.0.1:7000";
  REQUIRE(f.db().Begin().ok());
  job.Scratch(f.rm());
  REQUIRE(f.db().Rollback().ok());
  REQUIRE(f.db().Begin().ok());
  job.Durable(f.rm());
  REQUIRE(f.db().Commit().ok());
  CHECK(calls == 1);
  CHECK_FALSE(job.result.yes);
  CHECK(job.result.reason == "procedure 'spin_run': " + interrupted);
  CHECK(f.Count("_commitd_prepared") == 0);

  ExecutionResult next = f.Execute("next", {Debit()});
  CHECK(next.ok);
}

TEST_CASE("Open refuses a database that does not match the procedures, naming the procedure and the statement") {
  Dir dir;
  int databases = 0;
  auto open = [&](const char* schema, const char* procedures) {
    auto db = OpenDb(dir.File("db" + std::to_string(++databases) + ".db"), schema);
    return ResourceManager::Open(*db, Fixture::Parsed(procedures), {}).status();
  };
  const char* bank = R"json({"procedures": {
    "debit": {"sql": "UPDATE accounts SET balance = balance - :amount WHERE id = :account"},
    "journal": {"sql": ["SELECT 1", "INSERT INTO journal(txid, account, delta) VALUES(:txid, :account, :delta)"]}
  }})json";

  Status empty = open(nullptr, bank);
  CHECK(empty.code() == StatusCode::kInvalidArgument);
  CHECK(empty.message().find("procedure 'debit', statement 1 of 1 (UPDATE accounts SET balance = balance - "
                             ":amount WHERE id = :account): no such table: accounts") == 0);

  Status no_journal = open("CREATE TABLE accounts(id TEXT PRIMARY KEY, balance INTEGER);", bank);
  CHECK(no_journal.message().find("procedure 'journal', statement 2 of 2 (INSERT INTO journal(txid, account, delta) "
                                  "VALUES(:txid, :account, :delta)): no such table: journal") == 0);

  Status no_column = open(
      "CREATE TABLE accounts(id TEXT PRIMARY KEY, amount INTEGER);"
      "CREATE TABLE journal(txid TEXT, account TEXT, delta INTEGER, PRIMARY KEY(txid, account));",
      bank);
  CHECK(no_column.message().find("procedure 'debit', statement 1 of 1 (UPDATE accounts SET balance = balance - "
                                 ":amount WHERE id = :account): no such column: balance") == 0);

  CHECK(open("CREATE TABLE accounts(id TEXT PRIMARY KEY, balance INTEGER);"
             "CREATE TABLE journal(txid TEXT, account TEXT, delta INTEGER, PRIMARY KEY(txid, account));",
             bank)
            .ok());
}

}  // namespace
}  // namespace commitd::participant
