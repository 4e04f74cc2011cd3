#include "common/batch_writer.h"

#include <doctest/doctest.h>

#include "common/failpoint.h"
#include "common/metrics.h"
#include "common/sqlite_wal_vfs.h"
#include "tests/unit/support/temp_dir.h"
#include <stdlib.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace commitd {
namespace {

using testing::TempDir;

std::unique_ptr<sqlite::Database> OpenDb(const TempDir& dir) {
  Result<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(dir.File("w.db"));
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  REQUIRE((*db)->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)").ok());
  return std::move(db).value();
}

// Runs io handlers on this thread until done() or the deadline.
bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done,
              std::chrono::steady_clock::duration limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Blocks the storage thread inside a Read until Release(), so that jobs
// submitted meanwhile all land in the next batch.
class HoldStorageThread {
 public:
  explicit HoldStorageThread(BatchWriter& writer) {
    writer.Read([this](sqlite::Database&) {
      entered_ = true;
      while (!released_.load()) std::this_thread::yield();
      left_ = true;  // the last touch of this object from the storage thread
    });
    while (!entered_.load()) std::this_thread::yield();
  }
  // Waits until the storage thread has left the hold: it must not read
  // released_ of a destroyed object (ASan: stack-use-after-scope).
  ~HoldStorageThread() {
    Release();
    while (!left_.load()) std::this_thread::yield();
  }
  void Release() { released_ = true; }

