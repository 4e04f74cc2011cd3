#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "common/sqlite_db.h"
#include "coordinator/decision_store.h"
#include "tests/unit/support/temp_dir.h"

namespace commitd::coordinator {
namespace {

using testing::TempDir;

std::unique_ptr<sqlite::Database> OpenStore(const std::string& path) {
  auto db = sqlite::Database::Open(path);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  REQUIRE(DecisionStore(**db).CreateSchema().ok());
  return std::move(db).value();
}

DecisionRecord Decision(const std::string& txid) {
  DecisionRecord r;
  r.txid = txid;
  r.outcome = Outcome::kCommitted;
  r.participants = {{"bank-a", "http://127.0.0.1:1"}};
  r.reply = {{"txid", txid}, {"outcome", "committed"}};
  r.created_ms = r.decided_ms = 1;
  return r;
}

TEST_CASE("a log's identity is set once and survives reopening") {
  TempDir dir;
  const std::string path = dir.File("decisions.db");
  {
    auto db = OpenStore(path);
    DecisionStore store(*db);
    CHECK(store.LogId().value().empty());
    REQUIRE(store.SetLogId("0123456789abcdef").ok());
    CHECK(store.SetLogId("0123456789abcdef").ok());
    Status other = store.SetLogId("fedcba9876543210");
    CHECK(other.code() == StatusCode::kConflict);
    CHECK(store.SetLogId("").code() == StatusCode::kInvalidArgument);
  }
  auto db = OpenStore(path);
  CHECK(DecisionStore(*db).LogId().value() == "0123456789abcdef");
}

TEST_CASE("incarnations count up across reopenings") {
  TempDir dir;
  const std::string path = dir.File("decisions.db");
  {
    auto db = OpenStore(path);
    CHECK(DecisionStore(*db).NextIncarnation().value() == 1);
    CHECK(DecisionStore(*db).NextIncarnation().value() == 2);
  }
  auto db = OpenStore(path);
  CHECK(DecisionStore(*db).NextIncarnation().value() == 3);
}

TEST_CASE("a damaged log fails its integrity check with the file's name") {
  TempDir dir;
  const std::string path = dir.File("decisions.db");
  {
    auto db = OpenStore(path);
    DecisionStore store(*db);
    REQUIRE(db->Exec("PRAGMA journal_mode=DELETE").ok());
    for (int i = 0; i < 200; ++i) REQUIRE(store.InsertDecision(Decision("tx-" + std::to_string(i))).ok());
    CHECK(store.CheckIntegrity().ok());
  }
  {
    // Random-looking bytes over the middle of the file (inside b-tree pages).
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0, std::ios::end);
    const std::streamoff size = f.tellp();
    REQUIRE(size > 3 * 4096);
    for (std::streamoff at = 4096 + 100; at < size; at += 4096) {
      f.seekp(at);
      for (int i = 0; i < 64; ++i) f.put(static_cast<char>((i * 151 + 7) & 0xff));
    }
  }
  auto db = sqlite::Database::Open(path);
  Status s = db.ok() ? DecisionStore(**db).CheckIntegrity() : db.status();
  CHECK_FALSE(s.ok());
  CHECK(s.message().find(path) != std::string::npos);
}

}  // namespace
}  // namespace commitd::coordinator
