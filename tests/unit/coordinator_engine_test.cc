// The coordinator's 2PC engine driven by hand-fed events: no sockets, no clock.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>

#include "tests/unit/support/actions.h"

#include "common/json_text.h"
#include "coordinator/engine.h"

using namespace commitd;
using namespace commitd::coordinator;

namespace {

using testing::Only;

StartRequest Transfer(const std::string& txid, ClientToken client = 1, int64_t timeout_ms = 1000) {
  StartRequest r;
  r.txid = txid;
  r.timeout_ms = timeout_ms;
  r.participants = {{"bank-a", "http://a"}, {"bank-b", "http://b"}};
  wire::Op debit;
  debit.procedure = "debit";
  debit.args = {{"account", "alice"}, {"amount", 30}};
  wire::Op credit;
  credit.procedure = "credit";
  credit.args = {{"account", "bob"}, {"amount", 30}};
  r.ops = {{debit}, {credit}};
  r.client = client;
  r.created_ms = 5;
  return r;
}

wire::Vote Yes(const std::string& txid) {
  wire::Vote v;
  v.txid = txid;
  v.yes = true;
  return v;
}

wire::Vote No(const std::string& txid, const std::string& reason) {
  wire::Vote v;
  v.txid = txid;
  v.reason = reason;
  return v;
}

Engine MakeEngine() { return Engine(EngineOptions{"http://coord", 50, 400}); }

// txid's staging record could not be written (its Idempotency-Key was taken):
// its commit record alone decides, written before the answer.
void StagingRefused(Engine& e, const std::string& txid) {
  e.OnStagingPersisted(txid, Status::Conflict("idempotency key taken"), 0);
  CHECK(e.TakeActions().empty());
}

// A transfer decided commit, its record durable (no staging record): the
// commit is on its way to both participants.
void CommitDelivering(Engine& e, const std::string& txid) {
  e.Start(Transfer(txid), 0);
  e.TakeActions();
  StagingRefused(e, txid);
  e.OnVote(txid, "bank-a", Yes(txid), 0);
  e.OnVote(txid, "bank-b", Yes(txid), 0);
  e.OnDecisionPersisted(txid, Status::Ok(), 0);
  REQUIRE(Only<action::SendDecision>(e.TakeActions()).size() == 2);
}

// A transfer decided commit and acked by every participant: its finished mark
// is the last action taken.
void CommittedAndAcked(Engine& e, const std::string& txid) {
  CommitDelivering(e, txid);
  e.OnDecisionAcked(txid, "bank-a", Status::Ok(), 0);
  e.OnDecisionAcked(txid, "bank-b", Status::Ok(), 0);
  REQUIRE(Only<action::PersistFinished>(e.TakeActions()).size() == 1);
}

}  // namespace

TEST_CASE("all yes without a staging record: commit is persisted before the client hears it and before any commit "
          "is sent") {
  Engine e = MakeEngine();
  e.Start(Transfer("t1"), 0);
  auto a = e.TakeActions();
  auto prepares = Only<action::SendPrepare>(a);
  REQUIRE(prepares.size() == 2);
  CHECK(prepares[0].to.name == "bank-a");
  CHECK(prepares[0].request.coordinator == "http://coord");
  CHECK(prepares[0].request.participant == "bank-a");
  CHECK(prepares[0].request.participants.size() == 2);
  CHECK(prepares[0].request.ops.size() == 1);
  CHECK(e.undecided() == 1);
  StagingRefused(e, "t1");

  e.OnVote("t1", "bank-a", Yes("t1"), 1);
  CHECK(e.TakeActions().empty());
  e.OnVote("t1", "bank-b", Yes("t1"), 2);
  a = e.TakeActions();
  REQUIRE(a.size() == 2);
  auto decided = Only<action::Decided>(a);
  REQUIRE(decided.size() == 1);
  CHECK(decided[0].txid == "t1");
  CHECK(decided[0].outcome == Outcome::kCommitted);
  auto persist = Only<action::PersistDecision>(a);
  REQUIRE(persist.size() == 1);
  CHECK_FALSE(persist[0].rides_next_write);
  CHECK_FALSE(persist[0].record.finished);
  CHECK(persist[0].record.outcome == Outcome::kCommitted);
  CHECK(persist[0].record.participants.size() == 2);
  CHECK(persist[0].record.reply.is_null());  // no Idempotency-Key: nobody can ask for it again
  CHECK(e.Find("t1")->outcome == Outcome::kPending);  // not durable yet

  e.OnDecisionPersisted("t1", Status::Ok(), 3);
  a = e.TakeActions();
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  CHECK(JsonOf(replies[0].body)["outcome"] == "committed");
  CHECK(replies[0].outcome == Outcome::kCommitted);
  auto sends = Only<action::SendDecision>(a);
  REQUIRE(sends.size() == 2);
  CHECK(sends[0].outcome == Outcome::kCommitted);

  e.OnDecisionAcked("t1", "bank-a", Status::Ok(), 4);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).empty());
  e.OnDecisionAcked("t1", "bank-b", Status::Ok(), 5);
  auto finished = Only<action::PersistFinished>(e.TakeActions());
  REQUIRE(finished.size() == 1);
  e.OnFinishedPersisted("t1", Status::Ok(), 6);
  CHECK(e.active() == 0);
  CHECK_FALSE(e.Find("t1").has_value());
}

TEST_CASE("a no vote aborts, names the participant, and skips the abort to the no voter, once the abort is durable") {
  Engine e = MakeEngine();
  e.Start(Transfer("t2"), 0);
  e.TakeActions();
  e.OnVote("t2", "bank-a", No("t2", "procedure 'debit' expected 1 changed row, got 0"), 1);
  auto a = e.TakeActions();
  auto persist = Only<action::PersistDecision>(a);
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.outcome == Outcome::kAborted);
  CHECK(persist[0].record.reason == "bank-a voted no: procedure 'debit' expected 1 changed row, got 0");
  CHECK(Only<action::SendDecision>(a).empty());  // its staging record is on its way: see the staging tests
  CHECK(Only<action::ReplyClient>(a).empty());   // answered once the abort is durable

  e.OnDecisionPersisted("t2", Status::Ok(), 2);
  a = e.TakeActions();
  auto sends = Only<action::SendDecision>(a);
  REQUIRE(sends.size() == 1);  // bank-b may have prepared; bank-a voted no
  CHECK(sends[0].to.name == "bank-b");
  CHECK(sends[0].outcome == Outcome::kAborted);
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 409);
  CHECK(JsonOf(replies[0].body)["reason"] == "bank-a voted no: procedure 'debit' expected 1 changed row, got 0");
  CHECK(replies[0].outcome == Outcome::kAborted);
  // A late yes from bank-b changes nothing.
  e.OnVote("t2", "bank-b", Yes("t2"), 3);
  e.OnDecisionAcked("t2", "bank-b", Status::Ok(), 4);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).size() == 1);
}

TEST_CASE("an unreachable participant aborts the transaction with a reason naming it") {
  Engine e = MakeEngine();
  e.Start(Transfer("t3"), 0);
  e.TakeActions();
  e.OnVote("t3", "bank-b", Status::Unavailable("connect to http://b failed: Connection refused"), 1);
  auto persist = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.reason == "bank-b unreachable: connect to http://b failed: Connection refused");
}

TEST_CASE("no vote by the deadline aborts with a timeout reason; the silent participant gets the abort") {
  Engine e = MakeEngine();
  e.Start(Transfer("t4", 1, 1000), 0);
  e.TakeActions();
  e.OnVote("t4", "bank-a", Yes("t4"), 10);
  e.Tick(999);
  CHECK(e.TakeActions().empty());
  e.Tick(1000);
  auto a = e.TakeActions();
  auto persist = Only<action::PersistDecision>(a);
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.reason == "bank-b did not vote within 1000 ms");
  e.OnDecisionPersisted("t4", Status::Ok(), 1001);
  CHECK(Only<action::SendDecision>(e.TakeActions()).size() == 2);
}

TEST_CASE("2pc without a staging record (its write was refused): presumed abort sends the abort at once") {
  Engine e = MakeEngine();
  e.Start(Transfer("t"), 0);
  e.TakeActions();
  e.OnStagingPersisted("t", Status::Conflict("idempotency key 'k' already used by t0"), 1);
  e.OnVote("t", "bank-a", No("t", "no"), 2);
  auto sends = Only<action::SendDecision>(e.TakeActions());
  REQUIRE(sends.size() == 1);
  CHECK(sends[0].to.name == "bank-b");
}

TEST_CASE("commit delivery is retried with capped exponential backoff until acked") {
  Engine e = MakeEngine();  // initial 50 ms, cap 400 ms
  e.Start(Transfer("t5"), 0);
  e.TakeActions();
  StagingRefused(e, "t5");
  e.OnVote("t5", "bank-a", Yes("t5"), 0);
  e.OnVote("t5", "bank-b", Yes("t5"), 0);
  e.OnDecisionPersisted("t5", Status::Ok(), 0);
  e.TakeActions();
  e.OnDecisionAcked("t5", "bank-a", Status::Ok(), 0);
  int64_t now = 0;
  std::vector<int64_t> gaps;
  int64_t last_send = 0;
  for (int attempt = 0; attempt < 6; ++attempt) {
    e.OnDecisionAcked("t5", "bank-b", Status::Unavailable("down"), now);
    // Find the next time a send comes out.
    for (;;) {
      ++now;
      e.Tick(now);
      auto sends = Only<action::SendDecision>(e.TakeActions());
      if (!sends.empty()) {
        CHECK(sends.size() == 1);
        CHECK(sends[0].to.name == "bank-b");
        gaps.push_back(now - last_send);
        last_send = now;
        break;
      }
      REQUIRE(now < 10'000);
    }
  }
  CHECK(gaps == std::vector<int64_t>{50, 100, 200, 400, 400, 400});
  CHECK(e.Find("t5")->branches[1].last_error == "down");
  e.OnDecisionAcked("t5", "bank-b", Status::Ok(), now);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).size() == 1);
}

TEST_CASE("a finished mark whose write failed is written again with capped backoff; the transaction stays visible") {
  Engine e = MakeEngine();  // initial 50 ms, cap 400 ms
  CommittedAndAcked(e, "t5f");

  int64_t now = 0;
  int64_t last_write = 0;
  std::vector<int64_t> gaps;
  for (int attempt = 0; attempt < 5; ++attempt) {
    e.OnFinishedPersisted("t5f", Status::IoError("disk full"), now);
    REQUIRE(e.Find("t5f").has_value());
    CHECK(e.Find("t5f")->state == TxState::kFinishing);
    CHECK(e.Find("t5f")->outcome == Outcome::kCommitted);
    for (;;) {
      ++now;
      e.Tick(now);
      auto a = e.TakeActions();
      CHECK(Only<action::SendDecision>(a).empty());  // every participant acked: nothing is redelivered
      auto marks = Only<action::PersistFinished>(a);
      if (!marks.empty()) {
        CHECK(marks.size() == 1);
        CHECK(marks[0].txid == "t5f");
        gaps.push_back(now - last_write);
        last_write = now;
        break;
      }
      REQUIRE(now < 10'000);
    }
  }
  CHECK(gaps == std::vector<int64_t>{50, 100, 200, 400, 400});

  // An operator's "retry now" writes it at once.
  e.OnFinishedPersisted("t5f", Status::Unavailable("leadership is being transferred"), now);
  e.RetryNow(now + 1);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).size() == 1);

  e.OnFinishedPersisted("t5f", Status::Ok(), now + 2);
  CHECK_FALSE(e.Find("t5f").has_value());
  CHECK(e.active() == 0);
}

