// The participant engine driven by hand-fed events: no sockets, no SQLite.
#include <doctest/doctest.h>

#include <algorithm>

#include "tests/unit/support/actions.h"

#include "common/abort_key.h"
#include "participant/engine.h"

using namespace commitd;
using namespace commitd::participant;

namespace {

using testing::Only;

// The abort key the coordinator put in every prepare below, and the commit
// key whose check it put there.
const std::string kKey(64, 'a');
const std::string kCommitKey(64, 'c');

wire::PrepareRequest Prepare(const std::string& txid, int64_t timeout_ms = 1000) {
  wire::PrepareRequest r;
  r.txid = txid;
  r.abort_key = kKey;
  r.commit_check = CommitCheck(kCommitKey);
  r.participant = "bank-a";
  r.coordinator = "http://coord";
  r.timeout_ms = timeout_ms;
  wire::Op op;
  op.procedure = "debit";
  op.args = {{"account", "alice"}, {"amount", 1}};
  r.ops = {op};
  return r;
}

// The resource manager's yes: the record is written and keys are held.
PrepareResult Yes(std::vector<std::string> keys) {
  PrepareResult r;
  r.earlier.kind = EarlierOutcome::Kind::kNone;
  r.yes = true;
  r.lock_keys = std::move(keys);
  r.results = nlohmann::json::array({nlohmann::json::array()});
  return r;
}

// The resource manager's no: nothing written, nothing held.
PrepareResult No(std::string reason) {
  PrepareResult r;
  r.earlier.kind = EarlierOutcome::Kind::kNone;
  r.reason = std::move(reason);
  return r;
}

// t1's tombstone is reported durable: the one abort waiting for it, `token`, gets 200.
void TombstoneWrittenAcks(Engine& e, RequestToken token) {
  e.OnTombstoneWritten("t1", Outcome::kAborted);
  auto acked = Only<action::Reply>(e.TakeActions());
  REQUIRE(acked.size() == 1);
  CHECK(acked[0].to == token);
  CHECK(acked[0].status == 200);
  CHECK(JsonOf(acked[0].body)["state"] == "aborted");
}

Engine MakeEngine() { return Engine(EngineOptions{{"http://other"}, 100, 800, 60'000}); }

// Drives txid to the prepared state holding keys; returns the vote reply.
action::Reply PrepareFully(Engine& e, const std::string& txid, std::vector<std::string> keys, RequestToken token,
                           int64_t now = 0) {
  e.OnPrepare(Prepare(txid), token, now);
  auto a = e.TakeActions();
  REQUIRE(Only<action::Prepare>(a).size() == 1);
  e.OnPrepared(txid, Yes(std::move(keys)), Status::Ok(), now);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  return replies[0];
}

}  // namespace

TEST_CASE("the yes vote is sent only after the prepared record is durable") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t1"), 7, 0);
  auto a = e.TakeActions();
  auto prepare = Only<action::Prepare>(a);
  REQUIRE(prepare.size() == 1);
  CHECK(prepare[0].record.txid == "t1");
  CHECK(prepare[0].record.deadline_ms == 1000);
  CHECK(prepare[0].record.coordinator == "http://coord");
  CHECK(prepare[0].ops.size() == 1);
  CHECK(Only<action::Reply>(a).empty());
  CHECK(e.StateOf("t1") == "preparing");
  e.OnPrepare(Prepare("t1"), 8, 1);  // a duplicate waits for the same vote
  CHECK(e.TakeActions().empty());
  e.OnPrepared("t1", Yes({"accounts|pk|alice"}), Status::Ok(), 2);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].to == 7);
  CHECK(JsonOf(replies[0].body)["vote"] == "yes");
  CHECK(JsonOf(replies[1].body)["vote"] == "yes");
  CHECK(e.locks().Holder("accounts|pk|alice") == std::optional<std::string>("t1"));
}

TEST_CASE("a no from the resource manager votes no with its reason and holds no lock") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t1"), 1, 0);
  e.TakeActions();
  e.OnPrepared("t1", No("lock conflict with t0"), Status::Ok(), 0);
  auto a = e.TakeActions();
  auto replies = Only<action::Reply>(a);
  REQUIRE(replies.size() == 1);
  CHECK(JsonOf(replies[0].body)["vote"] == "no");
  CHECK(JsonOf(replies[0].body)["reason"] == "lock conflict with t0");
  CHECK(e.locks().size() == 0);
  REQUIRE(Only<action::WriteTombstone>(a).size() == 1);
  CHECK_FALSE(Only<action::WriteTombstone>(a)[0].again);
  // A duplicate prepare gets the same vote.
  e.OnPrepare(Prepare("t1"), 2, 0);
  auto again = Only<action::Reply>(e.TakeActions());
  REQUIRE(again.size() == 1);
  CHECK(JsonOf(again[0].body)["vote"] == "no");
  // The coordinator's abort (it had no vote in time) waits until the "aborted" is durable.
  e.OnAbort("t1", kKey, 3, 1);
  CHECK(e.TakeActions().empty());
  TombstoneWrittenAcks(e, 3);
}

TEST_CASE("a storage batch that failed votes no, even if the resource manager said yes") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t1"), 1, 0);
  e.TakeActions();
  e.OnPrepared("t1", Yes({"k"}), Status::IoError("disk I/O error"), 0);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(JsonOf(replies[0].body)["vote"] == "no");
  CHECK(JsonOf(replies[0].body)["reason"] == "storage error: disk I/O error");
  CHECK(e.locks().size() == 0);
  CHECK(e.OutcomeOf("t1") == std::optional<std::string>("aborted"));
}

TEST_CASE("commit is acknowledged only after it is applied, and releases the locks then") {
  Engine e = MakeEngine();
  PrepareFully(e, "t1", {"k1"}, 1);
  e.OnCommit("t1", kCommitKey, 2, 10);
  auto a = e.TakeActions();
  CHECK(Only<action::ApplyCommit>(a).size() == 1);
  CHECK(Only<action::Reply>(a).empty());
  CHECK(e.locks().Holder("k1").has_value());
  e.OnCommit("t1", kCommitKey, 3, 11);  // duplicate while applying: waits, no second apply
  CHECK(Only<action::ApplyCommit>(e.TakeActions()).empty());
  e.OnCommitApplied("t1", Status::Ok(), 12);
  auto replies = Only<action::Reply>(e.TakeActions());
  CHECK(replies.size() == 2);
  CHECK(JsonOf(replies[0].body)["state"] == "committed");
  CHECK(e.locks().size() == 0);
  // Repeated commit after the fact: acked again. Duplicate prepare: same (yes) vote.
  e.OnCommit("t1", kCommitKey, 4, 13);
  auto re = Only<action::Reply>(e.TakeActions());
  REQUIRE(re.size() == 1);
  CHECK(re[0].status == 200);
  e.OnPrepare(Prepare("t1"), 5, 14);
  auto dup = Only<action::Reply>(e.TakeActions());
  REQUIRE(dup.size() == 1);
  CHECK(JsonOf(dup[0].body)["vote"] == "yes");
  // Abort after commit is refused.
  e.OnAbort("t1", kKey, 6, 15);
  auto ab = Only<action::Reply>(e.TakeActions());
  REQUIRE(ab.size() == 1);
  CHECK(ab[0].status == 409);
}

TEST_CASE("a commit for a txid never prepared is an error, never a silent ack") {
  Engine e = MakeEngine();
  e.OnCommit("ghost", kCommitKey, 1, 0);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 404);
  CHECK(JsonOf(replies[0].body)["error"]["code"] == "unknown_transaction");
}

