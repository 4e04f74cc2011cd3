#include "participant/resource_manager.h"

#include <doctest/doctest.h>

#include "common/storage_queue.h"
#include "common/timers.h"
#include "participant/sqlite_store.h"
#include "tests/unit/support/temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace commitd::participant {
namespace {

using nlohmann::json;

constexpr char kSchema[] = R"sql(
CREATE TABLE accounts(id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK(balance >= 0));
CREATE TABLE journal(txid TEXT NOT NULL, account TEXT NOT NULL, delta INTEGER NOT NULL, PRIMARY KEY(txid, account));
CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT);
CREATE TABLE codes(id INTEGER PRIMARY KEY, code TEXT COLLATE NOCASE UNIQUE);
CREATE TABLE logtable(msg TEXT);
CREATE TABLE things(k PRIMARY KEY, v);
CREATE TABLE slots(id INTEGER PRIMARY KEY, room TEXT NOT NULL, hour INTEGER NOT NULL, who TEXT,
                   CONSTRAINT one_booking UNIQUE(room, hour));
INSERT INTO slots VALUES(1, 'blue', 9, 'ann');
CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT);
CREATE TABLE orders(id TEXT PRIMARY KEY, account TEXT NOT NULL REFERENCES accounts(id));
INSERT INTO accounts VALUES('alice', 100), ('bob', 50);
INSERT INTO users VALUES(1, 'a@x.org', 'Ann');
)sql";

constexpr char kProcedures[] = R"json({ "procedures": {
  "debit":    {"sql": "UPDATE accounts SET balance = balance - :amount WHERE id = :account AND balance >= :amount",
               "expect_changes": 1},
  "withdraw": {"sql": "UPDATE accounts SET balance = balance - :amount WHERE id = :account"},
  "credit":   {"sql": "UPDATE accounts SET balance = balance + :amount WHERE id = :account", "expect_changes": 1},
  "journal":  {"sql": "INSERT INTO journal(txid, account, delta) VALUES(:txid, :account, :delta)"},
  "balance":  {"sql": "SELECT balance FROM accounts WHERE id = :account"},
  "transfer": {"sql": ["UPDATE accounts SET balance = balance - :amount WHERE id = @from",
                       "UPDATE accounts SET balance = balance + :amount WHERE id = $to"], "expect_changes": 1},
  "add_user": {"sql": "INSERT INTO users(id, email, name) VALUES(:id, :email, :name)"},
  "set_email": {"sql": "UPDATE users SET email = :email WHERE id = :id", "expect_changes": 1},
  "rename":   {"sql": "UPDATE users SET name = :name WHERE id = :id", "expect_changes": 1},
  "add_code": {"sql": "INSERT INTO codes(id, code) VALUES(:id, :code)"},
  "move_slot": {"sql": "UPDATE slots SET hour = :hour WHERE id = :id", "expect_changes": 1},
  "log":      {"sql": "INSERT INTO logtable(msg) VALUES(:msg)"},
  "put":      {"sql": "INSERT INTO things(k, v) VALUES(:k, :v)"},
  "order":    {"sql": "INSERT INTO orders(id, account) VALUES(:id, :account)"},
  "two_in_one": {"sql": "UPDATE accounts SET balance = 1; UPDATE accounts SET balance = 2"},
  "sneaky":   {"sql": "DELETE FROM _commitd_finished"},
  "escape":   {"sql": "COMMIT"} } })json";

wire::Op Proc(const std::string& name, json args = json::object()) {
  wire::Op op;
  op.procedure = name;
  op.args = std::move(args);
  return op;
}

wire::Op Sql(const std::string& sql, json params = json::array()) {
  wire::Op op;
  op.sql = sql;
  op.params = std::move(params);
  return op;
}

class Fixture {
 public:
  explicit Fixture(bool allow_raw_sql = false) : options_{allow_raw_sql} {
    char pattern[] = "/tmp/resource_manager_test.XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    dir_ = pattern;
    path_ = (dir_ / "bank.db").string();
    OpenDb();
    REQUIRE(db_->Exec(kSchema).ok());
    OpenRm();
  }
  ~Fixture() {
    rm_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Reopen() {
    rm_.reset();
    db_.reset();
    OpenDb();
    OpenRm();
  }

  sqlite::Database& db() { return *db_; }
  ResourceManager& rm() { return *rm_; }

  int64_t Balance(const std::string& account) {
    sqlite::Statement* stmt = db_->Prepare("SELECT balance FROM accounts WHERE id = ?1");
    REQUIRE(stmt != nullptr);
    stmt->Bind(1, account);
    REQUIRE(stmt->Step());
    int64_t balance = stmt->Int(0);
    stmt->Reset();
    return balance;
  }

  int64_t Count(const std::string& table) {
    sqlite::Statement* stmt = db_->Prepare("SELECT count(*) FROM " + table);
    REQUIRE(stmt != nullptr);
    REQUIRE(stmt->Step());
    int64_t n = stmt->Int(0);
    stmt->Reset();
    return n;
  }

  // Execute inside a batch transaction, as the storage thread does.
  ExecutionResult Execute(const std::string& txid, const std::vector<wire::Op>& ops) {
    sqlite::Transaction tx(*db_);
    REQUIRE(tx.status().ok());
    ExecutionResult result = rm_->Execute(txid, ops);
    CHECK(db_->InTransaction());
    REQUIRE(tx.Commit().ok());
    return result;
  }

  Status Persist(const std::string& txid, const ExecutionResult& executed) {
    PreparedRecord record;
    record.txid = txid;
    record.protocol = "2pc";
    record.state = "prepared";
    record.changeset = executed.changeset;
    record.lock_keys = executed.lock_keys;
    record.coordinator = "http://127.0.0.1:7000";
    sqlite::Transaction tx(*db_);
    Status s = rm_->PersistPrepared(record);
    if (!s.ok()) return s;
    return tx.Commit();
  }

  Status Commit(const std::string& txid) {
    sqlite::Transaction tx(*db_);
    Status s = rm_->ApplyCommit(txid);
    CHECK(db_->InTransaction());
    Status c = tx.Commit();
    return s.ok() ? c : s;
  }

 private:
  void OpenDb() {
    auto db = sqlite::Database::Open(path_);
    REQUIRE(db.ok());
    db_ = std::move(db).value();
  }
  void OpenRm() {
    auto procs = Procedures::Parse(kProcedures);
    REQUIRE(procs.ok());
    auto rm = ResourceManager::Open(*db_, std::move(procs).value(), options_);
    REQUIRE(rm.ok());
    rm_ = std::move(rm).value();
  }

  ResourceManagerOptions options_;
  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<sqlite::Database> db_;
  std::unique_ptr<ResourceManager> rm_;
};

using Keys = std::vector<std::string>;

TEST_CASE("Execute returns a changeset and lock keys and leaves the database unchanged") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("debit", {{"account", "alice"}, {"amount", 30}}),
                                        Proc("journal", {{"account", "alice"}, {"delta", -30}})});
  REQUIRE_MESSAGE(r.ok, r.reason);
  CHECK_FALSE(r.changeset.empty());
  CHECK(r.lock_keys == Keys{"accounts|pk|t5:alice", "journal|pk|t3:tx1t5:alice"});
  CHECK(r.results == json::parse("[[], []]"));
  CHECK(f.Balance("alice") == 100);
  CHECK(f.Count("journal") == 0);
}

