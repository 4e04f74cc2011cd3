// The participant engine driven by hand-fed events: no sockets, no SQLite.
#include <doctest/doctest.h>

#include "tests/unit/support/actions.h"

#include "participant/engine.h"

using namespace commitd;
using namespace commitd::participant;

namespace {

using testing::Only;

wire::PrepareRequest Prepare(const std::string& txid, int64_t timeout_ms = 1000) {
  wire::PrepareRequest r;
  r.txid = txid;
  r.participant = "bank-a";
  r.coordinator = "http://coord";
  r.timeout_ms = timeout_ms;
  wire::Op op;
  op.procedure = "debit";
  op.args = {{"account", "alice"}, {"amount", 1}};
  r.ops = {op};
  return r;
}

ExecutionResult Executed(std::vector<std::string> keys) {
  ExecutionResult r;
  r.ok = true;
  r.changeset = "cs";
  r.lock_keys = std::move(keys);
  r.results = nlohmann::json::array({nlohmann::json::array()});
  return r;
}

Engine MakeEngine() { return Engine(EngineOptions{{"http://other"}, 100, 800, 60'000}); }

// Drives txid to the prepared state holding keys; returns the vote reply.
action::Reply PrepareFully(Engine& e, const std::string& txid, std::vector<std::string> keys, RequestToken token,
                           int64_t now = 0) {
  e.OnPrepare(Prepare(txid), token, now);
  auto a = e.TakeActions();
  REQUIRE(Only<action::Execute>(a).size() == 1);
  e.OnExecuted(txid, Executed(std::move(keys)), now);
  a = e.TakeActions();
  REQUIRE(Only<action::PersistPrepared>(a).size() == 1);
  e.OnPreparedPersisted(txid, Status::Ok(), now);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  return replies[0];
}

}  // namespace

TEST_CASE("the yes vote is sent only after the prepared record is durable") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t1"), 7, 0);
  auto a = e.TakeActions();
  auto exec = Only<action::Execute>(a);
  REQUIRE(exec.size() == 1);
  CHECK(exec[0].txid == "t1");
  CHECK(Only<action::Reply>(a).empty());
  e.OnExecuted("t1", Executed({"accounts|pk|alice"}), 1);
  a = e.TakeActions();
  auto persist = Only<action::PersistPrepared>(a);
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.changeset == "cs");
  CHECK(persist[0].record.deadline_ms == 1000);
  CHECK(persist[0].record.coordinator == "http://coord");
  CHECK(Only<action::Reply>(a).empty());
  CHECK(e.locks().Holder("accounts|pk|alice") == std::optional<std::string>("t1"));
  e.OnPreparedPersisted("t1", Status::Ok(), 2);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].to == 7);
  CHECK(replies[0].body["vote"] == "yes");
}

TEST_CASE("a key held by another prepared transaction votes no naming the holder, without waiting") {
  Engine e = MakeEngine();
  PrepareFully(e, "t1", {"accounts|pk|alice"}, 1);
  e.OnPrepare(Prepare("t2"), 2, 0);
  e.TakeActions();
  e.OnExecuted("t2", Executed({"accounts|pk|alice", "accounts|pk|bob"}), 0);
  auto a = e.TakeActions();
  auto replies = Only<action::Reply>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].body["vote"] == "no");
  CHECK(replies[0].body["reason"] == "lock conflict with t1");
  CHECK_FALSE(e.locks().Holder("accounts|pk|bob").has_value());  // all or nothing
  CHECK(Only<action::RememberOutcome>(a).size() == 1);
}

TEST_CASE("an execution failure votes no with its reason and holds no lock") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t1"), 1, 0);
  e.TakeActions();
  ExecutionResult failed;
  failed.reason = "CHECK constraint failed: balance >= 0";
  e.OnExecuted("t1", failed, 0);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].body["reason"] == "CHECK constraint failed: balance >= 0");
  CHECK(e.locks().size() == 0);
  // A duplicate prepare gets the same vote.
  e.OnPrepare(Prepare("t1"), 2, 0);
  auto again = Only<action::Reply>(e.TakeActions());
  REQUIRE(again.size() == 1);
  CHECK(again[0].body["vote"] == "no");
}

TEST_CASE("commit is acknowledged only after it is applied, and releases the locks then") {
  Engine e = MakeEngine();
  PrepareFully(e, "t1", {"k1"}, 1);
  e.OnCommit("t1", 2, 10);
  auto a = e.TakeActions();
  CHECK(Only<action::ApplyCommit>(a).size() == 1);
  CHECK(Only<action::Reply>(a).empty());
  CHECK(e.locks().Holder("k1").has_value());
  e.OnCommit("t1", 3, 11);  // duplicate while applying: waits, no second apply
  CHECK(Only<action::ApplyCommit>(e.TakeActions()).empty());
  e.OnCommitApplied("t1", Status::Ok(), 12);
  auto replies = Only<action::Reply>(e.TakeActions());
  CHECK(replies.size() == 2);
  CHECK(replies[0].body["state"] == "committed");
  CHECK(e.locks().size() == 0);
  // Repeated commit after the fact: acked again. Duplicate prepare: same (yes) vote.
  e.OnCommit("t1", 4, 13);
  auto re = Only<action::Reply>(e.TakeActions());
  REQUIRE(re.size() == 1);
  CHECK(re[0].status == 200);
  e.OnPrepare(Prepare("t1"), 5, 14);
  auto dup = Only<action::Reply>(e.TakeActions());
  REQUIRE(dup.size() == 1);
  CHECK(dup[0].body["vote"] == "yes");
  // Abort after commit is refused.
  e.OnAbort("t1", 6, 15);
  auto ab = Only<action::Reply>(e.TakeActions());
  REQUIRE(ab.size() == 1);
  CHECK(ab[0].status == 409);
}

