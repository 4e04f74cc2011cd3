#include "participant/changeset_record.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/support/temp_dir.h"

namespace commitd::participant {
namespace {

using sqlite::Database;

constexpr char kSchema[] = R"sql(
CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT, score REAL, photo BLOB);
CREATE TABLE accounts(id TEXT PRIMARY KEY, balance INTEGER);
CREATE TABLE pairs(a TEXT, b INTEGER, w, PRIMARY KEY(b, a)) WITHOUT ROWID;
CREATE TABLE nokey(x, y);
CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);
CREATE TRIGGER users_audit AFTER DELETE ON users BEGIN INSERT INTO audit(what) VALUES('deleted ' || old.id); END;
CREATE TABLE _commitd_private(k PRIMARY KEY, v);
INSERT INTO users VALUES(1, 'a@x.org', 1.5, x'01'), (2, NULL, NULL, NULL), (3, 'c', 0.0, x'');
INSERT INTO accounts VALUES('alice', 100), ('bob', 50);
INSERT INTO pairs VALUES('k', 1, 'one'), ('k', 2, 2);
)sql";

void Exec(Database& db, const std::string& sql) {
  Status s = db.Exec(sql);
  REQUIRE_MESSAGE(s.ok(), sql << ": " << s.message());
}

std::string Render(sqlite3_value* v) {
  if (v == nullptr) return "-";
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
      return "i" + std::to_string(sqlite3_value_int64(v));
    case SQLITE_FLOAT:
      return "r" + std::to_string(sqlite3_value_double(v));
    case SQLITE_TEXT:
      return "t'" + std::string(reinterpret_cast<const char*>(sqlite3_value_text(v)), sqlite3_value_bytes(v)) + "'";
    case SQLITE_BLOB:
      return "b" + std::to_string(sqlite3_value_bytes(v));
    default:
      return "null";
  }
}

// Tables in changeset order, each with its changes sorted: the order of rows
// within a table is not part of a changeset's meaning.
std::string Canonical(const std::string& changeset) {
  sqlite3_changeset_iter* iter = nullptr;
  REQUIRE(sqlite3changeset_start(&iter, static_cast<int>(changeset.size()), const_cast<char*>(changeset.data())) ==
          SQLITE_OK);
  std::string out;
  std::string table;
  std::vector<std::string> changes;
  auto flush = [&] {
    std::sort(changes.begin(), changes.end());
    for (const auto& c : changes) out += "  " + c + "\n";
    changes.clear();
  };
  while (sqlite3changeset_next(iter) == SQLITE_ROW) {
    const char* name = nullptr;
    int ncol = 0;
    int op = 0;
    int indirect = 0;
    sqlite3changeset_op(iter, &name, &ncol, &op, &indirect);
    if (table != name) {
      flush();
      table = name;
      unsigned char* pk = nullptr;
      sqlite3changeset_pk(iter, &pk, &ncol);
      out += table + " pk";
      for (int i = 0; i < ncol; ++i) out += " " + std::to_string(pk[i]);
      out += "\n";
    }
    std::string change = std::to_string(op) + (indirect ? " indirect" : "");
    for (int i = 0; i < ncol; ++i) {
      sqlite3_value* old_value = nullptr;
      sqlite3_value* new_value = nullptr;
      if (op != SQLITE_INSERT) sqlite3changeset_old(iter, i, &old_value);
      if (op != SQLITE_DELETE) sqlite3changeset_new(iter, i, &new_value);
      change += " " + Render(old_value) + ">" + Render(new_value);
    }
    changes.push_back(change);
  }
  flush();
  REQUIRE(sqlite3changeset_finalize(iter) == SQLITE_OK);
  return out;
}

class Fixture {
 public:
  Fixture() {
    auto db = Database::Open(dir_.File("a.db"));
    REQUIRE(db.ok());
    db_ = std::move(db).value();
    Exec(*db_, kSchema);
    recorder_ = std::make_unique<ChangesetRecorder>(*db_);
  }

  // What an sqlite3session attached to every table but _commitd_* records.
  std::string BySession(const std::string& sql) {
    Exec(*db_, "SAVEPOINT s");
    sqlite3_session* session = nullptr;
    REQUIRE(sqlite3session_create(db_->handle(), "main", &session) == SQLITE_OK);
    sqlite3session_table_filter(
        session, [](void*, const char* t) { return std::string(t).rfind("_commitd_", 0) == 0 ? 0 : 1; }, nullptr);
    REQUIRE(sqlite3session_attach(session, nullptr) == SQLITE_OK);
    Exec(*db_, sql);
    int size = 0;
    void* data = nullptr;
    REQUIRE(sqlite3session_changeset(session, &size, &data) == SQLITE_OK);
    std::string changeset(static_cast<const char*>(data), static_cast<std::size_t>(size));
    sqlite3_free(data);
    sqlite3session_delete(session);
    Exec(*db_, "ROLLBACK TO s; RELEASE s");
    return changeset;
  }

