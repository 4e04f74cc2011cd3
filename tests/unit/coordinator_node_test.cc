// coordinator::Node driven directly: the real SqliteDecisionLog on a temp
// file (its storage queue run by the test, so "before it is durable" is a
// state the test can look at), a transport whose answers the test gives, and
// a clock the test moves.
#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/storage_queue.h"
#include "coordinator/decision_store.h"
#include "coordinator/node.h"
#include "coordinator/sqlite_decision_log.h"
#include "tests/unit/support/temp_dir.h"

namespace commitd::coordinator {
namespace {

// Jobs and reads wait until the test runs them (RunStorageBatch, as BatchWriter).
class ManualQueue final : public StorageQueue {
 public:
  void Submit(Job job) override { jobs_.push_back(std::move(job)); }
  void Read(std::function<void(sqlite::Database&)> fn) override { reads_.push_back(std::move(fn)); }
  Stats stats() const override { return {}; }
  bool idle() const { return jobs_.empty() && reads_.empty(); }
  // Until nothing is queued: reads, then one batch with its completions.
  void Drain(sqlite::Database& db) {
    while (!idle()) {
      auto reads = std::move(reads_);
      reads_.clear();
      for (auto& read : reads) read(db);
      std::vector<Job> batch(std::make_move_iterator(jobs_.begin()), std::make_move_iterator(jobs_.end()));
      jobs_.clear();
      if (batch.empty()) continue;
      bool rolled_back = false;
      std::vector<Status> results = RunStorageBatch(db, batch, &rolled_back);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].done) batch[i].done(results[i]);
      }
    }
  }

 private:
  std::deque<Job> jobs_;
  std::deque<std::function<void(sqlite::Database&)>> reads_;
};

class ManualTimers final : public Timers {
 public:
  int64_t NowMs() const override { return now_; }
  void After(int64_t delay_ms, std::function<void()> fn) override { due_.emplace(now_ + delay_ms, std::move(fn)); }
  void Advance(int64_t ms) {
    const int64_t until = now_ + ms;
    while (!due_.empty() && due_.begin()->first <= until) {
      auto it = due_.begin();
      now_ = it->first;
      auto fn = std::move(it->second);
      due_.erase(it);
      fn();
    }
    now_ = until;
  }

 private:
  int64_t now_ = 1'000'000;
  std::multimap<int64_t, std::function<void()>> due_;
};

// Records every request; the test answers them.
class ScriptedTransport final : public AgentTransport {
 public:
  struct Call {
    std::string kind;  // "prepare" | "commit" | "abort" | "precommit"
    std::string to;
    std::string txid;
  };
  std::vector<Call> calls;
  std::map<std::string, std::vector<PreparedAtAgent>> prepared;  // participant -> what ListPrepared answers
  std::vector<std::function<void(Result<wire::Vote>)>> votes;
  std::vector<std::function<void(Result<DecisionAck>)>> acks;

  void Prepare(const ParticipantRef& to, const wire::PrepareRequest& request, int64_t,
               std::function<void(Result<wire::Vote>)> done) override {
    calls.push_back({"prepare", to.name, request.txid});
    votes.push_back(std::move(done));
  }
  void Deliver(const ParticipantRef& to, const std::string& txid, Outcome outcome,
               std::function<void(Result<DecisionAck>)> done) override {
    calls.push_back({outcome == Outcome::kCommitted ? "commit" : "abort", to.name, txid});
    acks.push_back(std::move(done));
  }
  void Precommit(const ParticipantRef& to, const std::string& txid,
                 std::function<void(Result<PrecommitAnswer>)>) override {
    calls.push_back({"precommit", to.name, txid});
  }
  void ListPrepared(const ParticipantRef& to, std::function<void(Result<std::vector<PreparedAtAgent>>)> done) override {
    done(prepared[to.name]);
  }
  void FetchCatalog(const ParticipantRef&, int64_t, std::function<void(Result<AgentCatalog>)> done) override {
    done(Status::Unavailable("not reachable in this test"));
  }
  int Count(const std::string& kind, const std::string& txid) const {
    int n = 0;
    for (const auto& c : calls) n += c.kind == kind && c.txid == txid ? 1 : 0;
    return n;
  }
};

constexpr char kSelf[] = "http://127.0.0.1:7000";

