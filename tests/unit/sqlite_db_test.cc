#include "common/sqlite_db.h"

#include <doctest/doctest.h>

#include "common/sqlite_wal_vfs.h"
#include "tests/unit/support/temp_dir.h"
#include "tests/unit/support/write_calls.h"
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <limits>
#include <string>

namespace commitd::sqlite {
namespace {

using testing::TempDir;
using testing::WriteCalls;

std::unique_ptr<Database> OpenOrDie(const std::string& path, OpenOptions options = {}) {
  Result<std::unique_ptr<Database>> db = Database::Open(path, options);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  return std::move(db).value();
}

std::string PragmaText(Database& db, const std::string& pragma) {
  Statement* stmt = db.Prepare("PRAGMA " + pragma);
  REQUIRE(stmt != nullptr);
  REQUIRE(stmt->Step());
  std::string v = stmt->Text(0);
  stmt->Reset();
  return v;
}

int64_t Count(Database& db, const std::string& table) {
  Statement* stmt = db.Prepare("SELECT count(*) FROM " + table);
  REQUIRE(stmt != nullptr);
  REQUIRE(stmt->Step());
  int64_t n = stmt->Int(0);
  stmt->Reset();
  return n;
}

TEST_CASE("Open creates the file with WAL and synchronous=FULL") {
  commitd::testing::TempDir dir("sqlite_db_test");
  std::string path = dir.File("a.db");
  CHECK_FALSE(std::filesystem::exists(path));
  auto db = OpenOrDie(path);
  CHECK(std::filesystem::exists(path));
  CHECK(db->path() == path);
  CHECK(PragmaText(*db, "journal_mode") == "wal");
  CHECK(PragmaText(*db, "synchronous") == "2");  // FULL
  CHECK(PragmaText(*db, "foreign_keys") == "1");
}

TEST_CASE("Open fsyncs the WAL it finds: what it will read as committed is on disk first") {
  commitd::testing::TempDir dir("sqlite_db_test");
  const std::string path = dir.File("a.db");
  auto writer = OpenOrDie(path);
  REQUIRE(writer->Exec("CREATE TABLE t(v INTEGER)").ok());
  // Committed without fsync, as a batch that rides on a later one is (what a
  // process killed before that fsync leaves behind).
  REQUIRE(writer->Exec("PRAGMA synchronous=NORMAL").ok());
  const uint64_t syncs_before = WalSyncs();
  REQUIRE(writer->Exec("INSERT INTO t VALUES (1)").ok());
  REQUIRE(WalSyncs() == syncs_before);
  auto reader = OpenOrDie(path);
  CHECK(WalSyncs() == syncs_before + 1);
  CHECK(Count(*reader, "t") == 1);
}

TEST_CASE("a savepoint's journal stays in memory: nothing is written before COMMIT") {
  commitd::testing::TempDir dir("sqlite_db_test");
  auto db = OpenOrDie(dir.File("a.db"));
  REQUIRE(db->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); "
                   "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 200) "
                   "INSERT INTO t(v) SELECT randomblob(3000) FROM s")
              .ok());
  REQUIRE(db->Begin().ok());
  const int64_t before = WriteCalls();
  // 200 pages changed inside savepoints: 800 KB of journal, where SQLite's
  // default spills to a temporary file past 64 KiB, a write per page.
  for (int round = 0; round < 3; ++round) {
    REQUIRE(db->Exec("SAVEPOINT s").ok());
    if (round == 1) {
      // Undone from the journal: no row keeps the zeros.
      REQUIRE(db->Exec("UPDATE t SET v = zeroblob(3000)").ok());
      REQUIRE(db->Exec("ROLLBACK TO s").ok());
    } else {
      REQUIRE(db->Exec("UPDATE t SET v = randomblob(3000)").ok());
    }
    REQUIRE(db->Exec("RELEASE s").ok());
  }
  CHECK(WriteCalls() - before == 0);
  REQUIRE(db->Commit().ok());
  CHECK(Count(*db, "t") == 200);
  Statement* zeros = db->Prepare("SELECT count(*) FROM t WHERE v = zeroblob(3000)");
  REQUIRE(zeros != nullptr);
  REQUIRE(zeros->Step());
  CHECK(zeros->Int(0) == 0);
  zeros->Reset();
}

TEST_CASE("Open without create fails for a missing file") {
  commitd::testing::TempDir dir("sqlite_db_test");
  OpenOptions options;
  options.create = false;
  Result<std::unique_ptr<Database>> db = Database::Open(dir.File("missing.db"), options);
  REQUIRE_FALSE(db.ok());
  CHECK(db.status().code() == StatusCode::kIoError);
  CHECK(db.status().message().find("missing.db") != std::string::npos);
}