TEST_CASE("ApplyCommit applies the changeset and deletes the record") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("debit", {{"account", "alice"}, {"amount", 30}}),
                                        Proc("credit", {{"account", "bob"}, {"amount", 30}}),
                                        Proc("journal", {{"account", "alice"}, {"delta", -30}})});
  REQUIRE_MESSAGE(r.ok, r.reason);
  REQUIRE(f.Persist("tx1", r).ok());
  CHECK(f.Balance("alice") == 100);

  REQUIRE(f.Commit("tx1").ok());
  CHECK(f.Balance("alice") == 70);
  CHECK(f.Balance("bob") == 80);
  CHECK(f.Count("journal") == 1);
  auto records = f.rm().LoadPrepared();
  REQUIRE(records.ok());
  CHECK(records->empty());

  Status again = f.Commit("tx1");
  CHECK(again.code() == StatusCode::kNotFound);
}

TEST_CASE("a multi-statement procedure binds @ and $ parameters and checks every statement") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("transfer", {{"from", "alice"}, {"to", "bob"}, {"amount", 10}})});
  REQUIRE_MESSAGE(r.ok, r.reason);
  CHECK(r.lock_keys == Keys{"accounts|pk|t3:bob", "accounts|pk|t5:alice"});

  ExecutionResult missing = f.Execute("tx2", {Proc("transfer", {{"from", "alice"}, {"to", "carol"}, {"amount", 10}})});
  CHECK_FALSE(missing.ok);
  CHECK(missing.reason == "procedure 'transfer' expected 1 changed row, got 0");
  CHECK(f.Balance("alice") == 100);
}

TEST_CASE("constraint failures, expect_changes and missing args vote no with a reason") {
  Fixture f;
  ExecutionResult overdraft = f.Execute("tx1", {Proc("withdraw", {{"account", "alice"}, {"amount", 1000}})});
  CHECK_FALSE(overdraft.ok);
  CHECK(overdraft.reason == "procedure 'withdraw': CHECK constraint failed: balance >= 0");
  CHECK(overdraft.changeset.empty());
  CHECK(overdraft.lock_keys.empty());

  ExecutionResult short_funds = f.Execute("tx2", {Proc("debit", {{"account", "alice"}, {"amount", 1000}})});
  CHECK_FALSE(short_funds.ok);
  CHECK(short_funds.reason == "procedure 'debit' expected 1 changed row, got 0");

  ExecutionResult missing = f.Execute("tx3", {Proc("debit", {{"account", "alice"}})});
  CHECK_FALSE(missing.ok);
  CHECK(missing.reason == "procedure 'debit': missing argument 'amount'");

  ExecutionResult duplicate = f.Execute("tx4", {Proc("add_user", {{"id", 1}, {"email", "z@x.org"}, {"name", "Z"}})});
  CHECK_FALSE(duplicate.ok);
  CHECK(duplicate.reason == "procedure 'add_user': UNIQUE constraint failed: users.id");

  // A failing op after a successful one undoes both.
  ExecutionResult half = f.Execute("tx5", {Proc("debit", {{"account", "alice"}, {"amount", 10}}),
                                           Proc("withdraw", {{"account", "bob"}, {"amount", 1000}})});
  CHECK_FALSE(half.ok);
  CHECK(f.Balance("alice") == 100);
  CHECK(f.Balance("bob") == 50);
}

TEST_CASE("unknown procedures and raw SQL are refused by Validate and Execute") {
  Fixture f;
  Status unknown = f.rm().Validate({Proc("nope")});
  CHECK(unknown.code() == StatusCode::kInvalidArgument);
  CHECK(unknown.message() == "unknown procedure 'nope'");
  ExecutionResult r = f.Execute("tx1", {Proc("nope")});
  CHECK_FALSE(r.ok);
  CHECK(r.reason == "unknown procedure 'nope'");

  std::vector<wire::Op> raw = {Sql("UPDATE accounts SET balance = ?1 WHERE id = ?2", {1, "alice"})};
  CHECK(f.rm().Validate(raw).message() == "raw SQL is not allowed on this agent");
  ExecutionResult refused = f.Execute("tx2", raw);
  CHECK_FALSE(refused.ok);
  CHECK(refused.reason == "raw SQL is not allowed on this agent");
  CHECK(f.Balance("alice") == 100);
  CHECK(f.rm().Validate({Proc("debit")}).ok());
}

