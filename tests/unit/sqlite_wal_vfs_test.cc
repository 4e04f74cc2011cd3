#include "common/sqlite_wal_vfs.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <random>
#include <string>

#include "common/sqlite_db.h"
#include "tests/unit/support/temp_dir.h"
#include "tests/unit/support/write_calls.h"

namespace commitd::sqlite {
namespace {

using testing::TempDir;
using testing::WriteCalls;

// A connection of our own on `vfs` (null: SQLite's default), WAL, no
// automatic checkpoint, so that every frame written stays in the WAL.
class Connection {
 public:
  Connection(const std::string& path, const char* vfs) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) == SQLITE_OK);
    Exec("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; PRAGMA synchronous=FULL");
  }
  ~Connection() { sqlite3_close_v2(db_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    REQUIRE_MESSAGE(rc == SQLITE_OK, sql, ": ", message);
  }
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    std::string v = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return v;
  }
  // Frames in the WAL now (wal_checkpoint's "log" column; nothing is
  // checkpointed while the test's reader, if any, holds a snapshot).
  int64_t WalFrames() {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, "PRAGMA wal_checkpoint(PASSIVE)", -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 1);
    sqlite3_finalize(stmt);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Writes 40 transactions of one 3,000-byte row each (a page per row) and
// returns the write calls they took and the frames they appended.
std::pair<int64_t, int64_t> WriteRows(Connection& c) {
  c.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  const int64_t frames_before = c.WalFrames();
  const int64_t calls_before = WriteCalls();
  for (int i = 0; i < 40; ++i) c.Exec("INSERT INTO t(v) VALUES(randomblob(3000))");
  const int64_t calls = WriteCalls() - calls_before;
  return {calls, c.WalFrames() - frames_before};
}

TEST_CASE("each WAL frame is one write call instead of two") {
  TempDir dir("sqlite_wal_vfs_test");
  Connection plain(dir.File("plain.db"), nullptr);
  auto [plain_calls, plain_frames] = WriteRows(plain);
  Connection joined(dir.File("joined.db"), WalJoiningVfs()->zName);
  auto [joined_calls, joined_frames] = WriteRows(joined);
  MESSAGE("plain: ", plain_calls, " write calls for ", plain_frames, " frames; joined: ", joined_calls, " for ",
          joined_frames);
  REQUIRE(plain_frames >= 40);
  CHECK(joined_frames == plain_frames);
  // Default VFS: two calls per frame, plus a few other writes (the WAL's own
  // header, the shared-memory file); joined: one per frame, plus no more others.
  CHECK(plain_calls >= 2 * plain_frames);
  CHECK(joined_calls - joined_frames <= plain_calls - 2 * plain_frames);
}

TEST_CASE("a file written through it is an ordinary SQLite file, read by other connections while written") {
  TempDir dir("sqlite_wal_vfs_test");
  const std::string path = dir.File("a.db");
  Connection writer(path, WalJoiningVfs()->zName);
  writer.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  Connection reader(path, nullptr);
  for (int i = 1; i <= 30; ++i) {
    writer.Exec("INSERT INTO t(v) VALUES(randomblob(1000 + " + std::to_string(i * 100) + "))");
    CHECK(reader.Int("SELECT count(*) FROM t") == i);
  }
  writer.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  CHECK(reader.Int("SELECT sum(length(v)) FROM t") == 30 * 1000 + 100 * (30 * 31 / 2));
  CHECK(reader.Text("PRAGMA integrity_check") == "ok");
}