TEST_CASE("at most max_unmarked transactions wait to write their finished mark again; the rest are let go") {
  EngineOptions options{"http://coord", 50, 400};
  options.max_unmarked = 2;
  Engine e(options);
  for (const char* txid : {"m1", "m2", "m3"}) {
    CommittedAndAcked(e, txid);
    e.OnFinishedPersisted(txid, Status::IoError("disk full"), 1);
  }
  CHECK(e.Find("m1").has_value());
  CHECK(e.Find("m2").has_value());
  CHECK_FALSE(e.Find("m3").has_value());  // its record stays unfinished: the next start delivers it again
  CHECK(e.unmarked() == 2);
  e.OnFinishedPersisted("m1", Status::IoError("disk full"), 2);  // one already waiting keeps its place
  CHECK(e.Find("m1").has_value());
  e.Tick(1'000);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).size() == 2);
  e.OnFinishedPersisted("m1", Status::Ok(), 1'001);
  e.OnFinishedPersisted("m2", Status::Ok(), 1'001);
  CHECK(e.unmarked() == 0);
  CHECK(e.active() == 0);
  CommittedAndAcked(e, "m4");
  e.OnFinishedPersisted("m4", Status::IoError("disk full"), 1'002);
  CHECK(e.Find("m4").has_value());  // room again
}

TEST_CASE("a finished mark for a record the log does not hold is not written again") {
  Engine e = MakeEngine();
  CommittedAndAcked(e, "t5n");
  e.OnFinishedPersisted("t5n", Status::NotFound("no decision recorded for t5n"), 1);
  CHECK_FALSE(e.Find("t5n").has_value());
  e.Tick(10'000);
  CHECK(e.TakeActions().empty());
}

TEST_CASE("a failed commit write turns into an abort: nothing durable says commit") {
  Engine e = MakeEngine();
  e.Start(Transfer("t6"), 0);
  e.TakeActions();
  e.OnVote("t6", "bank-a", Yes("t6"), 0);
  e.OnVote("t6", "bank-b", Yes("t6"), 0);
  e.TakeActions();
  e.OnDecisionPersisted("t6", Status::IoError("disk full"), 1);
  auto a = e.TakeActions();
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 409);
  auto sends = Only<action::SendDecision>(a);
  REQUIRE(sends.size() == 2);
  CHECK(sends[0].outcome == Outcome::kAborted);
}

TEST_CASE("resume after restart redelivers the logged decision to every participant") {
  Engine e = MakeEngine();
  DecisionRecord r;
  r.txid = "t7";
  r.outcome = Outcome::kCommitted;
  r.participants = {{"bank-a", "http://a"}, {"bank-b", "http://b"}};
  e.Resume(r, 100);
  auto sends = Only<action::SendDecision>(e.TakeActions());
  REQUIRE(sends.size() == 2);
  CHECK(sends[0].outcome == Outcome::kCommitted);
  CHECK(e.Find("t7")->outcome == Outcome::kCommitted);
  e.OnDecisionAcked("t7", "bank-a", Status::Ok(), 101);
  e.OnDecisionAcked("t7", "bank-b", Status::Ok(), 101);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).size() == 1);
}

TEST_CASE("resumed decisions go out at most deliveries_per_participant at a time per participant") {
  EngineOptions o{"http://coord", 50, 400};
  o.deliveries_per_participant = 3;
  Engine e(o);
  for (int i = 0; i < 10; ++i) {
    DecisionRecord r;
    r.txid = "r" + std::to_string(i);
    r.outcome = Outcome::kCommitted;
    r.participants = {{"bank-a", "http://a"}, {"bank-b", "http://b"}};
    e.Resume(r, 100);
  }
  // A third participant, healthy, is not held back by the other two's backlog.
  DecisionRecord c;
  c.txid = "c0";
  c.outcome = Outcome::kAborted;
  c.participants = {{"bank-c", "http://c"}};
  e.Resume(c, 100);
  auto count = [](const std::vector<action::SendDecision>& sends, const std::string& name) {
    return std::count_if(sends.begin(), sends.end(), [&](const auto& s) { return s.to.name == name; });
  };
  auto sends = Only<action::SendDecision>(e.TakeActions());
  CHECK(count(sends, "bank-a") == 3);
  CHECK(count(sends, "bank-b") == 3);
  CHECK(count(sends, "bank-c") == 1);
  e.Tick(101);
  CHECK(Only<action::SendDecision>(e.TakeActions()).empty());  // every slot is taken
  // One failure frees one slot of bank-a: the next tick sends one more there, not the failed one (backoff).
  const std::string failed = sends[0].to.name == "bank-a" ? sends[0].txid : sends[1].txid;
  e.OnDecisionAcked(failed, "bank-a", Status::Unavailable("refused"), 102);
  e.Tick(103);
  auto more = Only<action::SendDecision>(e.TakeActions());
  REQUIRE(more.size() == 1);
  CHECK(more[0].to.name == "bank-a");
  CHECK(more[0].txid != failed);
  // Every transaction finishes once the participants answer, slot by slot.
  std::set<std::string> finished;
  std::vector<action::SendDecision> pending = sends;
  pending.insert(pending.end(), more.begin(), more.end());
  int64_t now = 200;
  for (int round = 0; round < 100 && finished.size() < 11; ++round) {
    for (const auto& s : pending) {
      if (s.txid == failed && s.to.name == "bank-a" && round == 0) continue;  // already answered
      e.OnDecisionAcked(s.txid, s.to.name, Status::Ok(), now);
    }
    for (const auto& f : Only<action::PersistFinished>(e.TakeActions())) {
      finished.insert(f.txid);
      e.OnFinishedPersisted(f.txid, Status::Ok(), 0);
    }
    now += 1000;
    e.Tick(now);
    pending = Only<action::SendDecision>(e.TakeActions());
    for (const auto& s : pending) CHECK(count(pending, s.to.name) <= 3);
  }
  CHECK(finished.size() == 11);
  CHECK(e.active() == 0);
}

TEST_CASE("a second client with the same idempotency key gets the same answer") {
  Engine e = MakeEngine();
  StartRequest r = Transfer("t8", 1);
  r.idempotency_key = "k1";
  e.Start(r, 0);
  e.TakeActions();
  StagingRefused(e, "t8");
  REQUIRE(e.TxidForIdempotencyKey("k1") == std::optional<std::string>("t8"));
  CHECK(e.AttachClient("t8", 2));
  e.OnVote("t8", "bank-a", Yes("t8"), 0);
  e.OnVote("t8", "bank-b", Yes("t8"), 0);
  auto persist = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.idempotency_key == "k1");
  e.OnDecisionPersisted("t8", Status::Ok(), 1);
  auto replies = Only<action::ReplyClient>(e.TakeActions());
  REQUIRE(replies.size() == 2);
  CHECK(JsonOf(replies[0].body) == JsonOf(replies[1].body));
  // Attaching after the answer replies at once.
  CHECK(e.AttachClient("t8", 3));
  auto late = Only<action::ReplyClient>(e.TakeActions());
  REQUIRE(late.size() == 1);
  CHECK(late[0].client == 3);
  CHECK(JsonOf(late[0].body)["txid"] == "t8");
}

TEST_CASE("votes for unknown transactions and duplicate votes are ignored") {
  Engine e = MakeEngine();
  e.OnVote("nope", "bank-a", Yes("nope"), 0);
  CHECK(e.TakeActions().empty());
  e.Start(Transfer("t9"), 0);
  e.TakeActions();
  e.OnVote("t9", "bank-a", Yes("t9"), 0);
  e.OnVote("t9", "bank-a", No("t9", "late duplicate"), 0);
  CHECK(e.TakeActions().empty());
  CHECK(e.undecided() == 1);
}

TEST_CASE("an abort that could not be recorded is not answered as a replayable 409 when an idempotency key was given") {
  Engine e = MakeEngine();
  StartRequest r = Transfer("t10", 1);
  r.idempotency_key = "k10";
  e.Start(r, 0);
  e.TakeActions();
  e.OnVote("t10", "bank-a", No("t10", "overdraft"), 0);
  e.TakeActions();
  e.OnDecisionPersisted("t10", Status::IoError("disk full"), 1);
  auto replies = Only<action::ReplyClient>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 503);
  CHECK(JsonOf(replies[0].body)["outcome"] == "aborted");
  CHECK(JsonOf(replies[0].body)["error"]["code"] == "storage_error");
  CHECK(replies[0].outcome == Outcome::kAborted);  // told: a retry runs it anew, so no Retry-After
}

// ---------------------------------------------------------------------------
// 3PC.

namespace {

StartRequest Transfer3(const std::string& txid) {
  StartRequest r = Transfer(txid);
  r.protocol = wire::Protocol::k3pc;
  return r;
}

// All yes, then the staging record durable: returns the precommits sent.
std::vector<action::SendPrecommit> ToPrecommitted(Engine& e, const std::string& txid, int64_t now = 10,
                                                  const std::string& idempotency_key = "") {
  StartRequest r = Transfer3(txid);
  r.idempotency_key = idempotency_key;
  e.Start(r, 0);
  auto started = e.TakeActions();
  auto staging = Only<action::PersistStaging>(started);
  REQUIRE(staging.size() == 1);
  CHECK(staging[0].record.outcome == Outcome::kPending);
  CHECK(staging[0].record.protocol == wire::Protocol::k3pc);
  CHECK(staging[0].record.participants.size() == 2);
  CHECK(staging[0].record.reply.is_null());  // written before any vote
  CHECK(Only<action::SendPrepare>(started).size() == 2);
  e.OnVote(txid, "bank-a", Yes(txid), 1);
  e.OnVote(txid, "bank-b", Yes(txid), 2);
  auto a = e.TakeActions();
  CHECK(a.empty());  // nobody is told to precommit before the staging record is durable
  CHECK(e.Find(txid)->state == TxState::kPrecommitting);
  e.OnStagingPersisted(txid, Status::Ok(), now);
  return Only<action::SendPrecommit>(e.TakeActions());
}

// A staging record of a 3PC transfer between bank-a and bank-b, resumed and
// every participant fenced with `answer`: returns the actions that follow.
std::vector<Action> ResumedAndFenced(Engine& e, const DecisionRecord& r, FenceAnswer answer, int64_t now = 0) {
  e.Resume(r, now);
  auto fences = Only<action::SendFence>(e.TakeActions());
  REQUIRE(fences.size() == 2);
  CHECK(Only<action::SendPrecommit>(e.TakeActions()).empty());
  for (auto& f : fences) e.OnFenceAnswer(r.txid, f.to.name, answer, now + 1);
  return e.TakeActions();
}

}  // namespace

TEST_CASE("3pc: a staging record durable before the votes lets the precommits leave with the last yes") {
  Engine e = MakeEngine();
  e.Start(Transfer3("t"), 0);
  REQUIRE(Only<action::PersistStaging>(e.TakeActions()).size() == 1);
  e.OnStagingPersisted("t", Status::Ok(), 1);
  CHECK(e.TakeActions().empty());
  CHECK(e.Find("t")->state == TxState::kPreparing);
  e.OnVote("t", "bank-a", Yes("t"), 2);
  CHECK(e.TakeActions().empty());
  e.OnVote("t", "bank-b", Yes("t"), 3);
  auto a = e.TakeActions();
  CHECK(Only<action::SendPrecommit>(a).size() == 2);
  CHECK(Only<action::PersistStaging>(a).empty());  // no record of its own on the path
  CHECK(Only<action::PersistDecision>(a).empty());
  CHECK(Only<action::ReplyClient>(a).empty());
  CHECK(e.Find("t")->state == TxState::kPrecommitting);
}

TEST_CASE("3pc: precommit is sent only once the staging record is durable; all acks -> commit decision, and the client hears it then") {
  Engine e = MakeEngine();
  auto sent = ToPrecommitted(e, "t");
  REQUIRE(sent.size() == 2);
  CHECK(e.Find("t")->state == TxState::kPrecommitting);
  CHECK(e.Find("t")->outcome == Outcome::kPending);
  e.OnPrecommitAcked("t", "bank-a", PrecommitAnswer::kAcked, 11);
  CHECK(e.TakeActions().empty());
  e.OnPrecommitAcked("t", "bank-b", PrecommitAnswer::kAcked, 12);
  auto a = e.TakeActions();
  auto decision = Only<action::PersistDecision>(a);
  REQUIRE(decision.size() == 1);
  CHECK(decision[0].record.outcome == Outcome::kCommitted);
  CHECK(decision[0].record.protocol == wire::Protocol::k3pc);
  // Every participant is durably precommitted: commit is certain before its
  // record is written, so the client is answered now; no commit is sent yet.
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  CHECK(JsonOf(replies[0].body)["outcome"] == "committed");
  CHECK(Only<action::SendDecision>(a).empty());
  e.OnDecisionPersisted("t", Status::Ok(), 13);
  a = e.TakeActions();
  CHECK(Only<action::ReplyClient>(a).empty());
  CHECK(Only<action::SendDecision>(a).size() == 2);
}