TEST_CASE("raw SQL binds positional params when allowed") {
  Fixture f(/*allow_raw_sql=*/true);
  ExecutionResult r = f.Execute("tx1", {Sql("UPDATE accounts SET balance = balance + ?1 WHERE id = ?2", {5, "bob"}),
                                        Sql("INSERT INTO journal VALUES(:txid, ?, ?)", {"bob", 5}),
                                        Sql("SELECT balance, id FROM accounts WHERE id = ?", {"bob"})});
  REQUIRE_MESSAGE(r.ok, r.reason);
  CHECK(r.lock_keys == Keys{"accounts|pk|t3:bob", "journal|pk|t3:tx1t3:bob"});
  CHECK(r.results == json::parse(R"([[], [], [{"balance": 55, "id": "bob"}]])"));
  CHECK(f.Balance("bob") == 50);

  ExecutionResult too_few = f.Execute("tx2", {Sql("UPDATE accounts SET balance = ?1 WHERE id = ?2", {1})});
  CHECK_FALSE(too_few.ok);
  CHECK(too_few.reason == "ops[0]: parameter ?2 has no value (1 params given)");
  ExecutionResult too_many = f.Execute("tx3", {Sql("SELECT ?1", {1, 2})});
  CHECK_FALSE(too_many.ok);
  CHECK(too_many.reason == "ops[0]: 2 params given, the statement takes 1");

  ExecutionResult duplicate = f.Execute("tx4", {Sql("INSERT INTO accounts VALUES(?1, ?2)", {"alice", 1})});
  CHECK_FALSE(duplicate.ok);
  CHECK(duplicate.reason == "ops[0]: UNIQUE constraint failed: accounts.id");

  ExecutionResult autoinc = f.Execute("tx6", {Sql("INSERT INTO events(what) VALUES(?)", {"x"})});
  REQUIRE_MESSAGE(autoinc.ok, autoinc.reason);
  CHECK(autoinc.lock_keys == Keys{"events|pk|i1;"});
  ExecutionResult sequence = f.Execute("tx7", {Sql("DELETE FROM sqlite_sequence")});
  CHECK(sequence.reason == "ops[0]: table 'sqlite_sequence' is internal to SQLite");
  ExecutionResult info = f.Execute("tx8", {Sql("SELECT name FROM pragma_table_info('accounts') ORDER BY cid")});
  REQUIRE_MESSAGE(info.ok, info.reason);
  CHECK(info.results == json::parse(R"([[{"name": "id"}, {"name": "balance"}]])"));

  ExecutionResult syntax = f.Execute("tx5", {Sql("UPDATE nowhere SET x = 1")});
  CHECK_FALSE(syntax.ok);
  CHECK(syntax.reason == "ops[0]: no such table: nowhere");
}

TEST_CASE("JSON argument types bind as SQLite types") {
  Fixture f(/*allow_raw_sql=*/true);
  ExecutionResult r = f.Execute(
      "tx1", {Sql("SELECT typeof(?1) AS a, typeof(?2) AS b, typeof(?3) AS c, typeof(?4) AS d, typeof(?5) AS e, ?4 AS v",
                  {"s", 7, 1.5, true, nullptr})});
  REQUIRE_MESSAGE(r.ok, r.reason);
  CHECK(r.results ==
        json::parse(R"([[{"a": "text", "b": "integer", "c": "real", "d": "integer", "e": "null", "v": 1}]])"));
  CHECK(r.changeset.empty());
  CHECK(r.lock_keys.empty());
}

TEST_CASE("SELECT rows come back as objects, one array per op, seeing earlier ops") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("balance", {{"account", "alice"}}),
                                        Proc("debit", {{"account", "alice"}, {"amount", 30}}),
                                        Proc("balance", {{"account", "alice"}}),
                                        Proc("balance", {{"account", "nobody"}})});
  REQUIRE_MESSAGE(r.ok, r.reason);
  CHECK(r.results == json::parse(R"([[{"balance": 100}], [], [{"balance": 70}], []])"));
  CHECK(r.lock_keys == Keys{"accounts|pk|t5:alice"});
}

TEST_CASE("writes to a table without a PRIMARY KEY are refused") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("debit", {{"account", "alice"}, {"amount", 1}}),
                                        Proc("log", {{"msg", "hello"}})});
  CHECK_FALSE(r.ok);
  CHECK(r.reason == "table 'logtable' has no PRIMARY KEY; commitd cannot lock or replay writes to it");
  CHECK(f.Count("logtable") == 0);
  CHECK(f.Balance("alice") == 100);
}

TEST_CASE("statements that could escape the savepoint or the session are refused") {
  Fixture f(/*allow_raw_sql=*/true);
  for (const char* sql : {"COMMIT", "ROLLBACK", "RELEASE commitd_execute", "SAVEPOINT x", "BEGIN"}) {
    ExecutionResult r = f.Execute("tx1", {Sql(sql)});
    CHECK_FALSE(r.ok);
    CHECK_MESSAGE(r.reason == "ops[0]: transaction control statements are not allowed in ops", sql);
  }
  ExecutionResult ddl = f.Execute("tx2", {Sql("CREATE TABLE extra(a PRIMARY KEY)")});
  CHECK(ddl.reason == "ops[0]: schema changes are not allowed in ops");
  ExecutionResult pragma = f.Execute("tx3", {Sql("PRAGMA foreign_keys = OFF")});
  CHECK(pragma.reason == "ops[0]: PRAGMA statements are not allowed in ops");
  ExecutionResult attach = f.Execute("tx4", {Sql("ATTACH ':memory:' AS other")});
  CHECK(attach.reason == "ops[0]: ATTACH and DETACH are not allowed in ops");

  REQUIRE(f.Persist("kept", f.Execute("kept", {Proc("debit", {{"account", "alice"}, {"amount", 1}})})).ok());
  ExecutionResult reserved = f.Execute("tx5", {Sql("DELETE FROM _commitd_prepared")});
  CHECK(reserved.reason == "ops[0]: table '_commitd_prepared' is reserved");
  ExecutionResult reserved_proc = f.Execute("tx6", {Proc("sneaky")});
  CHECK(reserved_proc.reason == "procedure 'sneaky': table '_commitd_finished' is reserved");
  ExecutionResult escape = f.Execute("tx7", {Proc("escape")});
  CHECK(escape.reason == "procedure 'escape': transaction control statements are not allowed in ops");
  ExecutionResult two = f.Execute("tx8", {Proc("two_in_one")});
  CHECK(two.reason ==
        "procedure 'two_in_one': more than one SQL statement in one string; use an array of statements");

  auto records = f.rm().LoadPrepared();
  REQUIRE(records.ok());
  CHECK(records->size() == 1);
  CHECK(f.Balance("alice") == 100);
}