TEST_CASE("an abort before its prepare leaves a tombstone: the late prepare votes no") {
  Engine e = MakeEngine();
  e.OnAbort("t1", kKey, 1, 0);
  auto a = e.TakeActions();
  REQUIRE(Only<action::WriteTombstone>(a).size() == 1);
  CHECK(Only<action::WriteTombstone>(a)[0].txid == "t1");
  CHECK(Only<action::Reply>(a).empty());  // answered once the tombstone is durable
  // Meanwhile a late prepare votes no, and a repeated abort waits too.
  e.OnPrepare(Prepare("t1"), 2, 1);
  e.OnAbort("t1", kKey, 3, 1);
  a = e.TakeActions();
  CHECK(Only<action::Prepare>(a).empty());
  CHECK(Only<action::WriteTombstone>(a).empty());
  auto vote = Only<action::Reply>(a);
  REQUIRE(vote.size() == 1);
  CHECK(vote[0].to == 2);
  CHECK(JsonOf(vote[0].body)["vote"] == "no");
  e.OnTombstoneWritten("t1", Outcome::kAborted);
  auto acked = Only<action::Reply>(e.TakeActions());
  REQUIRE(acked.size() == 2);
  for (const auto& r : acked) {
    CHECK(r.status == 200);
    CHECK(JsonOf(r.body)["state"] == "aborted");
  }
  // Once written, a repeated abort is answered at once.
  e.OnAbort("t1", kKey, 4, 2);
  acked = Only<action::Reply>(e.TakeActions());
  REQUIRE(acked.size() == 1);
  CHECK(acked[0].status == 200);
}

TEST_CASE("a tombstone that could not be written answers 503, keeps voting no, and the abort's retry writes it again") {
  Engine e = MakeEngine();
  e.OnAbort("t1", kKey, 1, 0);
  REQUIRE(Only<action::WriteTombstone>(e.TakeActions()).size() == 1);
  e.OnTombstoneWritten("t1", Status::Unavailable("disk I/O error"));
  auto failed = Only<action::Reply>(e.TakeActions());
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].status == 503);
  CHECK(JsonOf(failed[0].body)["error"]["code"] == "storage_error");
  e.OnPrepare(Prepare("t1"), 2, 1);
  auto vote = Only<action::Reply>(e.TakeActions());
  REQUIRE(vote.size() == 1);
  CHECK(JsonOf(vote[0].body)["vote"] == "no");
  e.OnAbort("t1", kKey, 3, 2);
  auto a = e.TakeActions();
  REQUIRE(Only<action::WriteTombstone>(a).size() == 1);
  CHECK(Only<action::WriteTombstone>(a)[0].again);  // not counted as another no vote
  CHECK(Only<action::Reply>(a).empty());
  TombstoneWrittenAcks(e, 3);
}

TEST_CASE("a tombstone's aborts are answered with the outcome the store holds") {
  Engine e = MakeEngine();
  e.OnAbort("t1", kKey, 1, 0);
  REQUIRE(Only<action::WriteTombstone>(e.TakeActions()).size() == 1);
  // The store already held "committed" for t1 (written before this one).
  e.OnTombstoneWritten("t1", Outcome::kCommitted);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 409);
  CHECK(JsonOf(replies[0].body)["error"]["code"] == "already_committed");
  CHECK(e.StateOf("t1") == "committed");  // what peers are told from now on
}

TEST_CASE("a tombstone still being written stays in memory past the memory window") {
  EngineOptions o{{}, 100, 800, 10'000};
  o.outcome_memory_ms = 1'000;
  Engine e(o);
  e.Tick(0);
  e.OnAbort("t1", kKey, 1, 0);
  REQUIRE(Only<action::WriteTombstone>(e.TakeActions()).size() == 1);
  e.Tick(5'000);
  e.TakeActions();
  CHECK(e.StateOf("t1") == "aborted");
  e.OnTombstoneWritten("t1", Outcome::kAborted);
  CHECK(Only<action::Reply>(e.TakeActions()).size() == 1);
  e.Tick(10'000);
  e.TakeActions();
  CHECK(e.StateOf("t1") == "unknown");
}

TEST_CASE("an abort waiting on a prepare that votes no is answered once the outcome is durable") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t1"), 1, 0);
  e.TakeActions();
  e.OnAbort("t1", "", 2, 0);
  e.OnPrepared("t1", No("constraint failed"), Status::Ok(), 1);
  auto a = e.TakeActions();
  auto replies = Only<action::Reply>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].to == 1);
  CHECK(JsonOf(replies[0].body)["vote"] == "no");
  REQUIRE(Only<action::WriteTombstone>(a).size() == 1);
  TombstoneWrittenAcks(e, 2);
}

TEST_CASE("an abort during prepare: the written record is aborted, the prepare gets a no") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t1"), 1, 0);
  e.TakeActions();
  e.OnAbort("t1", kKey, 2, 0);
  CHECK(Only<action::Reply>(e.TakeActions()).empty());
  e.OnPrepared("t1", Yes({"k"}), Status::Ok(), 1);
  auto a = e.TakeActions();
  auto vote = Only<action::Reply>(a);
  REQUIRE(vote.size() == 1);
  CHECK(vote[0].to == 1);
  CHECK(JsonOf(vote[0].body)["vote"] == "no");
  REQUIRE(Only<action::ApplyAbort>(a).size() == 1);
  e.OnAbortApplied("t1", Status::Ok(), 2);
  auto acked = Only<action::Reply>(e.TakeActions());
  REQUIRE(acked.size() == 1);
  CHECK(acked[0].to == 2);
  CHECK(JsonOf(acked[0].body)["state"] == "aborted");
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
  e.OnCommit("t1", kCommitKey, 2, 0);
  e.TakeActions();
  e.OnCommitApplied("t1", Status::Conflict("changeset conflict on accounts"), 1);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 409);
  CHECK(JsonOf(replies[0].body)["error"]["code"] == "apply_conflict");
  CHECK(e.conflicts() == 1);
  auto held = e.Held(2);
  REQUIRE(held.size() == 1);
  CHECK(held[0].state == HeldState::kConflict);
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
  after.Recover({r1, r2}, 50);
  CHECK(after.locks().Snapshot() == before.locks().Snapshot());
  after.Tick(50);
  CHECK(Only<action::QueryDecision>(after.TakeActions()).size() == 2);
}

namespace {

// An engine with these windows that remembers t1 aborted (a tombstone) at 0.
Engine TombstoneAtZero(int64_t retention_ms, int64_t memory_ms) {
  EngineOptions o{{}, 100, 800, retention_ms};
  o.outcome_memory_ms = memory_ms;
  Engine e(o);
  e.Tick(0);
  e.OnAbort("t1", kKey, 1, 0);
  e.TakeActions();
  e.OnTombstoneWritten("t1", Outcome::kAborted);
  e.TakeActions();
  CHECK(e.OutcomeOf("t1") == std::optional<std::string>("aborted"));
  return e;
}

}  // namespace