TEST_CASE("3pc: a commit decided at the deadline with some acks missing is answered only once it is durable") {
  Engine e = MakeEngine();
  ToPrecommitted(e, "t", 10);
  e.OnPrecommitAcked("t", "bank-a", PrecommitAnswer::kAcked, 11);
  e.OnPrecommitAcked("t", "bank-b", Status::Unavailable("refused"), 11);
  e.TakeActions();
  e.Tick(1010);
  auto a = e.TakeActions();
  REQUIRE(Only<action::PersistDecision>(a).size() == 1);
  CHECK(Only<action::ReplyClient>(a).empty());
  e.OnDecisionPersisted("t", Status::Ok(), 1011);
  auto replies = Only<action::ReplyClient>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(JsonOf(replies[0].body)["outcome"] == "committed");
}

namespace {

// "t" precommitted; bank-a acks its precommit, bank-b answers that it has
// aborted. Returns the actions that follow.
std::vector<Action> RefusedPrecommit(Engine& e, const std::string& idempotency_key = "") {
  ToPrecommitted(e, "t", 10, idempotency_key);
  e.OnPrecommitAcked("t", "bank-a", PrecommitAnswer::kAcked, 11);
  e.OnPrecommitAcked("t", "bank-b", PrecommitAnswer::kAborted, 12);
  return e.TakeActions();
}

}  // namespace

TEST_CASE("3pc: a participant that aborted meanwhile refuses precommit -> abort to everyone") {
  Engine e = MakeEngine();
  auto a = RefusedPrecommit(e);
  auto decision = Only<action::PersistDecision>(a);
  REQUIRE(decision.size() == 1);
  CHECK(decision[0].record.outcome == Outcome::kAborted);
  CHECK(decision[0].record.reason.find("bank-b refused precommit") != std::string::npos);
  CHECK(Only<action::SendDecision>(a).empty());  // once recorded (the log holds the staging record)
  e.OnDecisionPersisted("t", Status::Ok(), 13);
  CHECK(Only<action::SendDecision>(e.TakeActions()).size() == 2);
}

TEST_CASE("3pc: lost precommits are retried; at the deadline one ack is enough to commit, none keeps asking") {
  Engine e = MakeEngine();
  ToPrecommitted(e, "t", 10);
  e.OnPrecommitAcked("t", "bank-a", PrecommitAnswer::kAcked, 11);
  e.OnPrecommitAcked("t", "bank-b", Status::Unavailable("refused"), 11);
  e.Tick(100);
  auto resent = Only<action::SendPrecommit>(e.TakeActions());
  REQUIRE(resent.size() == 1);
  CHECK(resent[0].to.name == "bank-b");
  e.OnPrecommitAcked("t", "bank-b", Status::Unavailable("refused"), 100);
  e.Tick(1009);
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());
  e.Tick(1010);  // 1000 ms (the timeout) after the record
  auto d = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(d.size() == 1);
  CHECK(d[0].record.outcome == Outcome::kCommitted);

  Engine f = MakeEngine();
  ToPrecommitted(f, "u", 10);
  f.OnPrecommitAcked("u", "bank-a", Status::Unavailable("refused"), 11);
  f.OnPrecommitAcked("u", "bank-b", Status::Unavailable("refused"), 11);
  // No ack: the participants may be precommitted with their acks lost, so
  // neither outcome may be decided yet; precommit keeps being sent.
  for (int64_t now = 1010; now < 20'000; now += 100) {
    f.Tick(now);
    auto a = f.TakeActions();
    CHECK(Only<action::PersistDecision>(a).empty());
    for (auto& s : Only<action::SendPrecommit>(a)) f.OnPrecommitAcked("u", s.to.name, Status::Unavailable("refused"), now);
  }
  CHECK(f.Find("u")->outcome == Outcome::kPending);
  f.OnPrecommitAcked("u", "bank-a", PrecommitAnswer::kAborted, 20'000);  // it aborted: now abort
  d = Only<action::PersistDecision>(f.TakeActions());
  REQUIRE(d.size() == 1);
  CHECK(d[0].record.outcome == Outcome::kAborted);
}

// A 3PC staging record (no decision yet) of bank-a and bank-b, as the log holds it.
DecisionRecord StagingRecord3(const std::string& txid) {
  DecisionRecord r;
  r.txid = txid;
  r.protocol = wire::Protocol::k3pc;
  r.outcome = Outcome::kPending;
  r.participants = {{"bank-a", "http://a"}, {"bank-b", "http://b"}};
  return r;
}

// Ticks from..until, answering every precommit sent with `answer`; checks
// that nothing is decided or delivered meanwhile.
void TickAnsweringPrecommits(Engine& e, const std::string& txid, int64_t from, int64_t until, int64_t step,
                             const Result<PrecommitAnswer>& answer) {
  for (int64_t now = from; now < until; now += step) {
    e.Tick(now);
    auto a = e.TakeActions();
    CHECK(Only<action::PersistDecision>(a).empty());
    CHECK(Only<action::SendDecision>(a).empty());
    for (auto& s : Only<action::SendPrecommit>(a)) e.OnPrecommitAcked(txid, s.to.name, answer, now);
  }
}

TEST_CASE("3pc: a precommit answered unknown_transaction decides nothing: that participant's outcome is in doubt") {
  // The agent no longer knows the txid: it finished it (by termination, or by
  // an abort of an earlier run) and forgot it after outcome_retention_ms, or
  // it lost its database. Either outcome may be what it did.
  DecisionRecord r = StagingRecord3("t");
  Engine e = MakeEngine();
  REQUIRE(Only<action::SendPrecommit>(ResumedAndFenced(e, r, FenceAnswer::kPrepared)).size() == 2);
  e.OnPrecommitAcked("t", "bank-a", PrecommitAnswer::kUnknownTransaction, 1);
  e.OnPrecommitAcked("t", "bank-b", PrecommitAnswer::kUnknownTransaction, 1);
  TickAnsweringPrecommits(e, "t", 10, 100'000, 1000, PrecommitAnswer::kUnknownTransaction);
  auto view = e.Find("t");
  REQUIRE(view.has_value());
  CHECK(view->outcome == Outcome::kPending);
  CHECK(view->branches[0].last_error.find("in doubt") != std::string::npos);
  // An abort a participant remembers proves nothing beside one that no
  // longer knows the transaction: the agents' termination counts such a
  // peer as having aborted, also when it committed and forgot.
  e.OnPrecommitAcked("t", "bank-b", PrecommitAnswer::kAborted, 100'000);
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());
  view = e.Find("t");
  CHECK(view->in_doubt);
  CHECK(view->branches[1].last_error.find("perhaps by a termination") != std::string::npos);

  // Live, with the other participant's ack: the deadline rule does not
  // commit, since the agents' termination counts a peer that does not know
  // the transaction as aborted (it may have aborted alone, then forgotten).
  Engine f = MakeEngine();
  ToPrecommitted(f, "u", 10);
  f.OnPrecommitAcked("u", "bank-a", PrecommitAnswer::kAcked, 11);
  f.OnPrecommitAcked("u", "bank-b", PrecommitAnswer::kUnknownTransaction, 12);
  TickAnsweringPrecommits(f, "u", 20, 30'000, 100, PrecommitAnswer::kUnknownTransaction);
  auto live = f.Find("u");
  REQUIRE(live.has_value());
  CHECK(live->outcome == Outcome::kPending);
  CHECK(live->in_doubt);
  CHECK(live->branches[0].state == "precommitted");
  CHECK(live->branches[1].state == "unknown");
  CHECK(f.undecided_due_by_deadline(30'000) == 0);  // a shutdown does not wait for it

  // An operator settles it: a heuristic decision, delivered like any other.
  CHECK_FALSE(f.ForceInDoubt("u", Outcome::kPending, "", 30'000));
  REQUIRE(f.ForceInDoubt("u", Outcome::kCommitted, "checked by hand", 30'000));
  auto forced = Only<action::PersistDecision>(f.TakeActions());
  REQUIRE(forced.size() == 1);
  CHECK(forced[0].record.outcome == Outcome::kCommitted);
  CHECK(forced[0].record.heuristic);
  CHECK_FALSE(f.ForceInDoubt("u", Outcome::kAborted, "", 30'001));  // decided already
  f.OnDecisionPersisted("u", Status::Ok(), 30'002);
  auto delivered = f.TakeActions();
  CHECK(Only<action::SendDecision>(delivered).size() == 2);
  CHECK(f.Find("u")->heuristic);
}

TEST_CASE("3pc: a participant that committed by termination answers its precommit 'committed': that proves commit") {
  Engine e = MakeEngine();
  ToPrecommitted(e, "t", 10);
  e.OnPrecommitAcked("t", "bank-a", PrecommitAnswer::kUnknownTransaction, 11);
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());
  e.OnPrecommitAcked("t", "bank-b", PrecommitAnswer::kCommitted, 12);
  auto d = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(d.size() == 1);
  CHECK(d[0].record.outcome == Outcome::kCommitted);
  CHECK_FALSE(d[0].record.heuristic);
}

TEST_CASE("3pc: only a transaction a participant left in doubt may be forced") {
  Engine e = MakeEngine();
  ToPrecommitted(e, "t", 10);
  e.OnPrecommitAcked("t", "bank-a", Status::Unavailable("down"), 11);
  CHECK_FALSE(e.ForceInDoubt("t", Outcome::kAborted, "", 12));  // unreachable is not in doubt
  CHECK_FALSE(e.ForceInDoubt("nope", Outcome::kAborted, "", 12));
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());
  CHECK(e.undecided_due_by_deadline(12) == 1);     // before its precommit deadline a shutdown waits
  CHECK(e.undecided_due_by_deadline(1'010) == 0);  // after it, no longer

  // An unknown answer followed by an ack from the same participant (its
  // database restored, say): that branch holds a precommit now, but a peer's
  // termination may already have counted the unknown answer as an abort, so
  // the deadline still does not commit; every participant's ack does.
  Engine f = MakeEngine();
  ToPrecommitted(f, "u", 10);
  f.OnPrecommitAcked("u", "bank-a", PrecommitAnswer::kUnknownTransaction, 11);
  f.OnPrecommitAcked("u", "bank-b", Status::Unavailable("down"), 11);
  CHECK(f.Find("u")->in_doubt);
  CHECK(f.undecided_due_by_deadline(12) == 0);  // its deadline would not decide it: a shutdown does not wait
  f.Tick(200);
  for (auto& sp : Only<action::SendPrecommit>(f.TakeActions())) {
    f.OnPrecommitAcked("u", sp.to.name,
                       sp.to.name == "bank-a" ? Result<PrecommitAnswer>(PrecommitAnswer::kAcked)
                                              : Result<PrecommitAnswer>(Status::Unavailable("down")),
                       200);
  }
  CHECK_FALSE(f.Find("u")->in_doubt);  // no branch is unknown now: nothing for an operator to force
  // Long past the deadline, bank-b still silent: one ack is not enough any more.
  TickAnsweringPrecommits(f, "u", 1'000, 5'000, 100, Status::Unavailable("down"));
  f.RetryNow(5'001);
  for (auto& sp : Only<action::SendPrecommit>(f.TakeActions())) {
    if (sp.to.name == "bank-b") f.OnPrecommitAcked("u", "bank-b", PrecommitAnswer::kAcked, 5'002);
  }
  auto d = Only<action::PersistDecision>(f.TakeActions());
  REQUIRE(d.size() == 1);
  CHECK(d[0].record.outcome == Outcome::kCommitted);
}

namespace {

// A decision whose write failed at 20 is written again retry_initial_ms (50)
// later, not before: returns that write.
action::PersistDecision WrittenAgainAfterInitialBackoff(Engine& e) {
  e.Tick(69);
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());
  e.Tick(70);
  auto again = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(again.size() == 1);
  CHECK(again[0].again);  // counted once, when first decided
  return again[0];
}

}  // namespace

TEST_CASE("3pc: a commit whose decision could not be written stays a commit: no abort is sent, the write is retried") {
  // Precommitted participants commit by termination, and a restarted
  // coordinator resumes the staging record into a commit: an abort here
  // could be contradicted after the client was told it.
  Engine e = MakeEngine();
  ToPrecommitted(e, "t", 10, "k");
  e.OnPrecommitAcked("t", "bank-a", PrecommitAnswer::kAcked, 11);
  e.OnPrecommitAcked("t", "bank-b", Status::Unavailable("refused"), 12);
  e.TakeActions();
  e.Tick(1010);  // the deadline, with one ack: commit
  auto first = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(first.size() == 1);
  CHECK_FALSE(first[0].again);

  e.OnDecisionPersisted("t", Status::IoError("disk full"), 20);
  e.OnDecisionPersisted("t", Status::IoError("disk full"), 20);  // a duplicate changes nothing
  auto a = e.TakeActions();
  CHECK(Only<action::SendDecision>(a).empty());
  CHECK(Only<action::PersistDecision>(a).empty());
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 503);
  CHECK(JsonOf(replies[0].body)["error"]["code"] == "storage_error");
  CHECK_FALSE(JsonOf(replies[0].body).contains("outcome"));  // not known to the client yet
  CHECK_FALSE(replies[0].outcome.has_value());
  CHECK(e.Find("t")->outcome == Outcome::kPending);
  CHECK(e.Find("t")->state == TxState::kDeciding);  // commit is decided; its record is written again
  CHECK(e.undecided() == 1);
  CHECK(e.TxidForIdempotencyKey("k") == std::optional<std::string>("t"));

  // bank-b, which never acked, now says it aborted: commit was decided, so
  // that is its error, not a new decision.
  e.OnPrecommitAcked("t", "bank-b", PrecommitAnswer::kAborted, 30);
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());
  CHECK(e.Find("t")->branches[1].last_error.find("after commit was decided") != std::string::npos);
  CHECK(WrittenAgainAfterInitialBackoff(e).record.outcome == Outcome::kCommitted);
  CHECK(e.undecided() == 0);
  e.OnDecisionPersisted("t", Status::IoError("disk full"), 70);
  e.TakeActions();
  e.Tick(169);  // then twice as long
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());
  CHECK(e.AttachClient("t", 2));  // a retry with the same key waits for the outcome
  e.Tick(170);
  REQUIRE(Only<action::PersistDecision>(e.TakeActions()).size() == 1);
  e.OnDecisionPersisted("t", Status::Ok(), 171);
  a = e.TakeActions();
  auto sends = Only<action::SendDecision>(a);
  REQUIRE(sends.size() == 2);
  CHECK(sends[0].outcome == Outcome::kCommitted);
  replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].client == 2);
  CHECK(replies[0].status == 200);
  CHECK(JsonOf(replies[0].body)["outcome"] == "committed");
}

TEST_CASE("3pc: an abort whose decision could not be written is not sent, but written again, then sent and finished") {
  // The log holds the staging record: until the abort replaces it, a
  // restart would resume the transaction (fence every participant, find
  // them prepared, precommit them), and an abort already on its way could
  // reach a participant after that: so it is sent only once recorded.
  Engine e = MakeEngine();
  auto a = RefusedPrecommit(e, "k");
  auto first = Only<action::PersistDecision>(a);
  REQUIRE(first.size() == 1);
  CHECK(first[0].record.outcome == Outcome::kAborted);
  CHECK_FALSE(first[0].again);
  CHECK(Only<action::SendDecision>(a).empty());  // not before its record

  e.OnDecisionPersisted("t", Status::IoError("disk full"), 20);
  e.OnDecisionPersisted("t", Status::IoError("disk full"), 20);  // a duplicate changes nothing
  a = e.TakeActions();
  CHECK(Only<action::PersistDecision>(a).empty());
  CHECK(Only<action::SendDecision>(a).empty());  // not recorded: still not sent
  CHECK(Only<action::PersistFinished>(a).empty());
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 503);
  CHECK(JsonOf(replies[0].body)["error"]["code"] == "storage_error");
  CHECK_FALSE(JsonOf(replies[0].body).contains("outcome"));  // not recorded yet
  CHECK_FALSE(replies[0].outcome.has_value());
  CHECK(e.Find("t")->state == TxState::kDeciding);
  CHECK(e.Find("t")->outcome == Outcome::kPending);
  CHECK_FALSE(e.Find("t")->in_doubt);
  CHECK_FALSE(e.ForceInDoubt("t", Outcome::kCommitted, "", 21));
  CHECK(e.undecided() == 0);
  CHECK(e.awaiting_record() == 0);  // its clients are answered: a shutdown does not wait for it
  CHECK(e.TxidForIdempotencyKey("k") == std::optional<std::string>("t"));

  e.Tick(30);
  CHECK(Only<action::SendDecision>(e.TakeActions()).empty());
  CHECK(WrittenAgainAfterInitialBackoff(e).record.outcome == Outcome::kAborted);
  CHECK(e.awaiting_record() == 1);
  e.OnDecisionPersisted("t", Status::IoError("disk full"), 70);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).empty());
  e.Tick(169);  // then twice as long
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());
  CHECK(e.AttachClient("t", 2));  // a retry with the same key waits for the recorded outcome
  e.RetryNow(169);  // an operator's "retry now" writes it at once
  REQUIRE(Only<action::PersistDecision>(e.TakeActions()).size() == 1);
  e.OnDecisionPersisted("t", Status::Ok(), 170);
  a = e.TakeActions();
  auto sends = Only<action::SendDecision>(a);
  REQUIRE(sends.size() == 2);  // recorded: now the abort goes out
  CHECK(sends[0].outcome == Outcome::kAborted);
  replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].client == 2);
  CHECK(replies[0].status == 409);
  CHECK(JsonOf(replies[0].body)["outcome"] == "aborted");
  e.OnDecisionAcked("t", "bank-a", Status::Ok(), 171);
  e.OnDecisionAcked("t", "bank-b", Status::Ok(), 171);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).size() == 1);
  CHECK(e.Find("t")->state == TxState::kFinishing);
}