TEST_CASE("a failed Execute leaves the batch transaction usable") {
  Fixture f;
  sqlite::Transaction tx(f.db());
  REQUIRE(f.rm().RememberOutcome("before", "committed", 1).ok());
  ExecutionResult r = f.rm().Execute("tx1", {Proc("withdraw", {{"account", "alice"}, {"amount", 1000}})});
  CHECK_FALSE(r.ok);
  REQUIRE(f.rm().RememberOutcome("after", "aborted", 2).ok());
  REQUIRE(tx.Commit().ok());
  auto outcomes = f.rm().LoadOutcomes();
  REQUIRE(outcomes.ok());
  CHECK(*outcomes == std::map<std::string, std::string>{{"after", "aborted"}, {"before", "committed"}});
}

TEST_CASE("Execute works outside a transaction too") {
  Fixture f;
  ExecutionResult r = f.rm().Execute("tx1", {Proc("debit", {{"account", "alice"}, {"amount", 30}})});
  REQUIRE_MESSAGE(r.ok, r.reason);
  CHECK_FALSE(f.db().InTransaction());
  CHECK(f.Balance("alice") == 100);
}

TEST_CASE("UNIQUE indexes add lock keys for old and new values") {
  Fixture f;
  const std::string email = "users|unique:sqlite_autoindex_users_1|";

  ExecutionResult insert = f.Execute("tx1", {Proc("add_user", {{"id", 2}, {"email", "b@x.org"}, {"name", "Bo"}})});
  REQUIRE_MESSAGE(insert.ok, insert.reason);
  CHECK(insert.lock_keys == Keys{"users|pk|i2;", email + "t7:b@x.org"});

  ExecutionResult null_email = f.Execute("tx2", {Proc("add_user", {{"id", 3}, {"email", nullptr}, {"name", "Cy"}})});
  REQUIRE_MESSAGE(null_email.ok, null_email.reason);
  CHECK(null_email.lock_keys == Keys{"users|pk|i3;"});

  ExecutionResult change = f.Execute("tx3", {Proc("set_email", {{"id", 1}, {"email", "c@x.org"}})});
  REQUIRE_MESSAGE(change.ok, change.reason);
  CHECK(change.lock_keys == Keys{"users|pk|i1;", email + "t7:a@x.org", email + "t7:c@x.org"});

  ExecutionResult rename = f.Execute("tx4", {Proc("rename", {{"id", 1}, {"name", "Anna"}})});
  REQUIRE_MESSAGE(rename.ok, rename.reason);
  CHECK(rename.lock_keys == Keys{"users|pk|i1;"});

  ExecutionResult nocase = f.Execute("tx5", {Proc("add_code", {{"id", 1}, {"code", "AbC"}})});
  REQUIRE_MESSAGE(nocase.ok, nocase.reason);
  CHECK(nocase.lock_keys == Keys{"codes|pk|i1;", "codes|unique:sqlite_autoindex_codes_1|t3:abc"});

  // A new index is seen on the next Execute: the schema cache follows schema_version.
  REQUIRE(f.db().Exec("CREATE UNIQUE INDEX users_by_name ON users(name)").ok());
  ExecutionResult renamed = f.Execute("tx6", {Proc("rename", {{"id", 1}, {"name", "Anna"}})});
  REQUIRE_MESSAGE(renamed.ok, renamed.reason);
  CHECK(renamed.lock_keys ==
        Keys{"users|pk|i1;", "users|unique:users_by_name|t3:Ann", "users|unique:users_by_name|t4:Anna"});
}

TEST_CASE("an update of part of a multi-column UNIQUE key reads the unchanged columns from the committed row") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("move_slot", {{"id", 1}, {"hour", 10}})});
  REQUIRE_MESSAGE(r.ok, r.reason);
  const std::string booking = "slots|unique:sqlite_autoindex_slots_1|";
  CHECK(r.lock_keys == Keys{"slots|pk|i1;", booking + "t4:bluei10;", booking + "t4:bluei9;"});
}

TEST_CASE("an integer key and a text key never share a lock") {
  Fixture f;
  ExecutionResult integer = f.Execute("tx1", {Proc("put", {{"k", 1}, {"v", "x"}})});
  ExecutionResult text = f.Execute("tx2", {Proc("put", {{"k", "1"}, {"v", "x"}})});
  ExecutionResult real = f.Execute("tx3", {Proc("put", {{"k", 1.0}, {"v", "x"}})});
  REQUIRE(integer.ok);
  REQUIRE(text.ok);
  REQUIRE(real.ok);
  CHECK(integer.lock_keys == Keys{"things|pk|i1;"});
  CHECK(text.lock_keys == Keys{"things|pk|t1:1"});
  // 1.0 = 1 in SQLite, so they must conflict.
  CHECK(real.lock_keys == integer.lock_keys);
}

TEST_CASE("a child row locks the parent row its foreign key refers to") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("order", {{"id", "o1"}, {"account", "alice"}})});
  REQUIRE_MESSAGE(r.ok, r.reason);
  CHECK(r.lock_keys == Keys{"accounts|pk|t5:alice", "orders|pk|t2:o1"});
}

