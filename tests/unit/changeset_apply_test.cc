#include "participant/changeset_apply.h"

#include <doctest/doctest.h>

#include <random>
#include <string>

#include "tests/unit/support/temp_dir.h"

namespace commitd::participant {
namespace {

using sqlite::Database;

constexpr char kSchema[] = R"sql(
CREATE TABLE accounts(id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK(balance >= 0));
CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT);
CREATE TABLE pairs(a TEXT, b INTEGER, w, PRIMARY KEY(a, b)) WITHOUT ROWID;
INSERT INTO accounts VALUES('alice', 100), ('bob', 50);
INSERT INTO users VALUES(1, 'a@x.org', 'Ann');
)sql";

std::unique_ptr<Database> OpenDb(const std::string& path) {
  auto db = Database::Open(path);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  return std::move(db).value();
}

void Exec(Database& db, const std::string& sql) {
  Status s = db.Exec(sql);
  REQUIRE_MESSAGE(s.ok(), sql << ": " << s.message());
}

// The changeset of running `sql` on the current state, which is left unchanged.
std::string Record(Database& db, const std::string& sql) {
  Exec(db, "SAVEPOINT record");
  sqlite3_session* session = nullptr;
  REQUIRE(sqlite3session_create(db.handle(), "main", &session) == SQLITE_OK);
  REQUIRE(sqlite3session_attach(session, nullptr) == SQLITE_OK);
  Status ran = db.Exec(sql);
  int size = 0;
  void* data = nullptr;
  const int rc = sqlite3session_changeset(session, &size, &data);
  std::string changeset(static_cast<const char*>(data), static_cast<std::size_t>(size));
  sqlite3_free(data);
  sqlite3session_delete(session);
  Exec(db, "ROLLBACK TO record");
  Exec(db, "RELEASE record");
  REQUIRE_MESSAGE(ran.ok(), sql << ": " << ran.message());
  REQUIRE(rc == SQLITE_OK);
  return changeset;
}

// As ResourceManager::ApplyCommit uses it: in a savepoint, rolled back on error.
Status Apply(Database& db, ChangesetApplier& applier, const std::string& changeset) {
  Exec(db, "SAVEPOINT apply");
  Status s = applier.Apply(changeset);
  if (!s.ok()) Exec(db, "ROLLBACK TO apply");
  Exec(db, "RELEASE apply");
  return s;
}

// Every row of `sql`'s result, one line each.
std::string Rows(Database& db, const std::string& sql) {
  sqlite::Statement* stmt = db.Prepare(sql);
  REQUIRE(stmt != nullptr);
  std::string out;
  while (stmt->Step()) {
    for (int c = 0; c < stmt->ColumnCount(); ++c) {
      out += c == 0 ? "" : "|";
      out += stmt->IsNull(c) ? "NULL" : stmt->Text(c);
    }
    out += "\n";
  }
  REQUIRE(stmt->status().ok());
  stmt->Reset();
  return out;
}

std::string Everything(Database& db) {
  return Rows(db, "SELECT * FROM accounts ORDER BY id") + Rows(db, "SELECT * FROM users ORDER BY id") +
         Rows(db, "SELECT * FROM pairs ORDER BY a, b");
}

class Fixture {
 public:
  Fixture() : db_(OpenDb(dir_.File("a.db"))), applier_(*db_) { Exec(*db_, kSchema); }
  Database& db() { return *db_; }
  ChangesetApplier& applier() { return applier_; }
  Status Apply(const std::string& changeset) { return participant::Apply(*db_, applier_, changeset); }

 private:
  testing::TempDir dir_{"changeset_apply_test"};
  std::unique_ptr<Database> db_;
  ChangesetApplier applier_;
};

TEST_CASE("inserts, updates and deletes are applied, and an empty changeset is nothing") {
  Fixture f;
  CHECK(f.Apply("").ok());
  const std::string changeset = Record(f.db(),
                                       "UPDATE accounts SET balance = balance - 30 WHERE id = 'alice';"
                                       "INSERT INTO accounts VALUES('carol', 7);"
                                       "DELETE FROM accounts WHERE id = 'bob';"
                                       "UPDATE users SET name = 'Anna' WHERE id = 1;"
                                       "INSERT INTO pairs VALUES('x', 1, x'00ff'), ('x', 2, NULL), ('y', 1, 2.5)");
  CHECK(Rows(f.db(), "SELECT * FROM accounts ORDER BY id") == "alice|100\nbob|50\n");
  REQUIRE(f.Apply(changeset).ok());
  CHECK(Rows(f.db(), "SELECT * FROM accounts ORDER BY id") == "alice|70\ncarol|7\n");
  CHECK(Rows(f.db(), "SELECT * FROM users") == "1|a@x.org|Anna\n");
  CHECK(Rows(f.db(), "SELECT a, b, quote(w) FROM pairs ORDER BY a, b") == "x|1|X'00FF'\nx|2|NULL\ny|1|2.5\n");

  // The cached statements serve the next changeset of the same tables.
  REQUIRE(f.Apply(Record(f.db(), "UPDATE accounts SET balance = 1 WHERE id = 'carol'; DELETE FROM pairs WHERE a = 'x'"))
              .ok());
  CHECK(Rows(f.db(), "SELECT * FROM accounts ORDER BY id") == "alice|70\ncarol|1\n");
  CHECK(Rows(f.db(), "SELECT a, b FROM pairs") == "y|1\n");
}