TEST_CASE("3pc: a vote no over a staging record: the abort is sent once its record is durable") {
  Engine e = MakeEngine();
  e.Start(Transfer3("t"), 0);
  e.TakeActions();
  e.OnStagingPersisted("t", Status::Ok(), 1);
  e.OnVote("t", "bank-a", Yes("t"), 2);
  e.OnVote("t", "bank-b", No("t", "overdraft"), 3);
  auto a = e.TakeActions();
  REQUIRE(Only<action::PersistDecision>(a).size() == 1);
  CHECK(Only<action::SendDecision>(a).empty());
  e.OnDecisionPersisted("t", Status::Ok(), 4);
  auto sends = Only<action::SendDecision>(e.TakeActions());
  REQUIRE(sends.size() == 1);  // bank-b voted no: it aborted already
  CHECK(sends[0].to.name == "bank-a");
}

TEST_CASE("3pc: a staging record that could not be written aborts at once; that abort is not written again") {
  // Nothing durable would resume the transaction, so presumed abort holds:
  // the abort goes out before its record, and a failed write of it is let go.
  Engine e = MakeEngine();
  e.Start(Transfer3("t"), 0);
  e.TakeActions();
  e.OnVote("t", "bank-a", Yes("t"), 1);
  e.OnStagingPersisted("t", Status::Conflict("idempotency key taken"), 2);
  auto aborted = e.TakeActions();
  auto d = Only<action::PersistDecision>(aborted);
  REQUIRE(d.size() == 1);
  CHECK(d[0].record.outcome == Outcome::kAborted);
  CHECK(d[0].record.reason.find("staging record write failed") != std::string::npos);
  CHECK(Only<action::SendDecision>(aborted).size() == 2);  // bank-b may still prepare: it gets the abort too
  e.OnVote("t", "bank-b", Yes("t"), 2);  // a late yes changes nothing
  CHECK(Only<action::SendPrecommit>(e.TakeActions()).empty());
  e.OnDecisionPersisted("t", Status::IoError("disk full"), 3);
  auto a = e.TakeActions();
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 409);
  CHECK(e.Find("t")->state == TxState::kDelivering);
  e.OnDecisionAcked("t", "bank-a", Status::Ok(), 4);
  e.OnDecisionAcked("t", "bank-b", Status::Ok(), 4);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).size() == 1);
}

TEST_CASE("3pc: a failed staging record write after every yes aborts before anyone is told to precommit") {
  Engine e = MakeEngine();
  e.Start(Transfer3("t"), 0);
  e.TakeActions();
  e.OnVote("t", "bank-a", Yes("t"), 1);
  e.OnVote("t", "bank-b", Yes("t"), 2);
  CHECK(e.TakeActions().empty());
  e.OnStagingPersisted("t", Status::IoError("disk full"), 3);
  auto a = e.TakeActions();
  CHECK(Only<action::SendPrecommit>(a).empty());
  auto d = Only<action::PersistDecision>(a);
  REQUIRE(d.size() == 1);
  CHECK(d[0].record.outcome == Outcome::kAborted);
}

