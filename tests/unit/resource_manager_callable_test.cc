// C++ procedures (Agent::RegisterProcedure) run by the resource manager inside
// the prepare savepoint, like SQL procedures: their writes become the
// changeset and the lock keys, and the same authorizer guards them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "participant/resource_manager.h"

namespace commitd::participant {
namespace {

using nlohmann::json;

constexpr char kSchema[] = R"sql(
CREATE TABLE stock(sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL CHECK(quantity >= 0));
CREATE TABLE stock_journal(txid TEXT NOT NULL, sku TEXT NOT NULL, delta INTEGER NOT NULL, PRIMARY KEY(txid, sku));
CREATE TABLE blobs(k BLOB PRIMARY KEY, v INTEGER);
INSERT INTO stock VALUES('widget', 10), ('gadget', 5);
)sql";

Status Reserve(ProcedureContext& ctx) {
  const json params = {{"sku", ctx.args().at("sku")}, {"quantity", ctx.args().at("quantity")}};
  auto taken = ctx.Run("UPDATE stock SET quantity = quantity - :quantity WHERE sku = :sku AND quantity >= :quantity",
                       params);
  if (!taken.ok()) return taken.status();
  if (taken->changes != 1) return Status::Conflict("insufficient stock");
  auto journal = ctx.Run("INSERT INTO stock_journal VALUES(:txid, :sku, -:quantity)", params);
  if (!journal.ok()) return journal.status();
  auto left = ctx.Run("SELECT quantity FROM stock WHERE sku = :sku", params);
  if (!left.ok()) return left.status();
  ctx.AddRow({{"txid", ctx.txid()}, {"remaining", left->rows[0]["quantity"]}});
  return Status::Ok();
}

wire::Op Call(const std::string& name, json args = json::object()) {
  wire::Op op;
  op.procedure = name;
  op.args = std::move(args);
  return op;
}

class Fixture {
 public:
  Fixture() {
    char pattern[] = "/tmp/rm_callable_test.XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    dir_ = pattern;
    auto db = sqlite::Database::Open((dir_ / "inventory.db").string());
    REQUIRE(db.ok());
    db_ = std::move(db).value();
    REQUIRE(db_->Exec(kSchema).ok());
    Procedures procs;
    REQUIRE(procs.Add("reserve", Reserve).ok());
    REQUIRE(procs.Add("fail", [](ProcedureContext&) { return Status::InvalidArgument("nope"); }).ok());
    REQUIRE(procs.Add("throw", [](ProcedureContext&) -> Status { throw std::runtime_error("boom"); }).ok());
    REQUIRE(procs.Add("commit_inside", [](ProcedureContext& ctx) {
                  auto r = ctx.Run("COMMIT");
                  return r.ok() ? Status::Ok() : r.status();
                }).ok());
    REQUIRE(procs.Add("raw_begin", [](ProcedureContext& ctx) {
                  sqlite3_exec(ctx.db(), "BEGIN", nullptr, nullptr, nullptr);
                  return Status::Ok();  // ignores the refusal; the agent does not
                }).ok());
    REQUIRE(procs.Add("reserved_table", [](ProcedureContext& ctx) {
                  auto r = ctx.Run("DELETE FROM _commitd_finished");
                  return r.ok() ? Status::Ok() : r.status();
                }).ok());
    REQUIRE(procs.Add("raw_write", [](ProcedureContext& ctx) {
                  int rc = sqlite3_exec(ctx.db(), "UPDATE stock SET quantity = 0 WHERE sku = 'gadget'", nullptr,
                                        nullptr, nullptr);
                  return rc == SQLITE_OK ? Status::Ok() : Status::Internal(sqlite3_errmsg(ctx.db()));
                }).ok());
    REQUIRE(procs.Add("blob_key", [](ProcedureContext& ctx) {
                  auto r = ctx.Run("INSERT INTO blobs VALUES(x'ff00fe80', 1)");
                  return r.ok() ? Status::Ok() : r.status();
                }).ok());
    auto rm = ResourceManager::Open(*db_, std::move(procs), {});
    REQUIRE(rm.ok());
    rm_ = std::move(rm).value();
  }
  ~Fixture() {
    rm_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  ExecutionResult Execute(const std::string& txid, const std::vector<wire::Op>& ops) {
    sqlite::Transaction tx(*db_);
    REQUIRE(tx.status().ok());
    ExecutionResult result = rm_->Execute(txid, ops);
    CHECK(db_->InTransaction());
    REQUIRE(tx.Commit().ok());
    return result;
  }

  Status PersistAndCommit(const std::string& txid, const ExecutionResult& executed) {
    PreparedRecord record;
    record.txid = txid;
    record.protocol = "2pc";
    record.state = "prepared";
    record.changeset = executed.changeset;
    record.lock_keys = executed.lock_keys;
    sqlite::Transaction tx(*db_);
    if (Status s = rm_->PersistPrepared(record); !s.ok()) return s;
    if (Status s = rm_->ApplyCommit(txid); !s.ok()) return s;
    return tx.Commit();
  }

  int64_t Quantity(const std::string& sku) {
    sqlite::Statement* stmt = db_->Prepare("SELECT quantity FROM stock WHERE sku = ?1");
    REQUIRE(stmt != nullptr);
    stmt->Bind(1, sku);
    REQUIRE(stmt->Step());
    int64_t q = stmt->Int(0);
    stmt->Reset();
    return q;
  }

  ResourceManager& rm() { return *rm_; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<sqlite::Database> db_;
  std::unique_ptr<ResourceManager> rm_;
};

TEST_CASE("a callable's writes become the changeset and lock keys, and apply at commit") {
  Fixture f;
  ExecutionResult r = f.Execute("tx1", {Call("reserve", {{"sku", "widget"}, {"quantity", 3}})});
  REQUIRE_MESSAGE(r.ok, r.reason);
  CHECK(f.Quantity("widget") == 10);  // rolled back: committed data only
  CHECK(r.results == json::array({json::array({{{"txid", "tx1"}, {"remaining", 7}}})}));
  REQUIRE(r.lock_keys.size() == 2);
  CHECK(r.lock_keys[0].rfind("stock_journal|pk|", 0) == 0);
  CHECK(r.lock_keys[1] == "stock|pk|t6:widget");
  REQUIRE(f.PersistAndCommit("tx1", r).ok());
  CHECK(f.Quantity("widget") == 7);
}

TEST_CASE("a callable's error, exception or broken rule is a no vote with its reason") {
  Fixture f;
  ExecutionResult r = f.Execute("tx", {Call("reserve", {{"sku", "gadget"}, {"quantity", 6}})});
  CHECK_FALSE(r.ok);
  CHECK(r.reason == "procedure 'reserve': insufficient stock");
  r = f.Execute("tx", {Call("fail")});
  CHECK(r.reason == "procedure 'fail': nope");
  r = f.Execute("tx", {Call("throw")});
  CHECK(r.reason == "procedure 'throw' threw: boom");
  r = f.Execute("tx", {Call("commit_inside")});
  CHECK(r.reason == "procedure 'commit_inside': transaction control statements are not allowed in ops");
  r = f.Execute("tx", {Call("raw_begin")});
  CHECK(r.reason == "procedure 'raw_begin': transaction control statements are not allowed in ops");
  r = f.Execute("tx", {Call("reserved_table")});
  CHECK_FALSE(r.ok);
  CHECK(r.reason.find("_commitd_finished' is reserved") != std::string::npos);
  CHECK(f.Quantity("gadget") == 5);
}

TEST_CASE("writes through the raw connection are recorded too") {
  Fixture f;
  ExecutionResult r = f.Execute("raw", {Call("raw_write")});
  REQUIRE_MESSAGE(r.ok, r.reason);
  CHECK(r.lock_keys == std::vector<std::string>{"stock|pk|t6:gadget"});
  REQUIRE(f.PersistAndCommit("raw", r).ok());
  CHECK(f.Quantity("gadget") == 0);
}

TEST_CASE("keys of blobs and non-UTF-8 values are stored as hex") {
  Fixture f;
  ExecutionResult r = f.Execute("blob", {Call("blob_key")});
  REQUIRE_MESSAGE(r.ok, r.reason);
  CHECK(r.lock_keys == std::vector<std::string>{"blobs|pk|b4:ff00fe80"});
  REQUIRE(f.PersistAndCommit("blob", r).ok());
}

TEST_CASE("the catalog lists callables and refuses duplicates") {
  Fixture f;
  CHECK(f.rm().Validate({Call("reserve")}).ok());
  CHECK(f.rm().Validate({Call("missing")}).message() == "unknown procedure 'missing'");
  auto names = f.rm().procedures().Names();
  CHECK(std::find(names.begin(), names.end(), "reserve") != names.end());
  Procedures procs;
  CHECK(procs.Add("x", Reserve).ok());
  CHECK_FALSE(procs.Add("x", Reserve).ok());
  CHECK_FALSE(procs.Add("", Reserve).ok());
  CHECK_FALSE(procs.Add("y", nullptr).ok());
}

}  // namespace
}  // namespace commitd::participant
