// PostgresStore against a real PostgreSQL server, whose DSN
// tests/integration/test_postgres_store.py passes in the environment
// (COMMITD_TEST_PG_DSN, a superuser).
#include <doctest/doctest.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "participant/pg_connection.h"
#include "participant/postgres_store.h"

using namespace commitd::participant;
namespace wire = commitd::wire;
using commitd::Result;
using commitd::Status;
using commitd::StatusCode;

namespace {

constexpr char kProcedures[] = R"json({ "procedures": {
  "debit": {"sql": "UPDATE accounts SET balance = balance - :amount WHERE id = :account", "expect_changes": 1}
} })json";

const Adoption kAdoption{"new-log", std::string(64, 'c'), std::string(64, 'd')};

std::string Dsn() {
  const char* dsn = std::getenv("COMMITD_TEST_PG_DSN");
  REQUIRE_MESSAGE(dsn != nullptr, "COMMITD_TEST_PG_DSN is not set: run this through test_postgres_store.py");
  return dsn;
}

std::unique_ptr<pg::PgConnection> Session() {
  auto conn = pg::PgConnection::Connect(Dsn(), "commitd-test");
  REQUIRE_MESSAGE(conn.ok(), conn.status().message());
  return std::move(conn).value();
}

// The first value of a query's first row.
std::string Scalar(pg::PgConnection& conn, const std::string& sql,
                   const std::vector<std::optional<std::string>>& params) {
  pg::PgResult r = conn.Exec(sql, params);
  REQUIRE_MESSAGE(r.ok(), pg::Describe(r));
  REQUIRE(r.rows() == 1);
  return r.value(0, 0);
}

void CreateAccounts(pg::PgConnection& conn, const std::string& account) {
  pg::PgResult r = conn.Exec("CREATE TABLE IF NOT EXISTS accounts(id text PRIMARY KEY, balance int NOT NULL)");
  REQUIRE_MESSAGE(r.ok(), pg::Describe(r));
  r = conn.Exec("INSERT INTO accounts VALUES ($1, 100)", {account});
  REQUIRE_MESSAGE(r.ok(), pg::Describe(r));
}