  Result<std::string> ByRecorder(const std::string& sql) {
    Exec(*db_, "SAVEPOINT s");
    REQUIRE(recorder_->Start().ok());
    Exec(*db_, sql);
    Result<std::string> changeset = recorder_->Changeset();
    recorder_->Stop();
    Exec(*db_, "ROLLBACK TO s; RELEASE s");
    return changeset;
  }

  void Same(const std::string& sql) {
    const std::string expected = BySession(sql);
    Result<std::string> got = ByRecorder(sql);
    REQUIRE_MESSAGE(got.ok(), got.status().message());
    INFO(sql);
    CHECK(Canonical(*got) == Canonical(expected));
    CHECK(got->empty() == expected.empty());
  }

  Database& db() { return *db_; }

 private:
  testing::TempDir dir_{"changeset_record_test"};
  std::unique_ptr<Database> db_;
  std::unique_ptr<ChangesetRecorder> recorder_;
};

TEST_CASE("the recorder's changeset matches sqlite3session's, case by case") {
  Fixture f;
  f.Same("UPDATE accounts SET balance = balance - 30 WHERE id = 'alice'");
  f.Same("INSERT INTO users VALUES(9, 'n', 2.25, x'00ff'); UPDATE users SET score = 3 WHERE id = 9");
  f.Same("INSERT INTO accounts VALUES('tmp', 1); DELETE FROM accounts WHERE id = 'tmp'");  // nothing
  f.Same("UPDATE users SET email = email WHERE id = 1");                                    // no-op update
  f.Same("UPDATE users SET score = 1.5 WHERE id = 1; UPDATE users SET email = NULL WHERE id = 2");
  f.Same("DELETE FROM accounts WHERE id = 'bob'; INSERT INTO accounts VALUES('bob', 51)");  // becomes an update
  f.Same("DELETE FROM accounts WHERE id = 'bob'; INSERT INTO accounts VALUES('bob', 50)");  // nothing
  f.Same("UPDATE accounts SET id = 'carol' WHERE id = 'alice'");                          // key change
  f.Same("UPDATE users SET id = 7 WHERE id = 3");                                         // rowid change
  f.Same("UPDATE pairs SET w = 3 WHERE a = 'k' AND b = 1; INSERT INTO pairs VALUES('j', 0, NULL)");
  f.Same("UPDATE users SET score = 1 WHERE id = 3");  // 0.0 to integer 1: a type change
  f.Same("DELETE FROM users WHERE id = 1");           // the trigger's insert is indirect
  f.Same("INSERT INTO nokey VALUES(1, 2); INSERT INTO _commitd_private VALUES(1, 2)");  // neither is recorded
  f.Same("UPDATE accounts SET balance = 0");
  f.Same("SELECT 1");
}

TEST_CASE("the recorder's changeset matches sqlite3session's on random writes") {
  Fixture f;
  std::mt19937 rng(42);
  auto pick = [&](int n) { return std::to_string(std::uniform_int_distribution<int>(0, n - 1)(rng)); };
  auto random_write = [&]() -> std::string {
    switch (std::uniform_int_distribution<int>(0, 8)(rng)) {
      case 0:
        return "INSERT OR REPLACE INTO users VALUES(" + pick(6) + ", 'e" + pick(3) + "', " + pick(4) + ".5, x'0" +
               pick(9) + "')";
      case 1:
        return "UPDATE users SET email = " + (pick(3) == "0" ? std::string("NULL") : "'e" + pick(3) + "'") +
               " WHERE id = " + pick(6);
      case 2:
        return "UPDATE OR REPLACE users SET id = " + pick(6) + " WHERE id = " + pick(6);
      case 3:
        return "DELETE FROM users WHERE id = " + pick(6);
      case 4:
        return "INSERT OR REPLACE INTO accounts VALUES('a" + pick(4) + "', " + pick(3) + ")";
      case 5:
        return "UPDATE accounts SET balance = balance + " + pick(2) + " WHERE id = 'a" + pick(4) + "'";
      case 6:
        return "DELETE FROM accounts WHERE id = 'a" + pick(4) + "'";
      case 7:
        return "INSERT OR REPLACE INTO pairs VALUES('p" + pick(2) + "', " + pick(3) + ", " + pick(3) + ")";
      default:
        return "DELETE FROM pairs WHERE b = " + pick(3);
    }
  };
  for (int round = 0; round < 200; ++round) {
    std::string ops;
    for (int i = std::uniform_int_distribution<int>(1, 6)(rng); i > 0; --i) ops += random_write() + ";";
    f.Same(ops);
    Exec(f.db(), random_write());  // the next round starts from another state
  }
}

TEST_CASE("a written table with generated columns is refused") {
  Fixture f;
  Exec(f.db(), "CREATE TABLE shapes(id INTEGER PRIMARY KEY, w INTEGER, area INTEGER AS (w * w))");
  Result<std::string> got = f.ByRecorder("INSERT INTO shapes(id, w) VALUES(1, 3)");
  CHECK(got.status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace commitd::participant