TEST_CASE("Commit applies, deletes the record, remembers the outcome and frees the keys; a conflict changes nothing but the mark") {
  Fixture f;
  auto prepare = [&](const std::string& txid, std::vector<wire::Op> ops) {
    sqlite::Transaction tx(f.db());
    PreparedRecord record;
    record.txid = txid;
    record.protocol = "2pc";
    record.state = "prepared";
    PrepareResult p = f.rm().Prepare(record, ops, ExecutionResult{});
    REQUIRE(tx.Commit().ok());
    REQUIRE_MESSAGE(p.yes, p.reason);
    REQUIRE(!p.lock_keys.empty());
    return p.lock_keys;
  };
  auto commit = [&](const std::string& txid) {
    sqlite::Transaction tx(f.db());
    Status s = f.rm().Commit(txid, 1'000);
    CHECK(f.db().InTransaction());
    REQUIRE(tx.Commit().ok());
    return s;
  };
  auto outcome = [&](const std::string& txid) {
    auto found = f.rm().FindOutcome(txid);
    REQUIRE(found.ok());
    return *found;
  };
  const std::vector<std::string> t1_keys = prepare("t1", {Proc("debit", {{"account", "alice"}, {"amount", 30}})});
  const std::vector<std::string> t2_keys = prepare("t2", {Proc("credit", {{"account", "bob"}, {"amount", 5}})});

  REQUIRE(commit("t1").ok());
  CHECK(f.Balance("alice") == 70);
  REQUIRE(outcome("t1").has_value());
  CHECK(outcome("t1")->outcome == Outcome::kCommitted);
  CHECK(f.rm().locks().Holder(t1_keys.front()) == std::nullopt);

  REQUIRE(f.db().Exec("UPDATE accounts SET balance = 7 WHERE id = 'bob'").ok());
  Status conflict = commit("t2");
  CHECK(conflict.code() == StatusCode::kConflict);
  CHECK(f.Balance("bob") == 7);
  CHECK(!outcome("t2").has_value());
  CHECK(f.rm().locks().Holder(t2_keys.front()) == std::optional<std::string>("t2"));
  auto records = f.rm().LoadPrepared();
  REQUIRE(records.ok());
  REQUIRE(records->size() == 1);
  CHECK(records->at(0).txid == "t2");
  CHECK(records->at(0).state == "conflict");
  CHECK(records->at(0).last_error == conflict.message());

  // Neither a second commit of t1 (its record is gone) nor its failure leaves anything behind.
  CHECK(commit("t1").code() == StatusCode::kNotFound);
  CHECK(f.Balance("alice") == 70);
  CHECK(outcome("t1")->outcome == Outcome::kCommitted);
}

TEST_CASE("ApplyCommit refuses a changeset whose rows changed behind the agent's back") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("debit", {{"account", "alice"}, {"amount", 30}}),
                                        Proc("credit", {{"account", "bob"}, {"amount", 30}})});
  REQUIRE(r.ok);
  REQUIRE(f.Persist("tx1", r).ok());
  REQUIRE(f.db().Exec("UPDATE accounts SET balance = 99 WHERE id = 'alice'").ok());

  const std::string expected = "changeset conflict on accounts (DATA, pk=('alice')): row changed outside commitd";
  Status s = f.Commit("tx1");
  CHECK(s.code() == StatusCode::kConflict);
  CHECK(s.message() == expected);
  CHECK(f.Balance("alice") == 99);
  CHECK(f.Balance("bob") == 50);

  auto records = f.rm().LoadPrepared();
  REQUIRE(records.ok());
  REQUIRE(records->size() == 1);
  CHECK(records->at(0).state == "conflict");
  CHECK(records->at(0).last_error == expected);
  CHECK(records->at(0).changeset == r.changeset);

  REQUIRE(f.db().Exec("DELETE FROM accounts WHERE id = 'alice'").ok());
  Status gone = f.Commit("tx1");
  CHECK(gone.code() == StatusCode::kConflict);
  CHECK(gone.message() == "changeset conflict on accounts (NOTFOUND, pk=('alice')): row deleted outside commitd");
}

TEST_CASE("ApplyCommit refuses a changeset whose insert collides with a row added behind the agent's back") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("add_user", {{"id", 2}, {"email", "b@x.org"}, {"name", "Bo"}})});
  REQUIRE(r.ok);
  REQUIRE(f.Persist("tx1", r).ok());
  REQUIRE(f.db().Exec("INSERT INTO users VALUES(2, 'q@x.org', 'Q')").ok());
  Status s = f.Commit("tx1");
  CHECK(s.code() == StatusCode::kConflict);
  CHECK(s.message() ==
        "changeset conflict on users (CONFLICT, pk=(2)): a row with this primary key was inserted outside commitd");
  CHECK(f.Count("users") == 2);
}

TEST_CASE("ApplyCommit refuses a changeset whose table changed shape") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("debit", {{"account", "alice"}, {"amount", 30}})});
  REQUIRE(r.ok);
  REQUIRE(f.Persist("tx1", r).ok());
  REQUIRE(f.db().Exec("ALTER TABLE accounts ADD COLUMN note TEXT").ok());
  Status s = f.Commit("tx1");
  CHECK(s.code() == StatusCode::kConflict);
  CHECK(s.message() == "changeset conflict on accounts: the table's columns or primary key changed");
  CHECK(f.Balance("alice") == 100);
}

TEST_CASE("prepared records round-trip, update, discard and survive a reopen") {
  Fixture f;
  PreparedRecord record;
  record.txid = "tx-42";
  record.protocol = "3pc";
  record.state = "prepared";
  record.changeset = std::string("\x12\x00\xff binary", 10);
  record.lock_keys = {"accounts|pk|t5:alice", "accounts|pk|t3:bob"};
  record.coordinator = "http://127.0.0.1:7000";
  record.participants = {{"bank-a", "http://127.0.0.1:7101"}};
  record.created_ms = 1700000000123;
  record.deadline_ms = 1700000005123;
  record.last_error = "coordinator unreachable";
  {
    sqlite::Transaction tx(f.db());
    REQUIRE(f.rm().PersistPrepared(record).ok());
    PreparedRecord other = record;
    other.txid = "tx-43";
    other.created_ms += 1;
    REQUIRE(f.rm().PersistPrepared(other).ok());
    REQUIRE(f.rm().UpdatePrepared("tx-43", "precommitted", "").ok());
    CHECK(f.rm().UpdatePrepared("missing", "precommitted", "").code() == StatusCode::kNotFound);
    REQUIRE(tx.Commit().ok());
  }

  f.Reopen();
  auto records = f.rm().LoadPrepared();
  REQUIRE(records.ok());
  REQUIRE(records->size() == 2);
  const PreparedRecord& got = records->at(0);
  CHECK(got.txid == record.txid);
  CHECK(got.protocol == record.protocol);
  CHECK(got.state == record.state);
  CHECK(got.changeset == record.changeset);
  CHECK(got.lock_keys == record.lock_keys);
  CHECK(got.coordinator == record.coordinator);
  CHECK(got.participants == record.participants);
  CHECK(got.created_ms == record.created_ms);
  CHECK(got.deadline_ms == record.deadline_ms);
  CHECK(got.last_error == record.last_error);
  CHECK(records->at(1).txid == "tx-43");
  CHECK(records->at(1).state == "precommitted");
  CHECK(records->at(1).last_error.empty());

  {
    sqlite::Transaction tx(f.db());
    REQUIRE(f.rm().DiscardPrepared("tx-42").ok());
    REQUIRE(f.rm().DiscardPrepared("never-existed").ok());
    REQUIRE(tx.Commit().ok());
  }
  records = f.rm().LoadPrepared();
  REQUIRE(records.ok());
  REQUIRE(records->size() == 1);
  CHECK(records->at(0).txid == "tx-43");
}

