// coordinator::Node driven directly: the real SqliteDecisionLog on a temp
// file (its storage queue run by the test, so "before it is durable" is a
// state the test can look at), a transport whose answers the test gives, and
// a clock the test moves.
#include <doctest/doctest.h>

#include "common/abort_key.h"

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/failpoint.h"
#include "common/storage_queue.h"
#include "coordinator/api_render.h"
#include "coordinator/decision_store.h"
#include "coordinator/node.h"
#include "coordinator/sqlite_decision_log.h"
#include "tests/unit/support/temp_dir.h"

namespace commitd::coordinator {
namespace {

// Jobs and reads wait until the test runs them (RunStorageBatch, as BatchWriter).
class ManualQueue final : public StorageQueue {
 public:
  void Submit(Job job) override {
    if (fail_jobs_ > 0 && job.durability == fail_durability_) {
      --fail_jobs_;
      failed_.push_back(std::move(job));
      return;
    }
    jobs_.push_back(std::move(job));
  }
  // The next `count` jobs of this durability fail with an I/O error at the next Drain, without running.
  void FailNext(Durability durability, int count) {
    fail_durability_ = durability;
    fail_jobs_ = count;
  }
  void Read(std::function<void(sqlite::Database&)> fn) override { reads_.push_back(std::move(fn)); }
  // Batches run when the test drains them: there is no linger to defer riders by.
  void DeferRiders() override {}
  Stats stats() const override { return {}; }
  bool idle() const { return jobs_.empty() && reads_.empty(); }
  // The failed jobs complete now; the others stay queued (a refusal comes
  // back before earlier appends complete).
  void CompleteFailed() {
    auto failed = std::move(failed_);
    failed_.clear();
    for (auto& job : failed) {
      if (job.done) job.done(Status::IoError("disk I/O error (injected)"));
    }
  }
  // Until nothing is queued: the failed jobs, then reads, then one batch with its completions.
  void Drain(sqlite::Database& db) {
    CompleteFailed();
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

  // A crash: what was queued and not written is lost, and nobody hears of it.
  void DropQueued() {
    jobs_.clear();
    reads_.clear();
    failed_.clear();
  }

 private:
  std::deque<Job> jobs_;
  std::deque<std::function<void(sqlite::Database&)>> reads_;
  std::vector<Job> failed_;
  Durability fail_durability_ = Durability::kSyncNow;
  int fail_jobs_ = 0;
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
    std::string kind;  // "prepare" | "commit" | "abort" | "precommit" | "fence" | "adopt" | "state"
    std::string to;
    std::string txid;
  };
  std::vector<Call> calls;
  std::map<std::string, std::vector<PreparedAtAgent>> prepared;  // participant -> what ListPrepared answers
  std::vector<std::function<void(Result<wire::Vote>)>> votes;
  std::vector<std::function<void(Result<DecisionAck>)>> acks;
  std::vector<std::string> abort_keys;    // what each Deliver carried (its key, commit or abort)
  std::vector<std::string> prepare_keys;  // what each prepare carried
  std::vector<std::string> commit_checks;  // what each prepare carried

  void Prepare(const ParticipantRef& to, const wire::PrepareRequest& request, int64_t,
               std::function<void(Result<wire::Vote>)> done) override {
    calls.push_back({"prepare", to.name, request.txid});
    prepare_keys.push_back(request.abort_key);
    commit_checks.push_back(request.commit_check);
    votes.push_back(std::move(done));
  }
  void Deliver(const ParticipantRef& to, const std::string& txid, Outcome outcome, const std::string& key,
               std::function<void(Result<DecisionAck>)> done) override {
    calls.push_back({outcome == Outcome::kCommitted ? "commit" : "abort", to.name, txid});
    abort_keys.push_back(key);
    acks.push_back(std::move(done));
  }
  std::vector<std::function<void(Result<PrecommitAnswer>)>> precommits;
  void Precommit(const ParticipantRef& to, const std::string& txid, const std::string&,
                 std::function<void(Result<PrecommitAnswer>)> done) override {
    calls.push_back({"precommit", to.name, txid});
    precommits.push_back(std::move(done));
  }
  std::vector<std::function<void(Result<FenceAnswer>)>> fences;
  void Fence(const ParticipantRef& to, const std::string& txid, std::function<void(Result<FenceAnswer>)> done) override {
    calls.push_back({"fence", to.name, txid});
    fences.push_back(std::move(done));
  }
  // Adoptions: answered at once with adopt_answers[participant] (adopted if
  // none is set, naming adopt_names as the transaction's participants), or
  // held in `adoptions` while hold_adoptions.
  std::vector<wire::AdoptRequest> adopt_requests;
  std::vector<ParticipantRef> adopt_targets;
  std::map<std::string, AdoptAnswer> adopt_answers;
  std::vector<ParticipantRef> adopt_names;
  bool hold_adoptions = false;
  std::vector<std::function<void(Result<AdoptReply>)>> adoptions;
  void Adopt(const ParticipantRef& to, const wire::AdoptRequest& request,
             std::function<void(Result<AdoptReply>)> done) override {
    calls.push_back({"adopt", to.name, request.txid});
    adopt_requests.push_back(request);
    adopt_targets.push_back(to);
    if (hold_adoptions) {
      adoptions.push_back(std::move(done));
      return;
    }
    auto it = adopt_answers.find(to.name);
    if (it == adopt_answers.end()) {
      done(AdoptReply{AdoptAnswer::kAdopted, adopt_names});
    } else {
      done(AdoptReply{it->second, {}});
    }
  }
  std::vector<std::function<void(Result<StateAnswer>)>> state_queries;
  void QueryState(const ParticipantRef& to, const std::string& txid,
                  std::function<void(Result<StateAnswer>)> done) override {
    calls.push_back({"state", to.name, txid});
    state_queries.push_back(std::move(done));
  }
  void ListPrepared(const ParticipantRef& to, std::function<void(Result<std::vector<PreparedAtAgent>>)> done) override {
    done(prepared[to.name]);
  }
  // Health probes: answered unreachable unless the test says otherwise.
  AgentCatalog catalog;  // what a probe answered kAnswer gets
  enum class Probe { kUnreachable, kAnswer, kHang };
  Probe probe = Probe::kUnreachable;
  std::map<std::string, int> probes;  // participant -> probes sent
  std::vector<std::function<void(Result<AgentCatalog>)>> hanging;
  void FetchCatalog(const ParticipantRef& to, int64_t, std::function<void(Result<AgentCatalog>)> done) override {
    ++probes[to.name];
    if (probe == Probe::kAnswer) {
      done(catalog);
    } else if (probe == Probe::kHang) {
      hanging.push_back(std::move(done));
    } else {
      done(Status::Unavailable("not reachable in this test"));
    }
  }
  int Count(const std::string& kind, const std::string& txid) const {
    int n = 0;
    for (const auto& c : calls) n += c.kind == kind && c.txid == txid ? 1 : 0;
    return n;
  }
};

constexpr char kSelf[] = "http://127.0.0.1:7000";

// A group member's leadership, switched by the test. The member's log is the
// fixture's SQLite one (it has its identity already), standing in for the
// replicated log: what the Node does on a change of leadership is the point.
class ManualLeadership final : public Leadership {
 public:
  bool leader_ready() const override { return ready_; }
  std::string leader_url() const override { return ready_ ? "http://127.0.0.1:7000" : ""; }
  void set_on_leadership(std::function<void(bool ready)> fn) override { on_change_ = std::move(fn); }
  uint64_t term() const override { return term_; }
  std::vector<std::string> member_urls() const override { return {"http://127.0.0.1:7000"}; }
  void Set(bool ready) {
    ready_ = ready;
    if (ready) ++term_;
    if (on_change_) on_change_(ready);
  }

 private:
  bool ready_ = false;
  uint64_t term_ = 0;
  std::function<void(bool)> on_change_;
};

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

  // leadership: a group member's view of its group (nullptr: a single coordinator).
  void Start(Leadership* leadership = nullptr) {
    node_ = std::make_unique<Node>(options_, *log_, agents_, timers_, entropy_, leadership);
    REQUIRE(node_->Start().ok());
  }
  void Store() { queue_.Drain(*db_); }
  std::optional<DecisionRecord> Recorded(const std::string& txid) {
    auto found = DecisionStore(*db_).FindByTxid(txid);
    REQUIRE(found.ok());
    return found.value();
  }
  void Insert(DecisionRecord r) { REQUIRE(DecisionStore(*db_).InsertDecision(r).ok()); }
  // Finished at 1 ms and forgotten by retention: deleted, and remembered as forgotten.
  void Forget(const std::string& txid) {
    REQUIRE(DecisionStore(*db_).MarkFinished(txid, 1).ok());
    auto forgotten = DecisionStore(*db_).ForgetFinishedBefore(2, 0, 100);
    REQUIRE(forgotten.ok());
    REQUIRE(*forgotten == 1);
  }
  std::string AbortSecret() {
    auto secret = DecisionStore(*db_).AbortSecret();
    REQUIRE(secret.ok());
    return *secret;
  }
  std::string LogId() {
    auto id = DecisionStore(*db_).LogId();
    REQUIRE(id.ok());
    return *id;
  }
  // A restart: a new Node on a log opened anew over the same file.
  void Restart() {
    node_.reset();
    queue_.DropQueued();
    log_.reset();
    auto log = SqliteDecisionLog::Create(*db_, queue_, nullptr, entropy_);
    REQUIRE(log.ok());
    log_ = std::move(log).value();
    Start();
  }

