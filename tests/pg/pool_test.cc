// PgPool and PgConnection's non-blocking operations against a real
// PostgreSQL server, whose DSN tests/integration/test_postgres_pool.py passes
// in the environment (COMMITD_TEST_PG_DSN, a superuser).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <filesystem>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "participant/pg_connection.h"
#include "participant/pg_pool.h"

// g++ 12 reports -Wmismatched-new-delete for Asio's recycled coroutine frames
// (common/http_client.cc says why it is a false positive).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

using namespace commitd::participant::pg;
using commitd::Result;
using commitd::Status;

namespace {

// The TCP keepalive settings of each TCP socket this process has open, by descriptor.
struct Keepalive {
  int on = 0;
  int idle_s = 0;
  int interval_s = 0;
  int count = 0;
};
std::map<int, Keepalive> OpenTcpKeepalives() {
  std::map<int, Keepalive> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(entry.path().filename().string());
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int type = 0;
    socklen_t len = sizeof(type);
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) continue;
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof(addr);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0 || addr.ss_family != AF_INET) continue;
    Keepalive& k = found[fd];
    len = sizeof(int);
    ::getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &k.on, &len);
    ::getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &k.idle_s, &len);
    ::getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &k.interval_s, &len);
    ::getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &k.count, &len);
  }
  return found;
}

// The settings of the TCP sockets opened since `before` was taken.
std::vector<Keepalive> NewTcpKeepalives(const std::map<int, Keepalive>& before) {
  std::vector<Keepalive> opened;
  for (const auto& [fd, k] : OpenTcpKeepalives()) {
    if (!before.contains(fd)) opened.push_back(k);
  }
  return opened;
}

std::string Dsn() {
  const char* dsn = std::getenv("COMMITD_TEST_PG_DSN");
  REQUIRE_MESSAGE(dsn != nullptr, "COMMITD_TEST_PG_DSN is not set: run this through test_postgres_pool.py");
  return dsn;
}

std::string TlsDsn() {
  const char* dsn = std::getenv("COMMITD_TEST_PG_TLS_DSN");
  REQUIRE_MESSAGE(dsn != nullptr, "COMMITD_TEST_PG_TLS_DSN is not set: run this through test_postgres_pool.py");
  return dsn;
}

// A pool on an event loop of the test's own; Run() turns the loop until
// every job has ended, failing the test if that takes longer than 60 s.
struct Loop {
  explicit Loop(const std::string& dsn, std::size_t connections = 1)
      : pool(io.get_executor(), dsn, "commitd-test", connections, nullptr) {}
  void Run() {
    bool idle = false;
    pool.WhenIdle([&idle] { idle = true; });
    boost::asio::steady_timer guard(io, std::chrono::seconds(60));
    guard.async_wait([this](const boost::system::error_code& e) {
      if (!e) io.stop();
    });
    io.restart();
    while (!idle && !io.stopped()) io.run_one();
    guard.cancel();
    REQUIRE_MESSAGE(idle, "the pool's jobs did not end within 60 s");
  }
  boost::asio::io_context io;
  PgPool pool;
};

// One statement on the job's connection: its result (or why there was none)
// goes to *out. A coroutine taking its arguments by value, as jobs must be.
Awaitable<void> RunStatement(PgLink& link, std::string sql, std::optional<PgResult>* out, std::string* failed) {
  Result<PgConnection*> got = co_await link.Get();
  if (!got.ok()) {
    *failed = got.status().message();
    co_return;
  }
  PgResult r = co_await (*got)->ExecAsync(sql);
  link.DropIfBroken(r);
  out->emplace(std::move(r));
}

// Answers of one row from 1 byte to 1 MiB, and of 2 to 40 rows of 100 bytes
// to 10 KB each, one after another on the loop's connection.
void CheckAnswersOfEverySize(Loop& loop) {
  struct Shape {
    std::size_t width;
    std::size_t rows;
  };
  std::vector<Shape> shapes;
  for (std::size_t width = 1; width < (1u << 20); width = width * 5 / 4 + 1) shapes.push_back({width, 1});
  for (std::size_t width : {100u, 999u, 4000u, 6100u, 10000u}) {
    for (std::size_t rows = 2; rows <= 40; ++rows) shapes.push_back({width, rows});
  }
  std::vector<std::optional<PgResult>> answers(shapes.size());
  std::string failed;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const std::string sql = "SELECT repeat('x', " + std::to_string(shapes[i].width) + ") FROM generate_series(1, " +
                            std::to_string(shapes[i].rows) + ")";
    loop.pool.Submit(
        [&answers, &failed, i, sql](PgLink& link) { return RunStatement(link, sql, &answers[i], &failed); });
  }
  loop.Run();
  CHECK(failed.empty());
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    CAPTURE(shapes[i].width);
    CAPTURE(shapes[i].rows);
    REQUIRE(answers[i].has_value());
    REQUIRE(answers[i]->ok());
    REQUIRE(answers[i]->rows() == static_cast<int>(shapes[i].rows));
    CHECK(answers[i]->value(static_cast<int>(shapes[i].rows) - 1, 0).size() == shapes[i].width);
  }
}