class Fixture {
 public:
  explicit Fixture(int64_t max_in_flight = 4096) {
    auto db = sqlite::Database::Open(dir_.File("decisions.db"));
    REQUIRE(db.ok());
    db_ = std::move(db).value();
    auto log = SqliteDecisionLog::Create(*db_, queue_, nullptr, entropy_);
    REQUIRE(log.ok());
    log_ = std::move(log).value();
    options_ = NodeOptionsFor(Config{}, "c1", kSelf);
    options_.max_in_flight = max_in_flight;
    options_.participants = {{"bank-a", "http://127.0.0.1:7101", 0}, {"bank-b", "http://127.0.0.1:7102", 0}};
  }
  ~Fixture() { node_.reset(); }

  void Start() {
    node_ = std::make_unique<Node>(options_, *log_, agents_, timers_, entropy_, nullptr);
    REQUIRE(node_->Start().ok());
  }
  void Store() { queue_.Drain(*db_); }
  std::optional<DecisionRecord> Recorded(const std::string& txid) {
    auto found = DecisionStore(*db_).FindByTxid(txid);
    REQUIRE(found.ok());
    return found.value();
  }
  void Insert(DecisionRecord r) { REQUIRE(DecisionStore(*db_).InsertDecision(r).ok()); }
  std::string LogId() {
    auto id = DecisionStore(*db_).LogId();
    REQUIRE(id.ok());
    return *id;
  }
  // A restart: a new Node on a log opened anew over the same file.
  void Restart() {
    node_.reset();
    log_.reset();
    auto log = SqliteDecisionLog::Create(*db_, queue_, nullptr, entropy_);
    REQUIRE(log.ok());
    log_ = std::move(log).value();
    Start();
  }

  Node& node() { return *node_; }
  ScriptedTransport& agents() { return agents_; }
  ManualTimers& timers() { return timers_; }
  ManualQueue& queue() { return queue_; }
  NodeOptions& options() { return options_; }

 private:
  testing::TempDir dir_;
  SystemEntropy entropy_;
  std::unique_ptr<sqlite::Database> db_;
  ManualQueue queue_;
  std::unique_ptr<SqliteDecisionLog> log_;
  ScriptedTransport agents_;
  ManualTimers timers_;
  NodeOptions options_;
  std::unique_ptr<Node> node_;
};

wire::TxRequest Transfer() {
  wire::TxRequest tx;
  wire::Op op;
  op.procedure = "debit";
  tx.branches = {{"bank-a", {op}}, {"bank-b", {op}}};
  tx.timeout_ms = 1000;
  return tx;
}

DecisionRecord Decided(const std::string& txid, Outcome outcome) {
  DecisionRecord r;
  r.txid = txid;
  r.outcome = outcome;
  r.participants = {{"bank-a", "http://127.0.0.1:7101"}, {"bank-b", "http://127.0.0.1:7102"}};
  r.reply = {{"txid", txid}, {"outcome", OutcomeName(outcome)}};
  r.created_ms = r.decided_ms = 1;
  return r;
}

TEST_CASE("a participant's question about an unknown txid is answered only once the presumed abort is durable") {
  Fixture f;
  f.Start();
  f.Store();
  std::optional<TxLookup> answer;
  f.node().GetTransaction("lost-1", "bank-a", "", [&](TxLookup l) { answer = std::move(l); });
  // The lookup and then the abort record go through storage: nothing is answered before.
  CHECK_FALSE(answer.has_value());
  f.Store();
  REQUIRE(answer.has_value());
  const auto* presumed = std::get_if<PresumedAbort>(&*answer);
  REQUIRE(presumed != nullptr);
  CHECK(presumed->recorded);
  auto record = f.Recorded("lost-1");
  REQUIRE(record.has_value());
  CHECK(record->outcome == Outcome::kAborted);
  CHECK(record->finished);

  SUBCASE("a later forced commit cannot contradict it") {
    std::optional<ForceAnswer> forced;
    f.node().Force({"lost-1", Outcome::kCommitted, {{"bank-a", std::nullopt}}, ""},
                   [&](ForceAnswer a) { forced = std::move(a); });
    f.Store();
    REQUIRE(forced.has_value());
    const auto* result = std::get_if<ForceResult>(&*forced);
    REQUIRE(result != nullptr);
    CHECK(result->kind == ForceResult::Kind::kConflict);
    CHECK(result->outcome == Outcome::kAborted);
  }
}