TEST_CASE("3pc: resumed from a staging record with every participant prepared, the precommit round waits for every one, however long") {
  DecisionRecord r = StagingRecord3("t");
  r.idempotency_key = "k1";
  Engine e = MakeEngine();
  REQUIRE(Only<action::SendPrecommit>(ResumedAndFenced(e, r, FenceAnswer::kPrepared)).size() == 2);
  CHECK(e.TxidForIdempotencyKey("k1") == std::optional<std::string>("t"));
  CHECK(e.undecided() == 1);
  e.OnPrecommitAcked("t", "bank-a", PrecommitAnswer::kAcked, 1);
  e.OnPrecommitAcked("t", "bank-b", Status::Unavailable("down"), 1);
  for (int64_t now = 10; now < 100'000; now += 1000) {
    e.Tick(now);
    for (auto& s : Only<action::SendPrecommit>(e.TakeActions())) {
      e.OnPrecommitAcked("t", s.to.name, Status::Unavailable("down"), now);
    }
  }
  CHECK(e.Find("t")->outcome == Outcome::kPending);
  e.RetryNow(100'000);
  auto s = Only<action::SendPrecommit>(e.TakeActions());
  REQUIRE(s.size() == 1);
  e.OnPrecommitAcked("t", "bank-b", PrecommitAnswer::kAcked, 100'001);
  auto d = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(d.size() == 1);
  CHECK(d[0].record.outcome == Outcome::kCommitted);
}

TEST_CASE("3pc: resumed fences and precommits share the participant's bound with decisions") {
  EngineOptions o{"http://coord", 50, 400};
  o.deliveries_per_participant = 3;
  Engine e(o);
  for (int i = 0; i < 5; ++i) {
    DecisionRecord r;
    r.txid = "p" + std::to_string(i);
    r.protocol = wire::Protocol::k3pc;
    r.outcome = Outcome::kPending;
    r.participants = {{"bank-a", "http://a"}};
    e.Resume(r, 100);
  }
  DecisionRecord d;
  d.txid = "d0";
  d.outcome = Outcome::kCommitted;
  d.participants = {{"bank-a", "http://a"}};
  e.Resume(d, 100);
  auto first = e.TakeActions();
  CHECK(Only<action::SendFence>(first).size() == 3);
  CHECK(Only<action::SendDecision>(first).empty());  // every slot is taken
  e.Tick(101);
  CHECK(e.TakeActions().empty());
  // An answer, failed or not, frees its slot for the next message; a
  // prepared one's precommit takes a slot like any other.
  const auto sent = Only<action::SendFence>(first);
  e.OnFenceAnswer(sent[0].txid, "bank-a", Status::Unavailable("refused"), 102);
  e.OnFenceAnswer(sent[1].txid, "bank-a", FenceAnswer::kPrepared, 102);
  auto precommit = Only<action::SendPrecommit>(e.TakeActions());
  REQUIRE(precommit.size() == 1);
  CHECK(precommit[0].txid == sent[1].txid);
  e.Tick(103);
  auto next = e.TakeActions();
  CHECK(Only<action::SendFence>(next).size() + Only<action::SendDecision>(next).size() == 1);
  // A late duplicate answer frees nothing twice.
  e.OnFenceAnswer(sent[1].txid, "bank-a", FenceAnswer::kPrepared, 104);
  e.Tick(105);
  auto after = e.TakeActions();
  CHECK(Only<action::SendFence>(after).empty());
  CHECK(Only<action::SendPrecommit>(after).empty());
  CHECK(Only<action::SendDecision>(after).empty());
}

TEST_CASE("3pc: resumed from a staging record: a fenced participant -> abort, one committed by termination -> commit") {
  Engine e = MakeEngine();
  DecisionRecord r = StagingRecord3("t");
  e.Resume(r, 0);
  e.TakeActions();
  e.OnFenceAnswer("t", "bank-a", FenceAnswer::kPrepared, 1);
  e.OnFenceAnswer("t", "bank-b", FenceAnswer::kFenced, 1);
  auto a = e.TakeActions();
  CHECK(Only<action::SendPrecommit>(a).empty());
  auto d = Only<action::PersistDecision>(a);
  REQUIRE(d.size() == 1);
  CHECK(d[0].record.outcome == Outcome::kAborted);
  CHECK(Only<action::SendDecision>(a).empty());  // once its record replaces the staging record

  Engine f = MakeEngine();
  f.Resume(StagingRecord3("u"), 0);
  f.TakeActions();
  f.OnFenceAnswer("u", "bank-a", FenceAnswer::kPrepared, 1);
  f.OnFenceAnswer("u", "bank-b", FenceAnswer::kCommitted, 1);
  a = f.TakeActions();
  CHECK(Only<action::SendPrecommit>(a).empty());
  d = Only<action::PersistDecision>(a);
  REQUIRE(d.size() == 1);
  CHECK(d[0].record.outcome == Outcome::kCommitted);
}

TEST_CASE("a resumed transaction answers a client from the recorded reply, SELECT results included") {
  // Regression: after a restart or a change of leader the engine rebuilt the
  // reply from what it held (no votes, no results) instead of the log's.
  DecisionRecord r;
  r.txid = "t";
  r.outcome = Outcome::kCommitted;
  r.participants = {{"bank-a", "http://a"}, {"bank-b", "http://b"}};
  r.idempotency_key = "k";
  r.reply = {{"txid", "t"},
             {"outcome", "committed"},
             {"branches", {{{"participant", "bank-a"}, {"vote", "yes"}, {"results", {{{{"balance", 70}}}}}}}}};
  Engine e = MakeEngine();
  e.Resume(r, 0);
  e.TakeActions();
  REQUIRE(e.AttachClient("t", 9));
  auto replies = Only<action::ReplyClient>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  CHECK(JsonOf(replies[0].body) == r.reply);
}

TEST_CASE("3pc: a precommit record from an older log, reply included, is fenced, precommitted and answered in full") {
  // Before 3PC wrote staging records, it wrote a pending record carrying the
  // commit reply once every vote was yes. Such a record resumes as a staging
  // record does; its reply still answers.
  DecisionRecord r = StagingRecord3("t");
  r.idempotency_key = "k";
  r.reply = {{"txid", "t"},
             {"outcome", "committed"},
             {"branches", {{{"participant", "bank-a"}, {"vote", "yes"}, {"results", {{{{"balance", 70}}}}}}}}};
  Engine f = MakeEngine();  // the next leader
  auto precommits = Only<action::SendPrecommit>(ResumedAndFenced(f, r, FenceAnswer::kPrepared, 10));
  REQUIRE(precommits.size() == 2);
  for (auto& s : precommits) f.OnPrecommitAcked("t", s.to.name, PrecommitAnswer::kAcked, 11);
  auto d = Only<action::PersistDecision>(f.TakeActions());
  REQUIRE(d.size() == 1);
  CHECK(d[0].record.outcome == Outcome::kCommitted);
  CHECK(d[0].record.reply == r.reply);
}

TEST_CASE("a txid is started once: a second start is refused and leaves the first untouched") {
  Engine e = MakeEngine();
  e.Start(Transfer("t1", 1, 1000), 0);
  REQUIRE(Only<action::SendPrepare>(e.TakeActions()).size() == 2);
  StartRequest again = Transfer("t1", 2, 60'000);
  again.participants = {{"ghost", "http://ghost"}};
  again.ops = {{}};
  e.Start(std::move(again), 10);
  auto a = e.TakeActions();
  CHECK(Only<action::SendPrepare>(a).empty());
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].client == 2);
  CHECK(replies[0].status == 409);
  CHECK_FALSE(replies[0].outcome.has_value());  // the running transaction's outcome is not this answer's
  CHECK(e.undecided() == 1);
  auto view = e.Find("t1");
  REQUIRE(view.has_value());
  CHECK(view->branches.size() == 2);
  // The first transaction still ends at its own deadline and answers its own client.
  e.Tick(1001);
  auto persisted = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(persisted.size() == 1);
  CHECK(persisted[0].record.participants.size() == 2);
  e.OnDecisionPersisted("t1", Status::Ok(), 1002);
  auto answers = Only<action::ReplyClient>(e.TakeActions());
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].client == 1);
}

namespace {

DecisionRecord StagingRecord(const std::string& txid) {
  DecisionRecord r;
  r.txid = txid;
  r.protocol = wire::Protocol::k2pc;
  r.outcome = Outcome::kPending;
  r.participants = {{"bank-a", "http://a"}, {"bank-b", "http://b"}};
  r.created_ms = 5;
  return r;
}

// A transfer (with idempotency_key, if any) whose staging record's write
// reported `staging`, then every vote yes: what the votes produced.
std::vector<Action> StagedAndVotedYes(Engine& e, const std::string& txid, const Status& staging = Status::Ok(),
                                      const std::string& idempotency_key = "") {
  StartRequest start = Transfer(txid);
  start.idempotency_key = idempotency_key;
  e.Start(start, 0);
  e.TakeActions();
  e.OnStagingPersisted(txid, staging, 1);
  e.OnVote(txid, "bank-a", Yes(txid), 2);
  e.OnVote(txid, "bank-b", Yes(txid), 2);
  return e.TakeActions();
}

// A transfer started from a staging record resumed after a restart, its fences sent.
void ResumedFromStaging(Engine& e, const std::string& txid) {
  e.Resume(StagingRecord(txid), 0);
  auto fences = Only<action::SendFence>(e.TakeActions());
  REQUIRE(fences.size() == 2);
  CHECK(fences[0].to.name == "bank-a");
  CHECK(e.undecided() == 1);
  CHECK(e.Find(txid)->outcome == Outcome::kPending);
}

}  // namespace

TEST_CASE("2pc: the staging record goes out before the prepares, without a reply") {
  Engine e = MakeEngine();
  e.Start(Transfer("t"), 0);
  auto a = e.TakeActions();
  REQUIRE(a.size() == 3);
  auto* staging = std::get_if<action::PersistStaging>(&a[0]);
  REQUIRE(staging != nullptr);
  CHECK(staging->record.outcome == Outcome::kPending);
  CHECK(staging->record.protocol == wire::Protocol::k2pc);
  CHECK(staging->record.participants.size() == 2);
  CHECK(staging->record.reply.is_null());
  CHECK(Only<action::SendPrepare>(a).size() == 2);
}

TEST_CASE("2pc: all yes with the staging record durable: the client hears commit and the commits go out at once; "
          "the commit record waits for the acks and is written once, finished") {
  Engine e = MakeEngine();
  StartRequest start = Transfer("t");
  start.idempotency_key = "k";
  e.Start(start, 0);
  e.TakeActions();
  e.OnStagingPersisted("t", Status::Ok(), 1);
  CHECK(e.TakeActions().empty());
  e.OnVote("t", "bank-a", Yes("t"), 2);
  e.OnVote("t", "bank-b", Yes("t"), 3);
  auto a = e.TakeActions();
  CHECK(Only<action::PersistDecision>(a).empty());  // nobody waits for it
  CHECK(Only<action::Decided>(a).size() == 1);      // decided, and counted, now
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  CHECK(JsonOf(replies[0].body)["outcome"] == "committed");
  auto sends = Only<action::SendDecision>(a);
  REQUIRE(sends.size() == 2);
  CHECK(sends[0].outcome == Outcome::kCommitted);
  CHECK(e.Find("t")->outcome == Outcome::kCommitted);  // certain, so a reader hears it too
  CHECK(e.Find("t")->state == TxState::kDelivering);
  CHECK(e.undecided() == 0);
  CHECK(e.awaiting_record() == 1);  // a shutdown waits for it

  e.OnDecisionAcked("t", "bank-a", Status::Ok(), 4);
  CHECK(e.TakeActions().empty());
  e.Tick(4);
  CHECK(e.TakeActions().empty());  // not due yet
  e.OnDecisionAcked("t", "bank-b", Status::Ok(), 5);
  a = e.TakeActions();
  CHECK(Only<action::PersistFinished>(a).empty());
  auto persist = Only<action::PersistDecision>(a);
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.outcome == Outcome::kCommitted);
  CHECK(persist[0].rides_next_write);
  CHECK_FALSE(persist[0].again);
  CHECK(persist[0].record.finished);  // with its finished mark: one write instead of two
  CHECK(Only<action::Decided>(a).empty());  // counted once
  CHECK(persist[0].record.finished_ms == 5);
  CHECK(persist[0].record.decided_ms == 3);  // when it was decided, not when written
  CHECK(persist[0].record.reply["outcome"] == "committed");  // the full reply, for a replay
  e.OnDecisionPersisted("t", Status::Ok(), 6);
  a = e.TakeActions();
  CHECK(Only<action::SendDecision>(a).empty());  // not sent again
  CHECK(Only<action::ReplyClient>(a).empty());   // not answered again
  CHECK(Only<action::PersistFinished>(a).empty());
  CHECK_FALSE(e.Find("t").has_value());  // ended: the log answers for it now
  CHECK_FALSE(e.TxidForIdempotencyKey("k").has_value());
  CHECK(e.awaiting_record() == 0);
  CHECK(e.active() == 0);
}

TEST_CASE("2pc: a replay that comes while the commit record waits for the acks is answered commit at once") {
  Engine e = MakeEngine();
  auto first = Only<action::ReplyClient>(StagedAndVotedYes(e, "t", Status::Ok(), "k"));
  REQUIRE(first.size() == 1);
  REQUIRE(e.TxidForIdempotencyKey("k") == std::optional<std::string>("t"));
  CHECK(e.AttachClient("t", 2));
  auto again = Only<action::ReplyClient>(e.TakeActions());
  REQUIRE(again.size() == 1);
  CHECK(again[0].client == 2);
  CHECK(again[0].status == 200);
  CHECK(JsonOf(again[0].body) == JsonOf(first[0].body));
}

TEST_CASE("2pc: a held commit record whose acks are late is written alone when due; the finished mark follows") {
  Engine e = MakeEngine();  // first redelivery after 50 ms
  StagedAndVotedYes(e, "t");  // decided at 2
  e.OnDecisionAcked("t", "bank-a", Status::Ok(), 3);
  e.OnDecisionAcked("t", "bank-b", Status::Unavailable("down"), 3);
  e.Tick(51);
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());
  e.Tick(52);
  auto a = e.TakeActions();
  auto persist = Only<action::PersistDecision>(a);
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].rides_next_write);
  CHECK_FALSE(persist[0].record.finished);
  CHECK(persist[0].record.decided_ms == 2);
  auto resend = Only<action::SendDecision>(a);  // bank-b's redelivery, due at 53, is not yet
  CHECK(resend.empty());
  e.OnDecisionPersisted("t", Status::Ok(), 53);
  CHECK(e.Find("t")->state == TxState::kDelivering);
  e.Tick(53);
  resend = Only<action::SendDecision>(e.TakeActions());
  REQUIRE(resend.size() == 1);
  CHECK(resend[0].to.name == "bank-b");
  e.OnDecisionAcked("t", "bank-b", Status::Ok(), 54);
  auto marks = Only<action::PersistFinished>(e.TakeActions());
  REQUIRE(marks.size() == 1);
  CHECK(marks[0].txid == "t");
  e.OnFinishedPersisted("t", Status::Ok(), 55);
  CHECK(e.active() == 0);
}

TEST_CASE("2pc: votes in before the staging record is durable: the client hears commit once it is") {
  Engine e = MakeEngine();
  e.Start(Transfer("t"), 0);
  e.TakeActions();
  e.OnVote("t", "bank-a", Yes("t"), 1);
  e.OnVote("t", "bank-b", Yes("t"), 1);
  auto a = e.TakeActions();
  CHECK(Only<action::PersistDecision>(a).empty());  // held: the staging record comes first in the log anyway
  CHECK(Only<action::ReplyClient>(a).empty());
  CHECK(Only<action::SendDecision>(a).empty());
  CHECK(e.Find("t")->outcome == Outcome::kPending);
  e.OnStagingPersisted("t", Status::Ok(), 2);
  a = e.TakeActions();
  REQUIRE(Only<action::ReplyClient>(a).size() == 1);
  CHECK(Only<action::SendDecision>(a).size() == 2);
  e.OnDecisionAcked("t", "bank-a", Status::Ok(), 3);
  e.OnDecisionAcked("t", "bank-b", Status::Ok(), 3);
  auto persist = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.finished);
}