Awaitable<void> RunPipeline(PgLink& link, std::vector<PipelinedStatement> statements,
                            std::vector<PgResult>* out) {
  Result<PgConnection*> got = co_await link.Get();
  REQUIRE(got.ok());
  *out = co_await (*got)->PipelineAsync(statements);
}

}  // namespace

TEST_CASE("a statement PostgreSQL takes long to answer does not hold up the event loop") {
  Loop loop(Dsn());
  std::optional<PgResult> slept;
  std::string failed;
  loop.pool.Submit([&](PgLink& link) { return RunStatement(link, "SELECT pg_sleep(0.5)", &slept, &failed); });
  // Fires while the statement runs only if the loop is free meanwhile.
  bool fired_while_sleeping = false;
  boost::asio::steady_timer tick(loop.io, std::chrono::milliseconds(10));
  tick.async_wait([&](const boost::system::error_code& e) { fired_while_sleeping = !e && !slept.has_value(); });
  loop.Run();
  REQUIRE_MESSAGE(slept.has_value(), failed);
  CHECK(slept->ok());
  CHECK(fired_while_sleeping);
}

TEST_CASE("jobs run on several connections at once, and queue for one when all are busy") {
  Loop loop(Dsn(), 2);
  // Each statement reports its server process and takes 0.2 s: two
  // connections, three jobs.
  std::vector<std::optional<PgResult>> results(3);
  std::vector<std::string> failures(3);
  for (std::size_t i = 0; i < results.size(); ++i) {
    loop.pool.Submit([&, i](PgLink& link) {
      return RunStatement(link, "SELECT pg_backend_pid(), pg_sleep(0.2)", &results[i], &failures[i]);
    });
  }
  const auto start = std::chrono::steady_clock::now();
  loop.Run();
  const auto took = std::chrono::steady_clock::now() - start;
  std::vector<std::string> pids;
  for (std::size_t i = 0; i < results.size(); ++i) {
    REQUIRE_MESSAGE(results[i].has_value(), failures[i]);
    REQUIRE(results[i]->ok());
    pids.push_back(results[i]->value(0, 0));
  }
  CHECK(pids[0] != pids[1]);                           // two connections at once
  CHECK((pids[2] == pids[0] || pids[2] == pids[1]));  // the third waited for one of them
  CHECK(took >= std::chrono::milliseconds(400));       // two rounds of 0.2 s, not three at once
}

TEST_CASE("a connection the server ended is reported lost, and the next job opens another") {
  const std::string dsn = Dsn();
  Loop loop(dsn);
  std::optional<PgResult> first;
  std::string failed;
  loop.pool.Submit([&](PgLink& link) { return RunStatement(link, "SELECT pg_backend_pid()", &first, &failed); });
  loop.Run();
  REQUIRE_MESSAGE(first.has_value(), failed);
  const std::string pid = first->value(0, 0);

  auto admin = PgConnection::Connect(dsn, "commitd-test-admin");
  REQUIRE(admin.ok());
  PgResult ended = (*admin)->Exec("SELECT pg_terminate_backend($1, 10000)", {pid});
  REQUIRE(ended.ok());
  REQUIRE(ended.value(0, 0) == "t");

  std::optional<PgResult> lost;
  loop.pool.Submit([&](PgLink& link) { return RunStatement(link, "SELECT 1", &lost, &failed); });
  loop.Run();
  REQUIRE(lost.has_value());
  CHECK(lost->connection_lost());

  std::optional<PgResult> again;
  loop.pool.Submit([&](PgLink& link) { return RunStatement(link, "SELECT pg_backend_pid()", &again, &failed); });
  loop.Run();
  REQUIRE_MESSAGE(again.has_value(), failed);
  REQUIRE(again->ok());
  CHECK(again->value(0, 0) != pid);
}

TEST_CASE("a server that cannot be reached fails the job with the reason, and the loop runs on") {
  // Port 1 on loopback: nothing listens there.
  Loop loop("host=127.0.0.1 port=1 dbname=none connect_timeout=2");
  std::optional<PgResult> never;
  std::string failed;
  loop.pool.Submit([&](PgLink& link) { return RunStatement(link, "SELECT 1", &never, &failed); });
  loop.Run();
  CHECK_FALSE(never.has_value());
  CHECK(failed.find("cannot connect to PostgreSQL") != std::string::npos);
}