TEST_CASE("finished txids leave memory after the memory window, and the store's after the retention window") {
  Engine e = TombstoneAtZero(10'000, 1'000);
  e.Tick(500);
  e.TakeActions();
  CHECK(e.OutcomeOf("t1").has_value());
  e.Tick(2'000);
  auto forget = Only<action::ForgetOutcomesBefore>(e.TakeActions());
  CHECK_FALSE(e.Knows("t1"));
  CHECK(e.StateOf("t1") == "unknown");
  REQUIRE(forget.size() == 1);
  CHECK(forget[0].cutoff_ms == 2'000 - 10'000);  // the store keeps it
  e.Tick(20'000);
  forget = Only<action::ForgetOutcomesBefore>(e.TakeActions());
  REQUIRE(forget.size() == 1);
  CHECK(forget[0].cutoff_ms == 10'000);
}

TEST_CASE("the memory window is capped by the retention window") {
  Engine e = TombstoneAtZero(1'000, 60'000);
  e.Tick(2'000);
  e.TakeActions();
  CHECK_FALSE(e.Knows("t1"));
}

TEST_CASE("an outcome learned from the store is remembered for a memory window from then") {
  EngineOptions o{{}, 100, 800, 10'000};
  o.outcome_memory_ms = 1'000;
  Engine e(o);
  e.Tick(0);
  e.LearnOutcome("t1", Outcome::kCommitted, 5'000);
  e.LearnOutcome("t1", Outcome::kAborted, 5'100);  // known: ignored
  CHECK(e.OutcomeOf("t1") == std::optional<std::string>("committed"));
  e.Tick(5'900);
  e.TakeActions();
  CHECK(e.Knows("t1"));
  e.Tick(6'100);
  e.TakeActions();
  CHECK_FALSE(e.Knows("t1"));
  e.Tick(40'000);  // nothing left to purge, nothing dangling
  e.TakeActions();
  CHECK_FALSE(e.Knows("t1"));
}

namespace {

EarlierOutcome Found(Outcome outcome) { return {EarlierOutcome::Kind::kFound, outcome, Status::Ok()}; }

// A prepare that is still being written, with a duplicate and an abort
// waiting on it; its storage job then answers with `earlier` (and `status`).
std::vector<action::Reply> PrepareFoundFinished(Engine& e, EarlierOutcome earlier, std::vector<Action>* rest,
                                                Status status = Status::Ok()) {
  e.OnPrepare(Prepare("t1"), 1, 0);
  REQUIRE(Only<action::Prepare>(e.TakeActions()).size() == 1);
  e.OnPrepare(Prepare("t1"), 2, 1);
  e.OnAbort("t1", "", 3, 2);  // before a yes vote anyone's abort waits for the prepare
  CHECK(e.TakeActions().empty());
  PrepareResult result;
  result.earlier = std::move(earlier);
  e.OnPrepared("t1", std::move(result), status, 3);
  *rest = e.TakeActions();
  auto replies = Only<action::Reply>(*rest);
  REQUIRE(replies.size() == 3);
  std::sort(replies.begin(), replies.end(), [](const auto& a, const auto& b) { return a.to < b.to; });
  return replies;
}

}  // namespace

TEST_CASE("a prepare whose storage job finds the txid committed before gets the yes it had, and holds nothing") {
  Engine e = MakeEngine();
  std::vector<Action> rest;
  auto replies = PrepareFoundFinished(e, Found(Outcome::kCommitted), &rest);
  CHECK(JsonOf(replies[0].body)["vote"] == "yes");
  CHECK(JsonOf(replies[0].body)["results"].is_null());
  CHECK(JsonOf(replies[1].body)["vote"] == "yes");
  CHECK(replies[2].status == 409);
  CHECK(JsonOf(replies[2].body)["error"]["code"] == "already_committed");
  CHECK(Only<action::WriteTombstone>(rest).empty());  // the store has it
  CHECK(e.StateOf("t1") == "committed");
  CHECK(e.Held(4).empty());
  CHECK(e.locks().size() == 0);
}

TEST_CASE("a prepare whose storage job finds a tombstone votes no, and the waiting abort is acknowledged") {
  Engine e = MakeEngine();
  std::vector<Action> rest;
  auto replies = PrepareFoundFinished(e, Found(Outcome::kAborted), &rest);
  CHECK(JsonOf(replies[0].body)["vote"] == "no");
  CHECK(JsonOf(replies[1].body)["vote"] == "no");
  CHECK(replies[2].status == 200);
  CHECK(JsonOf(replies[2].body)["state"] == "aborted");
  CHECK(Only<action::WriteTombstone>(rest).empty());
  CHECK(e.StateOf("t1") == "aborted");
}

TEST_CASE("a prepare whose txid's stored outcome cannot be read, or was never read, is answered 503 and decides nothing") {
  struct Case {
    const char* name;
    EarlierOutcome earlier;
    Status status;
  };
  const Case cases[] = {
      {"unreadable row", {EarlierOutcome::Kind::kUnreadable, Outcome::kAborted, Status::Corruption("outcome 'maybe'")},
       Status::Ok()},
      // A committed txid's duplicate prepare whose batch failed before the job read anything.
      {"batch failed first", {}, Status::IoError("disk I/O error")},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Engine e = MakeEngine();
    std::vector<Action> rest;
    auto replies = PrepareFoundFinished(e, c.earlier, &rest, c.status);
    for (const auto& r : replies) {
      CHECK(r.status == 503);
      CHECK(JsonOf(r.body)["error"]["code"] == "storage_error");
    }
    CHECK(Only<action::WriteTombstone>(rest).empty());
    CHECK_FALSE(e.Knows("t1"));
    CHECK(e.StateOf("t1") == "unknown");  // never "aborted": a peer would take that as evidence
    CHECK(e.Held(4).empty());
  }
}

TEST_CASE("a failed batch whose prepare found the txid committed answers with that outcome, not a no") {
  Engine e = MakeEngine();
  std::vector<Action> rest;
  auto replies = PrepareFoundFinished(e, Found(Outcome::kCommitted), &rest, Status::IoError("disk I/O error"));
  CHECK(JsonOf(replies[0].body)["vote"] == "yes");
  CHECK(Only<action::WriteTombstone>(rest).empty());
  CHECK(e.StateOf("t1") == "committed");
}

// ---------------------------------------------------------------------------
// 3PC: precommit, timeouts and the termination protocol.

namespace {

const std::vector<wire::ParticipantRef> kThree = {
    {"bank-a", "http://a"}, {"bank-b", "http://b"}, {"bank-c", "http://c"}};

Engine MakeEngine3(int64_t grace = 500) {
  EngineOptions o{{}, 100, 800, 60'000};
  o.termination_grace_ms = grace;
  o.name = "bank-a";
  return Engine(o);
}

// Drives a 3PC txid (deadline 1000) to prepared on bank-a.
void Prepare3(Engine& e, const std::string& txid, std::vector<std::string> keys = {"k"}) {
  wire::PrepareRequest r = Prepare(txid);
  r.protocol = wire::Protocol::k3pc;
  r.participants = kThree;
  e.OnPrepare(r, 1, 0);
  e.TakeActions();
  e.OnPrepared(txid, Yes(std::move(keys)), Status::Ok(), 0);
  REQUIRE(Only<action::Reply>(e.TakeActions()).size() == 1);
}

void Precommit(Engine& e, const std::string& txid, int64_t now) {
  e.OnPrecommit(txid, kCommitKey, 9, now);
  REQUIRE(Only<action::PersistPrecommitted>(e.TakeActions()).size() == 1);
  e.OnPrecommitPersisted(txid, Status::Ok(), now);
  auto r = Only<action::Reply>(e.TakeActions());
  REQUIRE(r.size() == 1);
  REQUIRE(JsonOf(r[0].body)["state"] == "precommitted");
}

// Ticks until the engine asks the coordinator, and answers "unreachable".
void CoordinatorSilent(Engine& e, const std::string& txid, int64_t now) {
  e.Tick(now);
  auto q = Only<action::QueryDecision>(e.TakeActions());
  REQUIRE(q.size() == 1);
  e.OnDecisionAnswer(txid, Status::Unavailable("connection refused"), now);
}

PeerAnswer Peer(const std::string& name, Result<std::string> state) { return PeerAnswer{name, std::move(state)}; }

}  // namespace

TEST_CASE("3pc: precommit is acknowledged only once it is durable, and repeats are acknowledged again") {
  Engine e = MakeEngine3();
  Prepare3(e, "t");
  e.OnPrecommit("t", kCommitKey, 5, 10);
  auto a = e.TakeActions();
  CHECK(Only<action::Reply>(a).empty());
  REQUIRE(Only<action::PersistPrecommitted>(a).size() == 1);
  CHECK(e.StateOf("t") == "precommitting");
  e.OnPrecommit("t", kCommitKey, 6, 11);  // a duplicate while persisting waits too
  CHECK(e.TakeActions().empty());
  e.OnPrecommitPersisted("t", Status::Ok(), 12);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].status == 200);
  CHECK(e.StateOf("t") == "precommitted");
  e.OnPrecommit("t", kCommitKey, 7, 13);
  replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(JsonOf(replies[0].body)["state"] == "precommitted");
}

TEST_CASE("3pc: once an abort is decided, a precommit is refused even while a failed apply waits to be retried") {
  // The abort told the peers already (termination) or is the coordinator's
  // decision: acking a precommit now could let the coordinator commit.
  for (bool precommitted : {false, true}) {
    CAPTURE(precommitted);
    Engine e = MakeEngine3();
    Prepare3(e, "t");
    if (precommitted) Precommit(e, "t", 1);
    e.OnAbort("t", kKey, 4, 2);
    REQUIRE(Only<action::ApplyAbort>(e.TakeActions()).size() == 1);
    e.OnAbortApplied("t", Status::IoError("disk full"), 3);
    auto r = Only<action::Reply>(e.TakeActions());
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == 503);
    e.OnPrecommit("t", kCommitKey, 5, 4);
    auto a = e.TakeActions();
    CHECK(Only<action::PersistPrecommitted>(a).empty());
    r = Only<action::Reply>(a);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == 409);
    CHECK(JsonOf(r[0].body)["error"]["code"] == "already_aborted");
    // A commit is refused too (a coordinator's, or a peer's termination).
    e.OnCommit("t", kCommitKey, 6, 5);
    r = Only<action::Reply>(e.TakeActions());
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == 409);
    CHECK(JsonOf(r[0].body)["error"]["code"] == "already_aborted");
    // The agent applies its abort again by itself, after a backoff, without
    // asking anyone what to do.
    a = {};
    for (int64_t now = 6; now < 2'000 && Only<action::ApplyAbort>(a).empty(); now += 10) {
      e.Tick(now);
      a = e.TakeActions();
      CHECK(Only<action::QueryDecision>(a).empty());
    }
    REQUIRE(Only<action::ApplyAbort>(a).size() == 1);
    e.OnAbortApplied("t", Status::Ok(), 2'000);
    CHECK(e.StateOf("t") == "aborted");
  }
}

TEST_CASE("3pc: precommit of an unknown, aborted or 2pc transaction is refused") {
  Engine e = MakeEngine3();
  e.OnPrecommit("nope", kCommitKey, 1, 0);
  auto r = Only<action::Reply>(e.TakeActions());
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == 404);
  PrepareFully(e, "two", {"k2"}, 2);
  e.OnPrecommit("two", kCommitKey, 3, 0);
  r = Only<action::Reply>(e.TakeActions());
  CHECK(r[0].status == 409);
  CHECK(JsonOf(r[0].body)["error"]["code"] == "not_3pc");
  Prepare3(e, "t");
  e.OnAbort("t", kKey, 4, 0);
  e.TakeActions();
  e.OnAbortApplied("t", Status::Ok(), 0);
  e.TakeActions();
  e.OnPrecommit("t", kCommitKey, 5, 0);
  r = Only<action::Reply>(e.TakeActions());
  CHECK(r[0].status == 409);
  CHECK(JsonOf(r[0].body)["error"]["code"] == "already_aborted");
  CHECK(e.StateOf("t") == "aborted");
}

TEST_CASE("3pc: a live coordinator that has not decided keeps the participant waiting, even past the grace") {
  Engine e = MakeEngine3(500);
  Prepare3(e, "t");
  for (int64_t now = 1000; now < 5000; now += 100) {
    e.Tick(now);
    for (auto& q : Only<action::QueryDecision>(e.TakeActions())) e.OnDecisionAnswer(q.txid, Decision::kPending, now);
    CHECK(Only<action::CallPeers>(e.TakeActions()).empty());
  }
  CHECK(e.StateOf("t") == "prepared");
}

TEST_CASE("3pc: no termination before the deadline plus the grace, then the peers are asked") {
  Engine e = MakeEngine3(500);
  Prepare3(e, "t");
  CoordinatorSilent(e, "t", 1000);  // at the deadline: too early to terminate
  CHECK(Only<action::CallPeers>(e.TakeActions()).empty());
  int64_t now = 1000;
  std::vector<action::CallPeers> calls;
  while (calls.empty() && now < 3000) {
    now += 10;
    e.Tick(now);
    for (auto& q : Only<action::QueryDecision>(e.TakeActions())) {
      e.OnDecisionAnswer(q.txid, Status::Unavailable("refused"), now);
      calls = Only<action::CallPeers>(e.TakeActions());
    }
  }
  REQUIRE(calls.size() == 1);
  CHECK(now >= 1500);
  CHECK(calls[0].call == action::PeerCall::kState);
  REQUIRE(calls[0].peers.size() == 2);  // itself excluded
  CHECK(calls[0].peers[0].name == "bank-b");
  CHECK(calls[0].peers[1].name == "bank-c");
}

namespace {
// A prepared or precommitted 3PC participant whose coordinator is silent, with a kState round out.
Engine Terminating(bool precommitted) {
  Engine e = MakeEngine3(0);
  Prepare3(e, "t");
  if (precommitted) Precommit(e, "t", 100);
  const int64_t now = precommitted ? 1100 : 1000;
  CoordinatorSilent(e, "t", now);
  auto calls = Only<action::CallPeers>(e.TakeActions());
  REQUIRE(calls.size() == 1);
  REQUIRE(calls[0].call == action::PeerCall::kState);
  return e;
}
}  // namespace

TEST_CASE("3pc termination: any committed peer -> commit here and tell the others") {
  Engine e = Terminating(false);
  e.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", std::string("committed")), Peer("bank-c", std::string("prepared"))}, 2000);
  auto a = e.TakeActions();
  CHECK(Only<action::ApplyCommit>(a).size() == 1);
  auto push = Only<action::CallPeers>(a);
  REQUIRE(push.size() == 1);
  CHECK(push[0].call == action::PeerCall::kCommit);
}

TEST_CASE("3pc termination: any aborted peer (or one that never voted yes) -> abort, even when precommitted here") {
  for (const char* st : {"aborted", "aborting", "preparing", "executing"}) {
    Engine e = Terminating(true);
    e.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", std::string(st)), Peer("bank-c", std::string("precommitted"))}, 2000);
    auto a = e.TakeActions();
    CHECK(Only<action::ApplyAbort>(a).size() == 1);
    auto push = Only<action::CallPeers>(a);
    REQUIRE(push.size() == 1);
    CHECK(push[0].call == action::PeerCall::kAbort);
    CHECK(push[0].abort_key == kKey);  // the peers take the abort with the transaction's key
  }
}

TEST_CASE("3pc termination: a peer that no longer knows it -> abort while nobody is precommitted; with someone "
          "precommitted, wait") {
  // Nobody precommitted: it may never have got its prepare.
  Engine e = Terminating(false);
  e.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", std::string("unknown")), Peer("bank-c", std::string("prepared"))}, 2000);
  CHECK(Only<action::ApplyAbort>(e.TakeActions()).size() == 1);
  // Precommitted here, or at a peer: every participant voted yes, so it
  // finished the transaction (either way) and forgot, or lost its database.
  for (bool here : {true, false}) {
    CAPTURE(here);
    Engine f = Terminating(here);
    f.OnPeerAnswers("t", action::PeerCall::kState,
                    {Peer("bank-b", std::string("unknown")),
                     Peer("bank-c", std::string(here ? "prepared" : "precommitted"))},
                    2000);
    auto a = f.TakeActions();
    CHECK(Only<action::ApplyAbort>(a).empty());
    CHECK(Only<action::ApplyCommit>(a).empty());
    CHECK(Only<action::PersistPrecommitted>(a).empty());
    CHECK(f.StateOf("t") == (here ? "precommitted" : "prepared"));
    CHECK(f.Held(2000)[0].last_error.find("bank-b no longer knows the transaction") != std::string::npos);
    // It keeps asking the coordinator, which settles it.
    f.Tick(60'000);
    auto queries = Only<action::QueryDecision>(f.TakeActions());
    REQUIRE(queries.size() == 1);
    f.OnDecisionAnswer("t", Decision::kCommit, 60'001);
    CHECK(Only<action::ApplyCommit>(f.TakeActions()).size() == 1);
  }
  // A precommit pushed in termination answered unknown: the same.
  Engine g = Terminating(true);
  g.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", std::string("prepared")), Peer("bank-c", std::string("prepared"))}, 2000);
  REQUIRE(Only<action::CallPeers>(g.TakeActions()).size() == 1);
  g.OnPeerAnswers("t", action::PeerCall::kPrecommit, {Peer("bank-b", std::string("precommitted")), Peer("bank-c", std::string("unknown"))}, 2001);
  auto a = g.TakeActions();
  CHECK(Only<action::ApplyAbort>(a).empty());
  CHECK(Only<action::ApplyCommit>(a).empty());
  CHECK(g.StateOf("t") == "precommitted");
}

TEST_CASE("3pc termination: all merely prepared -> abort") {
  Engine e = Terminating(false);
  e.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", std::string("prepared")), Peer("bank-c", Status::Unavailable("down"))}, 2000);
  CHECK(Only<action::ApplyAbort>(e.TakeActions()).size() == 1);
}

TEST_CASE("3pc termination: a precommitted peer -> precommit here, precommit the prepared peers, then commit") {
  Engine e = Terminating(false);
  e.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", std::string("precommitted")), Peer("bank-c", std::string("prepared"))}, 2000);
  auto a = e.TakeActions();
  REQUIRE(Only<action::PersistPrecommitted>(a).size() == 1);
  CHECK(Only<action::ApplyCommit>(a).empty());
  e.OnPrecommitPersisted("t", Status::Ok(), 2001);
  a = e.TakeActions();
  auto calls = Only<action::CallPeers>(a);
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].call == action::PeerCall::kPrecommit);
  REQUIRE(calls[0].peers.size() == 1);
  CHECK(calls[0].peers[0].name == "bank-c");
  CHECK(Only<action::ApplyCommit>(a).empty());  // not before bank-c is precommitted
  e.OnPeerAnswers("t", action::PeerCall::kPrecommit, {Peer("bank-c", std::string("precommitted"))}, 2002);
  a = e.TakeActions();
  CHECK(Only<action::ApplyCommit>(a).size() == 1);
  calls = Only<action::CallPeers>(a);
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].call == action::PeerCall::kCommit);
}

TEST_CASE("3pc termination: a peer that refuses the precommit (it aborted meanwhile) -> abort") {
  Engine e = Terminating(true);
  e.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", std::string("prepared")), Peer("bank-c", std::string("prepared"))}, 2000);
  auto calls = Only<action::CallPeers>(e.TakeActions());
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].peers.size() == 2);
  e.OnPeerAnswers("t", action::PeerCall::kPrecommit, {Peer("bank-b", std::string("precommitted")), Peer("bank-c", std::string("aborted"))}, 2001);
  CHECK(Only<action::ApplyAbort>(e.TakeActions()).size() == 1);
}

TEST_CASE("3pc termination: precommitted and alone (nobody answers) -> commit; prepared and alone -> abort") {
  Engine e = Terminating(true);
  e.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", Status::Unavailable("down")), Peer("bank-c", Status::Unavailable("down"))}, 2000);
  CHECK(Only<action::ApplyCommit>(e.TakeActions()).size() == 1);
  Engine f = Terminating(false);
  f.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", Status::Unavailable("down")), Peer("bank-c", Status::Unavailable("down"))}, 2000);
  CHECK(Only<action::ApplyAbort>(f.TakeActions()).size() == 1);
}

TEST_CASE("3pc termination: the participant's own state is read when the answers arrive, not when it asked") {
  Engine e = Terminating(false);
  // The coordinator's precommit arrives while the peers are being asked.
  Precommit(e, "t", 1500);
  e.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", std::string("prepared")), Peer("bank-c", std::string("prepared"))}, 2000);
  auto a = e.TakeActions();
  CHECK(Only<action::ApplyAbort>(a).empty());  // "all prepared" no longer holds
  auto calls = Only<action::CallPeers>(a);
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].call == action::PeerCall::kPrecommit);
}