PreparedRecord KeyedRecord(const std::string& txid) {
  PreparedRecord record;
  record.txid = txid;
  record.protocol = "2pc";
  record.state = "prepared";
  record.coordinator = "http://127.0.0.1:7000";
  record.log_id = "old-log";
  record.abort_key = std::string(64, 'a');
  record.commit_check = std::string(64, 'b');
  return record;
}

const Adoption kAdoption{"new-log", std::string(64, 'c'), std::string(64, 'd')};

TEST_CASE("an adoption replaces a record's keys and names the adopting log, across a reopen; an unknown txid is "
          "NotFound") {
  Fixture f;
  {
    sqlite::Transaction tx(f.db());
    REQUIRE(f.rm().PersistPrepared(KeyedRecord("tx-7")).ok());
    REQUIRE(f.rm().AdoptPrepared("tx-7", kAdoption).ok());
    CHECK(f.rm().AdoptPrepared("missing", kAdoption).code() == StatusCode::kNotFound);
    REQUIRE(tx.Commit().ok());
  }
  f.Reopen();
  auto records = f.rm().LoadPrepared();
  REQUIRE(records.ok());
  REQUIRE(records->size() == 1);
  const PreparedRecord& got = records->at(0);
  CHECK(got.adopted_by == "new-log");
  CHECK(got.abort_key == kAdoption.abort_key);
  CHECK(got.commit_check == kAdoption.commit_check);
  CHECK(got.log_id == "old-log");  // the prepare's, kept
  CHECK(got.state == "prepared");
}

TEST_CASE("a persisted record's adopted_by round-trips") {
  Fixture f;
  PreparedRecord record = KeyedRecord("tx-8");
  record.adopted_by = "new-log";
  {
    sqlite::Transaction tx(f.db());
    REQUIRE(f.rm().PersistPrepared(record).ok());
    REQUIRE(tx.Commit().ok());
  }
  auto records = f.rm().LoadPrepared();
  REQUIRE(records.ok());
  REQUIRE(records->size() == 1);
  CHECK(records->at(0).adopted_by == "new-log");
}

// Keeps the jobs submitted to it, for the test to look at and run.
class HeldJobs final : public StorageQueue {
 public:
  void Submit(Job job) override { jobs.push_back(std::move(job)); }
  void Read(std::function<void(sqlite::Database&)>) override {}
  void DeferRiders() override {}
  Stats stats() const override { return {}; }
  std::vector<Job> jobs;
};

class StoppedClock final : public Timers {
 public:
  int64_t NowMs() const override { return 1'000; }
  void After(int64_t, std::function<void()>) override {}
};

TEST_CASE("SqliteStore::Adopt is one storage job, synced before its done") {
  Fixture f;
  {
    sqlite::Transaction tx(f.db());
    REQUIRE(f.rm().PersistPrepared(KeyedRecord("tx-9")).ok());
    REQUIRE(tx.Commit().ok());
  }
  HeldJobs queue;
  StoppedClock clock;
  SqliteStore store(f.rm(), queue, clock);
  std::vector<Status> done;
  store.Adopt("tx-9", kAdoption, [&](Status s) { done.push_back(s); });
  store.Adopt("missing", kAdoption, [&](Status s) { done.push_back(s); });
  REQUIRE(queue.jobs.size() == 2);
  CHECK(queue.jobs[0].durability == Durability::kSyncNow);
  bool rolled_back = false;
  std::vector<Status> results = RunStorageBatch(f.db(), queue.jobs, &rolled_back);
  for (std::size_t i = 0; i < results.size(); ++i) queue.jobs[i].done(results[i]);
  REQUIRE(done.size() == 2);
  CHECK(done[0].ok());
  CHECK(done[1].code() == StatusCode::kNotFound);
  auto records = f.rm().LoadPrepared();
  REQUIRE(records.ok());
  REQUIRE(records->size() == 1);
  CHECK(records->at(0).adopted_by == "new-log");
  CHECK(records->at(0).abort_key == kAdoption.abort_key);
}

TEST_CASE("a _commitd_prepared table without adopted_by gets it; its records were adopted by none") {
  testing::TempDir dir;
  auto db = sqlite::Database::Open(dir.File("old.db"));
  REQUIRE(db.ok());
  REQUIRE((*db)->Exec(R"sql(
    CREATE TABLE _commitd_prepared(txid TEXT PRIMARY KEY, protocol TEXT NOT NULL, state TEXT NOT NULL,
      changeset BLOB NOT NULL, lock_keys TEXT NOT NULL, coordinator TEXT NOT NULL, participants TEXT NOT NULL,
      created_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL, last_error TEXT NOT NULL DEFAULT '',
      log_id TEXT NOT NULL DEFAULT '', abort_key TEXT NOT NULL DEFAULT '',
      commit_check TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
    INSERT INTO _commitd_prepared VALUES('old-1', '2pc', 'prepared', x'', '[]', 'http://c1:7000', '[]', 1, 2, '',
      'old-log', 'abcd', 'ef01');
  )sql").ok());
  PreparedRecordStore store(**db);
  REQUIRE(store.CreateTables().ok());
  REQUIRE(store.CreateTables().ok());  // again: nothing to add
  auto loaded = store.LoadPrepared();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 1);
  CHECK(loaded->at(0).adopted_by.empty());
  CHECK(loaded->at(0).abort_key == "abcd");
  REQUIRE(store.Adopt("old-1", kAdoption).ok());
  loaded = store.LoadPrepared();
  REQUIRE(loaded.ok());
  CHECK(loaded->at(0).adopted_by == "new-log");
}

TEST_CASE("a prepared transaction commits after a reopen") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Proc("debit", {{"account", "alice"}, {"amount", 30}})});
  REQUIRE(r.ok);
  REQUIRE(f.Persist("tx1", r).ok());
  f.Reopen();
  REQUIRE(f.Commit("tx1").ok());
  CHECK(f.Balance("alice") == 70);
}