TEST_CASE("a row changed behind the applier's back is a DATA conflict and nothing is applied") {
  Fixture f;
  const std::string changeset = Record(f.db(),
                                       "UPDATE accounts SET balance = balance - 30 WHERE id = 'alice';"
                                       "UPDATE accounts SET balance = balance + 30 WHERE id = 'bob'");
  Exec(f.db(), "UPDATE accounts SET balance = 99 WHERE id = 'alice'");
  Status s = f.Apply(changeset);
  CHECK(s.code() == StatusCode::kConflict);
  CHECK(s.message() == "changeset conflict on accounts (DATA, pk=('alice')): row changed outside commitd");
  CHECK(Rows(f.db(), "SELECT * FROM accounts ORDER BY id") == "alice|99\nbob|50\n");

  // A column the changeset does not change may change meanwhile.
  const std::string rename = Record(f.db(), "UPDATE users SET name = 'Anna' WHERE id = 1");
  Exec(f.db(), "UPDATE users SET email = 'new@x.org' WHERE id = 1");
  REQUIRE(f.Apply(rename).ok());
  CHECK(Rows(f.db(), "SELECT * FROM users") == "1|new@x.org|Anna\n");
}

TEST_CASE("a row deleted behind the applier's back is NOTFOUND, for an update and for a delete") {
  Fixture f;
  const std::string update = Record(f.db(), "UPDATE accounts SET balance = 1 WHERE id = 'bob'");
  const std::string remove = Record(f.db(), "DELETE FROM accounts WHERE id = 'bob'");
  Exec(f.db(), "DELETE FROM accounts WHERE id = 'bob'");
  const std::string gone = "changeset conflict on accounts (NOTFOUND, pk=('bob')): row deleted outside commitd";
  CHECK(f.Apply(update).message() == gone);
  CHECK(f.Apply(remove).message() == gone);
}

TEST_CASE("a delete of a row whose other columns changed is a DATA conflict") {
  Fixture f;
  const std::string remove = Record(f.db(), "DELETE FROM users WHERE id = 1");
  Exec(f.db(), "UPDATE users SET name = 'Other' WHERE id = 1");
  CHECK(f.Apply(remove).message() == "changeset conflict on users (DATA, pk=(1)): row changed outside commitd");
  CHECK(Rows(f.db(), "SELECT name FROM users") == "Other\n");
}

TEST_CASE("an insert over an existing primary key is CONFLICT, over another UNIQUE value CONSTRAINT") {
  Fixture f;
  const std::string insert = Record(f.db(), "INSERT INTO users VALUES(2, 'b@x.org', 'Bo')");
  Exec(f.db(), "INSERT INTO users VALUES(2, 'q@x.org', 'Q')");
  CHECK(f.Apply(insert).message() ==
        "changeset conflict on users (CONFLICT, pk=(2)): a row with this primary key was inserted outside commitd");

  const std::string other = Record(f.db(), "INSERT INTO users VALUES(3, 'c@x.org', 'Cy')");
  Exec(f.db(), "INSERT INTO users VALUES(4, 'c@x.org', 'Impostor')");
  CHECK(f.Apply(other).message() ==
        "changeset conflict on users (CONSTRAINT, pk=(3)): a constraint fails against data changed outside commitd");
  CHECK(Rows(f.db(), "SELECT id FROM users ORDER BY id") == "1\n2\n4\n");

  const std::string overdraw = Record(f.db(), "UPDATE accounts SET balance = balance - 50 WHERE id = 'bob'");
  CHECK(f.Apply(overdraw).ok());
  const std::string pk_text = Record(f.db(), "INSERT INTO pairs VALUES('it''s', 1, 0)");
  Exec(f.db(), "INSERT INTO pairs VALUES('it''s', 1, 5)");
  CHECK(f.Apply(pk_text).message() == "changeset conflict on pairs (CONFLICT, pk=('it''s', 1)): a row with this "
                                      "primary key was inserted outside commitd");
}