TEST_CASE("3pc: a participant restarted from disk never decides alone, but does with every peer's answer") {
  PreparedRecord r;
  r.txid = "t";
  r.protocol = "3pc";
  r.state = "precommitted";
  r.lock_keys = {"k"};
  r.coordinator = "http://coord";
  r.participants = {{"bank-a", "http://a"}, {"bank-b", "http://b"}};
  r.created_ms = 0;
  r.deadline_ms = 1000;
  Engine e = MakeEngine3(0);
  e.Recover({r}, 5000);
  CHECK(e.StateOf("t") == "precommitted");
  CHECK(e.locks().Holder("k") == std::optional<std::string>("t"));
  CoordinatorSilent(e, "t", 5000);
  auto calls = Only<action::CallPeers>(e.TakeActions());
  REQUIRE(calls.size() == 1);
  e.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", Status::Unavailable("down"))}, 5001);
  auto a = e.TakeActions();
  CHECK(Only<action::ApplyCommit>(a).empty());
  CHECK(Only<action::ApplyAbort>(a).empty());
  CHECK(e.StateOf("t") == "precommitted");
  // Later, bank-b answers: it is prepared; with everyone heard, precommit it and commit.
  std::vector<action::CallPeers> again;
  for (int64_t now = 5010; again.empty() && now < 20'000; now += 10) {
    e.Tick(now);
    for (auto& q : Only<action::QueryDecision>(e.TakeActions())) {
      e.OnDecisionAnswer(q.txid, Status::Unavailable("refused"), now);
      again = Only<action::CallPeers>(e.TakeActions());
    }
  }
  REQUIRE(again.size() == 1);
  e.OnPeerAnswers("t", action::PeerCall::kState, {Peer("bank-b", std::string("prepared"))}, 20'000);
  calls = Only<action::CallPeers>(e.TakeActions());
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].call == action::PeerCall::kPrecommit);
}