TEST_CASE("an anonymous question about an unknown txid is answered without recording anything") {
  Fixture f;
  f.Start();
  f.Store();
  std::optional<TxLookup> answer;
  f.node().GetTransaction("lost-2", "", "", [&](TxLookup l) { answer = std::move(l); });
  f.Store();
  REQUIRE(answer.has_value());
  const auto* presumed = std::get_if<PresumedAbort>(&*answer);
  REQUIRE(presumed != nullptr);
  CHECK_FALSE(presumed->recorded);
  CHECK_FALSE(f.Recorded("lost-2").has_value());
}

TEST_CASE("the takeover sweep records abort for what agents hold prepared for this coordinator, then delivers it") {
  Fixture f;
  f.agents().prepared["bank-a"] = {{"orphan", kSelf}, {"elsewhere", "http://127.0.0.1:9999"}};
  f.agents().prepared["bank-b"] = {{"orphan", kSelf}};
  f.Start();
  CHECK(f.agents().Count("abort", "orphan") == 0);  // not before the record is durable
  f.Store();
  auto record = f.Recorded("orphan");
  REQUIRE(record.has_value());
  CHECK(record->outcome == Outcome::kAborted);
  CHECK(record->participants.size() == 2);
  CHECK(f.agents().Count("abort", "orphan") == 2);
  CHECK_FALSE(f.Recorded("elsewhere").has_value());  // another coordinator's: not ours to decide
  CHECK(f.node().metrics().swept == 1);
}

TEST_CASE("start resumes every unfinished decision and finishes it once every participant acked") {
  Fixture f;
  f.Insert(Decided("t-commit", Outcome::kCommitted));
  f.Start();
  f.Store();
  CHECK(f.agents().Count("commit", "t-commit") == 2);
  CHECK(f.node().active() == 1);
  // One agent acks; the other forgot the txid after its retention: counted as acked.
  f.agents().acks[0](DecisionAck::kAcked);
  f.agents().acks[1](DecisionAck::kUnknownTransaction);
  f.Store();
  CHECK(f.node().metrics().commits_unknown_at_participant == 1);
  auto record = f.Recorded("t-commit");
  REQUIRE(record.has_value());
  CHECK(record->finished);
  CHECK(f.node().active() == 0);
}

TEST_CASE("a forced decision is recorded as heuristic, then delivered; the same force again changes nothing") {
  Fixture f;
  f.Start();
  f.Store();
  std::optional<ForceAnswer> forced;
  f.node().Force({"stuck", Outcome::kCommitted, {{"bank-a", std::nullopt}}, ""},
                 [&](ForceAnswer a) { forced = std::move(a); });
  f.Store();
  REQUIRE(forced.has_value());
  const auto* result = std::get_if<ForceResult>(&*forced);
  REQUIRE(result != nullptr);
  CHECK(result->kind == ForceResult::Kind::kForced);
  auto record = f.Recorded("stuck");
  REQUIRE(record.has_value());
  CHECK(record->heuristic);
  CHECK(record->outcome == Outcome::kCommitted);
  CHECK(f.agents().Count("commit", "stuck") == 1);
  CHECK(f.node().metrics().heuristic == 1);

  std::optional<ForceAnswer> again;
  f.node().Force({"stuck", Outcome::kCommitted, {}, ""}, [&](ForceAnswer a) { again = std::move(a); });
  f.Store();
  REQUIRE(again.has_value());
  REQUIRE(std::holds_alternative<ForceResult>(*again));
  CHECK(std::get<ForceResult>(*again).kind == ForceResult::Kind::kAlreadyDecided);

  std::optional<ForceAnswer> unknown;
  f.node().Force({"other", Outcome::kAborted, {{"bank-z", std::nullopt}}, ""},
                 [&](ForceAnswer a) { unknown = std::move(a); });
  REQUIRE(unknown.has_value());
  REQUIRE(std::holds_alternative<NodeError>(*unknown));
  CHECK(std::get<NodeError>(*unknown).kind == NodeErrorKind::kInvalidRequest);
}