TEST_CASE("a server that never answers delays each job by one connect timeout, not one per job before it") {
  // Listens and never answers: the kernel takes each connection, libpq
  // waits for the server's reply until connect_timeout (2 s).
  boost::asio::io_context silent_io;
  boost::asio::ip::tcp::acceptor silent(silent_io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string dsn = "host=127.0.0.1 port=" + std::to_string(silent.local_endpoint().port()) +
                          " dbname=none connect_timeout=2";
  Loop loop(dsn, 3);
  std::vector<std::optional<PgResult>> results(3);
  std::vector<std::string> failures(3);
  for (std::size_t i = 0; i < results.size(); ++i) {
    loop.pool.Submit([&, i](PgLink& link) { return RunStatement(link, "SELECT 1", &results[i], &failures[i]); });
  }
  const auto start = std::chrono::steady_clock::now();
  loop.Run();
  const auto took = std::chrono::steady_clock::now() - start;
  for (std::size_t i = 0; i < results.size(); ++i) {
    CHECK_FALSE(results[i].has_value());
    CHECK(failures[i].find("cannot connect to PostgreSQL") != std::string::npos);
  }
  CHECK(took >= std::chrono::seconds(2));
  CHECK(took < std::chrono::seconds(5));  // in parallel: one timeout, not three in a row
}

TEST_CASE("a pooled connection leaves no descriptor a started program would inherit") {
  auto inheritable = [] {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      const int fd = std::stoi(entry.path().filename().string());
      const int flags = ::fcntl(fd, F_GETFD);
      if (fd > 2 && flags >= 0 && (flags & FD_CLOEXEC) == 0) ++count;
    }
    return count;
  };
  const int before = inheritable();
  Loop loop(Dsn());
  std::optional<PgResult> result;
  std::string failed;
  loop.pool.Submit([&](PgLink& link) { return RunStatement(link, "SELECT 1", &result, &failed); });
  loop.Run();
  REQUIRE_MESSAGE(result.has_value(), failed);
  REQUIRE(result->ok());
  CHECK(inheritable() == before);
}

TEST_CASE("a connection probes a silent server with TCP keepalives, and the DSN may set its own") {
  const std::map<int, Keepalive> before = OpenTcpKeepalives();
  {
    auto conn = PgConnection::Connect(Dsn(), "commitd-test");
    REQUIRE(conn.ok());
    std::vector<Keepalive> sockets = NewTcpKeepalives(before);
    REQUIRE(sockets.size() == 1);  // libpq's
    for (const Keepalive& k : sockets) {
      CHECK(k.on == 1);
      CHECK(k.idle_s == 10);
      CHECK(k.interval_s == 5);
      CHECK(k.count == 3);
    }
  }
  auto conn = PgConnection::Connect(Dsn() + " keepalives_idle=30 keepalives_count=7", "commitd-test");
  REQUIRE(conn.ok());
  std::vector<Keepalive> sockets = NewTcpKeepalives(before);
  REQUIRE(sockets.size() == 1);
  for (const Keepalive& k : sockets) {
    CHECK(k.on == 1);
    CHECK(k.idle_s == 30);
    CHECK(k.interval_s == 5);
    CHECK(k.count == 7);
  }
}

TEST_CASE("a pipeline sending more than the socket holds while the answers fill the other way ends") {
  // The first statement's answer (16 MB) fills the socket towards the agent
  // while the second's parameter (16 MB) is still being sent: each side
  // must take in what the other sends.
  Loop loop(Dsn());
  const std::string big(16 << 20, 'x');
  std::vector<PgResult> results;
  std::vector<PipelinedStatement> statements{
      {"SELECT repeat('y', 16 << 20)", {}},
      {"SELECT length($1)", {big}},
  };
  loop.pool.Submit([&](PgLink& link) { return RunPipeline(link, statements, &results); });
  loop.Run();
  REQUIRE(results.size() == 2);
  REQUIRE(results[0].ok());
  CHECK(results[0].value(0, 0).size() == (16u << 20));
  REQUIRE(results[1].ok());
  CHECK(results[1].value(0, 0) == std::to_string(big.size()));
}

TEST_CASE("a session over TLS to the server itself: its answers of every size arrive") {
  Loop loop(TlsDsn());
  std::optional<PgResult> session;
  std::string failed;
  loop.pool.Submit([&](PgLink& link) {
    return RunStatement(link, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &session, &failed);
  });
  loop.Run();
  REQUIRE_MESSAGE(session.has_value(), failed);
  REQUIRE(session->ok());
  REQUIRE(session->value(0, 0) == "true");
  CheckAnswersOfEverySize(loop);
}

TEST_CASE("the blocking forms run the same operations on the connection's own loop, again and again") {
  auto conn = PgConnection::Connect(Dsn(), "commitd-test");
  REQUIRE(conn.ok());
  for (int i = 0; i < 3; ++i) {
    std::vector<PgResult> r = (*conn)->Pipeline({{"SELECT $1::int + 1", {std::to_string(i)}, true}});
    REQUIRE(r.size() == 1);
    REQUIRE(r[0].ok());
    CHECK(r[0].value(0, 0) == std::to_string(i + 1));
    PgResult waited = (*conn)->Wait((*conn)->ExecAsync("SELECT 7; SELECT 8"));
    REQUIRE(waited.ok());
    CHECK(waited.value(0, 0) == "8");  // the last result, as Exec answers
  }
}