TEST_CASE("3pc: abort and commit are accepted while precommitted; commit waits out precommitting") {
  Engine e = MakeEngine3();
  Prepare3(e, "t");
  Precommit(e, "t", 10);
  e.OnAbort("t", kKey, 3, 20);
  CHECK(Only<action::ApplyAbort>(e.TakeActions()).size() == 1);
  Engine f = MakeEngine3();
  Prepare3(f, "u");
  f.OnPrecommit("u", kCommitKey, 4, 10);
  f.TakeActions();
  f.OnCommit("u", kCommitKey, 5, 11);
  auto r = Only<action::Reply>(f.TakeActions());
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == 409);
  f.OnPrecommitPersisted("u", Status::Ok(), 12);
  f.TakeActions();
  f.OnCommit("u", kCommitKey, 6, 13);
  CHECK(Only<action::ApplyCommit>(f.TakeActions()).size() == 1);
}

TEST_CASE("an abort of a record that voted yes needs its key; otherwise refused, and the coordinator is asked") {
  Engine e = MakeEngine();
  PrepareFully(e, "t1", {"k1"}, 1);
  for (const std::string& key : {std::string(), std::string(64, 'b'), kKey.substr(1)}) {
    e.OnAbort("t1", key, 2, 10);
    auto a = e.TakeActions();
    CHECK(Only<action::ApplyAbort>(a).empty());
    auto refused = Only<action::Reply>(a);
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].status == 409);
    CHECK(JsonOf(refused[0].body)["error"]["code"] == "abort_not_from_coordinator");
  }
  CHECK(e.StateOf("t1") == "prepared");
  CHECK(e.locks().size() == 1);
  // Long before its deadline (1000), it asks its coordinator at the next tick.
  e.Tick(20);
  auto asked = Only<action::QueryDecision>(e.TakeActions());
  REQUIRE(asked.size() == 1);
  CHECK(asked[0].coordinators.front() == "http://coord");
  e.OnDecisionAnswer("t1", Decision::kPending, 25);
  e.TakeActions();
  // The key aborts it.
  e.OnAbort("t1", kKey, 3, 30);
  CHECK(Only<action::ApplyAbort>(e.TakeActions()).size() == 1);
}

