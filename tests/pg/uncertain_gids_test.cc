// UncertainGids against a real PostgreSQL server, whose DSNs
// tests/integration/test_postgres_uncertain_gids.py passes in the
// environment: COMMITD_TEST_PG_DSN (a superuser) and
// COMMITD_TEST_PG_DSN_UNPRIVILEGED (a role that cannot see other roles'
// sessions in full).
#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "participant/pg_connection.h"
#include "participant/pg_uncertain_gids.h"
#include "participant/pg_pool.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

// g++ 12 reports -Wmismatched-new-delete for Asio's recycled coroutine frames
// (common/http_client.cc says why it is a false positive).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

using namespace commitd::participant::pg;

namespace {

std::string Dsn(const char* variable) {
  const char* dsn = std::getenv(variable);
  REQUIRE_MESSAGE(dsn != nullptr, variable, " is not set: run this through test_postgres_uncertain_gids.py");
  return dsn;
}

std::unique_ptr<PgConnection> Session(const std::string& dsn, const std::string& name) {
  auto conn = PgConnection::Connect(dsn, name);
  REQUIRE_MESSAGE(conn.ok(), conn.status().message());
  REQUIRE(conn->get()->ReadBackend().ok());
  return std::move(conn).value();
}

// Each session of a pool reads its server process, as the store's do.
commitd::Status ReadBackend(PgConnection& conn) { return conn.ReadBackend(); }

// A pool of one connection, as the store runs it, on an event loop of the test's own.
struct OnePool {
  explicit OnePool(const std::string& dsn) : pool(io.get_executor(), dsn, "commitd-test", 1, ReadBackend) {}
  boost::asio::io_context io;
  PgPool pool;
};

// One retry on the pool's connection.
void RollBackOnce(OnePool& one, UncertainGids& uncertain) {
  one.pool.Submit([&uncertain](PgLink& link) { return uncertain.RollBack(link); });
  bool idle = false;
  one.pool.WhenIdle([&idle] { idle = true; });
  one.io.restart();
  one.io.run();
  REQUIRE(idle);
}

const std::vector<std::string> kGid = {"commitd:test:tx-1"};

// A retry, noting before and after it whether kGid is listed.
Awaitable<void> RollBackNoting(UncertainGids& uncertain, PgLink& link, std::vector<bool>* listed) {
  listed->push_back(uncertain.Contains(kGid[0]));
  co_await uncertain.RollBack(link);
  listed->push_back(uncertain.Contains(kGid[0]));
}

// What one retry leaves of kGid recorded as run by `running`, on a pool connected with pool_dsn.
std::vector<std::string> LeftAfterOneRetry(const std::string& pool_dsn, const Backend& running) {
  OnePool pool(pool_dsn);
  UncertainGids uncertain;
  uncertain.Add(kGid[0], running);
  RollBackOnce(pool, uncertain);
  return uncertain.Gids();
}

// A start no process of the server has: the server did not run in 2000.
const BackendStart kOtherStart{"2000-01-01T00:00:00.000000Z"};

}  // namespace

TEST_CASE("a session's start is read as UTC text that PostgreSQL takes back whatever the session's settings") {
  auto conn = PgConnection::Connect(Dsn("COMMITD_TEST_PG_DSN"), "commitd-test");
  REQUIRE(conn.ok());
  PgConnection& c = **conn;
  CHECK_FALSE(c.backend().start.has_value());  // not read yet
  REQUIRE(c.Exec("SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'").ok());
  REQUIRE(c.ReadBackend().ok());
  const Backend own = c.backend();
  REQUIRE(own.start.has_value());
  CHECK(own.start->utc.size() == 27);
  CHECK(own.start->utc.back() == 'Z');
  PgResult same = c.Exec("SELECT backend_start = $1::timestamptz FROM pg_stat_activity WHERE pid = $2",
                         {own.start->utc, std::to_string(own.pid)});
  REQUIRE(same.ok());
  REQUIRE(same.rows() == 1);
  CHECK(same.value(0, 0) == "t");
}

TEST_CASE("a gid PostgreSQL does not know is kept while the process that ran it lives, and given up once it is gone") {
  const std::string dsn = Dsn("COMMITD_TEST_PG_DSN");
  OnePool pool(dsn);
  auto ran_it = Session(dsn, "commitd-test-prepare");
  UncertainGids uncertain;
  uncertain.Add(kGid[0], ran_it->backend());
  RollBackOnce(pool, uncertain);
  CHECK(uncertain.Gids() == kGid);
  RollBackOnce(pool, uncertain);
  CHECK(uncertain.Gids() == kGid);

  auto admin = Session(dsn, "commitd-test-admin");
  PgResult ended = admin->Exec("SELECT pg_terminate_backend($1, 10000)", {std::to_string(ran_it->backend().pid)});
  REQUIRE(ended.ok());
  REQUIRE(ended.value(0, 0) == "t");
  RollBackOnce(pool, uncertain);
  CHECK(uncertain.Gids().empty());
}