TEST_CASE("Prepare caches statements and hands them out reset and unbound") {
  commitd::testing::TempDir dir("sqlite_db_test");
  auto db = OpenOrDie(dir.File("a.db"));
  REQUIRE(db->Exec("CREATE TABLE t(v INTEGER)").ok());
  REQUIRE(db->Exec("INSERT INTO t VALUES (1), (2), (3)").ok());

  const std::string sql = "SELECT ?1, v FROM t ORDER BY v";
  Statement* a = db->Prepare(sql);
  REQUIRE(a != nullptr);
  a->Bind(1, int64_t{42});
  REQUIRE(a->Step());
  CHECK(a->Int(0) == 42);
  CHECK(a->Int(1) == 1);

  // Handed out again mid-iteration: same object, back at the first row, binding cleared.
  Statement* b = db->Prepare(sql);
  CHECK(b == a);
  REQUIRE(b->Step());
  CHECK(b->IsNull(0));
  CHECK(b->Int(1) == 1);
  b->Reset();

  Statement* other = db->Prepare("SELECT v FROM t");
  CHECK(other != a);

  Status error;
  CHECK(db->Prepare("SELEKT nonsense", &error) == nullptr);
  CHECK_FALSE(error.ok());
  CHECK(error.message().find("syntax error") != std::string::npos);
}

TEST_CASE("a statement is found by its text, wherever that text lives and whatever was there before") {
  commitd::testing::TempDir dir("sqlite_db_test");
  auto db = OpenOrDie(dir.File("a.db"));
  REQUIRE(db->Exec("CREATE TABLE t(v INTEGER)").ok());
  REQUIRE(db->Exec("INSERT INTO t VALUES (7)").ok());

  // The same text at two addresses: one statement.
  const std::string first = "SELECT v + 1 FROM t";
  const std::string copy = first;
  Statement* a = db->Prepare(first);
  REQUIRE(a != nullptr);
  CHECK(db->Prepare(copy) == a);
  CHECK(db->Prepare(first) == a);

  // Other text written over the same buffer: that text's statement, not the
  // one last found at this address.
  std::string buffer = "SELECT v + 1 FROM t";
  Statement* plus_one = db->Prepare(buffer);
  CHECK(plus_one == a);
  buffer[11] = '2';  // "SELECT v + 2 FROM t", same length, same address
  REQUIRE(buffer == "SELECT v + 2 FROM t");
  Statement* plus_two = db->Prepare(buffer);
  REQUIRE(plus_two != nullptr);
  CHECK(plus_two != plus_one);
  REQUIRE(plus_two->Step());
  CHECK(plus_two->Int(0) == 9);
  plus_two->Reset();
  buffer[11] = '1';
  CHECK(db->Prepare(buffer) == a);

  // A grouped statement never answers for an ungrouped one at the same address.
  Statement* grouped = db->Prepare(first, nullptr, "user");
  REQUIRE(grouped != nullptr);
  CHECK(grouped != a);
  CHECK(db->Prepare(first) == a);
  CHECK(db->Prepare(first, nullptr, "user") == grouped);
}

TEST_CASE("binds of every type round-trip") {
  commitd::testing::TempDir dir("sqlite_db_test");
  auto db = OpenOrDie(dir.File("a.db"));
  REQUIRE(db->Exec("CREATE TABLE t(i INTEGER, d REAL, s TEXT, b BLOB, n TEXT, named TEXT)").ok());
  const std::string blob("\x00\x01\xff binary", 10);
  const std::string text = "h\xc3\xa9llo 'quoted'";
  Statement* ins = db->Prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, :named)");
  REQUIRE(ins != nullptr);
  CHECK(ins->ParameterIndex(":named") == 6);
  ins->Bind(1, std::numeric_limits<int64_t>::min())
      .Bind(2, 3.25)
      .Bind(3, std::string_view(text))
      .BindBlob(4, blob)
      .BindNull(5)
      .Bind(":named", "by name");
  REQUIRE(ins->Run().ok());

  Statement* sel = db->Prepare("SELECT i, d, s, b, n, named, typeof(b) FROM t");
  REQUIRE(sel != nullptr);
  CHECK(sel->ColumnCount() == 7);
  REQUIRE(sel->Step());
  CHECK(sel->Int(0) == std::numeric_limits<int64_t>::min());
  CHECK(sel->Double(1) == 3.25);
  CHECK(sel->Text(2) == text);
  CHECK(sel->Blob(3) == blob);
  CHECK(sel->IsNull(4));
  CHECK(sel->Text(4).empty());
  CHECK(sel->Text(5) == "by name");
  CHECK(sel->Text(6) == "blob");
  CHECK_FALSE(sel->Step());
  CHECK(sel->status().ok());
}