// One agent's store on an event loop of the test's own; Run() runs the jobs submitted so far to their end.
class Agent {
 public:
  explicit Agent(const std::string& name) {
    auto procedures = Procedures::Parse(kProcedures);
    REQUIRE(procedures.ok());
    PostgresStoreOptions options;
    options.agent = name;
    options.dsn = Dsn();
    options.connections = 2;
    auto opened = PostgresStore::Open(options, std::move(procedures).value(), [] { return int64_t{1'000}; },
                                      io_.get_executor());
    REQUIRE_MESSAGE(opened.ok(), opened.status().message());
    store_ = std::move(opened).value();
  }
  ~Agent() {
    Run();
    store_.reset();
  }

  PostgresStore& store() { return *store_; }

  void Run() {
    bool idle = false;
    store_->WhenIdle([&idle] { idle = true; });
    io_.restart();
    io_.run();
    REQUIRE(idle);
  }

  std::vector<PreparedRecord> Load() {
    auto contents = store_->Load();
    REQUIRE_MESSAGE(contents.ok(), contents.status().message());
    return contents->records;
  }

  PrepareResult Prepare(const std::string& txid, const std::string& account) {
    action::Prepare prepare;
    wire::Op debit;
    debit.procedure = "debit";
    debit.args = {{"account", account}, {"amount", 30}};
    prepare.ops.push_back(debit);
    prepare.record.txid = txid;
    prepare.record.protocol = "2pc";
    prepare.record.state = "prepared";
    prepare.record.coordinator = "http://127.0.0.1:7000";
    prepare.record.log_id = "old-log";
    prepare.record.abort_key = std::string(64, 'a');
    prepare.record.commit_check = std::string(64, 'b');
    std::optional<PrepareResult> result;
    store_->Prepare(prepare, [&result](const std::string&, PrepareResult r, Status) { result = std::move(r); });
    Run();
    REQUIRE(result.has_value());
    return *result;
  }

  // Runs one of the store's calls that answer a Status.
  Status Call(const std::function<void(std::function<void(Status)>)>& call) {
    std::optional<Status> status;
    call([&status](Status s) { status = s; });
    Run();
    REQUIRE(status.has_value());
    return *status;
  }

 private:
  boost::asio::io_context io_;
  std::unique_ptr<PostgresStore> store_;
};

int64_t AdoptedRows(pg::PgConnection& conn, const std::string& agent) {
  return std::stoll(Scalar(conn, "SELECT count(*) FROM _commitd_pg_adopted WHERE agent = $1", {agent}));
}

}  // namespace

TEST_CASE("an adoption survives a reload with its keys, and goes with the commit") {
  auto conn = Session();
  CreateAccounts(*conn, "ann");
  {
    Agent agent("bank-adopt");
    agent.Load();
    REQUIRE(agent.Prepare("t-adopt", "ann").yes);
    CHECK(agent.Call([&](auto done) { agent.store().Adopt("t-adopt", kAdoption, done); }).ok());
    CHECK(agent.Call([&](auto done) { agent.store().Adopt("t-missing", kAdoption, done); }).code() ==
          StatusCode::kNotFound);
  }
  Agent reloaded("bank-adopt");
  std::vector<PreparedRecord> records = reloaded.Load();
  REQUIRE(records.size() == 1);
  CHECK(records[0].txid == "t-adopt");
  CHECK(records[0].adopted_by == "new-log");
  CHECK(records[0].abort_key == kAdoption.abort_key);
  CHECK(records[0].commit_check == kAdoption.commit_check);
  CHECK(records[0].log_id == "old-log");  // the prepare's, kept
  CHECK(records[0].coordinator == "http://127.0.0.1:7000");

  CHECK(reloaded.Call([&](auto done) { reloaded.store().Commit("t-adopt", done); }).ok());
  CHECK(AdoptedRows(*conn, "bank-adopt") == 0);
  CHECK(Scalar(*conn, "SELECT balance FROM accounts WHERE id = $1", {"ann"}) == "70");
}

TEST_CASE("an adoption made in this run goes with the commit, and with an abort") {
  auto conn = Session();
  CreateAccounts(*conn, "bob");
  CreateAccounts(*conn, "cat");
  Agent agent("bank-settle");
  agent.Load();
  REQUIRE(agent.Prepare("t-commit", "bob").yes);
  REQUIRE(agent.Prepare("t-abort", "cat").yes);
  REQUIRE(agent.Call([&](auto done) { agent.store().Adopt("t-commit", kAdoption, done); }).ok());
  REQUIRE(agent.Call([&](auto done) { agent.store().Adopt("t-abort", kAdoption, done); }).ok());
  CHECK(AdoptedRows(*conn, "bank-settle") == 2);
  CHECK(agent.Call([&](auto done) { agent.store().Commit("t-commit", done); }).ok());
  CHECK(agent.Call([&](auto done) { agent.store().Abort("t-abort", done); }).ok());
  CHECK(AdoptedRows(*conn, "bank-settle") == 0);
  CHECK(Scalar(*conn, "SELECT balance FROM accounts WHERE id = $1", {"bob"}) == "70");
  CHECK(Scalar(*conn, "SELECT balance FROM accounts WHERE id = $1", {"cat"}) == "100");
}

TEST_CASE("a load clears an adoption row whose prepared transaction is gone") {
  auto conn = Session();
  Agent agent("bank-stale");
  agent.Load();
  pg::PgResult r = conn->Exec(
      "INSERT INTO _commitd_pg_adopted(agent, txid, log_id, abort_key, commit_check) "
      "VALUES ('bank-stale', 't-gone', 'new-log', '', '')");
  REQUIRE_MESSAGE(r.ok(), pg::Describe(r));
  CHECK(agent.Load().empty());
  CHECK(AdoptedRows(*conn, "bank-stale") == 0);
}