  Node& node() { return *node_; }
  sqlite::Database& db() { return *db_; }
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

// Submitted with its prepares sent (not answered): its txid.
std::string Submitted(Fixture& f, std::optional<SubmitResult>* result = nullptr) {
  f.node().Submit({Transfer(), ""}, [result](SubmitResult r) {
    if (result != nullptr) *result = std::move(r);
  });
  REQUIRE(!f.agents().calls.empty());
  return f.agents().calls.back().txid;
}

wire::Vote YesVote(const std::string& txid) {
  wire::Vote yes;
  yes.txid = txid;
  yes.yes = true;
  return yes;
}

// A 3PC transfer both agents voted yes on: its staging record is written
// and its precommits sent (not answered). Returns its txid.
std::string Precommitted3pc(Fixture& f, int64_t timeout_ms, std::optional<SubmitResult>* client) {
  wire::TxRequest tx = Transfer();
  tx.protocol = wire::Protocol::k3pc;
  tx.timeout_ms = timeout_ms;
  f.node().Submit({tx, ""}, [client](SubmitResult r) { *client = std::move(r); });
  const std::string txid = f.agents().calls.back().txid;
  const wire::Vote yes = YesVote(txid);
  const std::size_t first = f.agents().votes.size() - 2;
  f.agents().votes[first](yes);
  f.agents().votes[first + 1](yes);
  f.Store();
  REQUIRE(f.agents().Count("precommit", txid) == 2);
  return txid;
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

// Answers the fences sent for txid, but the first `skip` of them.
void AnswerFences(Fixture& f, const std::string& txid, FenceAnswer answer, int skip) {
  std::vector<std::size_t> mine;
  std::size_t fence = 0;
  for (const auto& c : f.agents().calls) {
    if (c.kind != "fence") continue;
    if (c.txid == txid) mine.push_back(fence);
    ++fence;
  }
  for (std::size_t i = static_cast<std::size_t>(skip); i < mine.size(); ++i) f.agents().fences[mine[i]](answer);
}

// A 3PC staging record of bank-a and bank-b, as the log holds it.
DecisionRecord StagingRecord3(const std::string& txid) {
  DecisionRecord staging = Decided(txid, Outcome::kPending);
  staging.protocol = wire::Protocol::k3pc;
  staging.reply = nullptr;
  return staging;
}

// A 3PC staging record in the log, resumed by Start (a group member: once
// it leads): every participant's fence finds it prepared, and its precommits
// are sent, not answered.
void StartWithStagingRecord3(Fixture& f, const std::string& txid, ManualLeadership* leadership = nullptr) {
  f.Insert(StagingRecord3(txid));
  f.Start(leadership);
  if (leadership != nullptr) leadership->Set(true);
  f.Store();
  REQUIRE(f.agents().Count("fence", txid) == 2);
  CHECK(f.agents().Count("precommit", txid) == 0);
  AnswerFences(f, txid, FenceAnswer::kPrepared, 0);
  f.Store();
}

TEST_CASE("a participant's question about an unknown txid is answered only once the presumed abort is durable") {
  Fixture f;
  f.Start();
  f.Store();
  std::optional<TxLookup> answer;
  f.node().GetTransaction("lost-1", "bank-a", f.LogId(), [&](TxLookup l) { answer = std::move(l); });
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

TEST_CASE("the takeover sweep presumes nothing for a txid forgotten since an agent listed it prepared") {
  // A listing is as old as the slowest agent's answer: the transaction may
  // have committed, finished and been forgotten meanwhile. An abort recorded
  // then would stand beside the commit it was.
  Fixture f;
  const std::string txid = "c1-1-4-00000000000000aa";
  f.Insert(Decided(txid, Outcome::kCommitted));
  f.Forget(txid);
  f.agents().prepared["bank-a"] = {{txid, kSelf}};
  f.Start();
  f.Store();
  CHECK_FALSE(f.Recorded(txid).has_value());
  CHECK(f.agents().Count("abort", txid) == 0);
  CHECK(f.node().metrics().swept == 0);
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

TEST_CASE("a commit a participant had aborted is not sent there again and waits for an operator to close it") {
  Fixture f;
  f.Insert(Decided("t-mixed", Outcome::kCommitted));
  f.Start();
  f.Store();
  REQUIRE(f.agents().Count("commit", "t-mixed") == 2);
  std::optional<std::variant<TxView, NodeError>> early;
  f.node().CloseContradicted("t-mixed", [&](std::variant<TxView, NodeError> r) { early = std::move(r); });
  REQUIRE(early);
  CHECK(std::get<NodeError>(*early).kind == NodeErrorKind::kNotContradicted);

  f.agents().acks[0](DecisionAck::kAcked);
  f.agents().acks[1](DecisionAck::kFoundAborted);
  f.Store();
  CHECK(f.node().metrics().decisions_contradicted == 1);
  CHECK(f.node().in_doubt().contradicted == 1);
  CHECK(f.node().in_doubt().undelivered == 0);
  CHECK_FALSE(f.Recorded("t-mixed")->finished);
  f.node().RetryNow();
  f.Store();
  CHECK(f.agents().Count("commit", "t-mixed") == 2);  // not sent again

  std::optional<std::variant<TxView, NodeError>> closed;
  f.node().CloseContradicted("t-mixed", [&](std::variant<TxView, NodeError> r) { closed = std::move(r); });
  CHECK_FALSE(closed);  // answered once the mark is durable
  f.Store();
  REQUIRE(closed);
  const TxView& view = std::get<TxView>(*closed);
  CHECK(view.state == TxState::kContradicted);
  CHECK(view.branches[1].state == "aborted");
  CHECK(f.Recorded("t-mixed")->finished);
  CHECK(f.node().active() == 0);
  CHECK(f.node().in_doubt().contradicted == 0);

  std::optional<std::variant<TxView, NodeError>> again;
  f.node().CloseContradicted("t-mixed", [&](std::variant<TxView, NodeError> r) { again = std::move(r); });
  REQUIRE(again);
  CHECK(std::get<NodeError>(*again).kind == NodeErrorKind::kNotFound);
}

TEST_CASE("a finished mark whose write failed keeps the transaction finishing and is written again") {
  Fixture f;
  f.Insert(Decided("t-mark", Outcome::kCommitted));
  f.Start();
  f.Store();
  REQUIRE(f.agents().Count("commit", "t-mark") == 2);
  f.queue().FailNext(Durability::kSyncWithNext, 2);  // the finished mark is the only job that rides
  f.agents().acks[0](DecisionAck::kAcked);
  f.agents().acks[1](DecisionAck::kAcked);
  f.Store();
  CHECK(f.node().metrics().finished_mark_failures == 1);
  CHECK(f.node().active() == 1);
  CHECK_FALSE(f.Recorded("t-mark")->finished);
  std::optional<TxLookup> seen;
  f.node().GetTransaction("t-mark", "", "", [&](TxLookup l) { seen = std::move(l); });
  f.Store();
  REQUIRE(seen.has_value());
  const auto* view = std::get_if<TxView>(&*seen);
  REQUIRE(view != nullptr);
  CHECK(view->state == TxState::kFinishing);
  // Every participant acked: not in doubt, whatever keeps its mark from the log.
  CHECK(f.node().in_doubt().undelivered == 0);
  std::optional<TxList> listed;
  f.node().ListTransactions({TxListState::kInDoubt, 100}, [&](TxList l) { listed = std::move(l); });
  REQUIRE(listed.has_value());
  REQUIRE(std::holds_alternative<std::vector<TxView>>(*listed));
  CHECK(std::get<std::vector<TxView>>(*listed).empty());

  f.timers().Advance(Config{}.retry_initial_ms);  // written again, fails again
  f.Store();
  CHECK(f.node().metrics().finished_mark_failures == 2);
  CHECK(f.node().active() == 1);
  CHECK(f.agents().Count("commit", "t-mark") == 2);  // every participant acked: nothing redelivered

  f.timers().Advance(2 * Config{}.retry_initial_ms);
  f.Store();
  CHECK(f.node().metrics().finished_mark_failures == 2);
  CHECK(f.Recorded("t-mark")->finished);
  CHECK(f.node().active() == 0);
}

// Acknowledges every decision delivered so far and not acknowledged yet.
void AckAll(Fixture& f, std::size_t* acked) {
  for (; *acked < f.agents().acks.size(); ++*acked) f.agents().acks[*acked](DecisionAck::kAcked);
  f.Store();
}

TEST_CASE("a transaction let go after its finished mark failed is taken over again from the log, without a restart") {
  Fixture f;
  f.options().engine.max_unmarked = 1;  // one waits to be marked again; the next is let go
  f.Insert(Decided("t-one", Outcome::kCommitted));
  f.Insert(Decided("t-two", Outcome::kCommitted));
  f.Start();
  f.Store();
  REQUIRE(f.agents().acks.size() == 4);
  f.queue().FailNext(Durability::kSyncWithNext, 2);
  std::size_t acked = 0;
  AckAll(f, &acked);
  CHECK(f.node().metrics().finished_mark_failures == 2);
  REQUIRE(f.node().Transactions().size() == 1);  // the other was let go
  const std::string kept = f.node().Transactions()[0].txid;
  const std::string let_go = kept == "t-one" ? "t-two" : "t-one";
  CHECK_FALSE(f.Recorded(let_go)->finished);

  f.timers().Advance(f.options().engine.retry_max_ms - 1);
  f.Store();
  CHECK(f.Recorded(kept)->finished);  // its own retry
  CHECK(f.agents().Count("commit", let_go) == 2);
  CHECK(f.node().active() == 0);

  f.timers().Advance(1);
  f.Store();
  CHECK(f.agents().Count("commit", let_go) == 4);  // delivered again, from its record
  CHECK(f.agents().Count("commit", kept) == 2);
  CHECK(f.node().active() == 1);
  AckAll(f, &acked);
  CHECK(f.Recorded(let_go)->finished);
  CHECK(f.node().active() == 0);
  CHECK(f.node().metrics().finished_mark_failures == 2);
}

// A single coordinator resumes txid's commit at start and both agents ack it;
// every failed mark is let go (max_unmarked 0), and the next `fails` fail.
void LetGoAtStart(Fixture& f, const std::string& txid, int fails, std::size_t* acked) {
  f.options().engine.max_unmarked = 0;
  f.Insert(Decided(txid, Outcome::kCommitted));
  f.Start();
  f.Store();
  f.queue().FailNext(Durability::kSyncWithNext, fails);
  AckAll(f, acked);
  CHECK(f.node().active() == 0);
}

TEST_CASE("while finished marks keep being let go, each take-over waits twice as long as the last, up to the cap") {
  Fixture f;
  const int64_t delay = f.options().engine.retry_max_ms;
  f.options().let_go_retake_max_ms = 4 * delay;
  std::size_t acked = 0;
  LetGoAtStart(f, "t-mark", 1000, &acked);
  for (int64_t wait : {delay, 2 * delay, 4 * delay, 4 * delay}) {
    const int delivered = f.agents().Count("commit", "t-mark");
    f.timers().Advance(wait - 1);
    f.Store();
    CHECK(f.agents().Count("commit", "t-mark") == delivered);
    f.timers().Advance(1);
    f.Store();
    CHECK(f.agents().Count("commit", "t-mark") == delivered + 2);
    AckAll(f, &acked);  // its mark fails again: let go again
    CHECK(f.node().active() == 0);
  }
  CHECK_FALSE(f.Recorded("t-mark")->finished);

  f.queue().FailNext(Durability::kSyncWithNext, 0);  // the disk takes writes again
  f.timers().Advance(4 * delay);
  f.Store();
  AckAll(f, &acked);
  CHECK(f.Recorded("t-mark")->finished);
  CHECK(f.node().active() == 0);

  // Long after the last take-over, a let-go mark is taken over after the first delay again.
  f.timers().Advance(f.options().let_go_retake_max_ms + 1);
  const std::string later = Submitted(f);
  const std::size_t votes = f.agents().votes.size();
  f.agents().votes[votes - 2](YesVote(later));
  f.agents().votes[votes - 1](YesVote(later));
  f.Store();
  REQUIRE(f.agents().Count("commit", later) == 2);
  // Its acks come after its commit record's wait: the record is written
  // alone, and the finished mark after the acks.
  f.timers().Advance(Config{}.retry_initial_ms + Config{}.tick_ms);
  f.Store();
  REQUIRE(f.Recorded(later)->outcome == Outcome::kCommitted);
  REQUIRE_FALSE(f.Recorded(later)->finished);
  f.queue().FailNext(Durability::kSyncWithNext, 1);
  AckAll(f, &acked);
  CHECK(f.node().active() == 0);
  f.timers().Advance(delay);
  f.Store();
  CHECK(f.agents().Count("commit", later) == 4);
  AckAll(f, &acked);
  CHECK(f.Recorded(later)->finished);
}

TEST_CASE("marks let go while a take-over waits are taken over by it, and the next one waits twice as long") {
  Fixture f;
  f.options().engine.max_unmarked = 0;
  const int64_t delay = f.options().engine.retry_max_ms;
  f.Insert(Decided("t-one", Outcome::kCommitted));
  f.Insert(Decided("t-two", Outcome::kCommitted));
  f.Start();
  f.Store();
  REQUIRE(f.agents().acks.size() == 4);
  std::size_t acked = 0;
  for (int64_t wait : {delay, 2 * delay}) {
    f.queue().FailNext(Durability::kSyncWithNext, 2);  // both let go, one after the other
    AckAll(f, &acked);
    CHECK(f.node().active() == 0);
    f.timers().Advance(wait - 1);
    f.Store();
    CHECK(f.agents().acks.size() == acked);
    f.timers().Advance(1);
    f.Store();
    CHECK(f.agents().acks.size() == acked + 4);  // one take-over, both records
  }
  AckAll(f, &acked);
  CHECK(f.Recorded("t-one")->finished);
  CHECK(f.Recorded("t-two")->finished);
}

TEST_CASE("a take-over whose barrier fails is tried again after the same delay") {
  Fixture f;
  const int64_t delay = f.options().engine.retry_max_ms;
  std::size_t acked = 0;
  LetGoAtStart(f, "t-mark", 1, &acked);
  f.queue().FailNext(Durability::kNone, 1);  // the barrier
  f.timers().Advance(delay);
  f.Store();
  CHECK(f.agents().Count("commit", "t-mark") == 2);
  f.timers().Advance(delay);
  f.Store();
  CHECK(f.agents().Count("commit", "t-mark") == 4);
  AckAll(f, &acked);
  CHECK(f.Recorded("t-mark")->finished);
}

TEST_CASE("a leader that cannot read its log serves nothing until it can, then resumes what the log holds") {
  Fixture f;
  ManualLeadership leadership;
  f.Insert(Decided("t-resumed", Outcome::kCommitted));
  f.Start(&leadership);
  REQUIRE(f.db().Exec("ALTER TABLE decisions RENAME TO decisions_away").ok());  // every read of it fails
  leadership.Set(true);
  f.Store();
  CHECK(f.agents().Count("commit", "t-resumed") == 0);
  std::optional<SubmitResult> refused;
  f.node().Submit({Transfer(), ""}, [&](SubmitResult r) { refused = std::move(r); });
  REQUIRE(refused.has_value());
  REQUIRE(std::holds_alternative<NodeError>(*refused));
  CHECK(std::get<NodeError>(*refused).kind == NodeErrorKind::kLeadershipLost);

  REQUIRE(f.db().Exec("ALTER TABLE decisions_away RENAME TO decisions").ok());
  f.timers().Advance(f.options().health_interval_ms);
  f.Store();
  CHECK(f.agents().Count("commit", "t-resumed") == 2);
  Submitted(f);  // served now
}

TEST_CASE("a group leader takes over a let-go mark's record in its own term; after losing the lead it leaves it to the next") {
  Fixture f;
  f.options().engine.max_unmarked = 0;
  ManualLeadership leadership;
  f.Insert(Decided("t-mark", Outcome::kCommitted));
  f.Start(&leadership);
  leadership.Set(true);
  f.Store();
  REQUIRE(f.agents().Count("commit", "t-mark") == 2);
  f.queue().FailNext(Durability::kSyncWithNext, 1);
  std::size_t acked = 0;
  AckAll(f, &acked);
  CHECK(f.node().active() == 0);
  f.timers().Advance(f.options().engine.retry_max_ms);
  f.Store();
  CHECK(f.agents().Count("commit", "t-mark") == 4);  // the same term
  f.queue().FailNext(Durability::kSyncWithNext, 1);
  AckAll(f, &acked);
  CHECK(f.node().active() == 0);

  leadership.Set(false);
  f.timers().Advance(2 * f.options().engine.retry_max_ms);
  f.Store();
  CHECK(f.agents().Count("commit", "t-mark") == 4);  // not a leader: nothing taken over
  leadership.Set(true);
  f.Store();
  CHECK(f.agents().Count("commit", "t-mark") == 6);  // the next term resumes it
  AckAll(f, &acked);
  CHECK(f.Recorded("t-mark")->finished);
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

TEST_CASE("a force of a txid without a record adopts it at every participant with this log's keys, then records") {
  Fixture f;
  f.Start();
  f.Store();
  f.agents().hold_adoptions = true;
  std::optional<ForceAnswer> forced;
  f.node().Force({"lost", Outcome::kAborted, {{"bank-a", std::nullopt}, {"bank-b", std::nullopt}}, ""},
                 [&](ForceAnswer a) { forced = std::move(a); });
  f.Store();
  REQUIRE(f.agents().adopt_requests.size() == 2);
  for (const auto& r : f.agents().adopt_requests) {
    CHECK(r.txid == "lost");
    CHECK(r.log_id == f.LogId());
    CHECK(r.abort_key == AbortKey(f.AbortSecret(), "lost"));
    CHECK(r.commit_check == CommitCheck(CommitKey(f.AbortSecret(), "lost")));
  }
  f.agents().adoptions[0](AdoptReply{AdoptAnswer::kAdopted, {}});
  f.Store();
  CHECK(!forced.has_value());  // one participant still to answer: nothing recorded
  CHECK(!f.Recorded("lost").has_value());
  f.agents().adoptions[1](AdoptReply{AdoptAnswer::kUnknown, {}});  // never got its prepare: abort allowed
  f.Store();
  REQUIRE(forced.has_value());
  REQUIRE(std::holds_alternative<ForceResult>(*forced));
  CHECK(std::get<ForceResult>(*forced).kind == ForceResult::Kind::kForced);
  REQUIRE(f.Recorded("lost").has_value());
  CHECK(f.Recorded("lost")->outcome == Outcome::kAborted);
  CHECK(f.agents().Count("abort", "lost") == 2);
  CHECK(f.agents().abort_keys.back() == AbortKey(f.AbortSecret(), "lost"));  // the key the agents adopted
}

TEST_CASE("a force that a participant's adoption contradicts, or that one did not answer, records nothing") {
  struct Case {
    Outcome wanted;
    std::map<std::string, AdoptAnswer> answers;
    bool unreachable_b;
    std::optional<NodeErrorKind> error;  // nullopt: kParticipantDecided
    Outcome done;
  };
  const Case cases[] = {
      {Outcome::kAborted, {{"bank-b", AdoptAnswer::kCommitted}}, false, std::nullopt, Outcome::kCommitted},
      {Outcome::kCommitted, {{"bank-a", AdoptAnswer::kAborted}}, false, std::nullopt, Outcome::kAborted},
      {Outcome::kCommitted, {{"bank-b", AdoptAnswer::kUnknown}}, false, NodeErrorKind::kDecisionConflict, {}},
      {Outcome::kAborted,
       {{"bank-a", AdoptAnswer::kAborted}, {"bank-b", AdoptAnswer::kCommitted}}, false,
       NodeErrorKind::kDecisionConflict, {}},
      {Outcome::kAborted, {}, true, NodeErrorKind::kParticipantUnavailable, {}},
  };
  for (const Case& c : cases) {
    Fixture f;
    f.Start();
    f.Store();
    f.agents().adopt_answers = c.answers;
    if (c.unreachable_b) f.agents().hold_adoptions = true;
    std::optional<ForceAnswer> forced;
    f.node().Force({"lost", c.wanted, {{"bank-a", std::nullopt}, {"bank-b", std::nullopt}}, ""},
                   [&](ForceAnswer a) { forced = std::move(a); });
    f.Store();
    if (c.unreachable_b) {
      REQUIRE(f.agents().adoptions.size() == 2);
      f.agents().adoptions[0](AdoptReply{AdoptAnswer::kAdopted, {}});
      f.agents().adoptions[1](Status::Timeout("no answer"));
    }
    f.Store();
    REQUIRE(forced.has_value());
    CHECK(!f.Recorded("lost").has_value());
    CHECK(f.agents().Count("commit", "lost") + f.agents().Count("abort", "lost") == 0);
    if (c.error) {
      REQUIRE(std::holds_alternative<NodeError>(*forced));
      CHECK(std::get<NodeError>(*forced).kind == *c.error);
      continue;
    }
    REQUIRE(std::holds_alternative<ForceResult>(*forced));
    const ForceResult& r = std::get<ForceResult>(*forced);
    CHECK(r.kind == ForceResult::Kind::kParticipantDecided);
    CHECK(r.outcome == c.done);
    CHECK(r.participant == c.answers.begin()->first);
    const auto rendered = api::Force("lost", *forced, 0);
    CHECK(rendered.status == 409);
    const auto* body = std::get_if<nlohmann::json>(&rendered.body);
    REQUIRE(body != nullptr);
    CHECK((*body)["error"]["code"] == "participant_decided");
    CHECK((*body)["outcome"] == OutcomeName(c.done));
  }
}

TEST_CASE("a force adopts every participant an adopted record names, but those skipped as gone for good") {
  // The operator named only bank-a (the one still holding it); its record
  // names bank-b, at a stale URL, and bank-c, which is not registered here.
  struct Case {
    std::vector<std::string> skip;
    std::map<std::string, AdoptAnswer> answers;
  };
  for (const Case& c : {Case{{}, {{"bank-b", AdoptAnswer::kCommitted}}}, Case{{}, {}}, Case{{"bank-c"}, {}}}) {
    Fixture f;
    f.Start();
    f.Store();
    f.agents().adopt_names = {{"bank-a", "http://127.0.0.1:7101"},
                              {"bank-b", "http://stale-url:1"},
                              {"bank-c", "http://127.0.0.1:7103"}};
    f.agents().adopt_answers = c.answers;
    ForceRequest request{"lost", Outcome::kAborted, {{"bank-a", std::nullopt}}, ""};
    request.skip_participants = c.skip;
    std::optional<ForceAnswer> forced;
    f.node().Force(request, [&](ForceAnswer a) { forced = std::move(a); });
    f.Store();
    REQUIRE(forced.has_value());
    std::map<std::string, std::string> asked;  // name -> URL
    for (const auto& t : f.agents().adopt_targets) asked[t.name] = t.url;
    CHECK(asked.size() == 2);  // bank-c, unregistered, is never sent this coordinator's token
    CHECK(asked["bank-b"] == "http://127.0.0.1:7102");  // the registry's URL, not the record's
    if (!c.answers.empty()) {  // bank-b committed: the abort is refused
      REQUIRE(std::holds_alternative<ForceResult>(*forced));
      CHECK(std::get<ForceResult>(*forced).kind == ForceResult::Kind::kParticipantDecided);
      CHECK(std::get<ForceResult>(*forced).participant == "bank-b");
      CHECK(!f.Recorded("lost").has_value());
    } else if (c.skip.empty()) {  // bank-c could not be asked: nothing recorded
      REQUIRE(std::holds_alternative<NodeError>(*forced));
      CHECK(std::get<NodeError>(*forced).kind == NodeErrorKind::kParticipantUnavailable);
      CHECK(std::get<NodeError>(*forced).message.find("bank-c") != std::string::npos);
      CHECK(!f.Recorded("lost").has_value());
    } else {
      REQUIRE(std::holds_alternative<ForceResult>(*forced));
      CHECK(std::get<ForceResult>(*forced).kind == ForceResult::Kind::kForced);
      auto record = f.Recorded("lost");
      REQUIRE(record.has_value());
      CHECK(record->participants.size() == 2);  // delivered to every participant asked
      CHECK(f.agents().Count("abort", "lost") == 2);
    }
  }
}

TEST_CASE("a force whose adoptions end after leadership was lost records nothing") {
  Fixture f;
  ManualLeadership leadership;
  f.Start(&leadership);
  leadership.Set(true);
  f.Store();
  f.agents().hold_adoptions = true;
  std::optional<ForceAnswer> forced;
  f.node().Force({"lost", Outcome::kAborted, {{"bank-a", std::nullopt}}, ""},
                 [&](ForceAnswer a) { forced = std::move(a); });
  f.Store();
  REQUIRE(f.agents().adoptions.size() == 1);
  leadership.Set(false);
  f.agents().adoptions[0](AdoptReply{AdoptAnswer::kAdopted, {}});
  f.Store();
  REQUIRE(forced.has_value());
  REQUIRE(std::holds_alternative<NodeError>(*forced));
  CHECK(std::get<NodeError>(*forced).kind == NodeErrorKind::kLeadershipLost);
  CHECK(!f.Recorded("lost").has_value());
}

TEST_CASE("prepares and the abort carry the transaction's abort key, derived from the log's secret") {
  Fixture f;
  f.Start();
  f.Store();
  const std::string secret = f.AbortSecret();
  REQUIRE(secret.size() == 64);
  f.node().Submit({Transfer(), ""}, [](SubmitResult) {});
  REQUIRE(f.agents().prepare_keys.size() == 2);
  const std::string txid = f.agents().calls.front().txid;
  const std::string key = f.agents().prepare_keys[0];
  CHECK(key == AbortKey(secret, txid));
  CHECK(f.agents().prepare_keys[1] == key);  // one key per transaction, the same for every participant
  const wire::Vote yes = YesVote(txid);
  wire::Vote no = yes;
  no.yes = false;
  f.agents().votes[0](yes);
  f.agents().votes[1](no);
  f.Store();
  REQUIRE(f.agents().Count("abort", txid) == 1);
  CHECK(f.agents().abort_keys.back() == key);
  // Another transaction, another key; a restart keeps the secret.
  f.node().Submit({Transfer(), ""}, [](SubmitResult) {});
  REQUIRE(f.agents().prepare_keys.size() == 4);
  CHECK(f.agents().prepare_keys[2] != key);
  f.Restart();
  f.Store();
  CHECK(f.AbortSecret() == secret);
}

TEST_CASE("prepares carry the check of the commit key; the commit carries the key, derived from the log's secret") {
  Fixture f;
  f.Start();
  f.Store();
  const std::string secret = f.AbortSecret();
  f.node().Submit({Transfer(), ""}, [](SubmitResult) {});
  REQUIRE(f.agents().commit_checks.size() == 2);
  const std::string txid = f.agents().calls.front().txid;
  const std::string commit_key = CommitKey(secret, txid);
  CHECK(commit_key != AbortKey(secret, txid));
  CHECK(f.agents().commit_checks[0] == CommitCheck(commit_key));
  CHECK(f.agents().commit_checks[1] == CommitCheck(commit_key));
  CHECK(f.agents().commit_checks[0] != commit_key);  // the prepare never carries the key itself
  const wire::Vote yes = YesVote(txid);
  f.agents().votes[0](yes);
  f.agents().votes[1](yes);
  f.Store();
  REQUIRE(f.agents().Count("commit", txid) == 2);
  CHECK(f.agents().abort_keys.back() == commit_key);
  CHECK(CommitKeyMatches(f.agents().commit_checks[0], f.agents().abort_keys.back()));
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

TEST_CASE("a participant asking about a resumed, undecided 3PC transaction gets no pending: it may terminate") {
  Fixture f;
  f.Insert(StagingRecord3("t-3pc"));
  DecisionRecord staging2 = Decided("t-2pc", Outcome::kPending);
  staging2.reply = nullptr;
  f.Insert(staging2);
  f.Start();
  f.Store();
  auto ask = [&](const std::string& txid, const std::string& asker) {
    std::optional<TxLookup> answer;
    f.node().GetTransaction(txid, asker, f.LogId(), [&](TxLookup l) { answer = std::move(l); });
    f.Store();
    REQUIRE(answer.has_value());
    return *answer;
  };
  // Fencing: a participant hears "recovering", as from a coordinator that is
  // down; anyone else (a client, an operator) sees the transaction pending.
  TxLookup fencing = ask("t-3pc", "bank-a");
  REQUIRE(std::holds_alternative<NodeError>(fencing));
  CHECK(std::get<NodeError>(fencing).kind == NodeErrorKind::kRecovering);
  CHECK(std::get<TxView>(ask("t-3pc", "")).outcome == Outcome::kPending);
  // 2PC participants never decide by themselves: they hear pending.
  CHECK(std::get<TxView>(ask("t-2pc", "bank-a")).outcome == Outcome::kPending);

  // Every fence answered prepared: the precommit round, still no pending.
  REQUIRE(f.agents().Count("fence", "t-3pc") == 2);
  AnswerFences(f, "t-3pc", FenceAnswer::kPrepared, 0);
  f.Store();
  REQUIRE(f.agents().Count("precommit", "t-3pc") == 2);
  TxLookup precommitting = ask("t-3pc", "bank-b");
  REQUIRE(std::holds_alternative<NodeError>(precommitting));
  CHECK(std::get<NodeError>(precommitting).kind == NodeErrorKind::kRecovering);

  // Decided: the participants hear the outcome again.
  for (auto& p : f.agents().precommits) p(PrecommitAnswer::kAcked);
  f.Store();
  TxLookup decided = ask("t-3pc", "bank-a");
  REQUIRE(std::holds_alternative<TxView>(decided));
  CHECK(std::get<TxView>(decided).outcome == Outcome::kCommitted);
}

TEST_CASE("a staging record too old to fence is asked about read-only; an agent that committed proves commit") {
  Fixture f;
  f.options().engine.outcome_retention_ms = 1'000;  // the clock is at 1,000 s: a record of 1 ms is far older than half
  f.Insert(StagingRecord3("t-old"));
  f.Start();
  f.Store();
  CHECK(f.agents().Count("fence", "t-old") == 0);
  REQUIRE(f.agents().Count("state", "t-old") == 2);
  f.agents().state_queries[0](StateAnswer::kUnknown);  // committed and forgot
  f.agents().state_queries[1](StateAnswer::kCommitted);
  f.Store();
  CHECK(f.agents().Count("fence", "t-old") == 0);
  CHECK(f.agents().Count("commit", "t-old") == 2);
  auto recorded = f.Recorded("t-old");
  REQUIRE(recorded.has_value());
  CHECK(recorded->outcome == Outcome::kCommitted);
  CHECK_FALSE(recorded->heuristic);
}

TEST_CASE("shutdown waits for transactions collecting votes, not for a 3PC one its participants leave undecided") {
  Fixture f;
  StartWithStagingRecord3(f, "t-pre");
  REQUIRE(f.agents().Count("precommit", "t-pre") == 2);  // never answered in this test

  // A live 3PC transaction: its staging record is written, its precommits
  // are never answered, so it stays undecided with its client waiting.
  std::optional<SubmitResult> client3;
  const std::string live3 = Precommitted3pc(f, 1'000, &client3);

  // A 2PC transaction still collecting votes: shutdown waits for its
  // deadline, here later than the delivery grace.
  wire::TxRequest slow = Transfer();
  slow.timeout_ms = 5'000;
  std::optional<SubmitResult> client2;
  f.node().Submit({slow, ""}, [&](SubmitResult r) { client2 = std::move(r); });

  bool stopped = false;
  f.node().Shutdown([&] { stopped = true; });
  f.timers().Advance(Config{}.shutdown_grace_ms + 500);  // past the grace and the 3PC precommit deadline
  f.Store();
  CHECK_FALSE(stopped);
  CHECK_FALSE(client2.has_value());
  CHECK_FALSE(client3.has_value());
  f.timers().Advance(5'000);  // past the 2PC deadline: aborted and answered, then the shutdown ends
  f.Store();
  REQUIRE(client2.has_value());
  CHECK(std::get<TxReply>(*client2).status == 409);
  CHECK(stopped);
  // The waiting 3PC client is told the outcome is not decided, never a guess.
  REQUIRE(client3.has_value());
  REQUIRE(std::holds_alternative<TxReply>(*client3));
  const TxReply& told = std::get<TxReply>(*client3);
  CHECK(told.status == 503);
  CHECK(JsonOf(told.body)["error"]["code"] == "stopping");
  CHECK(JsonOf(told.body)["txid"] == live3);
  CHECK_FALSE(JsonOf(told.body).contains("outcome"));
  CHECK_FALSE(told.outcome.has_value());  // and so is sent Retry-After
  // Both staging records are still there for the next start.
  for (const std::string& txid : {std::string("t-pre"), live3}) {
    auto record = f.Recorded(txid);
    REQUIRE(record.has_value());
    CHECK(record->outcome == Outcome::kPending);
  }
}

TEST_CASE("shutdown waits for a live 3PC transaction until its precommit deadline, which decides it") {
  Fixture f;
  f.Start();
  f.Store();
  std::optional<SubmitResult> client;
  Precommitted3pc(f, 5'000, &client);  // its deadline is later than the delivery grace
  REQUIRE(f.agents().precommits.size() == 2);
  f.agents().precommits[0](PrecommitAnswer::kAcked);  // bank-a acked; bank-b never answers
  bool stopped = false;
  f.node().Shutdown([&] { stopped = true; });
  f.timers().Advance(Config{}.shutdown_grace_ms + 500);
  f.Store();
  CHECK_FALSE(stopped);  // its deadline (one ack: commit) is still ahead
  CHECK_FALSE(client.has_value());
  f.timers().Advance(5'000);
  f.Store();
  REQUIRE(client.has_value());
  REQUIRE(std::holds_alternative<TxReply>(*client));
  CHECK(std::get<TxReply>(*client).status == 200);
  CHECK(stopped);
}

TEST_CASE("a 3PC transaction left in doubt is forced by an operator; the answer comes once the record is written") {
  Fixture f;
  StartWithStagingRecord3(f, "t-doubt");
  REQUIRE(f.agents().precommits.size() == 2);
  std::optional<ForceAnswer> early;
  f.node().Force({"t-doubt", Outcome::kCommitted, {}, ""}, [&](ForceAnswer a) { early = std::move(a); });
  REQUIRE(early.has_value());  // not in doubt yet: the protocol decides it
  REQUIRE(std::holds_alternative<NodeError>(*early));
  CHECK(std::get<NodeError>(*early).kind == NodeErrorKind::kUndecided);

  f.agents().precommits[0](PrecommitAnswer::kUnknownTransaction);
  f.agents().precommits[1](PrecommitAnswer::kUnknownTransaction);
  CHECK(f.node().metrics().precommits_unknown_at_participant == 2);
  CHECK(f.node().in_doubt().precommit_unknown == 1);

  std::optional<ForceAnswer> forced;
  f.node().Force({"t-doubt", Outcome::kCommitted, {}, "checked by hand"}, [&](ForceAnswer a) { forced = std::move(a); });
  CHECK_FALSE(forced.has_value());  // its record is not written yet
  f.Store();
  REQUIRE(forced.has_value());
  REQUIRE(std::holds_alternative<ForceResult>(*forced));
  const ForceResult& result = std::get<ForceResult>(*forced);
  CHECK(result.kind == ForceResult::Kind::kForced);
  CHECK(result.outcome == Outcome::kCommitted);
  CHECK(f.node().metrics().heuristic == 1);
  CHECK(f.node().in_doubt().precommit_unknown == 0);
  auto record = f.Recorded("t-doubt");
  REQUIRE(record.has_value());
  CHECK(record->outcome == Outcome::kCommitted);
  CHECK(record->heuristic);
  CHECK(f.agents().Count("commit", "t-doubt") == 2);
}

// A 3PC transaction in doubt, both participants answering its precommit unknown_transaction.
void InDoubt3pc(Fixture& f, const std::string& txid) {
  StartWithStagingRecord3(f, txid);
  REQUIRE(f.agents().precommits.size() == 2);
  f.agents().precommits[0](PrecommitAnswer::kUnknownTransaction);
  f.agents().precommits[1](PrecommitAnswer::kUnknownTransaction);
  REQUIRE(f.node().in_doubt().precommit_unknown == 1);
}

// Moves the clock past the longest wait before a decision is written again, and runs storage.
void NextRetry(Fixture& f) {
  f.timers().Advance(Config{}.retry_max_ms + Config{}.tick_ms);
  f.Store();
}

// txid's staging record resumed (its participants fenced again, the two
// fences sent before answered): the participants answer that they aborted,
// and the abort is recorded.
void ResumedAndAbortedAgain(Fixture& f, const std::string& txid) {
  REQUIRE(f.agents().Count("fence", txid) == 4);
  AnswerFences(f, txid, FenceAnswer::kFenced, 2);
  f.Store();
  CHECK(f.Recorded(txid)->outcome == Outcome::kAborted);
}

// Every decision written to the log fails while this lives (decision_log.fail_append).
class FailingDecisionWrites {
 public:
  FailingDecisionWrites() { failpoint::Enable("decision_log.fail_append"); }
  ~FailingDecisionWrites() { failpoint::Disable("decision_log.fail_append"); }
  FailingDecisionWrites(const FailingDecisionWrites&) = delete;
  FailingDecisionWrites& operator=(const FailingDecisionWrites&) = delete;
};

// txid is held, its abort not sent, waiting for its record.
void CheckHeldForItsRecord(Fixture& f, const std::string& txid) {
  auto view = f.node().Transactions();
  REQUIRE(view.size() == 1);
  CHECK(view[0].txid == txid);
  CHECK(view[0].state == TxState::kDeciding);
  CHECK(view[0].outcome == Outcome::kPending);
  CHECK_FALSE(view[0].in_doubt);
  CHECK_FALSE(view[0].heuristic);
  auto record = f.Recorded(txid);
  REQUIRE(record.has_value());
  CHECK(record->outcome == Outcome::kPending);
  CHECK_FALSE(record->finished);
}

TEST_CASE("a forced abort whose record could not be written is written again until durable, then sent and finished") {
  Fixture f;
  InDoubt3pc(f, "t-doubt");

  f.queue().FailNext(Durability::kSyncNow, 1);
  std::optional<ForceAnswer> forced;
  f.node().Force({"t-doubt", Outcome::kAborted, {}, "checked by hand"}, [&](ForceAnswer a) { forced = std::move(a); });
  f.Store();
  REQUIRE(forced.has_value());
  REQUIRE(std::holds_alternative<NodeError>(*forced));
  const NodeError& error = std::get<NodeError>(*forced);
  CHECK(error.kind == NodeErrorKind::kStorage);
  CHECK(error.message.find("was not recorded") != std::string::npos);
  CHECK(error.message.find("written again") != std::string::npos);
  CHECK(error.message.find("sent to the participants then") != std::string::npos);
  // The log holds the staging record: an abort sent before its record could
  // reach a participant after a restart's fence found it prepared.
  CHECK(f.agents().Count("abort", "t-doubt") == 0);
  CHECK(f.node().metrics().heuristic == 0);  // not in the log yet

  // Meanwhile it is being decided: another force is told to ask again.
  std::optional<ForceAnswer> second;
  f.node().Force({"t-doubt", Outcome::kCommitted, {}, ""}, [&](ForceAnswer a) { second = std::move(a); });
  REQUIRE(second.has_value());
  REQUIRE(std::holds_alternative<NodeError>(*second));
  CHECK(std::get<NodeError>(*second).kind == NodeErrorKind::kUndecided);
  CHECK(std::get<NodeError>(*second).message.find("being decided") != std::string::npos);

  f.Store();
  CheckHeldForItsRecord(f, "t-doubt");

  // The abort written again replaces that record, without a restart; then it is sent.
  NextRetry(f);
  auto record = f.Recorded("t-doubt");
  REQUIRE(record.has_value());
  CHECK(record->outcome == Outcome::kAborted);
  CHECK(record->heuristic);
  CHECK_FALSE(record->finished);
  CHECK(f.node().metrics().heuristic == 1);
  REQUIRE(f.agents().Count("abort", "t-doubt") == 2);
  f.agents().acks[0](DecisionAck::kAcked);
  f.agents().acks[1](DecisionAck::kAcked);
  f.Store();
  CHECK(f.Recorded("t-doubt")->finished);
  CHECK(f.node().Transactions().empty());
}

TEST_CASE("a forced abort whose record cannot be written at all is held, never finished; a restart resumes it") {
  Fixture f;
  InDoubt3pc(f, "t-doubt");
  std::optional<FailingDecisionWrites> failing(std::in_place);
  std::optional<ForceAnswer> forced;
  f.node().Force({"t-doubt", Outcome::kAborted, {}, "checked by hand"}, [&](ForceAnswer a) { forced = std::move(a); });
  f.Store();
  REQUIRE(forced.has_value());
  CHECK(std::get<NodeError>(*forced).kind == NodeErrorKind::kStorage);
  for (int i = 0; i < 10; ++i) NextRetry(f);
  CheckHeldForItsRecord(f, "t-doubt");
  CHECK(f.agents().Count("abort", "t-doubt") == 0);

  failing.reset();
  f.Restart();
  f.Store();
  CHECK(f.agents().Count("fence", "t-doubt") == 4);  // resumed from its staging record
}
TEST_CASE("a group member that loses leadership while a force waits for its record says the outcome is unknown here") {
  Fixture f;
  ManualLeadership leadership;
  StartWithStagingRecord3(f, "t-doubt", &leadership);
  REQUIRE(f.agents().precommits.size() == 2);
  f.agents().precommits[0](PrecommitAnswer::kUnknownTransaction);
  f.agents().precommits[1](PrecommitAnswer::kUnknownTransaction);
  REQUIRE(f.node().in_doubt().precommit_unknown == 1);

  std::optional<ForceAnswer> forced;
  f.node().Force({"t-doubt", Outcome::kCommitted, {}, "checked by hand"}, [&](ForceAnswer a) { forced = std::move(a); });
  REQUIRE_FALSE(forced.has_value());  // waits for its record
  leadership.Set(false);
  REQUIRE(forced.has_value());
  REQUIRE(std::holds_alternative<NodeError>(*forced));
  const NodeError& error = std::get<NodeError>(*forced);
  CHECK(error.kind == NodeErrorKind::kLeadershipLost);
  CHECK(error.message.find("unknown here: look it up") != std::string::npos);
  CHECK(f.node().active() == 0);

  f.Store();  // the write lands after all (a group's next leader may have it): nothing here answers twice
  CHECK(f.Recorded("t-doubt")->outcome == Outcome::kCommitted);
  CHECK(f.node().metrics().heuristic == 0);  // counted by whoever leads from the log
  CHECK(f.agents().Count("commit", "t-doubt") == 0);  // delivered by the next leader, not by this member
}

TEST_CASE("two forces of an unrecorded txid at once: the first recorded wins, the other is answered with it") {
  Fixture f;
  f.Start();
  f.Store();
  const std::vector<ForcedParticipant> holders = {{"bank-a", std::nullopt}, {"bank-b", std::nullopt}};
  std::optional<ForceAnswer> commit, abort;
  f.node().Force({"t-lost", Outcome::kCommitted, holders, ""}, [&](ForceAnswer a) { commit = std::move(a); });
  f.node().Force({"t-lost", Outcome::kAborted, holders, ""}, [&](ForceAnswer a) { abort = std::move(a); });
  f.Store();  // both find no record; both appends run, and the log keeps the first
  REQUIRE(commit.has_value());
  REQUIRE(abort.has_value());
  REQUIRE(std::holds_alternative<ForceResult>(*commit));
  CHECK(std::get<ForceResult>(*commit).kind == ForceResult::Kind::kForced);
  REQUIRE(std::holds_alternative<ForceResult>(*abort));
  CHECK(std::get<ForceResult>(*abort).kind == ForceResult::Kind::kConflict);
  CHECK(std::get<ForceResult>(*abort).outcome == Outcome::kCommitted);
  auto record = f.Recorded("t-lost");
  REQUIRE(record.has_value());
  CHECK(record->outcome == Outcome::kCommitted);
  CHECK(record->heuristic);
  CHECK(f.node().metrics().heuristic == 1);
}

TEST_CASE("a 3PC abort a participant proved, its record failing a few times, is finished only once written") {
  Fixture f;
  StartWithStagingRecord3(f, "t-aborted");
  REQUIRE(f.agents().precommits.size() == 2);
  std::optional<FailingDecisionWrites> failing(std::in_place);
  f.agents().precommits[0](PrecommitAnswer::kAborted);  // proof: the abort is the outcome
  f.agents().precommits[1](PrecommitAnswer::kAborted);
  f.Store();
  CHECK(f.agents().acks.empty());  // not sent before its record
  CheckHeldForItsRecord(f, "t-aborted");
  NextRetry(f);
  NextRetry(f);
  CheckHeldForItsRecord(f, "t-aborted");  // written three times, in vain
  failing.reset();
  NextRetry(f);
  REQUIRE(f.agents().acks.size() == 2);
  for (auto& ack : f.agents().acks) ack(DecisionAck::kAcked);
  f.Store();
  auto record = f.Recorded("t-aborted");
  CHECK(record->outcome == Outcome::kAborted);
  CHECK(record->finished);
  CHECK(f.node().Transactions().empty());
  CHECK(f.node().metrics().aborted == 1);  // counted once, not per write
  CHECK(f.agents().Count("precommit", "t-aborted") == 2);
}

TEST_CASE("a 3PC abort a participant proved, its record never written, is held; a restart resumes the staging record") {
  Fixture f;
  StartWithStagingRecord3(f, "t-aborted");
  std::optional<FailingDecisionWrites> failing(std::in_place);
  f.agents().precommits[0](PrecommitAnswer::kAborted);
  f.agents().precommits[1](PrecommitAnswer::kAborted);
  f.Store();
  CHECK(f.agents().acks.empty());
  for (int i = 0; i < 10; ++i) NextRetry(f);
  CheckHeldForItsRecord(f, "t-aborted");
  // A shutdown does not wait for the record: the next start resumes it.
  bool stopped = false;
  f.node().Shutdown([&] { stopped = true; });
  f.timers().Advance(Config{}.shutdown_grace_ms + Config{}.tick_ms);
  f.Store();
  CHECK(stopped);
  failing.reset();
  f.Restart();
  f.Store();
  ResumedAndAbortedAgain(f, "t-aborted");
}

// Both participants prove abort, and the group append of the abort fails:
// the member does not guess, nor write it again; it lets go of everything.
void AbortAppendFails(Fixture& f) {
  f.queue().FailNext(Durability::kSyncNow, 1);
  f.agents().precommits[0](PrecommitAnswer::kAborted);
  f.agents().precommits[1](PrecommitAnswer::kAborted);
  f.Store();
  CHECK(f.node().active() == 0);
}

TEST_CASE("a group member whose abort record was not confirmed lets go of it; the next leader resumes the staging record") {
  Fixture f;
  ManualLeadership leadership;
  StartWithStagingRecord3(f, "t-aborted", &leadership);
  REQUIRE(f.agents().precommits.size() == 2);
  AbortAppendFails(f);  // a lost leadership, as the replicated log reports it: the entry may still commit
  leadership.Set(false);
  for (int i = 0; i < 3; ++i) NextRetry(f);
  CHECK(f.Recorded("t-aborted")->outcome == Outcome::kPending);

  leadership.Set(true);  // the next term's leader resumes the record
  f.Store();
  ResumedAndAbortedAgain(f, "t-aborted");
}

TEST_CASE("a group member whose append was refused while it still leads the term takes the record over again") {
  Fixture f;
  ManualLeadership leadership;
  StartWithStagingRecord3(f, "t-aborted", &leadership);
  REQUIRE(f.agents().precommits.size() == 2);
  std::optional<SubmitResult> dropped;
  const std::string before = Submitted(f, &dropped);
  AbortAppendFails(f);  // refused, as appends are while a leadership transfer runs
  REQUIRE(dropped.has_value());
  CHECK(std::get<NodeError>(*dropped).kind == NodeErrorKind::kLeadershipLost);

  f.timers().Advance(f.options().retake_delay_ms - 1);
  f.Store();
  CHECK(f.agents().Count("precommit", "t-aborted") == 2);  // not before the delay
  f.timers().Advance(1);
  f.Store();
  ResumedAndAbortedAgain(f, "t-aborted");  // no new term: this member took it over again
  REQUIRE(f.agents().acks.size() == 2);  // the dropped engine sent none: its abort was never recorded
  f.agents().acks[0](DecisionAck::kAcked);
  f.agents().acks[1](DecisionAck::kAcked);
  f.Store();
  CHECK(f.Recorded("t-aborted")->finished);
  // `before` left its staging record (its votes never came): taken over
  // too, it is fenced, and aborted.
  CHECK(f.Recorded(before)->outcome == Outcome::kPending);
  REQUIRE(f.agents().Count("fence", before) == 2);
  AnswerFences(f, before, FenceAnswer::kFenced, 0);
  f.Store();
  CHECK(f.Recorded(before)->outcome == Outcome::kAborted);
  REQUIRE(f.agents().acks.size() == 4);
  f.agents().acks[2](DecisionAck::kAcked);
  f.agents().acks[3](DecisionAck::kAcked);
  f.Store();
  CHECK(f.node().Transactions().empty());

  // The term's txid issuer stays: what it issues now follows what it issued before.
  const std::string after = Submitted(f);
  auto first = ParseTxid(before);
  auto later = ParseTxid(after);
  REQUIRE(first.has_value());
  REQUIRE(later.has_value());
  CHECK(later->incarnation == first->incarnation);
  CHECK(later->sequence > first->sequence);
}

TEST_CASE("a member taking over again waits for what its dropped engine appended before: a late record is resumed") {
  Fixture f;
  ManualLeadership leadership;
  f.Start(&leadership);
  leadership.Set(true);
  f.Store();
  const std::string late = Submitted(f);
  std::optional<SubmitResult> answer;
  const std::string refused = Submitted(f, &answer);
  f.agents().prepared["bank-a"] = {{late, kSelf}, {refused, kSelf}};
  f.agents().prepared["bank-b"] = {{late, kSelf}, {refused, kSelf}};
  REQUIRE(f.agents().votes.size() == 4);
  f.agents().votes[0](YesVote(late));
  f.agents().votes[1](YesVote(late));
  f.timers().Advance(2 * Config{}.tick_ms);
  f.agents().votes[2](YesVote(refused));
  f.agents().votes[3](YesVote(refused));
  f.Store();  // both staging records: both answered, their commits sent, their commit records held for the acks
  REQUIRE(answer.has_value());
  CHECK(std::holds_alternative<TxReply>(*answer));
  CHECK(f.agents().Count("commit", late) == 2);
  CHECK(f.agents().Count("commit", refused) == 2);
  // No ack comes: each commit record goes out alone when due, the first on
  // its way, the second refused.
  f.timers().Advance(Config{}.retry_initial_ms - Config{}.tick_ms);
  f.queue().FailNext(Durability::kSyncWithNext, 1);
  f.timers().Advance(2 * Config{}.tick_ms);
  f.queue().CompleteFailed();  // the commit record of `refused` is refused; that of `late` is still on its way
  CHECK(f.node().active() == 0);
  CHECK(f.Recorded(late)->outcome == Outcome::kPending);

  f.timers().Advance(f.options().retake_delay_ms);
  f.Store();  // the commit record of `late`, then the barrier behind it
  REQUIRE(f.Recorded(late).has_value());
  CHECK(f.Recorded(late)->outcome == Outcome::kCommitted);
  CHECK(f.agents().Count("commit", late) == 4);  // resumed from its record
  // Its commit was never recorded, but its staging record was: it is
  // resumed, and every participant, fenced, proves its yes vote.
  REQUIRE(f.Recorded(refused).has_value());
  CHECK(f.Recorded(refused)->outcome == Outcome::kPending);
  CHECK(f.agents().Count("fence", refused) == 2);
  for (auto& fence : f.agents().fences) fence(FenceAnswer::kPrepared);
  f.Store();
  CHECK(f.Recorded(refused)->outcome == Outcome::kCommitted);
  CHECK(f.agents().Count("commit", refused) == 4);
  CHECK(f.agents().Count("abort", refused) == 0);
  for (std::size_t i = 0, n = f.agents().acks.size(); i < n; ++i) f.agents().acks[i](DecisionAck::kAcked);
  f.Store();
  CHECK(f.Recorded(late)->finished);
  CHECK(f.Recorded(refused)->finished);
  CHECK(f.node().Transactions().empty());
}

TEST_CASE("an op an agent's catalog refuses is answered before anything starts, naming the op") {
  Fixture f;
  f.Start();
  f.Store();
  f.agents().probe = ScriptedTransport::Probe::kAnswer;
  f.agents().catalog.procedures = {"debit"};
  const auto refused = [&](wire::TxRequest tx) {
    std::optional<SubmitResult> result;
    f.node().Submit({std::move(tx), ""}, [&](SubmitResult r) { result = std::move(r); });
    REQUIRE(result.has_value());
    REQUIRE(std::holds_alternative<NodeError>(*result));
    CHECK(std::get<NodeError>(*result).kind == NodeErrorKind::kInvalidRequest);
    return std::get<NodeError>(*result).message;
  };
  wire::TxRequest unknown = Transfer();
  wire::Op credit;
  credit.procedure = "credit";
  unknown.branches[1].ops.push_back(credit);
  CHECK(refused(unknown) == "branches[1].ops[1].procedure: participant 'bank-b' has no procedure 'credit'");
  wire::TxRequest raw = Transfer();
  wire::Op sql;
  sql.sql = "UPDATE accounts SET balance = 0";
  raw.branches[0].ops.insert(raw.branches[0].ops.begin(), sql);
  CHECK(refused(raw) ==
        "branches[0].ops[0]: raw SQL is not allowed on participant 'bank-a' (start its agent with --allow-raw-sql)");
  CHECK(f.agents().calls.empty());  // nothing was prepared
  CHECK(f.node().metrics().started == 0);
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
    vote(YesVote(f.agents().calls.front().txid));
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
  for (auto& vote : f.agents().votes) vote(YesVote(txid));
  // The commit record is queued, not written: a presumed abort gets there first.
  DecisionRecord presumed = Decided(txid, Outcome::kAborted);
  presumed.reason = "presumed abort: unknown to the coordinator when bank-a asked";
  f.Insert(presumed);
  f.Store();
  REQUIRE(result.has_value());
  const auto* reply = std::get_if<TxReply>(&*result);
  REQUIRE(reply != nullptr);
  CHECK(reply->status == 409);
  CHECK(JsonOf(reply->body)["outcome"] == "aborted");
  CHECK(reply->outcome == Outcome::kAborted);
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
  CHECK(lost->state == TxState::kInDoubt);
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

  SUBCASE("a participant naming no log is answered unknown_log: a replaced log records nothing for it") {
    // The log that ran this txid may be gone (decisions.db replaced while the
    // coordinator was down) and may have decided commit; a question without
    // the log's identity must not record a presumed abort the operator's
    // forced commit would then conflict with.
    answer.reset();
    f.node().GetTransaction("c1-1-3-0000000000000000", "bank-a", "", [&](TxLookup l) { answer = std::move(l); });
    f.Store();
    REQUIRE(answer.has_value());
    const auto* none = std::get_if<NodeError>(&*answer);
    REQUIRE(none != nullptr);
    CHECK(none->kind == NodeErrorKind::kUnknownLog);
    CHECK_FALSE(f.Recorded("c1-1-3-0000000000000000").has_value());
    std::optional<ForceAnswer> forced;
    f.node().Force({"c1-1-3-0000000000000000", Outcome::kCommitted, {{"bank-a", std::nullopt}}, ""},
                   [&](ForceAnswer a) { forced = std::move(a); });
    f.Store();
    REQUIRE(forced.has_value());
    const auto* result = std::get_if<ForceResult>(&*forced);
    REQUIRE(result != nullptr);
    CHECK(result->kind == ForceResult::Kind::kForced);
  }

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
  f.options().forgotten_key_retention_ms = 3'000;
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
    // A participant names the log its record was prepared under.
    f.node().GetTransaction(txid, asker, asker.empty() ? "" : f.LogId(), [&](TxLookup l) { answer = std::move(l); });
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
  CHECK(JsonOf(std::get<TxReply>(replayed).body) == recent.reply);
  CHECK(std::get<TxReply>(replayed).outcome == recent.outcome);
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
  SUBCASE("a forgotten key is let go forgotten_key_retention_ms later: it runs as a new transaction") {
    // Retention runs every interval, each run once the previous one is stored.
    auto run_for = [&f](int64_t ms) {
      for (int64_t t = 0; t < ms; t += ForgetIntervalMs(1'000)) {
        f.timers().Advance(ForgetIntervalMs(1'000));
        f.Store();
      }
    };
    run_for(2'000);
    SubmitResult still = submit("key-old");
    REQUIRE(std::get_if<NodeError>(&still) != nullptr);
    CHECK(std::get<NodeError>(still).kind == NodeErrorKind::kKeyForgotten);
    run_for(2'000);
    std::optional<SubmitResult> reply;
    f.node().Submit({Transfer(), "key-old"}, [&](SubmitResult r) { reply = std::move(r); });
    f.Store();
    CHECK(f.agents().calls.size() > calls_before);  // prepared anew
    if (reply) CHECK(std::get_if<NodeError>(&*reply) == nullptr);
  }
}

}  // namespace
}  // namespace commitd::coordinator

namespace commitd::coordinator {
namespace {

bool Healthy(Fixture& f, const std::string& name) {
  for (const auto& p : f.node().Participants()) {
    if (p.entry.name == name) return p.healthy;
  }
  FAIL("not registered: " << name);
  return false;
}

TEST_CASE("a participant is healthy only while it answers probes; a silent one turns unhealthy") {
  Fixture f;
  f.agents().probe = ScriptedTransport::Probe::kAnswer;
  f.Start();
  f.Store();
  CHECK(Healthy(f, "bank-a"));
  // It stops answering (a stopped process): the probe hangs, no error comes.
  f.agents().probe = ScriptedTransport::Probe::kHang;
  f.timers().Advance(2'000);
  CHECK(Healthy(f, "bank-a"));  // answered 2 s ago: within 3 intervals
  f.timers().Advance(2'100);
  CHECK_FALSE(Healthy(f, "bank-a"));
  // One probe in flight per participant, however long it hangs.
  CHECK(f.agents().hanging.size() == 2);
  // It answers again.
  f.agents().probe = ScriptedTransport::Probe::kAnswer;
  for (auto& done : f.agents().hanging) done(AgentCatalog{});
  CHECK(Healthy(f, "bank-a"));
}

TEST_CASE("the registry keeps what each agent's catalog says it remembers, for the participants' view") {
  Fixture f;
  f.agents().probe = ScriptedTransport::Probe::kAnswer;
  f.agents().catalog.outcome_retention_ms = 60'000;
  f.Start();
  f.Store();
  for (const auto& p : f.node().Participants()) {
    REQUIRE(p.outcome_retention_ms.has_value());
    CHECK(*p.outcome_retention_ms == 60'000);
  }
  // An older agent does not say: not known, and nothing is assumed.
  f.agents().catalog.outcome_retention_ms.reset();
  f.timers().Advance(1'100);
  for (const auto& p : f.node().Participants()) CHECK_FALSE(p.outcome_retention_ms.has_value());
}

TEST_CASE("probes of an unreachable participant back off exponentially up to the cap") {
  Fixture f;
  f.Start();
  f.Store();
  const int at_start = f.agents().probes["bank-a"];
  f.timers().Advance(60'000);
  const int in_a_minute = f.agents().probes["bank-a"] - at_start;
  // Every second that would be 60; after 1, 2, 4, 8, 16 s and then every 30 s it is about 6.
  CHECK(in_a_minute >= 4);
  CHECK(in_a_minute <= 8);
  CHECK_FALSE(Healthy(f, "bank-a"));
  // Once it answers, every interval again.
  f.agents().probe = ScriptedTransport::Probe::kAnswer;
  f.timers().Advance(31'000);
  CHECK(Healthy(f, "bank-a"));
  const int after = f.agents().probes["bank-a"];
  f.timers().Advance(5'000);
  CHECK(f.agents().probes["bank-a"] - after >= 4);
}

TEST_CASE("abort reasons are counted by class") {
  Fixture f(/*max_in_flight=*/1);
  f.Start();
  f.Store();
  // A no vote because of a lock conflict.
  std::string txid = Submitted(f);
  wire::Vote no;
  no.txid = txid;
  no.yes = false;
  no.reason = "lock conflict with t0";
  no.no_code = wire::VoteNoCode::kLockConflict;
  f.agents().votes.back()(no);
  f.Store();
  // Refused at admission while one is undecided.
  Submitted(f);
  std::optional<SubmitResult> refused;
  f.node().Submit({Transfer(), ""}, [&](SubmitResult r) { refused = std::move(r); });
  REQUIRE(refused.has_value());
  // The undecided one times out.
  f.timers().Advance(1'500);
  f.Store();
  const NodeMetrics& m = f.node().metrics();
  CHECK(m.aborts_by_reason[static_cast<std::size_t>(AbortReason::kLockConflict)] == 1);
  CHECK(m.aborts_by_reason[static_cast<std::size_t>(AbortReason::kOverload)] == 1);
  CHECK(m.aborts_by_reason[static_cast<std::size_t>(AbortReason::kTimeout)] == 1);
  CHECK(m.aborts_by_reason[static_cast<std::size_t>(AbortReason::kVoteNo)] == 0);
  CHECK(m.aborted == 2);
}

TEST_CASE("a participant is removed durably, never while a transaction names it, never when configured") {
  Fixture f;
  f.Start();
  f.Store();
  std::optional<std::optional<NodeError>> put;
  f.node().PutParticipant("bank-c", "http://127.0.0.1:7103", [&](std::optional<NodeError> e) { put = e; });
  f.Store();
  REQUIRE(put.has_value());
  REQUIRE_FALSE(put->has_value());

  std::optional<std::optional<NodeError>> removed;
  auto remove = [&](const std::string& name) {
    removed.reset();
    f.node().RemoveParticipant(name, [&](std::optional<NodeError> e) { removed = e; });
    f.Store();
    REQUIRE(removed.has_value());
  };
  remove("bank-a");
  REQUIRE(removed->has_value());
  CHECK((*removed)->kind == NodeErrorKind::kParticipantInUse);  // configured with --participant
  remove("nobody");
  REQUIRE(removed->has_value());
  CHECK((*removed)->kind == NodeErrorKind::kNotFound);

  // A transaction naming bank-c is undecided: refused.
  wire::TxRequest tx = Transfer();
  tx.branches[1].participant = "bank-c";
  f.node().Submit({tx, ""}, [](SubmitResult) {});
  remove("bank-c");
  REQUIRE(removed->has_value());
  CHECK((*removed)->kind == NodeErrorKind::kParticipantInUse);
  // Finished (aborted at its deadline, acked by both): removed.
  f.timers().Advance(1'500);
  f.Store();
  for (auto& ack : f.agents().acks) ack(DecisionAck::kAcked);
  f.Store();
  CHECK(f.node().active() == 0);
  remove("bank-c");
  CHECK_FALSE(removed->has_value());
  for (const auto& p : f.node().Participants()) CHECK(p.entry.name != "bank-c");
  f.Restart();
  f.Store();
  for (const auto& p : f.node().Participants()) CHECK(p.entry.name != "bank-c");
}


TEST_CASE("a transaction's calls belong to the client's trace until it is finished; resumed ones get a new one") {
  Fixture f;
  f.Insert(Decided("t-resumed", Outcome::kCommitted));
  f.Start();
  f.Store();
  SystemEntropy fresh;
  const auto client = TraceContext::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  REQUIRE(client);

  SubmitRequest request{Transfer(), ""};
  request.trace = *client;
  f.node().Submit(std::move(request), [](SubmitResult) {});
  REQUIRE(f.agents().votes.size() == 2);
  const std::string txid = f.agents().calls.back().txid;
  CHECK(f.node().TraceFor(txid, fresh) == *client);
  const wire::Vote yes = YesVote(txid);
  f.agents().votes[0](yes);
  f.agents().votes[1](yes);
  f.Store();
  REQUIRE(f.agents().Count("commit", txid) == 2);
  CHECK(f.node().TraceFor(txid, fresh) == *client);  // delivery stays in the client's trace

  // The resumed decision has no client: a new trace, the same for each of its calls.
  const TraceContext resumed = f.node().TraceFor("t-resumed", fresh);
  CHECK(resumed.trace_id() != client->trace_id());
  CHECK(f.node().TraceFor("t-resumed", fresh) == resumed);

  // Every ack in: finished, and the trace is forgotten (a later call would start another).
  for (auto& ack : f.agents().acks) ack(DecisionAck::kAcked);
  f.Store();
  f.Store();
  REQUIRE(f.Recorded(txid)->finished);
  CHECK(f.node().TraceFor(txid, fresh).trace_id() != client->trace_id());
  CHECK(f.node().TraceFor("t-resumed", fresh).trace_id() != resumed.trace_id());

  // A forced decision is delivered in the trace of the request that forced it.
  ForceRequest force{"stuck", Outcome::kAborted, {{"bank-a", std::nullopt}}, ""};
  force.trace = *client;
  f.node().Force(std::move(force), [](ForceAnswer) {});
  f.Store();
  REQUIRE(f.agents().Count("abort", "stuck") == 1);
  CHECK(f.node().TraceFor("stuck", fresh) == *client);
}

}  // namespace
}  // namespace commitd::coordinator

namespace commitd::coordinator {

TEST_CASE("a submit's answer: Retry-After only when the outcome is not known, and the text sent as written") {
  using api::Rendered;
  const std::string text = R"({"branches":[],"outcome":"committed","txid":"t"})";
  Rendered committed = api::Submit(TxReply{200, JsonText{text}, Outcome::kCommitted});
  CHECK(committed.status == 200);
  CHECK_FALSE(committed.retry_after);
  CHECK(TextOf(std::move(committed.body)) == text);
  // Not recorded yet: ask again later.
  Rendered unknown = api::Submit(TxReply{503, nlohmann::json{{"error", {{"code", "storage_error"}}}}, std::nullopt});
  CHECK(unknown.retry_after);
  // An abort that could not be recorded: a retry runs the transaction anew, so no Retry-After.
  Rendered unrecorded = api::Submit(TxReply{503, nlohmann::json{{"outcome", "aborted"}}, Outcome::kAborted});
  CHECK_FALSE(unrecorded.retry_after);
  CHECK(JsonOf(unrecorded.body)["outcome"] == "aborted");
  Rendered stopping = api::Submit(NodeError{NodeErrorKind::kStopping, "stopping"});
  CHECK(stopping.status == 503);
  CHECK(stopping.retry_after);
}

}  // namespace commitd::coordinator