TEST_CASE("a transaction larger than the page cache spills to the WAL and rolls back cleanly") {
  TempDir dir("sqlite_wal_vfs_test");
  const std::string path = dir.File("a.db");
  {
    Connection c(path, WalJoiningVfs()->zName);
    c.Exec("PRAGMA cache_size=10");
    c.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
    c.Exec("INSERT INTO t(v) VALUES(randomblob(100))");
    // Frames of an uncommitted transaction are written mid-way, then
    // overwritten in place when a spilled page changes again.
    c.Exec("BEGIN; WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 300) "
           "INSERT INTO t(v) SELECT randomblob(2000) FROM s;"
           "UPDATE t SET v = randomblob(1500) WHERE id % 3 = 0; ROLLBACK");
    CHECK(c.Int("SELECT count(*) FROM t") == 1);
    c.Exec("BEGIN; WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 300) "
           "INSERT INTO t(v) SELECT randomblob(2000) FROM s;"
           "SAVEPOINT s; UPDATE t SET v = randomblob(1500) WHERE id % 3 = 0; ROLLBACK TO s; RELEASE s; COMMIT");
    CHECK(c.Int("SELECT count(*) FROM t") == 301);
    CHECK(c.Int("SELECT count(*) FROM t WHERE length(v) = 1500") == 0);
  }
  // Reopened with SQLite's own VFS: the WAL (not checkpointed) is recovered as written.
  Connection plain(path, nullptr);
  CHECK(plain.Int("SELECT count(*) FROM t") == 301);
  CHECK(plain.Text("PRAGMA integrity_check") == "ok");
}

// Child process: commits rows 0, 1, 2, ... (from `first`) through the VFS,
// writing each id to `out` once its COMMIT returned; never returns.
[[noreturn]] void CommitRowsForever(const std::string& path, int64_t first, int out) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, WalJoiningVfs()->zName) !=
          SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=50", nullptr,
                   nullptr, nullptr) != SQLITE_OK) {
    _exit(2);
  }
  for (int64_t id = first;; ++id) {
    const std::string sql = "INSERT INTO t(id, v) VALUES(" + std::to_string(id) + ", randomblob(" +
                            std::to_string(500 + id % 7 * 1000) + "))";
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) _exit(3);
    if (write(out, &id, sizeof id) != static_cast<ssize_t>(sizeof id)) _exit(4);
  }
}

TEST_CASE("kill -9 while writing: every committed row survives and the file is intact") {
  TempDir dir("sqlite_wal_vfs_test");
  const std::string path = dir.File("a.db");
  { Connection(path, nullptr).Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"); }
  std::mt19937 random(20261204);
  int64_t acknowledged = 0;  // ids the writer reported after their COMMIT returned
  int64_t next = 0;
  for (int round = 0; round < 6; ++round) {
    int pipe_fds[2];
    REQUIRE(pipe(pipe_fds) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      close(pipe_fds[0]);
      CommitRowsForever(path, next, pipe_fds[1]);
    }
    close(pipe_fds[1]);
    // Killed after a random number of acknowledged commits, mid-way through the next.
    const int commits = 20 + static_cast<int>(random() % 200);
    int64_t id = 0;
    for (int i = 0; i < commits && read(pipe_fds[0], &id, sizeof id) == static_cast<ssize_t>(sizeof id); ++i) {
      ++acknowledged;
      next = id + 1;
    }
    usleep(static_cast<useconds_t>(random() % 2000));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    REQUIRE_MESSAGE(WIFSIGNALED(status), "the writer exited by itself, status ", status);
    while (read(pipe_fds[0], &id, sizeof id) == static_cast<ssize_t>(sizeof id)) {
      ++acknowledged;
      next = id + 1;
    }
    close(pipe_fds[0]);

    // Ids are consecutive: the rows must be exactly 0..max, max at least the
    // last acknowledged id, and at most one more (committed, not yet reported).
    Connection plain(path, nullptr);
    CHECK(plain.Text("PRAGMA integrity_check") == "ok");
    const int64_t max_id = plain.Int("SELECT coalesce(max(id), -1) FROM t");
    CHECK(plain.Int("SELECT count(*) FROM t") == max_id + 1);
    CHECK(max_id >= next - 1);
    CHECK(max_id <= next);
    next = max_id + 1;
  }
  CHECK(acknowledged >= 6 * 20);
}

TEST_CASE("Database::Open uses it") {
  TempDir dir("sqlite_wal_vfs_test");
  Result<std::unique_ptr<Database>> db = Database::Open(dir.File("a.db"));
  REQUIRE(db.ok());
  sqlite3_vfs* vfs = nullptr;
  REQUIRE(sqlite3_file_control((*db)->handle(), "main", SQLITE_FCNTL_VFS_POINTER, &vfs) == SQLITE_OK);
  CHECK(vfs == WalJoiningVfs());
}

}  // namespace
}  // namespace commitd::sqlite