TEST_CASE("a commit for a txid never prepared is an error, never a silent ack") {
  Engine e = MakeEngine();
  e.OnCommit("ghost", 1, 0);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 404);
  CHECK(replies[0].body["error"]["code"] == "unknown_transaction");
}

TEST_CASE("an abort before its prepare leaves a tombstone: the late prepare votes no") {
  Engine e = MakeEngine();
  e.OnAbort("t1", 1, 0);
  auto a = e.TakeActions();
  CHECK(Only<action::RememberOutcome>(a).size() == 1);
  auto replies = Only<action::Reply>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  e.OnPrepare(Prepare("t1"), 2, 1);
  a = e.TakeActions();
  CHECK(Only<action::Execute>(a).empty());
  auto vote = Only<action::Reply>(a);
  REQUIRE(vote.size() == 1);
  CHECK(vote[0].body["vote"] == "no");
}

TEST_CASE("an abort during execution is answered once execution ends, with a no vote") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t1"), 1, 0);
  e.TakeActions();
  e.OnAbort("t1", 2, 0);
  CHECK(Only<action::Reply>(e.TakeActions()).empty());
  e.OnExecuted("t1", Executed({"k"}), 1);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 2);
  CHECK(e.locks().size() == 0);
  CHECK(e.OutcomeOf("t1") == std::optional<std::string>("aborted"));
}

TEST_CASE("past its deadline a prepared transaction asks the coordinators with capped backoff, never deciding alone") {
  Engine e = MakeEngine();  // resolve 100 ms initial, 800 ms cap
  PrepareFully(e, "t1", {"k"}, 1, 0);
  e.Tick(999);
  CHECK(Only<action::QueryDecision>(e.TakeActions()).empty());
  int64_t now = 1000;
  std::vector<int64_t> gaps;
  int64_t last = 0;
  for (int i = 0; i < 6; ++i) {
    for (;; ++now) {
      e.Tick(now);
      auto q = Only<action::QueryDecision>(e.TakeActions());
      if (!q.empty()) {
        CHECK(q[0].coordinators == std::vector<std::string>{"http://coord", "http://other"});
        if (last != 0) gaps.push_back(now - last);
        last = now;
        break;
      }
      REQUIRE(now < 100'000);
    }
    e.OnDecisionAnswer("t1", i % 2 == 0 ? Result<Decision>(Status::Unavailable("down")) : Result<Decision>(Decision::kPending),
                       now);
    CHECK(Only<action::ApplyCommit>(e.TakeActions()).empty());
    CHECK(Only<action::ApplyAbort>(e.TakeActions()).empty());
  }
  CHECK(gaps == std::vector<int64_t>{100, 200, 400, 800, 800});
  CHECK(e.Held(now)[0].last_error == "coordinator has not decided yet");
  e.Tick(now + 800);
  e.TakeActions();
  e.OnDecisionAnswer("t1", Decision::kCommit, now + 801);
  CHECK(Only<action::ApplyCommit>(e.TakeActions()).size() == 1);
}

TEST_CASE("a changeset conflict keeps the record and its locks, counted and shown") {
  Engine e = MakeEngine();
  PrepareFully(e, "t1", {"k"}, 1);
  e.OnCommit("t1", 2, 0);
  e.TakeActions();
  e.OnCommitApplied("t1", Status::Conflict("changeset conflict on accounts"), 1);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 409);
  CHECK(replies[0].body["error"]["code"] == "apply_conflict");
  CHECK(e.conflicts() == 1);
  auto held = e.Held(2);
  REQUIRE(held.size() == 1);
  CHECK(held[0].state == "conflict");
  CHECK(held[0].last_error == "changeset conflict on accounts");
  CHECK(e.locks().Holder("k").has_value());
}

TEST_CASE("recovery rebuilds the lock table and asks about every record at once") {
  Engine before = MakeEngine();
  PrepareFully(before, "t1", {"a", "b"}, 1);
  PrepareFully(before, "t2", {"c"}, 2);
  PreparedRecord r1;
  r1.txid = "t1";
  r1.state = "prepared";
  r1.lock_keys = {"a", "b"};
  r1.coordinator = "http://coord";
  r1.deadline_ms = 1'000'000;
  PreparedRecord r2 = r1;
  r2.txid = "t2";
  r2.lock_keys = {"c"};
  Engine after = MakeEngine();
  after.Recover({r1, r2}, {{"t0", "committed"}}, 50);
  CHECK(after.locks().Snapshot() == before.locks().Snapshot());
  CHECK(after.OutcomeOf("t0") == std::optional<std::string>("committed"));
  after.Tick(50);
  CHECK(Only<action::QueryDecision>(after.TakeActions()).size() == 2);
}

TEST_CASE("finished txids are forgotten after the retention window") {
  Engine e(EngineOptions{{}, 100, 800, 10'000});
  e.Tick(0);
  e.OnAbort("t1", 1, 0);
  e.TakeActions();
  CHECK(e.OutcomeOf("t1").has_value());
  e.Tick(5'000);
  e.TakeActions();
  CHECK(e.OutcomeOf("t1").has_value());
  e.Tick(20'000);
  auto forget = Only<action::ForgetOutcomesBefore>(e.TakeActions());
  CHECK_FALSE(e.OutcomeOf("t1").has_value());
  REQUIRE(forget.size() == 1);
  CHECK(forget[0].cutoff_ms == 10'000);
}