TEST_CASE("outcomes are remembered, forgotten by age and survive a reopen") {
  Fixture f;
  {
    sqlite::Transaction tx(f.db());
    REQUIRE(f.rm().RememberOutcome("t1", "committed", 100).ok());
    REQUIRE(f.rm().RememberOutcome("t2", "aborted", 200).ok());
    REQUIRE(f.rm().RememberOutcome("t3", "committed", 300).ok());
    REQUIRE(f.rm().ForgetOutcomesBefore(200).ok());
    REQUIRE(tx.Commit().ok());
  }
  f.Reopen();
  auto outcomes = f.rm().LoadOutcomes();
  REQUIRE(outcomes.ok());
  CHECK(*outcomes == std::map<std::string, std::string>{{"t2", "aborted"}, {"t3", "committed"}});
}

TEST_CASE("LoadPrepared reports a corrupt record") {
  Fixture f;
  REQUIRE(f.db()
              .Exec("INSERT INTO _commitd_prepared VALUES('bad', '2pc', 'prepared', x'', 'not json', '', '[]', 0, 0, "
                    "'', '', '', '', '')")
              .ok());
  auto records = f.rm().LoadPrepared();
  REQUIRE_FALSE(records.ok());
  CHECK(records.status().code() == StatusCode::kCorruption);
}

TEST_CASE("LoadPrepared reports a record whose participant list is not one, instead of handing it on") {
  for (const char* participants : {"[1]", R"([{"name": "bank-a"}])", R"({"name": "bank-a", "url": "u"})"}) {
    CAPTURE(participants);
    Fixture f;
    sqlite::Statement* insert = f.db().Prepare(
        "INSERT INTO _commitd_prepared VALUES('t1', '2pc', 'prepared', x'', '[]', '', ?1, 0, 0, '', '', '', '', '')");
    REQUIRE(insert != nullptr);
    insert->Bind(1, std::string(participants));
    REQUIRE(insert->Run().ok());
    auto records = f.rm().LoadPrepared();
    REQUIRE_FALSE(records.ok());
    CHECK(records.status().code() == StatusCode::kCorruption);
    CHECK(records.status().message().find("_commitd_prepared 't1': participants") != std::string::npos);
  }
}

TEST_CASE("LoadPrepared reports a record whose txid is not a txid (it would go into the coordinator's URL)") {
  Fixture f;
  REQUIRE(f.db()
              .Exec("INSERT INTO _commitd_prepared VALUES('t1?log_id=x', '2pc', 'prepared', x'', '[]', '', '[]', 0, 0, "
                    "'', '', '', '', '')")
              .ok());
  auto records = f.rm().LoadPrepared();
  REQUIRE_FALSE(records.ok());
  CHECK(records.status().code() == StatusCode::kCorruption);
  CHECK(records.status().message().find("invalid txid 't1?log_id=x'") != std::string::npos);
}


// Regressions found in review.
TEST_CASE("a deferred foreign key left violated by the ops votes no, and the batch still commits") {
  Fixture f(true);
  REQUIRE(f.db().Exec("CREATE TABLE parent(id INTEGER PRIMARY KEY); "
                      "CREATE TABLE child(id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent(id) "
                      "DEFERRABLE INITIALLY DEFERRED); INSERT INTO parent VALUES(1)")
              .ok());
  ExecutionResult bad = f.Execute("t1", {Sql("INSERT INTO child VALUES(10, 99)")});
  CHECK_FALSE(bad.ok);
  CHECK(bad.reason.find("FOREIGN KEY") != std::string::npos);
  ExecutionResult good = f.Execute("t2", {Sql("INSERT INTO child VALUES(11, 1)")});
  CHECK(good.ok);
  CHECK(f.Count("child") == 0);
}

TEST_CASE("a raw SQL op of only whitespace or a comment is a no vote, not a crash") {
  Fixture f(true);
  ExecutionResult r = f.Execute("t1", {Sql("   ")});
  CHECK_FALSE(r.ok);
  ExecutionResult c = f.Execute("t2", {Sql("-- nothing")});
  CHECK_FALSE(c.ok);
}

}  // namespace

// ---------------------------------------------------------------------------
// The lock table: Prepare takes keys as it writes the record; Commit and Abort
// release them; it follows the records after a rollback or a reopen.

namespace {

PreparedRecord Header(const std::string& txid) {
  PreparedRecord record;
  record.txid = txid;
  record.protocol = "2pc";
  record.state = "prepared";
  record.coordinator = "http://127.0.0.1:7000";
  return record;
}

// One batch transaction, committed, as the storage thread runs a Prepare job.
PrepareResult PrepareIn(Fixture& f, const std::string& txid, const std::vector<wire::Op>& ops,
                        ExecutionResult execution = {}) {
  sqlite::Transaction tx(f.db());
  REQUIRE(tx.status().ok());
  PreparedRecord record = Header(txid);
  PrepareResult r = f.rm().Prepare(record, ops, std::move(execution));
  REQUIRE(tx.Commit().ok());
  return r;
}

Status Decide(Fixture& f, const std::string& txid, bool commit) {
  sqlite::Transaction tx(f.db());
  Status s = commit ? f.rm().Commit(txid, 1) : f.rm().Abort(txid, 1);
  Status c = tx.Commit();
  return s.ok() ? c : s;
}

// The execution a batch's scratch step makes: in a transaction that is rolled back.
ExecutionResult ScratchExecute(Fixture& f, const std::string& txid, const std::vector<wire::Op>& ops) {
  REQUIRE(f.db().Begin().ok());
  ExecutionResult r = f.rm().Execute(txid, ops);
  f.db().Rollback();
  return r;
}

wire::Op Debit(const std::string& account, int amount) {
  return Proc("debit", {{"account", account}, {"amount", amount}});
}

}  // namespace