TEST_CASE("2pc: a held commit record is written at once when the staging record turns out unwritten; the client "
          "waits for it") {
  Engine e = MakeEngine();
  e.Start(Transfer("t"), 0);
  e.TakeActions();
  e.OnVote("t", "bank-a", Yes("t"), 1);
  e.OnVote("t", "bank-b", Yes("t"), 1);
  CHECK(Only<action::Decided>(e.TakeActions()).size() == 1);  // and nothing else
  e.OnStagingPersisted("t", Status::Conflict("idempotency key 'k' already used by t0"), 2);
  auto a = e.TakeActions();
  auto persist = Only<action::PersistDecision>(a);
  REQUIRE(persist.size() == 1);
  CHECK_FALSE(persist[0].rides_next_write);
  CHECK_FALSE(persist[0].record.finished);
  CHECK(Only<action::ReplyClient>(a).empty());
  CHECK(Only<action::SendDecision>(a).empty());
  e.Tick(100);
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());  // written once
  e.OnDecisionPersisted("t", Status::Ok(), 101);
  a = e.TakeActions();
  CHECK(Only<action::ReplyClient>(a).size() == 1);
  CHECK(Only<action::SendDecision>(a).size() == 2);
}

TEST_CASE("2pc: a staging record that could not be written leaves the decision record to decide, before the answer") {
  Engine e = MakeEngine();
  auto a = StagedAndVotedYes(e, "t", Status::Conflict("idempotency key 'k' already used by t0"));
  auto persist = Only<action::PersistDecision>(a);
  REQUIRE(persist.size() == 1);
  CHECK_FALSE(persist[0].rides_next_write);
  CHECK(Only<action::ReplyClient>(a).empty());
  CHECK(Only<action::SendDecision>(a).empty());
  e.OnDecisionPersisted("t", Status::Ok(), 3);
  a = e.TakeActions();
  CHECK(Only<action::ReplyClient>(a).size() == 1);
  CHECK(Only<action::SendDecision>(a).size() == 2);
}

TEST_CASE("2pc: a commit answered early whose record could not be written stays a commit and is written again") {
  Engine e = MakeEngine();
  StagedAndVotedYes(e, "t");
  e.OnDecisionAcked("t", "bank-a", Status::Ok(), 3);
  e.OnDecisionAcked("t", "bank-b", Status::Ok(), 3);
  REQUIRE(Only<action::PersistDecision>(e.TakeActions()).size() == 1);
  e.OnDecisionPersisted("t", Status::IoError("disk"), 3);
  auto a = e.TakeActions();
  CHECK(Only<action::SendDecision>(a).empty());  // no abort: the commits went out already
  CHECK(e.Find("t")->outcome == Outcome::kCommitted);
  e.Tick(3 + 50);
  auto again = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(again.size() == 1);
  CHECK(again[0].record.outcome == Outcome::kCommitted);
  CHECK(again[0].record.finished);  // every participant acked: still with its finished mark
  CHECK(again[0].again);
  e.OnDecisionPersisted("t", Status::Ok(), 54);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).empty());
  CHECK(e.active() == 0);
}

TEST_CASE("2pc: an abort recorded first cannot be followed by a commit the client heard") {
  Engine e = MakeEngine();
  StagedAndVotedYes(e, "t");
  CHECK_FALSE(e.OnDecisionConflict("t", Outcome::kAborted, "presumed", 3));
  CHECK(Only<action::SendDecision>(e.TakeActions()).empty());
}

TEST_CASE("2pc: a no vote with the staging record durable aborts, and an abort write that failed is written again") {
  Engine e = MakeEngine();
  e.Start(Transfer("t"), 0);
  e.TakeActions();
  e.OnStagingPersisted("t", Status::Ok(), 1);
  e.OnVote("t", "bank-a", No("t", "no"), 2);
  auto a = e.TakeActions();
  auto persist = Only<action::PersistDecision>(a);
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.outcome == Outcome::kAborted);
  CHECK_FALSE(persist[0].rides_next_write);
  e.OnDecisionPersisted("t", Status::IoError("disk"), 3);
  a = e.TakeActions();
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 503);  // the staging record would be resumed: not a replayable abort yet
  e.Tick(3 + 50);
  auto again = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(again.size() == 1);
  CHECK(again[0].record.outcome == Outcome::kAborted);
}

TEST_CASE("2pc resumed from a staging record: every participant prepared or committed -> commit, without results") {
  Engine e = MakeEngine();
  ResumedFromStaging(e, "t");
  CHECK(e.AttachClient("t", 7));
  e.OnFenceAnswer("t", "bank-a", FenceAnswer::kPrepared, 1);
  CHECK(e.TakeActions().empty());
  e.OnFenceAnswer("t", "bank-b", FenceAnswer::kCommitted, 1);
  auto persist = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.outcome == Outcome::kCommitted);
  CHECK_FALSE(persist[0].rides_next_write);
  e.OnDecisionPersisted("t", Status::Ok(), 2);
  auto a = e.TakeActions();
  auto replies = Only<action::ReplyClient>(a);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 200);
  CHECK(JsonOf(replies[0].body)["branches"][0]["vote"] == "yes");
  CHECK(JsonOf(replies[0].body)["branches"][0]["results"].is_null());
  CHECK(Only<action::SendDecision>(a).size() == 2);
}

TEST_CASE("2pc resumed from a staging record: a fenced participant -> abort, delivered to every participant") {
  Engine e = MakeEngine();
  ResumedFromStaging(e, "t");
  e.OnFenceAnswer("t", "bank-a", FenceAnswer::kPrepared, 1);
  e.OnFenceAnswer("t", "bank-b", FenceAnswer::kFenced, 1);
  auto persist = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.outcome == Outcome::kAborted);
  CHECK(persist[0].record.reason.find("bank-b") != std::string::npos);
  e.OnDecisionPersisted("t", Status::Ok(), 2);
  auto sends = Only<action::SendDecision>(e.TakeActions());
  REQUIRE(sends.size() == 2);
  CHECK(sends[0].outcome == Outcome::kAborted);
}

TEST_CASE("2pc resumed from a staging record: a failed fence is sent again with backoff; the fences wait for all") {
  Engine e = MakeEngine();
  ResumedFromStaging(e, "t");
  e.OnFenceAnswer("t", "bank-a", FenceAnswer::kFenced, 1);
  e.OnFenceAnswer("t", "bank-b", Status::Unavailable("down"), 1);
  CHECK(e.TakeActions().empty());  // one fenced is not enough: the other may have committed
  e.Tick(1 + 49);
  CHECK(Only<action::SendFence>(e.TakeActions()).empty());
  e.Tick(1 + 50);
  auto fences = Only<action::SendFence>(e.TakeActions());
  REQUIRE(fences.size() == 1);
  CHECK(fences[0].to.name == "bank-b");
  CHECK(e.Find("t")->branches[1].last_error.find("down") != std::string::npos);
  e.OnFenceAnswer("t", "bank-b", FenceAnswer::kFenced, 60);
  auto persist = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.outcome == Outcome::kAborted);
}

TEST_CASE("2pc resumed from a staging record: fenced and committed both -> in doubt, for an operator") {
  Engine e = MakeEngine();
  ResumedFromStaging(e, "t");
  CHECK_FALSE(e.ForceInDoubt("t", Outcome::kCommitted, "", 1));  // not in doubt yet
  e.OnFenceAnswer("t", "bank-a", FenceAnswer::kCommitted, 1);
  e.OnFenceAnswer("t", "bank-b", FenceAnswer::kFenced, 1);
  CHECK(e.TakeActions().empty());
  auto v = e.Find("t");
  CHECK(v->in_doubt);
  CHECK(v->outcome == Outcome::kPending);
  CHECK(v->branches[1].last_error.find("forgot") != std::string::npos);
  e.Tick(100'000);
  CHECK(e.TakeActions().empty());
  CHECK(e.ForceInDoubt("t", Outcome::kCommitted, "operator", 2));
  auto persist = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.outcome == Outcome::kCommitted);
  CHECK(persist[0].record.heuristic);
}

TEST_CASE("2pc: at shutdown a client waiting on a resumed staging record hears 503 with the txid") {
  Engine e = MakeEngine();
  ResumedFromStaging(e, "t");
  CHECK(e.AttachClient("t", 9));
  e.AnswerClientsAtShutdown();
  auto replies = Only<action::ReplyClient>(e.TakeActions());
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 503);
  CHECK(JsonOf(replies[0].body)["txid"] == "t");
}

// Agents that remember outcomes 10 s: a staging record resumed 5 s or more
// from the clock, either way, is not fenced.
Engine WithTenSecondRetention() {
  EngineOptions options{"http://coord", 50, 400};
  options.outcome_retention_ms = 10'000;
  return Engine(options);
}