TEST_CASE("a record prepared without a key is aborted only by its coordinator's answer") {
  Engine e = MakeEngine();
  wire::PrepareRequest r = Prepare("old");
  r.abort_key.clear();
  e.OnPrepare(r, 1, 0);
  e.TakeActions();
  e.OnPrepared("old", Yes({"k"}), Status::Ok(), 0);
  e.TakeActions();
  e.OnAbort("old", kKey, 2, 5);
  auto refused = Only<action::Reply>(e.TakeActions());
  REQUIRE(refused.size() == 1);
  CHECK(JsonOf(refused[0].body)["error"]["code"] == "abort_not_from_coordinator");
  e.Tick(10);
  REQUIRE(Only<action::QueryDecision>(e.TakeActions()).size() == 1);
  e.OnDecisionAnswer("old", Decision::kAbort, 15);
  CHECK(Only<action::ApplyAbort>(e.TakeActions()).size() == 1);
}

TEST_CASE("before its yes vote an abort needs no key: the coordinator cannot have decided commit") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t1"), 1, 0);
  e.TakeActions();
  e.OnAbort("t1", "", 2, 0);
  e.OnPrepared("t1", Yes({"k"}), Status::Ok(), 1);
  auto a = e.TakeActions();
  auto vote = Only<action::Reply>(a);
  REQUIRE(vote.size() == 1);
  CHECK(JsonOf(vote[0].body)["vote"] == "no");
  CHECK(Only<action::ApplyAbort>(a).size() == 1);
}

TEST_CASE("a commit or precommit of a record that voted yes needs its commit key; otherwise refused, nothing changed") {
  for (bool three_pc : {false, true}) {
    Engine e = three_pc ? MakeEngine3() : MakeEngine();
    if (three_pc) {
      Prepare3(e, "t1");
    } else {
      PrepareFully(e, "t1", {"k1"}, 1);
    }
    // The abort key, another key, a truncated key, the check itself, nothing.
    for (const std::string& key : {kKey, std::string(64, 'b'), kCommitKey.substr(1), CommitCheck(kCommitKey),
                                   std::string()}) {
      e.OnCommit("t1", key, 2, 10);
      if (three_pc) e.OnPrecommit("t1", key, 3, 10);
      auto a = e.TakeActions();
      CHECK(Only<action::ApplyCommit>(a).empty());
      CHECK(Only<action::PersistPrecommitted>(a).empty());
      auto refused = Only<action::Reply>(a);
      REQUIRE(refused.size() == (three_pc ? 2u : 1u));
      for (const auto& r : refused) {
        CHECK(r.status == 409);
        CHECK(JsonOf(r.body)["error"]["code"] == "commit_not_from_coordinator");
      }
    }
    CHECK(e.StateOf("t1") == "prepared");
    // It asks its coordinator at the next tick, long before its deadline.
    e.Tick(20);
    REQUIRE(Only<action::QueryDecision>(e.TakeActions()).size() == 1);
    e.OnDecisionAnswer("t1", Decision::kPending, 25);
    e.TakeActions();
    // The coordinator's abort still works.
    e.OnAbort("t1", kKey, 4, 30);
    CHECK(Only<action::ApplyAbort>(e.TakeActions()).size() == 1);
  }
}

TEST_CASE("the commit key commits; a precommitted participant passes it on in termination") {
  Engine e = MakeEngine();
  PrepareFully(e, "t1", {"k1"}, 1);
  e.OnCommit("t1", kCommitKey, 2, 10);
  CHECK(Only<action::ApplyCommit>(e.TakeActions()).size() == 1);

  // 3PC: precommitted with the key, then the coordinator falls silent.
  Engine t = MakeEngine3(0);
  Prepare3(t, "t");
  Precommit(t, "t", 100);
  CoordinatorSilent(t, "t", 1100);
  REQUIRE(Only<action::CallPeers>(t.TakeActions()).size() == 1);
  t.OnPeerAnswers("t", action::PeerCall::kState,
                  {Peer("bank-b", std::string("precommitted")), Peer("bank-c", std::string("prepared"))}, 2000);
  auto push = Only<action::CallPeers>(t.TakeActions());
  REQUIRE(push.size() == 1);
  CHECK(push[0].call == action::PeerCall::kPrecommit);
  CHECK(push[0].commit_key == kCommitKey);
  t.OnPeerAnswers("t", action::PeerCall::kPrecommit, {Peer("bank-c", std::string("precommitted"))}, 2001);
  auto a = t.TakeActions();
  CHECK(Only<action::ApplyCommit>(a).size() == 1);
  push = Only<action::CallPeers>(a);
  REQUIRE(push.size() == 1);
  CHECK(push[0].call == action::PeerCall::kCommit);
  CHECK(push[0].commit_key == kCommitKey);
  CHECK(push[0].abort_key.empty());
}

TEST_CASE("a record prepared without a commit check takes any commit, as before") {
  Engine e = MakeEngine();
  wire::PrepareRequest r = Prepare("old");
  r.commit_check.clear();
  e.OnPrepare(r, 1, 0);
  e.TakeActions();
  e.OnPrepared("old", Yes({"k"}), Status::Ok(), 0);
  e.TakeActions();
  e.OnCommit("old", "", 2, 5);
  CHECK(Only<action::ApplyCommit>(e.TakeActions()).size() == 1);
}

TEST_CASE("the commit check is kept with the record and survives a restart") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t1"), 1, 0);
  auto prepares = Only<action::Prepare>(e.TakeActions());
  REQUIRE(prepares.size() == 1);
  CHECK(prepares[0].record.commit_check == CommitCheck(kCommitKey));
  PreparedRecord record = prepares[0].record;
  record.lock_keys = {"k"};
  Engine restarted = MakeEngine();
  restarted.Recover({record}, 0);
  restarted.TakeActions();
  restarted.OnCommit("t1", std::string(64, 'b'), 2, 1);
  auto refused = Only<action::Reply>(restarted.TakeActions());
  REQUIRE(refused.size() == 1);
  CHECK(JsonOf(refused[0].body)["error"]["code"] == "commit_not_from_coordinator");
  restarted.OnCommit("t1", kCommitKey, 3, 2);
  CHECK(Only<action::ApplyCommit>(restarted.TakeActions()).size() == 1);
}