TEST_CASE("Prepare takes the keys with the record; a held key votes no naming the holder; Commit and Abort release") {
  Fixture f;
  PrepareResult t1 = PrepareIn(f, "t1", {Debit("alice", 30)});
  REQUIRE_MESSAGE(t1.yes, t1.reason);
  CHECK(t1.lock_keys == Keys{"accounts|pk|t5:alice"});
  CHECK(f.rm().locks().Holder("accounts|pk|t5:alice") == std::optional<std::string>("t1"));

  PrepareResult t2 = PrepareIn(f, "t2", {Debit("alice", 1), Proc("credit", {{"account", "bob"}, {"amount", 1}})});
  CHECK_FALSE(t2.yes);
  CHECK(t2.reason == "lock conflict with t1");
  CHECK_FALSE(f.rm().locks().Holder("accounts|pk|t3:bob").has_value());  // all or nothing
  auto records = f.rm().LoadPrepared();
  REQUIRE(records.ok());
  CHECK(records->size() == 1);  // no record for the no vote

  REQUIRE(Decide(f, "t1", true).ok());
  CHECK(f.rm().locks().size() == 0);
  CHECK(f.Balance("alice") == 70);
  PrepareResult t3 = PrepareIn(f, "t3", {Debit("alice", 1)});
  REQUIRE_MESSAGE(t3.yes, t3.reason);
  REQUIRE(Decide(f, "t3", false).ok());
  CHECK(f.rm().locks().size() == 0);
  CHECK(f.Balance("alice") == 70);
}

TEST_CASE("an execution that met a held key runs again in Prepare, after the holder's commit") {
  Fixture f;
  REQUIRE(PrepareIn(f, "t1", {Debit("alice", 30)}).yes);
  // Both executions run while t1 holds alice (a batch's scratch step), then t1's
  // commit is applied before their Prepare (the durable steps, in order).
  ExecutionResult too_much = ScratchExecute(f, "t2", {Debit("alice", 80)});
  ExecutionResult small = ScratchExecute(f, "t3", {Debit("alice", 10)});
  REQUIRE(too_much.ok);  // 80 <= 100: fine before t1's commit
  CHECK(too_much.met_held_key);
  CHECK(small.met_held_key);
  REQUIRE(Decide(f, "t1", true).ok());

  PrepareResult t2 = PrepareIn(f, "t2", {Debit("alice", 80)}, std::move(too_much));
  CHECK_FALSE(t2.yes);  // 80 > 70 now
  CHECK(t2.reason == "procedure 'debit' expected 1 changed row, got 0");
  PrepareResult t3 = PrepareIn(f, "t3", {Debit("alice", 10)}, std::move(small));
  REQUIRE_MESSAGE(t3.yes, t3.reason);
  REQUIRE(Decide(f, "t3", true).ok());  // a stale changeset (old balance 100) would conflict here
  CHECK(f.Balance("alice") == 60);
}

TEST_CASE("a failed execution runs again in Prepare, after a commit earlier in its batch") {
  Fixture f;
  REQUIRE(PrepareIn(f, "t1", {Proc("credit", {{"account", "bob"}, {"amount", 100}})}).yes);
  ExecutionResult short_funds = ScratchExecute(f, "t2", {Debit("bob", 120)});  // 50 < 120 before t1's commit
  REQUIRE_FALSE(short_funds.ok);
  REQUIRE(Decide(f, "t1", true).ok());  // bob: 150
  PrepareResult t2 = PrepareIn(f, "t2", {Debit("bob", 120)}, std::move(short_funds));
  REQUIRE_MESSAGE(t2.yes, t2.reason);
  REQUIRE(Decide(f, "t2", true).ok());
  CHECK(f.Balance("bob") == 30);
}

TEST_CASE("an execution that met no held key is not run again") {
  Fixture f;
  ExecutionResult executed = ScratchExecute(f, "t1", {Debit("alice", 30)});
  REQUIRE(executed.ok);
  CHECK_FALSE(executed.met_held_key);
  executed.results = json::array({json::array({{{"marker", 1}}})});  // what a rerun would not give back
  PrepareResult t1 = PrepareIn(f, "t1", {Debit("alice", 30)}, std::move(executed));
  REQUIRE(t1.yes);
  CHECK(t1.results == json::parse(R"([[{"marker": 1}]])"));
}

TEST_CASE("the lock table follows the records: after a rolled-back batch (RebuildLocks) and after a reopen") {
  Fixture f;
  REQUIRE(PrepareIn(f, "t1", {Debit("alice", 30)}).yes);
  // A batch that prepared t2 and committed t1, then was rolled back.
  REQUIRE(f.db().Begin().ok());
  PreparedRecord t2 = Header("t2");
  REQUIRE(f.rm().Prepare(t2, {Debit("bob", 5)}, {}).yes);
  REQUIRE(f.rm().Commit("t1", 1).ok());
  CHECK(f.rm().locks().Holder("accounts|pk|t3:bob") == std::optional<std::string>("t2"));
  CHECK_FALSE(f.rm().locks().Holder("accounts|pk|t5:alice").has_value());
  f.db().Rollback();
  REQUIRE(f.rm().RebuildLocks().ok());
  const auto expected = std::unordered_map<std::string, std::string>{{"accounts|pk|t5:alice", "t1"}};
  CHECK(f.rm().locks().Snapshot() == expected);
  f.Reopen();
  CHECK(f.rm().locks().Snapshot() == expected);
  CHECK_FALSE(PrepareIn(f, "t3", {Debit("alice", 1)}).yes);
}

}  // namespace commitd::participant