TEST_CASE("a live process with the recorded pid but another start is a later process: the gid is given up") {
  const std::string dsn = Dsn("COMMITD_TEST_PG_DSN");
  auto later = Session(dsn, "commitd-test-bystander");
  CHECK(LeftAfterOneRetry(dsn, Backend{later->backend().pid, kOtherStart}).empty());
}

TEST_CASE("without a recorded start, a live process with the pid keeps the gid") {
  const std::string dsn = Dsn("COMMITD_TEST_PG_DSN");
  auto live = Session(dsn, "commitd-test-bystander");
  CHECK(LeftAfterOneRetry(dsn, Backend{live->backend().pid, std::nullopt}) == kGid);
}

TEST_CASE("a process whose start the role may not see is taken as the one that ran the statement") {
  auto hidden = Session(Dsn("COMMITD_TEST_PG_DSN"), "commitd-test-bystander");
  CHECK(LeftAfterOneRetry(Dsn("COMMITD_TEST_PG_DSN_UNPRIVILEGED"), Backend{hidden->backend().pid, kOtherStart}) ==
        kGid);
}

TEST_CASE("a prepared uncertain gid is rolled back, its process alive or not") {
  const std::string dsn = Dsn("COMMITD_TEST_PG_DSN");
  OnePool pool(dsn);
  auto ran_it = Session(dsn, "commitd-test-prepare");
  REQUIRE(ran_it->Exec("BEGIN; PREPARE TRANSACTION 'commitd:test:tx-1'").ok());
  REQUIRE(ran_it->Exec("BEGIN; PREPARE TRANSACTION 'commitd:test:tx-2'").ok());
  UncertainGids uncertain;
  uncertain.Add("commitd:test:tx-1", ran_it->backend());
  uncertain.Add("commitd:test:tx-2", std::nullopt);
  RollBackOnce(pool, uncertain);
  CHECK(uncertain.Gids().empty());
  PgResult left = ran_it->Exec("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'commitd:test:%'");
  REQUIRE(left.ok());
  CHECK(left.value(0, 0) == "0");
}

TEST_CASE("a gid stays listed while a retry works on it, so that no new PREPARE of it can start meanwhile") {
  const std::string dsn = Dsn("COMMITD_TEST_PG_DSN");
  OnePool one(dsn);
  auto ran_it = Session(dsn, "commitd-test-prepare");
  UncertainGids uncertain;
  uncertain.Add(kGid[0], ran_it->backend());  // alive: kept
  CHECK(uncertain.Contains(kGid[0]));
  CHECK_FALSE(uncertain.Contains("commitd:test:tx-other"));

  // Checked from the loop while the retry waits for PostgreSQL.
  std::vector<bool> listed_meanwhile;
  one.pool.Submit([&uncertain](PgLink& link) { return uncertain.RollBack(link); });
  one.pool.Submit([&](PgLink& link) { return RollBackNoting(uncertain, link, &listed_meanwhile); });
  bool idle = false;
  one.pool.WhenIdle([&idle] { idle = true; });
  std::vector<bool> polled;
  boost::asio::post(one.io, [&] { polled.push_back(uncertain.Contains(kGid[0])); });
  one.io.run();
  REQUIRE(idle);
  CHECK(polled == std::vector<bool>{true});
  CHECK(listed_meanwhile == std::vector<bool>{true, true});
  CHECK(uncertain.Gids() == kGid);  // once, however many retries ran
}

TEST_CASE("a session reads its cluster with its start: the server's system identifier, for any role") {
  const std::string dsn = Dsn("COMMITD_TEST_PG_DSN");
  auto session = Session(dsn, "commitd-test");
  REQUIRE(session->backend().cluster.has_value());
  PgResult id = session->Exec("SELECT system_identifier::text FROM pg_control_system()");
  REQUIRE(id.ok());
  CHECK(*session->backend().cluster == id.value(0, 0));
  auto unprivileged = Session(Dsn("COMMITD_TEST_PG_DSN_UNPRIVILEGED"), "commitd-test");
  CHECK(unprivileged->backend().cluster == session->backend().cluster);
}

TEST_CASE("a gid whose statement ran on another cluster is kept: no session here can look for its process") {
  const std::string dsn = Dsn("COMMITD_TEST_PG_DSN");
  auto ran_it = Session(dsn, "commitd-test-prepare");
  const Backend here = ran_it->backend();
  auto admin = Session(dsn, "commitd-test-admin");
  PgResult ended = admin->Exec("SELECT pg_terminate_backend($1, 10000)", {std::to_string(here.pid)});
  REQUIRE(ended.ok());
  REQUIRE(ended.value(0, 0) == "t");
  Backend elsewhere = here;
  elsewhere.cluster = "1";  // no cluster's identifier
  CHECK(LeftAfterOneRetry(dsn, elsewhere) == kGid);
  CHECK(LeftAfterOneRetry(dsn, here).empty());  // this cluster's, and gone: given up
}