namespace {

// A repeated prepare (a duplicate, or the coordinator asking again) of a
// record prepared before a restart: the vote is yes, and its rows, which the
// record does not keep, are reported unknown (null), never as "no rows".
TEST_CASE("a repeated prepare after a restart votes yes with its results unknown, not empty") {
  Engine e = MakeEngine();
  action::Reply first = PrepareFully(e, "t1", {"k"}, 1);
  CHECK(JsonOf(first.body)["vote"] == "yes");
  CHECK(JsonOf(first.body)["results"].is_array());
  e.OnPrepare(Prepare("t1"), 2, 1);  // before a restart the rows are still known
  auto again = Only<action::Reply>(e.TakeActions());
  REQUIRE(again.size() == 1);
  CHECK(JsonOf(again[0].body)["results"] == JsonOf(first.body)["results"]);

  PreparedRecord record;
  record.txid = "t1";
  record.state = "prepared";
  record.lock_keys = {"k"};
  record.coordinator = "http://coord";
  record.deadline_ms = 1'000'000;
  Engine restarted = MakeEngine();
  restarted.Recover({record}, 10);
  restarted.LearnOutcome("t0", Outcome::kCommitted, 10);
  restarted.TakeActions();
  restarted.OnPrepare(Prepare("t1"), 3, 11);
  auto vote = Only<action::Reply>(restarted.TakeActions());
  REQUIRE(vote.size() == 1);
  CHECK(JsonOf(vote[0].body)["vote"] == "yes");
  CHECK(JsonOf(vote[0].body)["results"].is_null());
  auto parsed = wire::ParseVote(JsonOf(vote[0].body).dump());
  REQUIRE(parsed.ok());
  CHECK(parsed->results.is_null());
  // Finished and committed: also unknown.
  restarted.OnPrepare(Prepare("t0"), 4, 12);
  auto finished = Only<action::Reply>(restarted.TakeActions());
  REQUIRE(finished.size() == 1);
  CHECK(JsonOf(finished[0].body)["vote"] == "yes");
  CHECK(JsonOf(finished[0].body)["results"].is_null());
}

}  // namespace

namespace {

// The resource manager's no for a key t0 holds, with the prepare handed back.
PrepareResult HeldBy(const std::string& holder, const std::string& txid) {
  PrepareResult r = No("lock conflict with " + holder);
  r.lock_conflict = true;
  r.lock_holder = holder;
  r.record.txid = txid;
  r.ops = Prepare(txid).ops;
  return r;
}

// t0 voted yes here and holds alice's row; t1's prepare met it.
void T1MetT0(Engine& e) {
  e.OnPrepare(Prepare("t0"), 1, 0);
  e.TakeActions();
  e.OnPrepared("t0", Yes({"accounts|pk|alice"}), Status::Ok(), 0);
  e.TakeActions();
  e.OnPrepare(Prepare("t1"), 2, 1);
  e.TakeActions();
  e.OnPrepared("t1", HeldBy("t0", "t1"), Status::Ok(), 2);
}

}  // namespace

TEST_CASE("a prepare that meets a key of a transaction that voted yes waits for it to be applied, then runs again") {
  // The coordinator answers a client as it sends the commits, and the
  // client's next transaction on the same rows may reach this agent first.
  Engine e = MakeEngine();
  T1MetT0(e);
  CHECK(Only<action::Reply>(e.TakeActions()).empty());  // no vote yet
  e.OnCommit("t0", kCommitKey, 3, 3);
  REQUIRE(Only<action::ApplyCommit>(e.TakeActions()).size() == 1);
  e.OnCommitApplied("t0", Status::Ok(), 4);
  auto a = e.TakeActions();
  auto again = Only<action::Prepare>(a);
  REQUIRE(again.size() == 1);
  CHECK(again[0].record.txid == "t1");
  CHECK(again[0].ops.size() == 1);
  e.OnPrepared("t1", Yes({"accounts|pk|alice"}), Status::Ok(), 5);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(JsonOf(replies[0].body)["vote"] == "yes");
}

TEST_CASE("a prepare waits once, and at most briefly: then the conflict is a no") {
  Engine e = MakeEngine();
  T1MetT0(e);
  e.TakeActions();
  e.Tick(2 + 19);
  CHECK(Only<action::Prepare>(e.TakeActions()).empty());
  e.Tick(2 + 20);
  REQUIRE(Only<action::Prepare>(e.TakeActions()).size() == 1);
  e.OnPrepared("t1", HeldBy("t0", "t1"), Status::Ok(), 23);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(JsonOf(replies[0].body)["vote"] == "no");
  CHECK(JsonOf(replies[0].body)["reason"] == "lock conflict with t0");
  e.OnCommit("t0", kCommitKey, 3, 30);
  e.TakeActions();
  e.OnCommitApplied("t0", Status::Ok(), 31);
  CHECK(Only<action::Prepare>(e.TakeActions()).empty());  // nothing waits any more
}

TEST_CASE("a prepare does not wait for a holder still preparing, and an abort ends a wait at once") {
  Engine e = MakeEngine();
  e.OnPrepare(Prepare("t0"), 1, 0);
  e.OnPrepare(Prepare("t1"), 2, 0);
  e.TakeActions();
  e.OnPrepared("t1", HeldBy("t0", "t1"), Status::Ok(), 1);  // t0 has not voted: the other side of a conflict
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(JsonOf(replies[0].body)["vote"] == "no");

  Engine w = MakeEngine();
  T1MetT0(w);
  w.TakeActions();
  w.OnAbort("t1", "", 9, 3);
  REQUIRE(Only<action::Prepare>(w.TakeActions()).size() == 1);  // runs now, and its result answers the abort
}

namespace {

// The keys of the log that adopts a record after the one it was prepared under was lost.
const std::string kNewAbortKey(64, 'd');
const std::string kNewCommitKey(64, 'e');

wire::AdoptRequest AdoptBy(const std::string& txid, const std::string& log_id = "log-2") {
  return wire::AdoptRequest{txid, log_id, kNewAbortKey, CommitCheck(kNewCommitKey)};
}

// Adopts txid and reports the write durable; returns the 200.
action::Reply AdoptFully(Engine& e, const std::string& txid, RequestToken token, int64_t now) {
  e.OnAdopt(AdoptBy(txid), token, now);
  auto writes = Only<action::PersistAdoption>(e.TakeActions());
  REQUIRE(writes.size() == 1);
  e.OnAdoptionPersisted(txid, Status::Ok(), now);
  auto replies = Only<action::Reply>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  return replies[0];
}

std::string ErrorCode(const action::Reply& r) { return JsonOf(r.body)["error"]["code"].get<std::string>(); }

}  // namespace

TEST_CASE("an adopted record refuses the lost log's commit and abort, from the moment the adoption arrives") {
  Engine e = MakeEngine();
  PrepareFully(e, "t1", {"k1"}, 1);
  e.OnAdopt(AdoptBy("t1"), 2, 10);
  auto a = e.TakeActions();
  CHECK(Only<action::Reply>(a).empty());  // answered once durable
  auto writes = Only<action::PersistAdoption>(a);
  REQUIRE(writes.size() == 1);
  CHECK(writes[0].adoption.log_id == "log-2");
  CHECK(writes[0].adoption.abort_key == kNewAbortKey);
  CHECK(writes[0].adoption.commit_check == CommitCheck(kNewCommitKey));
  // The lost log's commit, still in the network, arrives while the adoption is written.
  e.OnCommit("t1", kCommitKey, 3, 11);
  auto refused = Only<action::Reply>(e.TakeActions());
  REQUIRE(refused.size() == 1);
  CHECK(ErrorCode(refused[0]) == "commit_not_from_coordinator");
  e.OnAdoptionPersisted("t1", Status::Ok(), 12);
  auto adopted = Only<action::Reply>(e.TakeActions());
  REQUIRE(adopted.size() == 1);
  CHECK(adopted[0].to == 2);
  CHECK(adopted[0].status == 200);
  CHECK(JsonOf(adopted[0].body)["adopted_by"] == "log-2");
  CHECK(JsonOf(adopted[0].body)["state"] == "prepared");
  e.OnAbort("t1", kKey, 4, 13);
  refused = Only<action::Reply>(e.TakeActions());
  REQUIRE(refused.size() == 1);
  CHECK(ErrorCode(refused[0]) == "abort_not_from_coordinator");
  CHECK(e.StateOf("t1") == "prepared");
  auto held = e.Held(14);
  REQUIRE(held.size() == 1);
  CHECK(held[0].adopted_by == "log-2");
  CHECK(HeldJson(held[0])["adopted_by"] == "log-2");
  CHECK(held[0].log_id == "");  // still asks as the record it was prepared as
  // The adopting log's decision settles it.
  e.OnCommit("t1", kNewCommitKey, 5, 15);
  CHECK(Only<action::ApplyCommit>(e.TakeActions()).size() == 1);

  Engine f = MakeEngine();
  PrepareFully(f, "t1", {"k1"}, 1);
  AdoptFully(f, "t1", 2, 10);
  f.OnAbort("t1", kNewAbortKey, 3, 11);
  CHECK(Only<action::ApplyAbort>(f.TakeActions()).size() == 1);
}