TEST_CASE("Transaction rolls back on destruction and commits on Commit") {
  commitd::testing::TempDir dir("sqlite_db_test");
  auto db = OpenOrDie(dir.File("a.db"));
  REQUIRE(db->Exec("CREATE TABLE t(v INTEGER)").ok());
  {
    Transaction txn(*db);
    REQUIRE(txn.status().ok());
    CHECK(db->InTransaction());
    REQUIRE(db->Exec("INSERT INTO t VALUES (1)").ok());
    CHECK(Count(*db, "t") == 1);
  }
  CHECK_FALSE(db->InTransaction());
  CHECK(Count(*db, "t") == 0);
  {
    Transaction txn(*db);
    REQUIRE(txn.status().ok());
    REQUIRE(db->Exec("INSERT INTO t VALUES (2)").ok());
    REQUIRE(txn.Commit().ok());
  }
  CHECK_FALSE(db->InTransaction());
  CHECK(Count(*db, "t") == 1);
  CHECK(db->Rollback().ok());  // no transaction open: no-op

  // Committed data survives a reopen.
  db.reset();
  db = OpenOrDie(dir.File("a.db"));
  CHECK(Count(*db, "t") == 1);
}

TEST_CASE("errors carry SQLite's message") {
  commitd::testing::TempDir dir("sqlite_db_test");
  auto db = OpenOrDie(dir.File("a.db"));
  REQUIRE(db->Exec("CREATE TABLE t(id TEXT PRIMARY KEY, v INTEGER CHECK (v >= 0))").ok());
  REQUIRE(db->Exec("INSERT INTO t VALUES ('a', 1)").ok());

  Status s = db->Exec("INSERT INTO t VALUES ('a', 2)");
  CHECK(s.code() == StatusCode::kIoError);
  CHECK(s.message().find("UNIQUE constraint failed: t.id") != std::string::npos);

  Statement* ins = db->Prepare("INSERT INTO t VALUES (?1, ?2)");
  REQUIRE(ins != nullptr);
  ins->Bind(1, "a").Bind(2, int64_t{5});
  s = ins->Run();
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("UNIQUE constraint failed: t.id") != std::string::npos);

  ins = db->Prepare("INSERT INTO t VALUES (?1, ?2)");
  CHECK(ins->status().ok());  // handed out again: the old error is gone
  ins->Bind(1, "b").Bind(2, int64_t{-1});
  s = ins->Run();
  CHECK(s.message().find("CHECK constraint failed") != std::string::npos);

  CHECK(db->Exec("SELECT * FROM nowhere").message().find("no such table: nowhere") != std::string::npos);
  CHECK(db->LastError("select").message().rfind("select: ", 0) == 0);
}

TEST_CASE("a held write lock makes Begin fail after the busy timeout") {
  commitd::testing::TempDir dir("sqlite_db_test");
  OpenOptions options;
  options.busy_timeout_ms = 100;
  auto holder = OpenOrDie(dir.File("a.db"), options);
  auto waiter = OpenOrDie(dir.File("a.db"), options);
  REQUIRE(holder->Exec("CREATE TABLE t(v INTEGER)").ok());
  REQUIRE(holder->Begin().ok());
  REQUIRE(holder->Exec("INSERT INTO t VALUES (1)").ok());

  auto start = std::chrono::steady_clock::now();
  Status s = waiter->Begin();
  auto waited = std::chrono::steady_clock::now() - start;
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("locked") != std::string::npos);
  CHECK(waited >= std::chrono::milliseconds(80));
  CHECK(waited < std::chrono::seconds(3));
  CHECK_FALSE(waiter->InTransaction());

  // Readers still see the last committed state, and the lock frees on commit.
  CHECK(Count(*waiter, "t") == 0);
  REQUIRE(holder->Commit().ok());
  REQUIRE(waiter->Begin().ok());
  CHECK(Count(*waiter, "t") == 1);
  REQUIRE(waiter->Commit().ok());
}

}  // namespace
}  // namespace commitd::sqlite

TEST_CASE("a named statement group is bounded; the unnamed cache is not affected") {
  commitd::testing::TempDir dir("sqlite_db_test");
  {
    auto db = commitd::sqlite::Database::Open(dir.File("g.db"));
    REQUIRE(db.ok());
    commitd::sqlite::Statement* internal = (*db)->Prepare("SELECT 1");
    REQUIRE(internal != nullptr);
    for (std::size_t i = 0; i < commitd::sqlite::Database::kMaxGroupStatements * 3; ++i) {
      commitd::sqlite::Statement* s = (*db)->Prepare("SELECT " + std::to_string(i), nullptr, "ops");
      REQUIRE(s != nullptr);
      REQUIRE(s->Step());
      CHECK(s->Int(0) == static_cast<int64_t>(i));
      s->Reset();
    }
    // The internal statement survived every eviction of the "ops" group.
    CHECK((*db)->Prepare("SELECT 1") == internal);
    // The same SQL in another group is another statement; asked for again, the same one.
    commitd::sqlite::Statement* grouped = (*db)->Prepare("SELECT 1", nullptr, "ops");
    REQUIRE(grouped != nullptr);
    CHECK(grouped != internal);
    CHECK((*db)->Prepare("SELECT 1", nullptr, "ops") == grouped);
    commitd::sqlite::Statement* other = (*db)->Prepare("SELECT 1", nullptr, "other");
    REQUIRE(other != nullptr);
    CHECK(other != grouped);
    CHECK(other != internal);
    CHECK((*db)->Prepare("SELECT 1") == internal);
  }
}