TEST_CASE("a change failing a constraint only because of the order within its table is retried") {
  // users 1 gives up an email and a new user takes it: applying the insert
  // first fails UNIQUE until the update is in. The order within a table is
  // SQLite's hash order, so try ids until the insert comes first.
  bool insert_came_first = false;
  for (int id = 2; id < 40 && !insert_came_first; ++id) {
    Fixture f;
    const std::string changeset =
        Record(f.db(), "UPDATE users SET email = 'old@x.org' WHERE id = 1;"
                       "INSERT INTO users VALUES(" + std::to_string(id) + ", 'a@x.org', 'New')");
    sqlite3_changeset_iter* iter = nullptr;
    REQUIRE(sqlite3changeset_start(&iter, static_cast<int>(changeset.size()), const_cast<char*>(changeset.data())) ==
            SQLITE_OK);
    REQUIRE(sqlite3changeset_next(iter) == SQLITE_ROW);
    const char* table = nullptr;
    int ncol = 0;
    int op = 0;
    sqlite3changeset_op(iter, &table, &ncol, &op, nullptr);
    insert_came_first = op == SQLITE_INSERT;
    sqlite3changeset_finalize(iter);
    REQUIRE(f.Apply(changeset).ok());
    CHECK(Rows(f.db(), "SELECT email FROM users ORDER BY id") == "old@x.org\na@x.org\n");
  }
  CHECK(insert_came_first);
}

TEST_CASE("a table that changed shape or is gone writes nothing") {
  Fixture f;
  const std::string changeset = Record(f.db(), "UPDATE accounts SET balance = 1 WHERE id = 'alice';"
                                               "UPDATE users SET name = 'X' WHERE id = 1");
  Exec(f.db(), "ALTER TABLE users ADD COLUMN note TEXT");
  CHECK(f.Apply(changeset).message() == "changeset conflict on users: the table's columns or primary key changed");
  CHECK(Rows(f.db(), "SELECT balance FROM accounts WHERE id = 'alice'") == "100\n");
  Exec(f.db(), "DROP TABLE users");
  CHECK(f.Apply(changeset).message() == "changeset conflict on users: the table no longer exists");

  // Statements prepared before a schema change are not reused after it.
  Exec(f.db(), "ALTER TABLE accounts ADD COLUMN note TEXT");
  REQUIRE(f.Apply(Record(f.db(), "UPDATE accounts SET note = 'n', balance = 5 WHERE id = 'bob'")).ok());
  CHECK(Rows(f.db(), "SELECT * FROM accounts ORDER BY id") == "alice|100|NULL\nbob|5|n\n");
  CHECK(f.Apply("not a changeset").message() == "the changeset is corrupt");
}

TEST_CASE("a changeset with broken framing is corrupt, refused before SQLite reads it") {
  Fixture f;
  const std::string good = Record(f.db(), "UPDATE accounts SET balance = 1 WHERE id = 'alice'");
  REQUIRE(good.size() > 12);
  // SQLite 3.40's iterator looped forever on a table name without its NUL at the end.
  CHECK(f.Apply(std::string("T\x04\x01\x02\x00\x00" "abco\xff\xff\xff" "untso", 18)).message() ==
        "the changeset is corrupt");
  // Every prefix is corrupt, except the table header alone (no changes).
  for (std::size_t n = 1; n < good.size(); ++n) {
    CAPTURE(n);
    const Status s = f.Apply(good.substr(0, n));
    CHECK((s.message() == "the changeset is corrupt" || (s.ok() && good[n] == SQLITE_UPDATE)));
  }
  CHECK(f.Apply(good + "T").message() == "the changeset is corrupt");
  CHECK(f.Apply(good + std::string(1, '\x17')).message() == "the changeset is corrupt");
  CHECK(f.Apply("P" + good.substr(1)).message() == "the changeset is corrupt");  // a patchset
  CHECK(Rows(f.db(), "SELECT balance FROM accounts WHERE id = 'alice'") == "100\n");
  REQUIRE(f.Apply(good).ok());
  CHECK(Rows(f.db(), "SELECT balance FROM accounts WHERE id = 'alice'") == "1\n");
}