TEST_CASE("a force while the protocol still collects votes is refused") {
  Fixture f;
  f.Start();
  f.Store();
  std::optional<SubmitResult> reply;
  f.node().Submit({Transfer(), ""}, [&](SubmitResult r) { reply = std::move(r); });
  REQUIRE(f.agents().calls.size() >= 1);
  const std::string txid = f.agents().calls.back().txid;
  std::optional<ForceAnswer> forced;
  f.node().Force({txid, Outcome::kCommitted, {}, ""}, [&](ForceAnswer a) { forced = std::move(a); });
  REQUIRE(forced.has_value());
  REQUIRE(std::holds_alternative<NodeError>(*forced));
  CHECK(std::get<NodeError>(*forced).kind == NodeErrorKind::kUndecided);
}

TEST_CASE("beyond max_in_flight undecided transactions a submission is refused as overloaded") {
  Fixture f(/*max_in_flight=*/1);
  f.Start();
  f.Store();
  std::optional<SubmitResult> first, second;
  f.node().Submit({Transfer(), ""}, [&](SubmitResult r) { first = std::move(r); });
  f.node().Submit({Transfer(), ""}, [&](SubmitResult r) { second = std::move(r); });
  CHECK_FALSE(first.has_value());  // waiting for votes
  REQUIRE(second.has_value());
  REQUIRE(std::holds_alternative<NodeError>(*second));
  CHECK(std::get<NodeError>(*second).kind == NodeErrorKind::kOverloaded);
  CHECK(f.node().metrics().rejected_overload == 1);
  CHECK(f.node().metrics().started == 1);

  // Both vote yes: commit is recorded, then the client hears 200.
  for (auto& vote : f.agents().votes) {
    wire::Vote yes;
    yes.txid = f.agents().calls.front().txid;
    yes.yes = true;
    vote(yes);
  }
  CHECK_FALSE(first.has_value());  // not before the decision is durable
  f.Store();
  REQUIRE(first.has_value());
  REQUIRE(std::holds_alternative<TxReply>(*first));
  CHECK(std::get<TxReply>(*first).status == 200);
}

TEST_CASE("a transaction whose votes do not come is aborted at its deadline by the tick") {
  Fixture f;
  f.Start();
  f.Store();
  std::optional<SubmitResult> reply;
  f.node().Submit({Transfer(), ""}, [&](SubmitResult r) { reply = std::move(r); });
  const std::string txid = f.agents().calls.back().txid;
  f.timers().Advance(1'500);
  f.Store();
  REQUIRE(reply.has_value());
  REQUIRE(std::holds_alternative<TxReply>(*reply));
  CHECK(std::get<TxReply>(*reply).status == 409);
  auto record = f.Recorded(txid);
  REQUIRE(record.has_value());
  CHECK(record->outcome == Outcome::kAborted);
}

}  // namespace
}  // namespace commitd::coordinator

