// Retention of finished decisions: DecisionStore::ForgetFinishedBefore on a
// real SQLite file, the group's replicated command applied by two members'
// state machines, and what a snapshot carries of it.
#include <doctest/doctest.h>

#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "coordinator/decision_state_machine.h"
#include "coordinator/decision_store.h"
#include "coordinator/raft_codec.h"
#include "coordinator/state_snapshot.h"
#include "tests/unit/support/temp_dir.h"

namespace commitd::coordinator {
namespace {

std::unique_ptr<sqlite::Database> OpenDb(const std::string& path) {
  auto db = sqlite::Database::Open(path);
  REQUIRE(db.ok());
  REQUIRE(DecisionStateMachine::CreateSchema(**db).ok());
  return std::move(db).value();
}

// c1-<incarnation>-<sequence>-<random>: the issuer's format.
std::string Txid(int incarnation, int sequence) {
  return "c1-" + std::to_string(incarnation) + "-" + std::to_string(sequence) + "-0123456789abcdef";
}

DecisionRecord Finished(const std::string& txid, int64_t finished_ms, std::string key = "") {
  DecisionRecord r;
  r.txid = txid;
  r.outcome = Outcome::kCommitted;
  r.participants = {{"bank-a", "http://a"}, {"bank-b", "http://b"}};
  r.idempotency_key = std::move(key);
  r.reply = {{"txid", txid}, {"outcome", "committed"}};
  r.created_ms = r.decided_ms = finished_ms - 1;
  r.finished = true;
  r.finished_ms = finished_ms;
  return r;
}

int64_t Rows(DecisionStore& store) {
  auto n = store.Count(std::nullopt, false);
  REQUIRE(n.ok());
  return *n;
}

bool Forgotten(DecisionStore& store, const std::string& txid) {
  auto f = store.TxidForgotten(txid);
  REQUIRE(f.ok());
  return *f;
}

// Two group members' state machines on their own files, applying the same entries.
struct TwoMembers {
  explicit TwoMembers(testing::TempDir& dir) : a(OpenDb(dir.File("a.db"))), b(OpenDb(dir.File("b.db"))) {}
  void Apply(const Command& c) {
    raft::Entry e{1, ++index, raft::EntryType::kNormal, EncodeCommand(c)};
    REQUIRE(ma.Apply(*a, e).ok());
    REQUIRE(mb.Apply(*b, e).ok());
  }
  std::unique_ptr<sqlite::Database> a;
  std::unique_ptr<sqlite::Database> b;
  DecisionStateMachine ma;
  DecisionStateMachine mb;
  raft::Index index = 0;
};

TEST_CASE("ForgetFinishedBefore deletes finished decisions older than the cutoff, oldest first, at most limit") {
  testing::TempDir dir;
  auto db = OpenDb(dir.File("decisions.db"));
  DecisionStore store(*db);
  for (int i = 1; i <= 10; ++i) REQUIRE(store.InsertDecision(Finished(Txid(3, i), 100 + i, "k" + std::to_string(i))).ok());
  DecisionRecord unfinished = Finished(Txid(3, 11), 0);
  unfinished.finished = false;
  REQUIRE(store.InsertDecision(unfinished).ok());

  constexpr int64_t kKeepKeys = 0;  // no key was forgotten before time 0
  auto first = store.ForgetFinishedBefore(/*cutoff_ms=*/108, kKeepKeys, /*limit=*/4);
  REQUIRE(first.ok());
  CHECK(*first == 4);  // 101..104
  CHECK(Rows(store) == 7);
  CHECK_FALSE(store.FindByTxid(Txid(3, 4))->has_value());
  CHECK(store.FindByTxid(Txid(3, 5))->has_value());
  auto second = store.ForgetFinishedBefore(108, kKeepKeys, 4);
  REQUIRE(second.ok());
  CHECK(*second == 3);  // 105..107: finished_ms 108 is not before the cutoff
  auto third = store.ForgetFinishedBefore(108, kKeepKeys, 4);
  REQUIRE(third.ok());
  CHECK(*third == 0);
  CHECK(store.FindByTxid(Txid(3, 8))->has_value());
  CHECK(store.FindByTxid(Txid(3, 11))->has_value());  // unfinished: never, however old

  // The issuer's horizon: sequence 7 of incarnation 3 is the highest deleted.
  CHECK(Forgotten(store, Txid(3, 7)));
  CHECK(Forgotten(store, Txid(3, 1)));
  CHECK_FALSE(Forgotten(store, Txid(3, 8)));
  CHECK_FALSE(Forgotten(store, Txid(2, 1)));
  CHECK_FALSE(Forgotten(store, "c2-3-1-0123456789abcdef"));
  CHECK_FALSE(Forgotten(store, "made-up"));
  CHECK(*store.KeyForgotten("k7"));
  CHECK_FALSE(*store.KeyForgotten("k8"));
  CHECK_FALSE(*store.KeyForgotten("never"));

  // Recovery reads the unfinished one only, and a reopen finds the same.
  auto recovered = store.Recover();
  REQUIRE(recovered.ok());
  REQUIRE(recovered->unfinished.size() == 1);
  CHECK(recovered->unfinished[0].txid == Txid(3, 11));
  db.reset();
  auto again = OpenDb(dir.File("decisions.db"));
  DecisionStore reopened(*again);
  CHECK(Rows(reopened) == 4);
  CHECK(Forgotten(reopened, Txid(3, 7)));
  CHECK(*reopened.KeyForgotten("k1"));
  auto state = reopened.Forgotten();
  REQUIRE(state.ok());
  CHECK(state->before_ms == 108);
}

TEST_CASE("the group's forget command deletes the same rows on every member, and snapshots carry what was forgotten") {
  testing::TempDir dir;
  TwoMembers members(dir);
  auto& a = members.a;
  auto& b = members.b;
  const DecisionStateMachine& ma = members.ma;
  const DecisionStateMachine& mb = members.mb;
  auto apply_both = [&members](const Command& c) { members.Apply(c); };
  // Several decisions finished in the same millisecond: the txid orders them.
  for (int i = 1; i <= 6; ++i) {
    DecisionRecord r = Finished(Txid(4, i), 0, "key" + std::to_string(i));
    r.finished = false;
    r.finished_ms = 0;
    apply_both(command::Decide{r});
  }
  command::FinishMany marks;
  for (int i = 6; i >= 1; --i) marks.marks.push_back({Txid(4, i), i <= 4 ? 50 : 70});
  apply_both(marks);
  apply_both(command::ForgetFinished{60, 3});
  CHECK(ma.last_forgotten() == 3);
  CHECK(mb.last_forgotten() == 3);
  DecisionStore sa(*a);
  DecisionStore sb(*b);
  for (int i = 1; i <= 6; ++i) {
    CHECK(sa.FindByTxid(Txid(4, i))->has_value() == sb.FindByTxid(Txid(4, i))->has_value());
  }
  CHECK(Rows(sa) == 3);
  apply_both(command::ForgetFinished{60, 3});
  CHECK(ma.last_forgotten() == 1);
  CHECK(Rows(sa) == 2);
  CHECK(Rows(sb) == 2);

  // The codec keeps the command.
  const std::string encoded = EncodeCommand(command::ForgetFinished{123, 45, -7});
  auto decoded = DecodeCommand(encoded);
  REQUIRE(decoded.ok());
  const auto* forget = std::get_if<command::ForgetFinished>(&*decoded);
  REQUIRE(forget != nullptr);
  CHECK(forget->cutoff_ms == 123);
  CHECK(forget->limit == 45);
  CHECK(forget->keys_cutoff_ms == -7);
  // The entry written before keys were let go (op 7, no keys cutoff) keeps every key.
  std::string older = encoded.substr(0, encoded.size() - 8);
  older[1] = 7;
  auto decoded_older = DecodeCommand(older);
  REQUIRE(decoded_older.ok());
  const auto* older_forget = std::get_if<command::ForgetFinished>(&*decoded_older);
  REQUIRE(older_forget != nullptr);
  CHECK(older_forget->cutoff_ms == 123);
  CHECK(older_forget->keys_cutoff_ms == std::numeric_limits<int64_t>::min());

  // A member restored from a's snapshot knows what a forgot.
  auto snapshot = SnapshotStateMachine(*a);
  REQUIRE(snapshot.ok());
  auto c = OpenDb(dir.File("c.db"));
  REQUIRE(RestoreStateMachine(*c, *snapshot).ok());
  DecisionStore sc(*c);
  CHECK(Rows(sc) == 2);
  CHECK(Forgotten(sc, Txid(4, 4)));
  CHECK_FALSE(Forgotten(sc, Txid(4, 5)));
  CHECK(*sc.KeyForgotten("key2"));
  CHECK_FALSE(*sc.KeyForgotten("key5"));
}

TEST_CASE("a forgotten Idempotency-Key is refused for its window, then let go, on every member alike") {
  testing::TempDir dir;
  TwoMembers members(dir);
  auto& a = members.a;
  auto& b = members.b;
  auto apply_both = [&members](const Command& c) { members.Apply(c); };
  for (int i = 1; i <= 5; ++i) apply_both(command::Decide{Finished(Txid(5, i), 10 * i, "key" + std::to_string(i))});
  // Deleted by the cutoffs 25 (keys 1, 2) and 45 (keys 3, 4); key5's decision stays.
  apply_both(command::ForgetFinished{25, 100, 0});
  apply_both(command::ForgetFinished{45, 100, 0});
  DecisionStore sa(*a);
  DecisionStore sb(*b);
  for (DecisionStore* s : {&sa, &sb}) {
    for (int i = 1; i <= 4; ++i) CHECK(*s->KeyForgotten("key" + std::to_string(i)));
    CHECK_FALSE(*s->KeyForgotten("key5"));
  }
  // Keys forgotten before 30 are let go, at most `limit` per command, the oldest first.
  apply_both(command::ForgetFinished{45, 1, 30});
  const int still_a = *sa.KeyForgotten("key1") + *sa.KeyForgotten("key2");
  const int still_b = *sb.KeyForgotten("key1") + *sb.KeyForgotten("key2");
  CHECK(still_a == 1);
  CHECK(*sa.KeyForgotten("key1") == *sb.KeyForgotten("key1"));
  CHECK(still_a == still_b);
  apply_both(command::ForgetFinished{45, 100, 30});
  for (DecisionStore* s : {&sa, &sb}) {
    CHECK_FALSE(*s->KeyForgotten("key1"));
    CHECK_FALSE(*s->KeyForgotten("key2"));
    CHECK(*s->KeyForgotten("key3"));  // forgotten at 45: not yet
    CHECK(*s->KeyForgotten("key4"));
  }
  // A snapshot carries each key's time: the restored member lets go of them alike.
  auto snapshot = SnapshotStateMachine(*a);
  REQUIRE(snapshot.ok());
  auto c = OpenDb(dir.File("c.db"));
  REQUIRE(RestoreStateMachine(*c, *snapshot).ok());
  DecisionStore sc(*c);
  CHECK(*sc.KeyForgotten("key3"));
  REQUIRE(sc.ForgetFinishedBefore(45, 46, 100).ok());
  CHECK_FALSE(*sc.KeyForgotten("key3"));
  CHECK_FALSE(*sc.KeyForgotten("key4"));
}

TEST_CASE("keys forgotten before keys had a time are kept a whole window from the newest cutoff") {
  testing::TempDir dir;
  const std::string path = dir.File("decisions.db");
  {
    auto db = OpenDb(path);
    DecisionStore store(*db);
    REQUIRE(store.InsertDecision(Finished(Txid(6, 1), 10, "old-key")).ok());
    REQUIRE(store.ForgetFinishedBefore(500, 0, 10).ok());
    // Back to schema 2: forgotten_keys without its time.
    REQUIRE(db->Exec("DROP INDEX forgotten_keys_age; ALTER TABLE forgotten_keys DROP COLUMN forgotten_ms; "
                     "UPDATE meta SET value = '2' WHERE key = 'schema_version'")
                .ok());
  }
  auto db = OpenDb(path);
  DecisionStore store(*db);
  auto state = store.Forgotten();
  REQUIRE(state.ok());
  REQUIRE(state->keys.size() == 1);
  CHECK(state->keys[0].forgotten_ms == 500);
  REQUIRE(store.ForgetFinishedBefore(600, 500, 10).ok());
  CHECK(*store.KeyForgotten("old-key"));
  REQUIRE(store.ForgetFinishedBefore(600, 501, 10).ok());
  CHECK_FALSE(*store.KeyForgotten("old-key"));

  // A snapshot taken before keys had a time lists bare hashes: they count as forgotten at its before_ms.
  auto snapshot = nlohmann::json::parse(*SnapshotStateMachineAsOneDocument(*db));
  snapshot["forgotten"]["keys"] = nlohmann::json::array({KeyHash("snapshot-key")});
  snapshot["forgotten"]["before_ms"] = 700;
  auto c = OpenDb(dir.File("c.db"));
  REQUIRE(RestoreStateMachine(*c, snapshot.dump()).ok());
  auto restored = DecisionStore(*c).Forgotten();
  REQUIRE(restored.ok());
  REQUIRE(restored->keys.size() == 1);
  CHECK(restored->keys[0].hash == KeyHash("snapshot-key"));
  CHECK(restored->keys[0].forgotten_ms == 700);
}

// SQLite virtual-machine steps fn takes (progress handler every step).
int64_t Steps(sqlite::Database& db, const std::function<void()>& fn) {
  int64_t steps = 0;
  sqlite3_progress_handler(
      db.handle(), 1,
      [](void* n) {
        ++*static_cast<int64_t*>(n);
        return 0;
      },
      &steps);
  fn();
  sqlite3_progress_handler(db.handle(), 0, nullptr, nullptr);
  return steps;
}

int64_t RecoverSteps(sqlite::Database& db) {
  return Steps(db, [&] {
    auto recovered = DecisionStore(db).Recover();
    REQUIRE(recovered.ok());
    CHECK(recovered->unfinished.size() == 3);
  });
}

// Listing the unfinished decisions, newest first, of any outcome and of one.
int64_t ListUnfinishedSteps(sqlite::Database& db) {
  return Steps(db, [&] {
    ListFilter unfinished{.unfinished_only = true};
    auto any = DecisionStore(db).List(unfinished);
    REQUIRE(any.ok());
    REQUIRE(any->size() == 3);
    for (const DecisionRecord& r : *any) CHECK_FALSE(r.finished);
    unfinished.outcome = Outcome::kCommitted;
    auto committed = DecisionStore(db).List(unfinished);
    REQUIRE(committed.ok());
    CHECK(committed->size() == 3);
  });
}

TEST_CASE("restart work does not grow with finished history: recovery reads the unfinished rows only") {
  testing::TempDir dir;
  auto small = OpenDb(dir.File("small.db"));
  auto large = OpenDb(dir.File("large.db"));
  auto fill = [](sqlite::Database& db, int finished) {
    DecisionStore store(db);
    sqlite::Transaction txn(db);
    for (int i = 1; i <= finished; ++i) REQUIRE(store.InsertDecision(Finished(Txid(1, i), 100 + i)).ok());
    for (int i = 1; i <= 3; ++i) {
      DecisionRecord r = Finished(Txid(2, i), 0);
      r.finished = false;
      REQUIRE(store.InsertDecision(r).ok());
    }
    REQUIRE(txn.Commit().ok());
  };
  fill(*small, 100);
  fill(*large, 20'000);
  const int64_t few = RecoverSteps(*small);
  const int64_t many = RecoverSteps(*large);
  MESSAGE("recovery steps: " << few << " with 100 finished decisions, " << many << " with 20000");
  // An index search grows with the logarithm of the table; a scan would take 200 times as many.
  CHECK(many < 2 * few + 200);
  const int64_t listed_few = ListUnfinishedSteps(*small);
  const int64_t listed_many = ListUnfinishedSteps(*large);
  MESSAGE("unfinished listing steps: " << listed_few << " with 100 finished decisions, " << listed_many
                                       << " with 20000");
  CHECK(listed_many < 2 * listed_few + 200);
}

// SQLite virtual-machine steps of one retention batch that finds nothing old enough.
int64_t ForgetSteps(sqlite::Database& db) {
  int64_t steps = 0;
  sqlite3_progress_handler(
      db.handle(), 1,
      [](void* n) {
        ++*static_cast<int64_t*>(n);
        return 0;
      },
      &steps);
  auto forgotten = DecisionStore(db).ForgetFinishedBefore(/*cutoff_ms=*/50, /*keys_cutoff_ms=*/0, 512);
  sqlite3_progress_handler(db.handle(), 0, nullptr, nullptr);
  REQUIRE(forgotten.ok());
  CHECK(*forgotten == 0);
  return steps;
}

TEST_CASE("a retention batch costs the same however many finished decisions the window holds") {
  testing::TempDir dir;
  auto small = OpenDb(dir.File("small.db"));
  auto large = OpenDb(dir.File("large.db"));
  auto fill = [](sqlite::Database& db, int finished) {
    DecisionStore store(db);
    sqlite::Transaction txn(db);
    for (int i = 1; i <= finished; ++i) REQUIRE(store.InsertDecision(Finished(Txid(1, i), 100 + i)).ok());
    REQUIRE(txn.Commit().ok());
  };
  fill(*small, 100);
  fill(*large, 20'000);
  const int64_t few = ForgetSteps(*small);
  const int64_t many = ForgetSteps(*large);
  MESSAGE("retention batch steps: " << few << " with 100 finished decisions in the window, " << many << " with 20000");
  CHECK(many < 2 * few + 200);  // an index range; scanning and sorting the window would be ~200 times as many
}

}  // namespace
}  // namespace commitd::coordinator