TEST_CASE("foreign keys are checked once the whole changeset is in") {
  Fixture f;
  Exec(f.db(),
       "CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT);"
       "CREATE TABLE child(id INTEGER PRIMARY KEY, pid INTEGER NOT NULL REFERENCES parent(id));"
       "INSERT INTO parent VALUES(1, 'one'), (2, 'two'); INSERT INTO child VALUES(10, 2)");
  // The child table is written first, so applying in order meets the child
  // before its parent, and the delete of a parent before that of its child.
  const std::string changeset = Record(f.db(),
                                       "DELETE FROM child WHERE id = 10;"
                                       "INSERT INTO parent VALUES(3, 'three');"
                                       "INSERT INTO child VALUES(11, 3);"
                                       "DELETE FROM parent WHERE id = 2");
  REQUIRE(f.Apply(changeset).ok());
  CHECK(Rows(f.db(), "SELECT * FROM parent ORDER BY id") == "1|one\n3|three\n");
  CHECK(Rows(f.db(), "SELECT * FROM child ORDER BY id") == "11|3\n");
  CHECK(Rows(f.db(), "PRAGMA defer_foreign_keys") == "0\n");

  // The parent a prepared child refers to is deleted behind the applier's back.
  const std::string orphan = Record(f.db(), "INSERT INTO child VALUES(12, 1)");
  Exec(f.db(), "DELETE FROM parent WHERE id = 1");
  Status s = f.Apply(orphan);
  CHECK(s.code() == StatusCode::kConflict);
  CHECK(s.message() == "changeset conflict (FOREIGN_KEY, 1 violation(s)): a referenced row was deleted or changed "
                       "outside commitd");
  CHECK(Rows(f.db(), "SELECT id FROM child ORDER BY id") == "11\n");
  CHECK(Rows(f.db(), "PRAGMA defer_foreign_keys") == "0\n");

  // Tables outside every foreign key apply as before, and an immediate
  // foreign key still fails at once afterwards.
  REQUIRE(f.Apply(Record(f.db(), "UPDATE accounts SET balance = 3 WHERE id = 'bob'")).ok());
  CHECK_FALSE(f.db().Exec("INSERT INTO child VALUES(13, 99)").ok());
}

// Same outcome as sqlite3changeset_apply with a handler that aborts: random
// changes, random writes behind the applier's back, applied to two copies.
TEST_CASE("the applier agrees with sqlite3changeset_apply") {
  testing::TempDir dir("changeset_apply_test");
  auto ours = OpenDb(dir.File("ours.db"));
  auto theirs = OpenDb(dir.File("theirs.db"));
  Exec(*ours, kSchema);
  Exec(*theirs, kSchema);
  ChangesetApplier applier(*ours);
  std::mt19937 rng(20261125);
  auto pick = [&](int n) { return std::to_string(std::uniform_int_distribution<int>(0, n - 1)(rng)); };
  auto random_write = [&] {
    switch (std::uniform_int_distribution<int>(0, 5)(rng)) {
      case 0:
        return "INSERT OR IGNORE INTO users VALUES(" + pick(6) + ", 'm" + pick(8) + "', 'n" + pick(3) + "')";
      case 1:
        return "UPDATE OR IGNORE users SET email = 'm" + pick(8) + "' WHERE id = " + pick(6);
      case 2:
        return "UPDATE users SET name = 'n" + pick(3) + "' WHERE id = " + pick(6);
      case 3:
        return "DELETE FROM users WHERE id = " + pick(6);
      case 4:
        return "INSERT OR REPLACE INTO pairs VALUES('k" + pick(3) + "', " + pick(3) + ", " + pick(4) + ")";
      default:
        return "DELETE FROM pairs WHERE a = 'k" + pick(3) + "' AND b = " + pick(3);
    }
  };
  int applied = 0;
  int conflicts = 0;
  for (int round = 0; round < 300; ++round) {
    std::string ops;
    for (int i = std::uniform_int_distribution<int>(1, 4)(rng); i > 0; --i) ops += random_write() + ";";
    const std::string changeset = Record(*ours, ops);
    for (int i = std::uniform_int_distribution<int>(-1, 2)(rng); i > 0; --i) {
      const std::string behind = random_write();
      Exec(*ours, behind);
      Exec(*theirs, behind);
    }
    Status mine = Apply(*ours, applier, changeset);
    int conflict_type = 0;
    auto on_conflict = [](void* type, int kind, sqlite3_changeset_iter*) {
      if (*static_cast<int*>(type) == 0) *static_cast<int*>(type) = kind;
      return SQLITE_CHANGESET_ABORT;
    };
    const int rc = sqlite3changeset_apply(theirs->handle(), static_cast<int>(changeset.size()),
                                          const_cast<char*>(changeset.data()), nullptr, on_conflict, &conflict_type);
    const char* names[] = {"", "(DATA,", "(NOTFOUND,", "(CONFLICT,", "(CONSTRAINT,", "(FOREIGN_KEY,"};
    INFO("round " << round << ": " << ops << " -> " << mine.message());
    REQUIRE(mine.ok() == (rc == SQLITE_OK));
    if (!mine.ok()) CHECK(mine.message().find(names[conflict_type]) != std::string::npos);
    REQUIRE(Everything(*ours) == Everything(*theirs));
    (mine.ok() ? applied : conflicts) += 1;
  }
  CHECK(applied > 50);
  CHECK(conflicts > 10);
}

}  // namespace
}  // namespace commitd::participant
