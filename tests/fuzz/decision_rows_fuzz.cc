// Stored decision rows (decisions.db, read by DecisionStore: records, the
// participant registry, meta coordinator_urls), as a damaged or hand-edited
// file may hold them. Fields (0x1f-separated), each stored as text:
//   txid, protocol, outcome, participants, reason, idempotency_key, reply,
//   created_ms, decided_ms, finished, finished_ms, heuristic,
//   registry name, registry url, registry updated_ms, coordinator_urls
// A readable record must also survive InsertDecision and a state machine
// snapshot (SnapshotStateMachine, RestoreStateMachine) unchanged.
#include <memory>
#include <string>

#include "common/sqlite_db.h"
#include "coordinator/decision_store.h"
#include "coordinator/raft_codec.h"
#include "coordinator/state_snapshot.h"
#include "tests/fuzz/fuzz_input.h"

namespace commitd::coordinator {
namespace {

using fuzz::Require;

std::unique_ptr<sqlite::Database> OpenStore() {
  auto db = sqlite::Database::Open(":memory:", {.wal = false, .synchronous_full = false});
  Require(db.ok(), "open an in-memory database");
  Require(DecisionStore(**db).CreateSchema().ok(), "create the decision store schema");
  return std::move(db).value();
}

void Exec(sqlite::Database& db, const char* sql) { Require(db.Exec(sql).ok(), sql); }

// Reading a damaged store fails cleanly: Corruption, never a crash.
template <class T>
void RequireReadable(const Result<T>& r) {
  if (!r.ok()) Require(r.status().code() == StatusCode::kCorruption, "a bad row is Corruption");
}

std::string JsonOf(const DecisionRecord& r) {
  return RecordToJson(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace
}  // namespace commitd::coordinator

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace commitd;
  using namespace commitd::coordinator;
  using fuzz::Require;
  static std::unique_ptr<sqlite::Database> db = OpenStore();
  static std::unique_ptr<sqlite::Database> copy = OpenStore();
  const std::vector<std::string_view> f = fuzz::Fields(fuzz::Text(data, size), 16);

  Exec(*db, "DELETE FROM decisions; DELETE FROM participants; DELETE FROM meta WHERE key = 'coordinator_urls'");
  sqlite::Statement* insert = db->Prepare(
      "INSERT INTO decisions(txid, protocol, outcome, participants, reason, idempotency_key, reply, created_ms, "
      "decided_ms, finished, finished_ms, heuristic) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  for (int i = 0; i < 12; ++i) {
    if (i == 5 && f[5].empty()) {
      insert->BindNull(6);
    } else {
      insert->Bind(i + 1, f[i]);
    }
  }
  Require(insert->Run().ok(), "insert a decision row");
  sqlite::Statement* registry = db->Prepare("INSERT INTO participants(name, url, updated_ms) VALUES (?1, ?2, ?3)");
  Require(registry->Bind(1, f[12]).Bind(2, f[13]).Bind(3, f[14]).Run().ok(), "insert a registry row");
  if (!f[15].empty()) {
    sqlite::Statement* urls = db->Prepare("INSERT INTO meta(key, value) VALUES ('coordinator_urls', ?1)");
    Require(urls->Bind(1, f[15]).Run().ok(), "insert coordinator_urls");
  }

  DecisionStore store(*db);
  RequireReadable(store.FindByTxid(std::string(f[0])));
  RequireReadable(store.List(ListFilter{}));
  RequireReadable(store.Recover());
  RequireReadable(store.Registry());
  RequireReadable(store.OwnUrls());
  Result<std::vector<DecisionRecord>> all = store.List(ListFilter{});
  if (!all.ok()) return 0;
  Require(all->size() == 1, "one row, one record");
  const DecisionRecord record = all->front();

  // Written again, the record reads back the same.
  Exec(*db, "DELETE FROM decisions");
  Require(store.InsertDecision(record).ok(), "a read record can be inserted");
  Result<std::optional<DecisionRecord>> back = store.FindByTxid(record.txid);
  Require(back.ok() && back->has_value(), "an inserted record is found");
  Require(JsonOf(**back) == JsonOf(record), "a record round-trips through its row");

  // And through a snapshot of the state machine, into another store.
  Result<std::string> snapshot = SnapshotStateMachine(*db);
  Require(snapshot.ok(), "a readable store can be snapshotted");
  Require(RestoreStateMachine(*copy, *snapshot).ok(), "a snapshot restores");
  Result<std::string> again = SnapshotStateMachine(*copy);
  Require(again.ok() && *again == *snapshot, "a snapshot round-trips");
  return 0;
}