// A staging record of `protocol` resumed 5 s after it was written, with the
// state queries it sent taken.
Engine ResumedTooOldToFence(wire::Protocol protocol) {
  DecisionRecord r = StagingRecord("t");
  r.protocol = protocol;
  Engine e = WithTenSecondRetention();
  e.Resume(r, 5 + 5'000);  // created_ms 5
  auto a = e.TakeActions();
  CHECK(Only<action::SendFence>(a).empty());
  CHECK(Only<action::SendStateQuery>(a).size() == 2);
  return e;
}

// The same, with bank-a's and bank-b's answers given.
Engine AnsweredWhenTooOldToFence(wire::Protocol protocol, StateAnswer bank_a, StateAnswer bank_b) {
  Engine e = ResumedTooOldToFence(protocol);
  e.OnStateAnswer("t", "bank-a", bank_a, 5'001);
  e.OnStateAnswer("t", "bank-b", bank_b, 5'001);
  return e;
}

constexpr wire::Protocol kBothProtocols[] = {wire::Protocol::k2pc, wire::Protocol::k3pc};

TEST_CASE("resumed from a staging record older than half the agents' outcome retention: asked first, never fenced; "
          "a participant that does not know it -> in doubt (either protocol)") {
  for (wire::Protocol protocol : kBothProtocols) {
    CAPTURE(wire::ProtocolName(protocol));
    Engine e = ResumedTooOldToFence(protocol);
    auto v = e.Find("t");
    CHECK_FALSE(v->in_doubt);  // being asked
    CHECK_FALSE(e.ForceInDoubt("t", Outcome::kAborted, "", 5'000));  // the answers may settle it: not yet an operator's
    CHECK(v->branches[0].last_error.find("may have committed and forgotten") != std::string::npos);
    CHECK(v->branches[0].state == "unknown");  // never fenced
    e.OnStateAnswer("t", "bank-a", StateAnswer::kHolds, 5'001);
    CHECK(e.TakeActions().empty());  // every answer first
    e.OnStateAnswer("t", "bank-b", StateAnswer::kUnknown, 5'001);
    CHECK(e.TakeActions().empty());
    e.Tick(100'000);
    CHECK(e.TakeActions().empty());  // no fence, no second question
    v = e.Find("t");
    CHECK(v->in_doubt);
    CHECK(v->outcome == Outcome::kPending);
    CHECK(v->branches[0].last_error.empty());
    CHECK(v->branches[0].state == "prepared");  // what it answered: it holds the transaction (and its locks)
    CHECK(v->branches[1].last_error.find("does not know the transaction") != std::string::npos);
    CHECK(v->branches[1].last_error.find("in doubt") != std::string::npos);
    CHECK(v->branches[1].state == "unknown");
    CHECK(e.ForceInDoubt("t", Outcome::kCommitted, "", 100'001));
    // Younger than that, the participants are fenced at once.
    Engine young = WithTenSecondRetention();
    DecisionRecord r = StagingRecord("t");
    r.protocol = protocol;
    young.Resume(r, 5 + 4'000);
    auto a = young.TakeActions();
    CHECK(Only<action::SendStateQuery>(a).empty());
    CHECK(Only<action::SendFence>(a).size() == 2);
  }
}

TEST_CASE("too old to fence: a participant that committed proves commit, delivered to every participant (either protocol)") {
  for (wire::Protocol protocol : kBothProtocols) {
    CAPTURE(wire::ProtocolName(protocol));
    Engine e = ResumedTooOldToFence(protocol);
    CHECK(e.AttachClient("t", 7));  // a retry with the transaction's Idempotency-Key
    e.OnStateAnswer("t", "bank-a", StateAnswer::kCommitted, 5'001);
    CHECK(e.TakeActions().empty());
    e.OnStateAnswer("t", "bank-b", StateAnswer::kUnknown, 5'001);  // committed and forgot
    auto persist = Only<action::PersistDecision>(e.TakeActions());
    REQUIRE(persist.size() == 1);
    CHECK(persist[0].record.outcome == Outcome::kCommitted);
    e.OnDecisionPersisted("t", Status::Ok(), 5'002);
    auto a = e.TakeActions();
    auto replies = Only<action::ReplyClient>(a);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].status == 200);
    CHECK(JsonOf(replies[0].body)["branches"][0]["vote"] == "yes");  // a commit proves every yes
    CHECK(JsonOf(replies[0].body)["branches"][1]["vote"] == "yes");
    auto sends = Only<action::SendDecision>(a);
    REQUIRE(sends.size() == 2);
    CHECK(sends[0].outcome == Outcome::kCommitted);
    CHECK(sends[1].outcome == Outcome::kCommitted);
  }
}

TEST_CASE("too old to fence: a participant that aborted proves abort, sent once its record is durable") {
  // 2PC: an aborted participant never voted yes, or took an abort sent only
  // once recorded (which would have replaced the staging record): abort,
  // whatever the others answer. 3PC: so too while every other one still
  // knows the transaction.
  for (auto [protocol, other] : {std::pair{wire::Protocol::k2pc, StateAnswer::kUnknown},
                                 std::pair{wire::Protocol::k2pc, StateAnswer::kHolds},
                                 std::pair{wire::Protocol::k3pc, StateAnswer::kHolds}}) {
    CAPTURE(wire::ProtocolName(protocol));
    Engine e = AnsweredWhenTooOldToFence(protocol, other, StateAnswer::kAborted);
    auto a = e.TakeActions();
    CHECK(Only<action::SendDecision>(a).empty());
    auto persist = Only<action::PersistDecision>(a);
    REQUIRE(persist.size() == 1);
    CHECK(persist[0].record.outcome == Outcome::kAborted);
    CHECK(persist[0].record.reason.find("bank-b had aborted") != std::string::npos);
    e.OnDecisionPersisted("t", Status::Ok(), 5'002);
    auto sends = Only<action::SendDecision>(e.TakeActions());
    REQUIRE(sends.size() == 2);
    CHECK(sends[0].outcome == Outcome::kAborted);
  }
}

TEST_CASE("too old to fence, 3pc: aborted beside a participant that no longer knows it proves nothing -> in doubt") {
  // bank-a committed by termination and forgot; bank-b, precommitted and
  // back from a crash, terminated while the coordinator was asking, and its
  // termination counted bank-a's unknown as an abort.
  Engine e = AnsweredWhenTooOldToFence(wire::Protocol::k3pc, StateAnswer::kUnknown, StateAnswer::kAborted);
  CHECK(e.TakeActions().empty());
  auto v = e.Find("t");
  CHECK(v->in_doubt);
  CHECK(v->outcome == Outcome::kPending);
  CHECK(v->branches[1].state == "aborted");
  CHECK(v->branches[1].last_error.find("perhaps by a termination") != std::string::npos);
  e.Tick(100'000);
  CHECK(e.TakeActions().empty());
}

TEST_CASE("too old to fence: a participant that does not know it makes it in doubt at once; a later proof still settles it") {
  Engine e = ResumedTooOldToFence(wire::Protocol::k2pc);
  e.OnStateAnswer("t", "bank-a", StateAnswer::kUnknown, 5'001);
  e.OnStateAnswer("t", "bank-b", Status::Unavailable("down"), 5'001);
  auto v = e.Find("t");
  CHECK(v->in_doubt);  // an operator may settle it while bank-b is away
  e.Tick(5'001 + 50);
  REQUIRE(Only<action::SendStateQuery>(e.TakeActions()).size() == 1);  // still asked
  e.OnStateAnswer("t", "bank-b", StateAnswer::kCommitted, 5'060);
  auto persist = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(persist.size() == 1);
  CHECK(persist[0].record.outcome == Outcome::kCommitted);
  CHECK_FALSE(persist[0].record.heuristic);
  // Or the operator first: the later answer changes nothing.
  Engine forced = ResumedTooOldToFence(wire::Protocol::k2pc);
  forced.OnStateAnswer("t", "bank-a", StateAnswer::kUnknown, 5'001);
  CHECK(forced.ForceInDoubt("t", Outcome::kAborted, "operator", 5'002));
  auto by_operator = Only<action::PersistDecision>(forced.TakeActions());
  REQUIRE(by_operator.size() == 1);
  CHECK(by_operator[0].record.outcome == Outcome::kAborted);
  CHECK(by_operator[0].record.heuristic);
  forced.OnStateAnswer("t", "bank-b", StateAnswer::kCommitted, 5'003);
  CHECK(forced.TakeActions().empty());
}

TEST_CASE("too old to fence: committed at one participant and aborted at another -> in doubt") {
  Engine e = AnsweredWhenTooOldToFence(wire::Protocol::k2pc, StateAnswer::kCommitted, StateAnswer::kAborted);
  CHECK(e.TakeActions().empty());
  auto v = e.Find("t");
  CHECK(v->in_doubt);
  CHECK(v->branches[1].last_error.find("bank-b aborted the transaction while bank-a committed it") != std::string::npos);
  CHECK(v->branches[0].state == "committed");
  CHECK(v->branches[1].state == "aborted");
}

TEST_CASE("too old to fence, committed at one and aborted at another: a forced commit ends contradicted, then closed") {
  Engine e = AnsweredWhenTooOldToFence(wire::Protocol::k2pc, StateAnswer::kCommitted, StateAnswer::kAborted);
  e.TakeActions();
  REQUIRE(e.ForceInDoubt("t", Outcome::kCommitted, "bank-a applied it", 5'010));
  auto records = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(records.size() == 1);
  e.OnDecisionPersisted("t", Status::Ok(), 5'011);
  auto sends = Only<action::SendDecision>(e.TakeActions());
  REQUIRE(sends.size() == 2);
  e.OnDecisionAcked("t", "bank-a", Status::Ok(), 5'012);
  e.OnDecisionFoundDone("t", "bank-b", Outcome::kAborted, 5'012);
  CHECK(e.TakeActions().empty());
  auto v = e.Find("t");
  CHECK(v->state == TxState::kContradicted);
  CHECK(v->heuristic);
  CHECK(v->branches[1].state == "aborted");
  e.Tick(60'000);
  CHECK(Only<action::SendDecision>(e.TakeActions()).empty());
  CHECK(e.CloseContradicted("t", 60'001) == Engine::CloseResult::kClosing);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).size() == 1);
}

TEST_CASE("too old to fence: every participant still holding it is fenced as usual (2pc commits, 3pc precommits)") {
  for (wire::Protocol protocol : kBothProtocols) {
    CAPTURE(wire::ProtocolName(protocol));
    Engine e = AnsweredWhenTooOldToFence(protocol, StateAnswer::kHolds, StateAnswer::kHolds);
    auto fences = Only<action::SendFence>(e.TakeActions());
    REQUIRE(fences.size() == 2);
    CHECK(e.Find("t")->branches[0].last_error.empty());
    e.OnFenceAnswer("t", "bank-a", FenceAnswer::kPrepared, 5'002);
    e.OnFenceAnswer("t", "bank-b", FenceAnswer::kPrepared, 5'002);
    auto a = e.TakeActions();
    if (protocol == wire::Protocol::k2pc) {
      auto persist = Only<action::PersistDecision>(a);
      REQUIRE(persist.size() == 1);
      CHECK(persist[0].record.outcome == Outcome::kCommitted);
    } else {
      CHECK(Only<action::SendPrecommit>(a).size() == 2);
    }
  }
}

TEST_CASE("too old to fence: a failed state query is sent again with backoff; a late duplicate answer is ignored") {
  Engine e = ResumedTooOldToFence(wire::Protocol::k2pc);
  e.OnStateAnswer("t", "bank-a", StateAnswer::kHolds, 5'001);
  e.OnStateAnswer("t", "bank-b", Status::Unavailable("down"), 5'001);
  CHECK(e.TakeActions().empty());
  CHECK(e.Find("t")->branches[1].last_error.find("state query: down") != std::string::npos);
  e.Tick(5'001 + 49);
  CHECK(e.TakeActions().empty());
  e.Tick(5'001 + 50);
  auto queries = Only<action::SendStateQuery>(e.TakeActions());
  REQUIRE(queries.size() == 1);
  CHECK(queries[0].to.name == "bank-b");
  // An operator's "retry now" asks again at once, only the one not answered.
  e.OnStateAnswer("t", "bank-b", Status::Unavailable("down"), 5'052);
  CHECK_FALSE(e.Find("t")->in_doubt);  // two failures: still the protocol's to settle
  e.RetryNow(5'053);
  queries = Only<action::SendStateQuery>(e.TakeActions());
  REQUIRE(queries.size() == 1);
  CHECK(queries[0].to.name == "bank-b");
  // A third failure in a row: bank-b may be gone for good, so an operator
  // may settle it; it is still asked.
  e.OnStateAnswer("t", "bank-b", Status::Unavailable("down"), 5'054);
  CHECK(e.Find("t")->in_doubt);
  e.RetryNow(5'055);
  REQUIRE(Only<action::SendStateQuery>(e.TakeActions()).size() == 1);
  e.OnStateAnswer("t", "bank-a", StateAnswer::kUnknown, 5'060);  // a duplicate: changes nothing
  CHECK(e.TakeActions().empty());
  e.OnStateAnswer("t", "bank-b", StateAnswer::kHolds, 5'060);
  CHECK(Only<action::SendFence>(e.TakeActions()).size() == 2);
}

TEST_CASE("2pc resumed from a staging record dated half the outcome retention ahead of the clock: asked first") {
  // The clock moved back: how old the record is cannot be told.
  Engine e = WithTenSecondRetention();
  e.Resume(StagingRecord("t"), 5 - 5'000);  // created_ms 5
  auto a = e.TakeActions();
  CHECK(Only<action::SendFence>(a).empty());
  CHECK(Only<action::SendStateQuery>(a).size() == 2);
  auto v = e.Find("t");
  CHECK(v->branches[0].last_error.find("ahead of this coordinator's clock, which moved back") != std::string::npos);
  // Within the bound (members' clocks differ a little): fenced as usual.
  Engine skewed = WithTenSecondRetention();
  skewed.Resume(StagingRecord("t"), 5 - 4'000);
  CHECK(Only<action::SendFence>(skewed.TakeActions()).size() == 2);
  CHECK_FALSE(skewed.Find("t")->in_doubt);
}

TEST_CASE("2pc with a staging record: an abort goes to the participants only once its record is durable") {
  // Sent before, it could reach a participant after a restarted coordinator's
  // fence found it prepared, and that coordinator would then commit.
  Engine e = MakeEngine();
  e.Start(Transfer("t"), 0);
  e.TakeActions();
  e.OnStagingPersisted("t", Status::Ok(), 1);
  e.OnVote("t", "bank-a", Yes("t"), 2);
  e.Tick(1000);  // bank-b's vote missed the deadline
  auto a = e.TakeActions();
  REQUIRE(Only<action::PersistDecision>(a).size() == 1);
  CHECK(Only<action::PersistDecision>(a)[0].record.outcome == Outcome::kAborted);
  CHECK(Only<action::SendDecision>(a).empty());
  e.OnVote("t", "bank-b", Yes("t"), 1001);  // a late yes waits for the record too
  CHECK(Only<action::SendDecision>(e.TakeActions()).empty());
  e.OnDecisionPersisted("t", Status::Ok(), 1002);
  a = e.TakeActions();
  auto sends = Only<action::SendDecision>(a);
  REQUIRE(sends.size() == 2);
  CHECK(sends[0].outcome == Outcome::kAborted);
  REQUIRE(Only<action::ReplyClient>(a).size() == 1);
}

TEST_CASE("2pc with a staging record: an abort whose record could not be written is not delivered until it is") {
  Engine e = MakeEngine();
  e.Start(Transfer("t"), 0);
  e.TakeActions();
  e.OnStagingPersisted("t", Status::Ok(), 1);
  e.OnVote("t", "bank-a", No("t", "no"), 2);
  e.TakeActions();
  e.OnDecisionPersisted("t", Status::IoError("disk"), 3);
  auto a = e.TakeActions();
  CHECK(Only<action::SendDecision>(a).empty());
  REQUIRE(Only<action::ReplyClient>(a).size() == 1);
  CHECK(Only<action::ReplyClient>(a)[0].status == 503);
  e.Tick(3 + 50);
  a = e.TakeActions();
  CHECK(Only<action::SendDecision>(a).empty());
  REQUIRE(Only<action::PersistDecision>(a).size() == 1);
  e.OnDecisionPersisted("t", Status::Ok(), 60);
  auto sends = Only<action::SendDecision>(e.TakeActions());
  REQUIRE(sends.size() == 1);  // bank-a voted no
  CHECK(sends[0].to.name == "bank-b");
}

TEST_CASE("2pc resumed from a staging record: the abort the fences led to waits for its record") {
  Engine e = MakeEngine();
  ResumedFromStaging(e, "t");
  e.OnFenceAnswer("t", "bank-a", FenceAnswer::kPrepared, 1);
  e.OnFenceAnswer("t", "bank-b", FenceAnswer::kFenced, 1);
  auto a = e.TakeActions();
  REQUIRE(Only<action::PersistDecision>(a).size() == 1);
  CHECK(Only<action::SendDecision>(a).empty());
  e.OnDecisionPersisted("t", Status::Ok(), 2);
  CHECK(Only<action::SendDecision>(e.TakeActions()).size() == 2);
}

TEST_CASE("the commits are handed out before the client's answer, so its next write finds the rows released") {
  for (bool staged_first : {true, false}) {
    Engine e = MakeEngine();
    e.Start(Transfer("t"), 0);
    e.TakeActions();
    if (staged_first) e.OnStagingPersisted("t", Status::Ok(), 1);
    e.OnVote("t", "bank-a", Yes("t"), 2);
    e.OnVote("t", "bank-b", Yes("t"), 2);
    if (!staged_first) {
      e.TakeActions();
      e.OnStagingPersisted("t", Status::Ok(), 3);
    }
    auto a = e.TakeActions();
    std::size_t last_send = 0, reply = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (std::holds_alternative<action::SendDecision>(a[i])) last_send = i;
      if (std::holds_alternative<action::ReplyClient>(a[i])) reply = i;
    }
    REQUIRE(Only<action::SendDecision>(a).size() == 2);
    REQUIRE(Only<action::ReplyClient>(a).size() == 1);
    CHECK(last_send < reply);
  }
}

namespace {

// Strings that need escaping, non-ASCII and invalid UTF-8.
std::string OddText(std::mt19937_64& random) {
  static const std::string kStrings[] = {"", "bank-a", "é\"q\\\n", "\x01\x7f", "\xff\xc3", "😀", std::string(40, 'z')};
  return kStrings[random() % std::size(kStrings)];
}

nlohmann::json RandomResults(std::mt19937_64& random) {
  nlohmann::json results = nlohmann::json::array();
  for (std::size_t op = random() % 3; op > 0; --op) {
    nlohmann::json rows = nlohmann::json::array();
    for (std::size_t row = random() % 3; row > 0; --row) {
      rows.push_back({{OddText(random), static_cast<int64_t>(random() % 2000) - 1000},
                      {"f", 0.1 * static_cast<double>(random() % 100)},
                      {"s", OddText(random)},
                      {"n", nullptr}});
    }
    results.push_back(std::move(rows));
  }
  return random() % 5 == 0 ? nlohmann::json() : results;
}

}  // namespace

TEST_CASE("a client's answer is written as the text of the reply its decision record keeps, byte for byte") {
  std::mt19937_64 random(46);
  int committed = 0;
  int aborted = 0;
  for (int i = 0; i < 2'000; ++i) {
    Engine e = MakeEngine();
    StartRequest r;
    r.txid = "t-" + OddText(random) + std::to_string(i);
    r.timeout_ms = 1000;
    r.idempotency_key = "k" + std::to_string(i);  // so that the record keeps its reply
    r.client = 1;
    const std::size_t count = 1 + random() % 4;
    for (std::size_t p = 0; p < count; ++p) {
      r.participants.push_back({OddText(random) + std::to_string(p), "http://p"});
      r.ops.push_back({});
    }
    const std::vector<ParticipantRef> participants = r.participants;
    e.Start(std::move(r), 0);
    const std::vector<Action> started = e.TakeActions();
    REQUIRE(Only<action::SendPrepare>(started).size() == count);
    const std::string id = Only<action::SendPrepare>(started)[0].request.txid;
    if (random() % 2 == 0) e.OnStagingPersisted(id, Status::Ok(), 1);  // a commit then answers early
    std::vector<action::PersistDecision> decided;
    std::vector<action::ReplyClient> replies;
    for (std::size_t p = 0; p < count && decided.empty(); ++p) {
      wire::Vote vote = random() % 6 == 0 ? No(id, OddText(random)) : Yes(id);
      if (vote.yes) vote.results = RandomResults(random);
      e.OnVote(id, participants[p].name, vote, 2);
      const std::vector<Action> a = e.TakeActions();
      decided = Only<action::PersistDecision>(a);
      replies = Only<action::ReplyClient>(a);
    }
    if (decided.empty()) {
      // A commit, held for the acks: answered once its staging record is durable.
      if (replies.empty()) {
        e.OnStagingPersisted(id, Status::Ok(), 3);
        replies = Only<action::ReplyClient>(e.TakeActions());
      }
      for (const ParticipantRef& p : participants) e.OnDecisionAcked(id, p.name, Status::Ok(), 4);
      decided = Only<action::PersistDecision>(e.TakeActions());
    }
    REQUIRE(decided.size() == 1);
    const DecisionRecord& record = decided[0].record;
    REQUIRE(record.reply.is_object());
    if (replies.empty()) {
      e.OnDecisionPersisted(id, Status::Ok(), 3);
      replies = Only<action::ReplyClient>(e.TakeActions());
    }
    REQUIRE(replies.size() == 1);
    const auto* text = std::get_if<JsonText>(&replies[0].body);
    REQUIRE(text != nullptr);
    CHECK(text->text == DumpJson(record.reply));
    CHECK(replies[0].outcome == record.outcome);
    CHECK(replies[0].status == (record.outcome == Outcome::kCommitted ? 200 : 409));
    (record.outcome == Outcome::kCommitted ? committed : aborted)++;
  }
  CHECK(committed > 500);
  CHECK(aborted > 300);
}

namespace {

// t committed and durable, bank-a acked, bank-b's delivery out: bank-b
// answers that it had aborted the transaction.
void CommitContradictedByBankB(Engine& e, const std::string& txid) {
  CommitDelivering(e, txid);
  e.OnDecisionAcked(txid, "bank-a", Status::Ok(), 1);
  REQUIRE(e.OnDecisionFoundDone(txid, "bank-b", Outcome::kAborted, 1));
}

}  // namespace

TEST_CASE("a participant that finished the transaction the other way is never sent the decision again") {
  Engine e = MakeEngine();
  CommitContradictedByBankB(e, "tc");
  CHECK(e.TakeActions().empty());  // no finished mark: the data disagrees
  CHECK_FALSE(e.OnDecisionFoundDone("tc", "bank-b", Outcome::kAborted, 2));  // the same answer again: stale
  auto view = e.Find("tc");
  REQUIRE(view);
  CHECK(view->state == TxState::kContradicted);
  CHECK(view->outcome == Outcome::kCommitted);
  CHECK(view->undelivered());
  CHECK(view->branches[0].state == "committed");
  CHECK(view->branches[1].state == "aborted");
  CHECK(view->branches[1].last_error.find("aborted the transaction, against the decision to commit") !=
        std::string::npos);
  for (int64_t now = 2; now < 5'000; now += 50) e.Tick(now);
  e.RetryNow(5'000);
  CHECK(Only<action::SendDecision>(e.TakeActions()).empty());
  CHECK(e.Find("tc")->state == TxState::kContradicted);
}

TEST_CASE("an operator closes a contradicted transaction once every participant answered its decision") {
  Engine e = MakeEngine();
  CHECK(e.CloseContradicted("nope", 0) == Engine::CloseResult::kNotHeld);

  CommitDelivering(e, "tc");
  CHECK(e.CloseContradicted("tc", 1) == Engine::CloseResult::kNotContradicted);

  e.OnDecisionFoundDone("tc", "bank-a", Outcome::kAborted, 1);
  e.OnDecisionAcked("tc", "bank-b", Status::Unavailable("down"), 1);
  CHECK(e.CloseContradicted("tc", 2) == Engine::CloseResult::kStillDelivering);
  CHECK(e.TakeActions().empty());

  e.Tick(100);  // bank-b's redelivery, and only bank-b's
  auto sends = Only<action::SendDecision>(e.TakeActions());
  REQUIRE(sends.size() == 1);
  CHECK(sends[0].to.name == "bank-b");
  e.OnDecisionAcked("tc", "bank-b", Status::Ok(), 100);
  CHECK(e.TakeActions().empty());  // not finished by the protocol
  CHECK(e.Find("tc")->state == TxState::kContradicted);

  CHECK(e.CloseContradicted("tc", 200) == Engine::CloseResult::kClosing);
  auto marks = Only<action::PersistFinished>(e.TakeActions());
  REQUIRE(marks.size() == 1);
  CHECK(marks[0].txid == "tc");
  CHECK(e.Find("tc")->state == TxState::kFinishing);
  CHECK(e.CloseContradicted("tc", 201) == Engine::CloseResult::kFinishing);  // no second mark
  e.OnFinishedPersisted("tc", Status::Ok(), 202);
  CHECK(!e.Find("tc"));
}

TEST_CASE("a participant that finished the transaction as decided counts as acked") {
  Engine e = MakeEngine();
  e.Start(Transfer("ta"), 0);
  e.TakeActions();
  StagingRefused(e, "ta");
  e.OnVote("ta", "bank-a", No("ta", "insufficient funds"), 0);  // presumed abort: sent at once
  auto sends = Only<action::SendDecision>(e.TakeActions());
  REQUIRE(sends.size() == 1);
  CHECK(sends[0].to.name == "bank-b");
  CHECK(sends[0].outcome == Outcome::kAborted);
  e.OnDecisionPersisted("ta", Status::Ok(), 0);
  e.TakeActions();
  CHECK_FALSE(e.OnDecisionFoundDone("ta", "bank-b", Outcome::kAborted, 1));  // an ack, not a contradiction
  CHECK(Only<action::PersistFinished>(e.TakeActions()).size() == 1);
  CHECK(e.Find("ta")->state == TxState::kFinishing);
}

TEST_CASE("a commit answered early and contradicted writes its commit record when due, then can be closed") {
  Engine e = MakeEngine();  // retry_initial_ms 50: the held commit record's due time
  e.Start(Transfer("tp"), 0);
  e.TakeActions();
  e.OnStagingPersisted("tp", Status::Ok(), 0);
  e.OnVote("tp", "bank-a", Yes("tp"), 0);
  e.OnVote("tp", "bank-b", Yes("tp"), 0);
  REQUIRE(Only<action::SendDecision>(e.TakeActions()).size() == 2);
  e.OnDecisionAcked("tp", "bank-a", Status::Ok(), 1);
  e.OnDecisionFoundDone("tp", "bank-b", Outcome::kAborted, 1);
  CHECK(Only<action::PersistDecision>(e.TakeActions()).empty());
  CHECK(e.Find("tp")->state == TxState::kContradicted);
  CHECK(e.CloseContradicted("tp", 2) == Engine::CloseResult::kNotRecorded);

  e.Tick(60);
  auto records = Only<action::PersistDecision>(e.TakeActions());
  REQUIRE(records.size() == 1);
  CHECK(records[0].record.outcome == Outcome::kCommitted);
  CHECK(!records[0].record.finished);
  e.OnDecisionPersisted("tp", Status::Ok(), 61);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).empty());
  CHECK(e.CloseContradicted("tp", 62) == Engine::CloseResult::kClosing);
  CHECK(Only<action::PersistFinished>(e.TakeActions()).size() == 1);
}