namespace commitd::coordinator {
namespace {

std::string Submitted(Fixture& f, std::optional<SubmitResult>* result = nullptr) {
  f.node().Submit({Transfer(), ""}, [result](SubmitResult r) {
    if (result != nullptr) *result = std::move(r);
  });
  REQUIRE(!f.agents().calls.empty());
  return f.agents().calls.back().txid;
}

TEST_CASE("txids carry the log's incarnation and a random part: a restart repeats none, whatever the clock") {
  Fixture f;
  f.Start();
  f.Store();
  const std::string first = Submitted(f);
  auto parts = ParseTxid(first);
  REQUIRE(parts.has_value());
  CHECK(parts->coordinator == "c1");
  CHECK(parts->sequence == 1);
  f.Restart();
  f.Store();
  const std::string second = Submitted(f);  // the ManualTimers clock has not moved
  auto later = ParseTxid(second);
  REQUIRE(later.has_value());
  CHECK(later->incarnation == parts->incarnation + 1);
  CHECK(later->sequence == 1);
  CHECK(first != second);
  CHECK(first.substr(first.size() - 16) != second.substr(second.size() - 16));
}

TEST_CASE("an empty log gets an identity at creation, and prepares carry it") {
  Fixture f;
  const std::string id = f.LogId();
  CHECK(id.size() == 32);
  f.Start();
  f.Store();
  f.Restart();
  CHECK(f.LogId() == id);  // kept across restarts
}

TEST_CASE("a commit whose record loses to an abort recorded first ends aborted, without stopping the process") {
  Fixture f;
  f.Start();
  f.Store();
  std::optional<SubmitResult> result;
  const std::string txid = Submitted(f, &result);
  for (auto& vote : f.agents().votes) vote(wire::Vote{txid, true, "", nlohmann::json::array()});
  // The commit record is queued, not written: a presumed abort gets there first.
  DecisionRecord presumed = Decided(txid, Outcome::kAborted);
  presumed.reason = "presumed abort: unknown to the coordinator when bank-a asked";
  f.Insert(presumed);
  f.Store();
  REQUIRE(result.has_value());
  const auto* reply = std::get_if<TxReply>(&*result);
  REQUIRE(reply != nullptr);
  CHECK(reply->status == 409);
  CHECK(reply->body["outcome"] == "aborted");
  CHECK(f.agents().Count("commit", txid) == 0);
  CHECK(f.agents().Count("abort", txid) == 2);
  auto record = f.Recorded(txid);
  REQUIRE(record.has_value());
  CHECK(record->outcome == Outcome::kAborted);
}

TEST_CASE("records prepared under another decision log are kept in doubt, never presumed aborted") {
  Fixture f;
  const std::string own = f.LogId();
  f.agents().prepared["bank-a"] = {{"lost-log", kSelf, "0123456789abcdef0123456789abcdef"},
                                   {"old-record", kSelf, ""},
                                   {"same-log", kSelf, own}};
  f.Start();
  f.Store();
  CHECK_FALSE(f.Recorded("lost-log").has_value());
  CHECK(f.agents().Count("abort", "lost-log") == 0);
  CHECK(f.node().in_doubt_foreign_log() == 1);
  // Records without a log id, and records of this log, keep the presumed-abort rule.
  CHECK(f.Recorded("old-record").has_value());
  CHECK(f.Recorded("same-log").has_value());

  std::optional<TxList> listed;
  f.node().ListTransactions({TxListState::kInDoubt, 100}, [&](TxList l) { listed = std::move(l); });
  REQUIRE(listed.has_value());
  const auto* views = std::get_if<std::vector<TxView>>(&*listed);
  REQUIRE(views != nullptr);
  const TxView* lost = nullptr;
  for (const auto& v : *views) lost = v.txid == "lost-log" ? &v : lost;
  REQUIRE(lost != nullptr);
  CHECK(lost->state == "in_doubt");
  CHECK(lost->reason.find("0123456789abcdef0123456789abcdef") != std::string::npos);

  SUBCASE("an operator settles it by force") {
    std::optional<ForceAnswer> forced;
    f.node().Force({"lost-log", Outcome::kCommitted, {{"bank-a", std::nullopt}}, ""},
                   [&](ForceAnswer a) { forced = std::move(a); });
    f.Store();
    REQUIRE(forced.has_value());
    REQUIRE(std::get_if<ForceResult>(&*forced) != nullptr);
    CHECK(f.node().in_doubt_foreign_log() == 0);
    CHECK(f.agents().Count("commit", "lost-log") == 1);
  }
}

TEST_CASE("a decision query naming another decision log is answered unknown_log and records nothing") {
  Fixture f;
  f.Start();
  f.Store();
  std::optional<TxLookup> answer;
  f.node().GetTransaction("c1-1-1-0000000000000000", "bank-a", "ffffffffffffffffffffffffffffffff",
                          [&](TxLookup l) { answer = std::move(l); });
  f.Store();
  REQUIRE(answer.has_value());
  const auto* error = std::get_if<NodeError>(&*answer);
  REQUIRE(error != nullptr);
  CHECK(error->kind == NodeErrorKind::kUnknownLog);
  CHECK_FALSE(f.Recorded("c1-1-1-0000000000000000").has_value());

  SUBCASE("its own log id keeps the presumed-abort rule") {
    answer.reset();
    f.node().GetTransaction("c1-1-2-0000000000000000", "bank-a", f.LogId(), [&](TxLookup l) { answer = std::move(l); });
    f.Store();
    REQUIRE(answer.has_value());
    REQUIRE(std::get_if<PresumedAbort>(&*answer) != nullptr);
    CHECK(f.Recorded("c1-1-2-0000000000000000").has_value());
  }
}

// Retention: a finished decision older than decision_retention_ms is deleted;
// what asks about it afterwards hears "forgotten", never an abort.
TEST_CASE("retention deletes old finished decisions; their txids and keys are answered forgotten, never aborted") {
  Fixture f;
  f.options().decision_retention_ms = 1'000;
  const int64_t now = f.timers().NowMs();
  const std::string old_commit = "c1-1-5-00000000000000aa";
  DecisionRecord finished = Decided(old_commit, Outcome::kCommitted);
  finished.idempotency_key = "key-old";
  finished.finished = true;
  finished.finished_ms = now - 5'000;
  f.Insert(finished);
  DecisionRecord recent = Decided("c1-1-7-00000000000000bb", Outcome::kCommitted);
  recent.idempotency_key = "key-recent";
  recent.finished = true;
  recent.finished_ms = now;
  f.Insert(recent);
  DecisionRecord delivering = Decided("c1-1-6-00000000000000cc", Outcome::kCommitted);
  delivering.decided_ms = now - 9'000;
  f.Insert(delivering);  // not finished: resumed, never deleted
  f.Start();
  f.Store();
  f.timers().Advance(ForgetIntervalMs(1'000));
  f.Store();
  CHECK_FALSE(f.Recorded(old_commit).has_value());
  CHECK(f.Recorded("c1-1-7-00000000000000bb").has_value());
  CHECK(f.Recorded("c1-1-6-00000000000000cc").has_value());
  CHECK(f.node().metrics().forgotten == 1);

  auto ask = [&f](const std::string& txid, const std::string& asker) {
    std::optional<TxLookup> answer;
    f.node().GetTransaction(txid, asker, "", [&](TxLookup l) { answer = std::move(l); });
    f.Store();
    REQUIRE(answer.has_value());
    return *answer;
  };
  for (const std::string asker : {"bank-a", ""}) {
    TxLookup answer = ask(old_commit, asker);
    const auto* error = std::get_if<NodeError>(&answer);
    REQUIRE(error != nullptr);
    CHECK(error->kind == NodeErrorKind::kForgotten);
    CHECK_FALSE(f.Recorded(old_commit).has_value());  // no presumed abort recorded
  }
  // A lower sequence of the same incarnation may have had a record too: forgotten as well.
  TxLookup lower = ask("c1-1-2-00000000000000dd", "bank-a");
  REQUIRE(std::get_if<NodeError>(&lower) != nullptr);
  CHECK(std::get<NodeError>(lower).kind == NodeErrorKind::kForgotten);
  // A higher one, or another incarnation, had none deleted: presumed abort as before.
  TxLookup higher = ask("c1-1-9-00000000000000ee", "bank-a");
  CHECK(std::get_if<PresumedAbort>(&higher) != nullptr);
  TxLookup other = ask("c1-7-1-00000000000000ee", "bank-a");
  CHECK(std::get_if<PresumedAbort>(&other) != nullptr);
  // Inside the window the record answers.
  TxLookup kept = ask("c1-1-7-00000000000000bb", "");
  CHECK(std::get_if<DecisionRecord>(&kept) != nullptr);

  auto submit = [&f](const std::string& key) {
    std::optional<SubmitResult> reply;
    f.node().Submit({Transfer(), key}, [&](SubmitResult r) { reply = std::move(r); });
    f.Store();
    REQUIRE(reply.has_value());
    return *reply;
  };
  const std::size_t calls_before = f.agents().calls.size();
  SubmitResult forgotten = submit("key-old");
  REQUIRE(std::get_if<NodeError>(&forgotten) != nullptr);
  CHECK(std::get<NodeError>(forgotten).kind == NodeErrorKind::kKeyForgotten);
  SubmitResult replayed = submit("key-recent");
  REQUIRE(std::get_if<TxReply>(&replayed) != nullptr);
  CHECK(std::get<TxReply>(replayed).body == recent.reply);
  CHECK(f.agents().calls.size() == calls_before);  // nothing prepared for either

  SUBCASE("the recent one goes once it is old enough") {
    f.timers().Advance(1'000 + ForgetIntervalMs(1'000));
    f.Store();
    f.timers().Advance(ForgetIntervalMs(1'000));
    f.Store();
    CHECK_FALSE(f.Recorded("c1-1-7-00000000000000bb").has_value());
    CHECK(f.Recorded("c1-1-6-00000000000000cc").has_value());
    SubmitResult now_forgotten = submit("key-recent");
    REQUIRE(std::get_if<NodeError>(&now_forgotten) != nullptr);
    CHECK(std::get<NodeError>(now_forgotten).kind == NodeErrorKind::kKeyForgotten);
  }
}

}  // namespace
}  // namespace commitd::coordinator