TEST_CASE("an adoption whose write failed gives the record its keys back and answers 503") {
  Engine e = MakeEngine();
  PrepareFully(e, "t1", {"k1"}, 1);
  e.OnAdopt(AdoptBy("t1"), 2, 10);
  e.TakeActions();
  e.OnAdoptionPersisted("t1", Status::Unavailable("disk full"), 11);
  auto failed = Only<action::Reply>(e.TakeActions());
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].status == 503);
  CHECK(e.Held(12)[0].adopted_by.empty());
  e.OnCommit("t1", kCommitKey, 3, 12);
  CHECK(Only<action::ApplyCommit>(e.TakeActions()).size() == 1);
}

TEST_CASE("an adoption is answered with what the participant did, or asked again while it is being written") {
  Engine e = MakeEngine();
  auto answer = [&e](const std::string& txid, RequestToken token) {
    e.OnAdopt(AdoptBy(txid), token, 20);
    auto r = Only<action::Reply>(e.TakeActions());
    REQUIRE(r.size() == 1);
    return r[0];
  };
  // Committed and remembered; being committed; aborted; being aborted; never seen.
  PrepareFully(e, "done", {"k1"}, 1);
  e.OnCommit("done", kCommitKey, 2, 1);
  e.TakeActions();
  e.OnCommitApplied("done", Status::Ok(), 2);
  e.TakeActions();
  CHECK(ErrorCode(answer("done", 3)) == "already_committed");
  PrepareFully(e, "committing", {"k2"}, 4);
  e.OnCommit("committing", kCommitKey, 5, 2);
  e.TakeActions();
  CHECK(ErrorCode(answer("committing", 6)) == "already_committing");
  PrepareFully(e, "aborting", {"k3"}, 7);
  e.OnAbort("aborting", kKey, 8, 3);
  e.TakeActions();
  CHECK(ErrorCode(answer("aborting", 9)) == "already_aborted");
  const action::Reply unknown = answer("never", 10);
  CHECK(unknown.status == 404);
  CHECK(ErrorCode(unknown) == "unknown_transaction");
  CHECK(!e.Knows("never"));  // nothing written for it
  // Still preparing: ask again.
  e.OnPrepare(Prepare("preparing"), 11, 4);
  e.TakeActions();
  CHECK(ErrorCode(answer("preparing", 12)) == "not_prepared");
  // A repeated adoption waits for the write under way, then is answered with it;
  // another log's meanwhile is asked to come again; once durable, a repeat is answered at once.
  PrepareFully(e, "t", {"k4"}, 13);
  e.OnAdopt(AdoptBy("t"), 14, 30);
  REQUIRE(Only<action::PersistAdoption>(e.TakeActions()).size() == 1);
  e.OnAdopt(AdoptBy("t"), 15, 31);
  CHECK(e.TakeActions().empty());
  e.OnAdopt(AdoptBy("t", "log-3"), 0, 31);
  auto other = Only<action::Reply>(e.TakeActions());
  REQUIRE(other.size() == 1);
  CHECK(ErrorCode(other[0]) == "adoption_in_progress");
  e.OnAdoptionPersisted("t", Status::Ok(), 32);
  auto both = Only<action::Reply>(e.TakeActions());
  REQUIRE(both.size() == 2);
  CHECK(both[0].status == 200);
  CHECK(both[1].status == 200);
  CHECK(answer("t", 16).status == 200);
}

TEST_CASE("3pc: an adopted record never runs termination, and a round under way concludes nothing") {
  // Adopted, then its coordinator falls silent past the grace: it keeps asking, nothing else.
  Engine e = MakeEngine3(0);
  Prepare3(e, "t");
  AdoptFully(e, "t", 2, 10);
  for (int64_t now = 1000; now < 5000; now += 100) {
    e.Tick(now);
    for (auto& q : Only<action::QueryDecision>(e.TakeActions())) {
      e.OnDecisionAnswer(q.txid, Status::Unavailable("refused"), now);
      CHECK(Only<action::CallPeers>(e.TakeActions()).empty());
    }
  }
  CHECK(e.StateOf("t") == "prepared");

  // A round was asking the peers when the adoption came: their answers decide nothing.
  Engine t = Terminating(true);
  AdoptFully(t, "t", 3, 1500);
  t.OnPeerAnswers("t", action::PeerCall::kState,
                  {Peer("bank-b", std::string("committed")), Peer("bank-c", std::string("prepared"))}, 2000);
  auto a = t.TakeActions();
  CHECK(Only<action::ApplyCommit>(a).empty());
  CHECK(Only<action::CallPeers>(a).empty());
  CHECK(t.StateOf("t") == "precommitted");
}

TEST_CASE("an adoption is kept with the record: after a restart the lost log's keys are still refused") {
  Engine e = MakeEngine3(0);
  e.OnPrepare([] {
    wire::PrepareRequest r = Prepare("t");
    r.protocol = wire::Protocol::k3pc;
    r.participants = kThree;
    return r;
  }(), 1, 0);
  auto prepares = Only<action::Prepare>(e.TakeActions());
  REQUIRE(prepares.size() == 1);
  PreparedRecord record = prepares[0].record;
  record.lock_keys = {"k"};
  record.adopted_by = "log-2";
  record.abort_key = kNewAbortKey;
  record.commit_check = CommitCheck(kNewCommitKey);
  Engine restarted = MakeEngine3(0);
  restarted.Recover({record}, 0);
  restarted.TakeActions();
  restarted.OnCommit("t", kCommitKey, 2, 1);
  restarted.OnAbort("t", kKey, 3, 1);
  auto refused = Only<action::Reply>(restarted.TakeActions());
  REQUIRE(refused.size() == 2);
  CHECK(ErrorCode(refused[0]) == "commit_not_from_coordinator");
  CHECK(ErrorCode(refused[1]) == "abort_not_from_coordinator");
  // Silent coordinator, restarted: still no termination.
  for (int64_t now = 10; now < 3000; now += 100) {
    restarted.Tick(now);
    for (auto& q : Only<action::QueryDecision>(restarted.TakeActions())) {
      restarted.OnDecisionAnswer(q.txid, Status::Unavailable("refused"), now);
      CHECK(Only<action::CallPeers>(restarted.TakeActions()).empty());
    }
  }
  CHECK(restarted.Held(3000)[0].adopted_by == "log-2");
  restarted.OnAbort("t", kNewAbortKey, 4, 3001);
  CHECK(Only<action::ApplyAbort>(restarted.TakeActions()).size() == 1);
}