 private:
  std::atomic<bool> entered_{false};
  std::atomic<bool> released_{false};
  std::atomic<bool> left_{false};
};

BatchWriter::Job Insert(int64_t id, std::string value, std::function<void(Status)> done) {
  return BatchWriter::Job{[id, value = std::move(value)](sqlite::Database& db) {
                            sqlite::Statement* stmt = db.Prepare("INSERT INTO t(id, v) VALUES (?1, ?2)");
                            if (stmt == nullptr) return Status::Internal("prepare");
                            stmt->Bind(1, id).Bind(2, value);
                            return stmt->Run();
                          },
                          std::move(done)};
}

// The first column of the first row of sql.
int64_t QueryInt(sqlite::Database& db, const std::string& sql) {
  sqlite::Statement* stmt = db.Prepare(sql);
  REQUIRE(stmt != nullptr);
  REQUIRE(stmt->Step());
  int64_t n = stmt->Int(0);
  stmt->Reset();
  return n;
}

int64_t Count(sqlite::Database& db) { return QueryInt(db, "SELECT count(*) FROM t"); }

TEST_CASE("jobs run in order on the storage thread; dones run in order on the io thread") {
  TempDir dir;
  auto db = OpenDb(dir);
  boost::asio::io_context io;
  const std::thread::id io_thread = std::this_thread::get_id();
  std::vector<int> ran;  // touched by the storage thread only, read after Flush
  std::vector<int> finished;
  bool dones_on_io = true;
  bool runs_off_io = true;
  {
    BatchWriter writer(*db, io.get_executor());
    for (int i = 0; i < 50; ++i) {
      writer.Submit(BatchWriter::Job{[&, i](sqlite::Database&) {
                                       if (std::this_thread::get_id() == io_thread) runs_off_io = false;
                                       ran.push_back(i);
                                       return Status::Ok();
                                     },
                                     [&, i](Status s) {
                                       CHECK(s.ok());
                                       if (std::this_thread::get_id() != io_thread) dones_on_io = false;
                                       finished.push_back(i);
                                     }});
    }
    writer.Flush();
    REQUIRE(RunUntil(io, [&] { return finished.size() == 50; }));
    CHECK(writer.stats().jobs == 50);
  }
  CHECK(runs_off_io);
  CHECK(dones_on_io);
  std::vector<int> expected(50);
  for (int i = 0; i < 50; ++i) expected[i] = i;
  CHECK(ran == expected);
  CHECK(finished == expected);
}

TEST_CASE("jobs submitted together share batches") {
  TempDir dir;
  auto db = OpenDb(dir);
  boost::asio::io_context io;
  constexpr int kJobs = 2000;
  int ok = 0;
  BatchWriter writer(*db, io.get_executor(), 256);
  for (int i = 0; i < kJobs; ++i) {
    writer.Submit(Insert(i, "v" + std::to_string(i), [&](Status s) {
      CHECK(s.ok());
      ++ok;
    }));
  }
  REQUIRE(RunUntil(io, [&] { return ok == kJobs; }));
  BatchWriter::Stats stats = writer.stats();
  CHECK(stats.jobs == kJobs);
  CHECK(stats.batches >= kJobs / 256);  // max_batch is respected
  CHECK(stats.batches < kJobs / 10);
  MESSAGE("batches for ", kJobs, " jobs: ", stats.batches);
}

TEST_CASE("a failing job fails only itself") {
  TempDir dir;
  auto db = OpenDb(dir);
  boost::asio::io_context io;
  std::vector<Status> results(3);
  int done = 0;
  {
    BatchWriter writer(*db, io.get_executor());
    // Hold the storage thread so all three land in one batch.
    HoldStorageThread hold(writer);
    for (int i = 0; i < 3; ++i) {
      // The second reuses id 1: a UNIQUE violation that aborts only its statement.
      writer.Submit(Insert(i == 2 ? 2 : 1, "x", [&, i](Status s) {
        results[i] = s;
        ++done;
      }));
    }
    hold.Release();
    REQUIRE(RunUntil(io, [&] { return done == 3; }));
    CHECK(writer.stats().batches == 1);
  }
  CHECK(results[0].ok());
  CHECK_FALSE(results[1].ok());
  CHECK(results[1].message().find("UNIQUE constraint failed") != std::string::npos);
  CHECK(results[2].ok());
  CHECK(Count(*db) == 2);
}

TEST_CASE("a commit failure fails the whole batch") {
  TempDir dir;
  auto db = OpenDb(dir);
  REQUIRE(db->Exec("CREATE TABLE parent(id INTEGER PRIMARY KEY);"
                   "CREATE TABLE child(id INTEGER PRIMARY KEY,"
                   "  parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
              .ok());
  boost::asio::io_context io;
  std::vector<Status> results(3);
  int done = 0;
  int rollbacks = 0;  // storage thread; read after the writer is gone
  {
    BatchWriter writer(*db, io.get_executor(), 1024, [&](sqlite::Database& d) {
      CHECK_FALSE(d.InTransaction());
      ++rollbacks;
    });
    HoldStorageThread hold(writer);
    writer.Submit(Insert(1, "a", [&](Status s) {
      results[0] = s;
      ++done;
    }));
    // A deferred foreign key violation: the statement succeeds, COMMIT fails.
    writer.Submit(BatchWriter::Job{[](sqlite::Database& d) { return d.Exec("INSERT INTO child VALUES (1, 99)"); },
                                   [&](Status s) {
                                     results[1] = s;
                                     ++done;
                                   }});
    writer.Submit(Insert(2, "b", [&](Status s) {
      results[2] = s;
      ++done;
    }));
    hold.Release();
    REQUIRE(RunUntil(io, [&] { return done == 3; }));

    // The writer is still usable afterwards.
    bool later = false;
    writer.Submit(Insert(3, "c", [&](Status s) {
      CHECK(s.ok());
      later = true;
    }));
    REQUIRE(RunUntil(io, [&] { return later; }));
  }
  for (const Status& s : results) {
    CHECK_FALSE(s.ok());
    CHECK(s.message().find("FOREIGN KEY constraint failed") != std::string::npos);
  }
  CHECK_FALSE(db->InTransaction());
  CHECK(Count(*db) == 1);
  CHECK(rollbacks == 1);  // the failed batch only
}

TEST_CASE("Read runs on the storage thread between batches") {
  TempDir dir;
  auto db = OpenDb(dir);
  boost::asio::io_context io;
  const std::thread::id io_thread = std::this_thread::get_id();
  BatchWriter writer(*db, io.get_executor());
  bool inserted = false;
  writer.Submit(Insert(1, "a", [&](Status s) {
    CHECK(s.ok());
    inserted = true;
  }));
  REQUIRE(RunUntil(io, [&] { return inserted; }));

  int64_t seen = -1;
  bool off_io = false;
  writer.Read([&, ex = io.get_executor()](sqlite::Database& d) {
    off_io = std::this_thread::get_id() != io_thread;
    int64_t n = Count(d);
    boost::asio::post(ex, [&seen, n] { seen = n; });
  });
  REQUIRE(RunUntil(io, [&] { return seen >= 0; }));
  CHECK(off_io);
  CHECK(seen == 1);
}

TEST_CASE("the destructor drains queued jobs") {
  TempDir dir;
  auto db = OpenDb(dir);
  boost::asio::io_context io;
  int done = 0;
  {
    BatchWriter writer(*db, io.get_executor(), 8);
    for (int i = 0; i < 100; ++i) {
      writer.Submit(Insert(i, "x", [&](Status s) {
        CHECK(s.ok());
        ++done;
      }));
    }
  }
  // Every job ran and committed; the dones were posted, not yet run.
  CHECK(Count(*db) == 100);
  CHECK(done == 0);
  io.run();
  CHECK(done == 100);
}

TEST_CASE("a scratch step runs before the batch's durable steps, in a transaction rolled back") {
  TempDir dir;
  auto db = OpenDb(dir);
  boost::asio::io_context io;
  std::vector<std::string> order;  // dones, on the io thread
  int64_t scratch_saw = -1, run_saw = -1;
  {
    BatchWriter writer(*db, io.get_executor());
    writer.Submit(Insert(1, "earlier batch", [&](Status s) { CHECK(s.ok()); }));
    writer.Flush();
    HoldStorageThread hold(writer);
    writer.Submit(Insert(2, "durable", [&](Status s) {
      CHECK(s.ok());
      order.push_back("durable");
    }));
    BatchWriter::Job two_steps;
    two_steps.scratch = [&](sqlite::Database& d) {
      scratch_saw = Count(d);
      CHECK(d.Exec("INSERT INTO t(id, v) VALUES (3, 'scratch')").ok());
    };
    two_steps.run = [&](sqlite::Database& d) {
      run_saw = Count(d);
      return d.Exec("INSERT INTO t(id, v) VALUES (4, 'run')");
    };
    two_steps.done = [&](Status s) {
      CHECK(s.ok());
      order.push_back("two steps");
    };
    writer.Submit(std::move(two_steps));
    hold.Release();
    REQUIRE(RunUntil(io, [&] { return order.size() == 2; }));
    CHECK(writer.stats().batches == 2);
  }
  CHECK(scratch_saw == 1);  // earlier batches only, not the insert of its own batch
  CHECK(run_saw == 2);      // the insert submitted before it, not its scratch insert
  CHECK(order == std::vector<std::string>{"durable", "two steps"});
  CHECK(Count(*db) == 3);
  CHECK(QueryInt(*db, "SELECT count(*) FROM t WHERE id = 4") == 1);
  CHECK(QueryInt(*db, "SELECT count(*) FROM t WHERE id = 3") == 0);  // the scratch insert was rolled back
}

// Regression: an execution's answer overtook the answer of a commit submitted
// before it (a version that answered executions before the fsync of earlier
// batches). On the agent, the next transfer on a row then met the lock of a
// commit whose completion it had already seen, and voted no.
TEST_CASE("answers come in submission order, jobs with scratch steps or not") {
  TempDir dir;
  auto db = OpenDb(dir);
  boost::asio::io_context io;
  constexpr int kJobs = 400;
  std::vector<int> answered;  // submission numbers, in the order their dones ran
  std::vector<int64_t> seen(kJobs, -1);
  {
    BatchWriter writer(*db, io.get_executor(), 7);
    for (int i = 0; i < kJobs; ++i) {
      BatchWriter::Job job = Insert(i, "x", [&, i](Status s) {
        CHECK(s.ok());
        answered.push_back(i);
      });
      if (i % 3 == 2) job.scratch = [&, i](sqlite::Database& d) { seen[i] = Count(d); };
      writer.Submit(std::move(job));
      if (i % 50 == 0) io.poll();  // let some batches finish in between
    }
    REQUIRE(RunUntil(io, [&] { return answered.size() == kJobs; }));
  }
  std::vector<int> in_order(kJobs);
  for (int i = 0; i < kJobs; ++i) in_order[i] = i;
  CHECK(answered == in_order);
  for (int i = 2; i < kJobs; i += 3) {
    CHECK(seen[i] >= 0);
    CHECK(seen[i] <= i);  // never its own insert, nor a later one
  }
}

TEST_CASE("a batch whose jobs all skip the fsync commits with synchronous=NORMAL, then the level is restored") {
  TempDir dir;
  auto db = OpenDb(dir);
  boost::asio::io_context io;
  auto level = [](sqlite::Database& d) { return QueryInt(d, "PRAGMA synchronous"); };
  std::vector<int64_t> seen;  // storage thread; read after the dones ran
  int done = 0;
  auto job = [&](Durability durability) {
    BatchWriter::Job j{[&](sqlite::Database& d) {
                         seen.push_back(level(d));
                         return Status::Ok();
                       },
                       [&](Status s) {
                         CHECK(s.ok());
                         ++done;
                       }};
    j.durability = durability;
    return j;
  };
  BatchWriter writer(*db, io.get_executor());
  {
    HoldStorageThread hold(writer);
    writer.Submit(job(Durability::kNone));
    writer.Submit(job(Durability::kNone));
  }
  REQUIRE(RunUntil(io, [&] { return done == 2; }));
  {
    HoldStorageThread hold(writer);
    writer.Submit(job(Durability::kNone));
    writer.Submit(job(Durability::kSyncNow));  // one job that needs it: the batch is synced
  }
  REQUIRE(RunUntil(io, [&] { return done == 4; }));
  int64_t after = -1;
  writer.Read([&](sqlite::Database& d) { after = level(d); });
  writer.Flush();
  CHECK(seen == std::vector<int64_t>{1, 1, 2, 2});
  CHECK(after == 2);  // FULL, as the database was opened
}

// A job that waits for a later fsync, with the synchronous level its batch ran at.
BatchWriter::Job SyncWithNext(int64_t id, std::vector<int64_t>* levels, std::function<void(Status)> done) {
  BatchWriter::Job job = Insert(id, "later", std::move(done));
  job.run = [id, levels, insert = std::move(job.run)](sqlite::Database& db) {
    levels->push_back(QueryInt(db, "PRAGMA synchronous"));
    return insert(db);
  };
  job.durability = Durability::kSyncWithNext;
  return job;
}

// A writer that counts its fsyncs; each test sets its linger.
struct LingeringWriter {
  LingeringWriter() { writer.set_metrics({nullptr, &fsyncs}); }
  TempDir dir;
  std::unique_ptr<sqlite::Database> db = OpenDb(dir);
  boost::asio::io_context io;
  metrics::Histogram fsyncs{metrics::LatencyBuckets()};
  std::vector<int64_t> levels;  // storage thread; read after the dones ran
  BatchWriter writer{*db, io.get_executor()};
};

TEST_CASE_FIXTURE(LingeringWriter, "a job that syncs with the next batch commits without fsync and is answered after the next batch's fsync") {
  writer.set_sync_linger(std::chrono::seconds(30));
  std::vector<int> answered;
  writer.Submit(SyncWithNext(1, &levels, [&](Status s) {
    CHECK(s.ok());
    answered.push_back(1);
  }));
  // Committed (a second connection reads it) but not synced: no answer yet.
  REQUIRE(RunUntil(io, [&] {
    auto reader = sqlite::Database::Open(dir.File("w.db"));
    return reader.ok() && QueryInt(**reader, "SELECT count(*) FROM t") == 1;
  }));
  RunUntil(io, [] { return false; }, std::chrono::milliseconds(200));
  CHECK(answered.empty());
  CHECK(fsyncs.count() == 0);
  writer.Submit(Insert(2, "now", [&](Status s) {
    CHECK(s.ok());
    answered.push_back(2);
  }));
  REQUIRE(RunUntil(io, [&] { return answered.size() == 2; }));
  CHECK(answered == std::vector<int>{1, 2});  // in submission order, after the one fsync
  CHECK(fsyncs.count() == 1);
  CHECK(levels == std::vector<int64_t>{1});
}

TEST_CASE_FIXTURE(LingeringWriter, "with no batch after it, a job that syncs with the next is answered after its linger and an fsync of the WAL") {
  writer.set_sync_linger(std::chrono::milliseconds(150));
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration took{};
  bool done = false;
  writer.Submit(SyncWithNext(1, &levels, [&](Status s) {
    CHECK(s.ok());
    took = std::chrono::steady_clock::now() - start;
    done = true;
  }));
  REQUIRE(RunUntil(io, [&] { return done; }));
  CHECK(took >= std::chrono::milliseconds(150));
  CHECK(fsyncs.count() == 1);
  CHECK(levels == std::vector<int64_t>{1});
}

// A job that asks for no sync, reading (or writing, when `insert_id` is set)
// at the synchronous level its batch runs at.
BatchWriter::Job Unsynced(std::optional<int64_t> insert_id, std::vector<int64_t>* levels,
                          std::function<void(Status)> done) {
  BatchWriter::Job job{[insert_id, levels](sqlite::Database& db) {
                         levels->push_back(QueryInt(db, "PRAGMA synchronous"));
                         if (!insert_id) return Status::Ok();
                         return db.Exec("INSERT INTO t(id, v) VALUES (" + std::to_string(*insert_id) + ", 'none')");
                       },
                       std::move(done)};
  job.durability = Durability::kNone;
  return job;
}

TEST_CASE_FIXTURE(LingeringWriter, "a done that needs no sync is not held behind one that waits for a sync: it comes after an fsync at once, its batch's or, if that wrote nothing, the WAL's alone") {
  for (bool writes : {true, false}) {
    CAPTURE(writes);
    writer.set_sync_linger(std::chrono::seconds(30));
    std::vector<int> answered;
    levels.clear();
    const uint64_t batches = writer.stats().batches;
    writer.Submit(SyncWithNext(writes ? 1 : 3, &levels, [&](Status) { answered.push_back(1); }));
    REQUIRE(RunUntil(io, [&] { return writer.stats().batches == batches + 1; }));  // committed, held
    const uint64_t wal_syncs = sqlite::WalSyncs();
    const int64_t fsyncs_before = fsyncs.count();
    writer.Submit(Unsynced(writes ? std::optional<int64_t>(2) : std::nullopt, &levels,
                           [&](Status s) {
                             CHECK(s.ok());
                             answered.push_back(2);
                           }));
    REQUIRE(RunUntil(io, [&] { return answered.size() == 2; }, std::chrono::seconds(5)));
    CHECK(answered == std::vector<int>{1, 2});
    CHECK(levels == std::vector<int64_t>{1, 2});      // the second batch commits at FULL
    CHECK(sqlite::WalSyncs() == wal_syncs + 1);        // and one fsync covers both
    CHECK(fsyncs.count() == fsyncs_before + 1);
  }
}

TEST_CASE("Flush and the destructor sync held jobs, or write and sync deferred riders, instead of waiting for the linger") {
  for (bool defer : {false, true}) {
    CAPTURE(defer);
    TempDir dir;
    auto db = OpenDb(dir);
    boost::asio::io_context io;
    std::vector<int64_t> levels;
    int done = 0;
    {
      BatchWriter writer(*db, io.get_executor());
      if (defer) writer.DeferRiders();
      writer.set_sync_linger(std::chrono::seconds(30));
      writer.Submit(SyncWithNext(1, &levels, [&](Status s) { done += s.ok() ? 1 : 100; }));
      const auto start = std::chrono::steady_clock::now();
      writer.Flush();
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
      REQUIRE(RunUntil(io, [&] { return done == 1; }));
      writer.Submit(SyncWithNext(2, &levels, [&](Status s) { done += s.ok() ? 1 : 100; }));
    }  // destroyed with the second job's done held, or the job itself queued
    REQUIRE(RunUntil(io, [&] { return done == 2; }, std::chrono::seconds(5)));
    CHECK(QueryInt(*db, "SELECT count(*) FROM t") == 2);
    // Held riders ran without an fsync; deferred ones run in a batch that syncs.
    CHECK(levels == (defer ? std::vector<int64_t>{2, 2} : std::vector<int64_t>{1, 1}));
  }
}

TEST_CASE_FIXTURE(LingeringWriter, "with riders deferred, a rider waits in the queue and is written in the batch of the next job that syncs, with one fsync") {
  writer.DeferRiders();
  writer.set_sync_linger(std::chrono::seconds(30));
  std::vector<int> answered;
  writer.Submit(SyncWithNext(1, &levels, [&](Status s) {
    CHECK(s.ok());
    answered.push_back(1);
  }));
  RunUntil(io, [] { return false; }, std::chrono::milliseconds(200));
  CHECK(writer.stats().batches == 0);  // not run yet
  CHECK(writer.queue_depth() == 1);
  CHECK(answered.empty());
  writer.Submit(Insert(2, "now", [&](Status s) {
    CHECK(s.ok());
    answered.push_back(2);
  }));
  REQUIRE(RunUntil(io, [&] { return answered.size() == 2; }));
  CHECK(answered == std::vector<int>{1, 2});
  CHECK(writer.stats().batches == 1);
  CHECK(writer.stats().jobs == 2);
  CHECK(fsyncs.count() == 1);
  CHECK(levels == std::vector<int64_t>{2});  // the rider ran in the batch that commits at FULL
}

TEST_CASE_FIXTURE(LingeringWriter, "with riders deferred and nothing after them, the riders are written after their linger in one batch that fsyncs") {
  writer.DeferRiders();
  writer.set_sync_linger(std::chrono::milliseconds(150));
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::chrono::steady_clock::duration> took;
  for (int64_t id : {1, 2}) {
    writer.Submit(SyncWithNext(id, &levels, [&](Status s) {
      CHECK(s.ok());
      took.push_back(std::chrono::steady_clock::now() - start);
    }));
  }
  REQUIRE(RunUntil(io, [&] { return took.size() == 2; }));
  CHECK(took[0] >= std::chrono::milliseconds(150));
  CHECK(writer.stats().batches == 1);
  CHECK(fsyncs.count() == 1);
  CHECK(levels == std::vector<int64_t>{2, 2});
  CHECK(Count(*db) == 2);
}

TEST_CASE_FIXTURE(LingeringWriter, "with riders deferred, a read starts a batch and Flush writes and syncs the riders at once") {
  writer.DeferRiders();
  writer.set_sync_linger(std::chrono::seconds(30));
  int done = 0;
  writer.Submit(SyncWithNext(1, &levels, [&](Status s) { done += s.ok() ? 1 : 100; }));
  bool read = false;
  writer.Read([&](sqlite::Database&) { read = true; });
  REQUIRE(RunUntil(io, [&] { return writer.stats().batches == 1; }));
  CHECK(read);
  CHECK(levels == std::vector<int64_t>{1});  // behind a read it runs as a rider: no fsync, done held
  writer.Submit(SyncWithNext(2, &levels, [&](Status s) { done += s.ok() ? 1 : 100; }));
  const auto start = std::chrono::steady_clock::now();
  writer.Flush();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  REQUIRE(RunUntil(io, [&] { return done == 2; }));
  CHECK(levels == std::vector<int64_t>{1, 2});
  CHECK(Count(*db) == 2);
}

TEST_CASE("when the fsync of held jobs fails, they and every later job fail") {
  TempDir dir;
  auto db = OpenDb(dir);
  boost::asio::io_context io;
  std::vector<int64_t> levels;
  std::vector<Status> statuses;
  BatchWriter writer(*db, io.get_executor());
  writer.set_sync_linger(std::chrono::milliseconds(20));
  failpoint::Enable("storage.fail_wal_sync");
  writer.Submit(SyncWithNext(1, &levels, [&](Status s) { statuses.push_back(s); }));
  const bool answered = RunUntil(io, [&] { return statuses.size() == 1; });
  failpoint::Disable("storage.fail_wal_sync");
  REQUIRE(answered);
  CHECK(statuses[0].code() == StatusCode::kIoError);
  writer.Submit(Insert(2, "after", [&](Status s) { statuses.push_back(s); }));
  REQUIRE(RunUntil(io, [&] { return statuses.size() == 2; }));
  CHECK(statuses[1].code() == StatusCode::kIoError);
  CHECK(QueryInt(*db, "SELECT count(*) FROM t WHERE id = 2") == 0);  // not run at all
}

TEST_CASE("SyncWal fails when the database has no WAL open") {
  TempDir dir;
  sqlite::OpenOptions options;
  options.wal = false;
  auto db = sqlite::Database::Open(dir.File("plain.db"), options);
  REQUIRE(db.ok());
  REQUIRE((*db)->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY)").ok());
  CHECK((*db)->SyncWal().code() == StatusCode::kIoError);
}

}  // namespace
}  // namespace commitd
