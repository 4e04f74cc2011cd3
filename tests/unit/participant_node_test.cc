// participant::Node with fake transports and timers, and the real SQLite
// ResourceManager on a file: which coordinator answers count as proof,
// recovery at start, and 3PC termination answers.
#include "participant/node.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "common/storage_queue.h"
#include "participant/http_transports.h"
#include "participant/resource_manager.h"
#include "participant/sqlite_store.h"
#include "tests/unit/support/temp_dir.h"

namespace commitd::participant {
namespace {

using nlohmann::json;

constexpr char kSchema[] = R"sql(
CREATE TABLE accounts(id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK(balance >= 0));
INSERT INTO accounts VALUES('alice', 100);
)sql";

constexpr char kProcedures[] = R"json({ "procedures": {
  "debit": {"sql": "UPDATE accounts SET balance = balance - :amount WHERE id = :account AND balance >= :amount",
            "expect_changes": 1} } })json";

constexpr char kOwner[] = "http://c1:7000";   // the coordinator that runs the transaction
constexpr char kOther[] = "http://c2:7000";   // another coordinator the agent knows
constexpr char kPeer[] = "http://bank-b";
constexpr int64_t kTimeoutMs = 1000;

// Runs every queued job as one batch (RunStorageBatch, as BatchWriter) when told to.
class ManualStorageQueue final : public StorageQueue {
 public:
  explicit ManualStorageQueue(sqlite::Database& db) : db_(db) {}
  void Submit(Job job) override { queued_.push_back(std::move(job)); }
  void Read(std::function<void(sqlite::Database&)> fn) override { fn(db_); }
  // Batches run when the test syncs them: there is no linger to defer riders by.
  void DeferRiders() override {}
  Stats stats() const override { return {}; }
  // The next batch fails before running any job, as BatchWriter's do once an fsync failed.
  void FailNextBatch() { fail_next_ = true; }
  bool Sync() {
    if (queued_.empty()) return false;
    std::vector<Job> batch(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
    queued_.clear();
    bool rolled_back = false;
    std::vector<Status> results;
    if (fail_next_) {
      fail_next_ = false;
      results.assign(batch.size(), Status::IoError("disk I/O error"));
    } else {
      results = RunStorageBatch(db_, batch, &rolled_back);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].done) batch[i].done(results[i]);
    }
    return true;
  }

 private:
  sqlite::Database& db_;
  std::deque<Job> queued_;
  bool fail_next_ = false;
};

class ManualTimers final : public Timers {
 public:
  int64_t NowMs() const override { return now_; }
  void After(int64_t delay_ms, std::function<void()> fn) override { due_.emplace(std::make_pair(now_ + delay_ms, seq_++), std::move(fn)); }
  void RunUntil(int64_t when_ms) {
    while (!due_.empty() && due_.begin()->first.first <= when_ms) {
      auto it = due_.begin();
      now_ = it->first.first;
      auto fn = std::move(it->second);
      due_.erase(it);
      fn();
    }
    now_ = when_ms;
  }
  int64_t now_ = 1'700'000'000'000;

 private:
  uint64_t seq_ = 0;
  std::map<std::pair<int64_t, uint64_t>, std::function<void()>> due_;
};

struct FakeCoordinators final : public CoordinatorTransport {
  struct Asked {
    DecisionQuery query;
    std::function<void(DecisionAnswer)> done;
  };
  std::deque<Asked> asked;
  void QueryDecision(DecisionQuery query, std::function<void(DecisionAnswer)> done) override {
    asked.push_back({std::move(query), std::move(done)});
  }
  void Register(const std::string&, const std::string&, const std::string&, std::function<void(Status)> done) override {
    done(Status::Ok());
  }
  // coordinator URL -> what GET /v1/cluster lists; absent: unreachable.
  std::map<std::string, std::vector<std::string>> members;
  std::vector<std::string> members_asked;
  void GroupMembers(const std::string& url, std::function<void(Result<std::vector<std::string>>)> done) override {
    members_asked.push_back(url);
    auto it = members.find(url);
    if (it == members.end()) return done(Status::Unavailable(url + ": connection refused"));
    done(it->second);
  }
  Asked Next() {
    REQUIRE(!asked.empty());
    Asked a = std::move(asked.front());
    asked.pop_front();
    return a;
  }
};

struct FakePeers final : public PeerTransport {
  struct Called {
    std::string url;
    action::PeerCall call;
    std::string txid;
    std::function<void(PeerReply)> done;
  };
  std::deque<Called> called;
  void Call(const wire::ParticipantRef& peer, action::PeerCall call, const std::string& txid, const std::string&,
            std::function<void(PeerReply)> done) override {
    called.push_back({peer.url, call, txid, std::move(done)});
  }
};

DecisionAnswer Answer(DecisionAnswer::Kind kind, std::vector<std::string> group = {}) {
  DecisionAnswer a;
  a.kind = kind;
  a.group = std::move(group);
  if (kind == DecisionAnswer::Kind::kError) a.error = "connection refused";
  return a;
}

// One agent process on a database file that outlives it (Restart()).
class Fixture {
 public:
  explicit Fixture(Config config = {}) : config_(config), path_(dir_.File("bank.db")) {
    sqlite::OpenOptions oo;
    oo.create = true;
    auto db = sqlite::Database::Open(path_, oo);
    REQUIRE(db.ok());
    REQUIRE((*db)->Exec(kSchema).ok());
    Boot();
  }
  ~Fixture() { Down(); }

  void Boot(std::vector<std::string> coordinators = {kOwner}) {
    sqlite::OpenOptions oo;
    oo.create = false;
    auto db = sqlite::Database::Open(path_, oo);
    REQUIRE(db.ok());
    db_ = std::move(db).value();
    auto procedures = Procedures::Parse(kProcedures);
    REQUIRE(procedures.ok());
    auto rm = ResourceManager::Open(*db_, std::move(procedures).value(), {});
    REQUIRE(rm.ok());
    rm_ = std::move(rm).value();
    queue_ = std::make_unique<ManualStorageQueue>(*db_);
    store_ = std::make_unique<SqliteStore>(*rm_, *queue_, timers);
    NodeOptions options = NodeOptions::From(config_, "bank-a", "http://bank-a", std::move(coordinators));
    options.register_with_coordinators = false;
    node_ = std::make_unique<Node>(std::move(options), *store_, coordinators_, peers_, timers);
    node_->set_event_log([](log::Level, std::string_view, const json&) {});
    REQUIRE(node_->Start().ok());
  }
  void Down() {
    node_.reset();
    store_.reset();
    queue_.reset();
    rm_.reset();
    db_.reset();
  }
  void Restart(std::vector<std::string> coordinators = {kOwner}) {
    Down();
    coordinators_.asked.clear();
    peers_.called.clear();
    Boot(std::move(coordinators));
  }

  // Prepares a debit of 30 from alice; returns the vote's reply.
  NodeReply Prepare(const std::string& txid, wire::Protocol protocol = wire::Protocol::k2pc,
                    const std::string& coordinator = kOwner) {
    std::optional<NodeReply> reply;
    node_->Prepare(DebitRequest(txid, protocol, coordinator), [&](NodeReply v) { reply = std::move(v); });
    Settle();
    // A prepare that met a key of one that voted yes waits for it a while.
    for (int i = 0; i < 10 && !reply.has_value(); ++i) RunFor(10);
    REQUIRE(reply.has_value());
    return *reply;
  }
  static wire::PrepareRequest DebitRequest(const std::string& txid, wire::Protocol protocol = wire::Protocol::k2pc,
                                           const std::string& coordinator = kOwner) {
    wire::PrepareRequest r;
    r.txid = txid;
    r.protocol = protocol;
    r.participant = "bank-a";
    r.coordinator = coordinator;
    r.timeout_ms = kTimeoutMs;
    wire::Op op;
    op.procedure = "debit";
    op.args = {{"account", "alice"}, {"amount", 30}};
    r.ops.push_back(op);
    r.participants = {{"bank-a", "http://bank-a"}, {"bank-b", kPeer}};
    return r;
  }
  // Runs storage until nothing is queued.
  void Settle() {
    while (queue_->Sync()) {
    }
  }
  // Moves the clock, letting ticks run, then settles storage.
  void RunFor(int64_t ms) {
    timers.RunUntil(timers.NowMs() + ms);
    Settle();
  }
  int64_t Balance() {
    sqlite::Statement* stmt = db_->Prepare("SELECT balance FROM accounts WHERE id = 'alice'");
    REQUIRE(stmt != nullptr);
    REQUIRE(stmt->Step());
    int64_t b = stmt->Int(0);
    stmt->Reset();
    return b;
  }
  std::size_t Records() {
    auto records = rm_->LoadPrepared();
    REQUIRE(records.ok());
    return records->size();
  }

  void Exec(const std::string& sql) { REQUIRE(db_->Exec(sql).ok()); }
  void FailNextBatch() { queue_->FailNextBatch(); }
  // Runs what is queued now as one batch; whether there was anything.
  bool RunOneBatch() { return queue_->Sync(); }
  // What a peer asking about txid is told (LookUpState), storage settled.
  std::string PeerState(const std::string& txid) {
    std::optional<Result<std::string>> state;
    node_->LookUpState(txid, [&](Result<std::string> s) { state = std::move(s); });
    Settle();
    REQUIRE(state.has_value());
    REQUIRE(state->ok());
    return **state;
  }
  // Sends a request through `send` (a Node method taking a reply) and settles storage.
  template <typename Send>
  NodeReply Ask(Send send) {
    std::optional<NodeReply> reply;
    send([&](NodeReply r) { reply = std::move(r); });
    Settle();
    REQUIRE(reply.has_value());
    return *reply;
  }

  Node& node() { return *node_; }
  FakeCoordinators& coordinators() { return coordinators_; }
  FakePeers& peers() { return peers_; }
  ManualTimers timers;

 private:
  Config config_;
  testing::TempDir dir_;
  std::string path_;
  FakeCoordinators coordinators_;
  FakePeers peers_;
  std::unique_ptr<sqlite::Database> db_;
  std::unique_ptr<ResourceManager> rm_;
  std::unique_ptr<ManualStorageQueue> queue_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Node> node_;
};

TEST_CASE("a prepare for another participant is refused; a yes vote comes once the record is durable") {
  Fixture f;
  wire::PrepareRequest r;
  r.txid = "t0";
  r.participant = "bank-z";
  std::optional<NodeReply> reply;
  f.node().Prepare(r, [&](NodeReply v) { reply = std::move(v); });
  REQUIRE(reply.has_value());
  CHECK(reply->status == 400);
  CHECK(JsonOf(reply->body)["error"]["code"] == "wrong_participant");

  NodeReply vote = f.Prepare("t1");
  CHECK(vote.status == 200);
  CHECK(JsonOf(vote.body)["vote"] == "yes");
  CHECK(f.Records() == 1);
  CHECK(f.node().StateOf("t1") == "prepared");
  CHECK(f.node().locks().size() > 0);
}

TEST_CASE("a prepare naming a coordinator this agent does not know is refused: nothing held, nothing recorded") {
  Fixture f;
  f.coordinators().members[kOwner] = {kOwner};
  NodeReply refused = f.Prepare("t1", wire::Protocol::k2pc, "http://127.0.0.1:1");
  CHECK(refused.status == 403);
  CHECK(JsonOf(refused.body)["error"]["code"] == "unknown_coordinator");
  CHECK(f.coordinators().members_asked == std::vector<std::string>{kOwner});
  CHECK(f.Records() == 0);
  CHECK(f.node().locks().size() == 0);
  CHECK(f.node().StateOf("t1") == "unknown");
  CHECK(f.Balance() == 100);
  // Nothing remembered either: the same txid from the real coordinator prepares.
  NodeReply vote = f.Prepare("t1", wire::Protocol::k2pc, "HTTP://C1:7000/");
  CHECK(vote.status == 200);
  CHECK(JsonOf(vote.body)["vote"] == "yes");
  CHECK(f.Records() == 1);
}

TEST_CASE("a member of a known coordinator's group is learned once and then trusted") {
  Fixture f;
  f.coordinators().members[kOwner] = {kOwner, "http://c4:7000"};
  CHECK(JsonOf(f.Prepare("t1", wire::Protocol::k2pc, "http://c4:7000").body)["vote"] == "yes");
  CHECK(f.Prepare("t2", wire::Protocol::k2pc, "http://c4:7000").status == 200);
  CHECK(f.coordinators().members_asked.size() == 1);
  // An unreachable coordinator teaches nothing: fail closed.
  f.coordinators().members.clear();
  CHECK(f.Prepare("t3", wire::Protocol::k2pc, "http://c5:7000").status == 403);
}

TEST_CASE("an agent without a configured coordinator refuses every prepare") {
  Fixture f;
  f.Restart({});
  NodeReply refused = f.Prepare("t1");
  CHECK(refused.status == 403);
  CHECK(JsonOf(refused.body)["error"]["code"] == "unknown_coordinator");
  CHECK(f.coordinators().members_asked.empty());
  CHECK(f.Records() == 0);
}

TEST_CASE("past its deadline a prepared transaction asks its own coordinator, naming itself; a 404 there aborts") {
  Fixture f;
  f.Prepare("t1");
  f.RunFor(kTimeoutMs - 100);
  CHECK(f.coordinators().asked.empty());
  f.RunFor(200);
  auto asked = f.coordinators().Next();
  CHECK(asked.query.coordinator_url == kOwner);
  CHECK(asked.query.txid == "t1");
  CHECK(asked.query.asking_participant == "bank-a");
  asked.done(Answer(DecisionAnswer::Kind::kNotKnown));
  f.Settle();
  CHECK(f.node().StateOf("t1") == "aborted");
  CHECK(f.Records() == 0);
  CHECK(f.Balance() == 100);
  CHECK(f.node().locks().size() == 0);
}

TEST_CASE("a coordinator that forgot the decision leaves the record in doubt, reported once, never presumed") {
  Fixture f;
  int reported = 0;
  f.node().set_event_log([&](log::Level level, std::string_view event, const json& fields) {
    if (event == "decision_forgotten") {
      ++reported;
      CHECK(level == log::Level::kError);
      CHECK(fields["txid"] == "t1");
    }
  });
  f.Prepare("t1");
  for (int round = 0; round < 4; ++round) {
    f.RunFor(kTimeoutMs);
    // Its own coordinator, then the other configured one (same log in a group): both forgot it.
    while (!f.coordinators().asked.empty()) {
      f.coordinators().Next().done(Answer(DecisionAnswer::Kind::kForgotten));
      f.Settle();
    }
  }
  CHECK(reported == 1);
  CHECK(f.node().StateOf("t1") == "prepared");
  CHECK(f.Records() == 1);
  CHECK(f.Balance() == 100);
  auto held = f.node().Held();
  REQUIRE(held.size() == 1);
  CHECK(held[0].last_error.find("forgot") != std::string::npos);
  // An operator's decision still ends it.
  std::optional<NodeReply> reply;
  f.node().Commit(wire::CommitRequest{"t1", ""}, [&](NodeReply r) { reply = std::move(r); });
  f.Settle();
  REQUIRE(reply.has_value());
  CHECK(reply->status == 200);
  CHECK(f.Balance() == 70);
}

TEST_CASE("the records an agent lists are those whose prepare is durable, not one still being written") {
  Fixture f;
  std::optional<NodeReply> vote;
  f.node().Prepare(Fixture::DebitRequest("t1"), [&](NodeReply r) { vote = std::move(r); });
  CHECK(f.node().StateOf("t1") == "preparing");  // its batch has not run
  REQUIRE(f.node().Held().size() == 1);
  CHECK_FALSE(f.node().Held()[0].record_durable);
  CHECK(f.node().HeldRecords().empty());
  f.Settle();
  REQUIRE(vote.has_value());
  const auto records = f.node().HeldRecords();
  REQUIRE(records.size() == 1);
  CHECK(records[0].txid == "t1");
  CHECK(records[0].state == HeldState::kPrepared);
  CHECK(HeldJson(records[0])["state"] == "prepared");
}

// t1 prepared with coordinators kOwner and kOther, past its deadline: kOwner
// is asked first and answers `owner_answer`; returns the question then put to kOther.
FakeCoordinators::Asked AskedOtherAfterOwner(Fixture& f, DecisionAnswer::Kind owner_answer) {
  f.Restart({kOwner, kOther});
  f.Prepare("t1");
  f.RunFor(kTimeoutMs + 50);
  auto owner = f.coordinators().Next();
  CHECK(owner.query.coordinator_url == kOwner);
  owner.done(Answer(owner_answer));
  auto other = f.coordinators().Next();
  CHECK(other.query.coordinator_url == kOther);
  return other;
}

TEST_CASE("a 404 from a coordinator that did not run the transaction is no proof of abort") {
  Fixture f;
  auto other = AskedOtherAfterOwner(f, DecisionAnswer::Kind::kError);
  CHECK(other.query.asking_participant.empty());  // only the owner may record a presumed abort
  other.done(Answer(DecisionAnswer::Kind::kNotKnown, {kOther, "http://c3"}));
  f.Settle();
  CHECK(f.node().StateOf("t1") == "prepared");
  CHECK(f.Records() == 1);
  const auto held = f.node().Held();
  REQUIRE(held.size() == 1);
  CHECK(held[0].last_error.find("only its own coordinator may presume abort") != std::string::npos);
  // It keeps asking, with backoff, and commits when its coordinator answers.
  f.RunFor(10'000);
  auto again = f.coordinators().Next();
  CHECK(again.query.coordinator_url == kOwner);
  again.done(Answer(DecisionAnswer::Kind::kCommitted));
  f.Settle();
  CHECK(f.node().StateOf("t1") == "committed");
  CHECK(f.Balance() == 70);
  CHECK(f.Records() == 0);
}

TEST_CASE("a coordinator recovering the transaction is no answer: the question goes on to the next one") {
  Fixture f;
  AskedOtherAfterOwner(f, DecisionAnswer::Kind::kRecovering).done(Answer(DecisionAnswer::Kind::kError));
  f.Settle();
  CHECK(f.node().StateOf("t1") == "prepared");  // 2PC: it waits, whatever it hears
  const auto held = f.node().Held();
  REQUIRE(held.size() == 1);
  CHECK(held[0].last_error.find("resumed the transaction after a restart and has not decided it") !=
        std::string::npos);
}

TEST_CASE("a 404 from a group that lists the transaction's coordinator is proof of abort") {
  Fixture f;
  f.coordinators().members[kOther] = {kOther, kOwner};
  f.Restart({kOther});
  f.Prepare("t1");
  f.RunFor(kTimeoutMs + 50);
  f.coordinators().Next().done(Answer(DecisionAnswer::Kind::kError));
  f.coordinators().Next().done(Answer(DecisionAnswer::Kind::kNotKnown, {kOther, kOwner}));
  f.Settle();
  CHECK(f.node().StateOf("t1") == "aborted");
  CHECK(f.Records() == 0);
  CHECK(f.Balance() == 100);
}

TEST_CASE("pending and errors keep the transaction prepared; nothing is decided alone (2PC)") {
  Fixture f;
  f.Prepare("t1");
  f.RunFor(kTimeoutMs + 50);
  f.coordinators().Next().done(Answer(DecisionAnswer::Kind::kPending));
  f.RunFor(20'000);
  while (!f.coordinators().asked.empty()) f.coordinators().Next().done(Answer(DecisionAnswer::Kind::kError));
  f.Settle();
  CHECK(f.node().StateOf("t1") == "prepared");
  CHECK(f.Records() == 1);
  CHECK(f.peers().called.empty());
}

TEST_CASE("recovery at start: the prepared record, its locks, and a question to its coordinator at once") {
  Fixture f;
  f.Prepare("t1");
  CHECK(f.Records() == 1);
  const std::size_t keys = f.node().locks().size();
  f.Restart();
  CHECK(f.node().recovered() == 1);
  CHECK(f.node().locks().size() == keys);
  CHECK(f.node().StateOf("t1") == "prepared");
  f.RunFor(20);  // one tick: well before the deadline, the restarted node asks
  auto asked = f.coordinators().Next();
  CHECK(asked.query.txid == "t1");
  asked.done(Answer(DecisionAnswer::Kind::kCommitted));
  f.Settle();
  CHECK(f.node().StateOf("t1") == "committed");
  CHECK(f.Balance() == 70);
  // The outcome outlives another restart: a repeated commit is acknowledged.
  f.Restart();
  CHECK(f.node().recovered() == 0);
  std::optional<NodeReply> reply;
  f.node().Commit({"t1", ""}, [&](NodeReply r) { reply = std::move(r); });
  f.Settle();
  REQUIRE(reply.has_value());
  CHECK(reply->status == 200);
  CHECK(f.Balance() == 70);
}

TEST_CASE("remembered outcomes stay in the store: after a restart duplicates and peers are answered from it") {
  Fixture f;
  f.Prepare("t1");
  std::optional<NodeReply> reply;
  f.node().Commit(wire::CommitRequest{"t1", ""}, [&](NodeReply r) { reply = std::move(r); });
  f.Settle();
  REQUIRE(reply.has_value());
  CHECK(reply->status == 200);
  // An abort before its prepare leaves a tombstone.
  reply.reset();
  f.node().Abort(wire::AbortRequest{"t2", ""}, [&](NodeReply r) { reply = std::move(r); });
  f.Settle();
  REQUIRE(reply.has_value());
  CHECK(f.Balance() == 70);
  f.Restart();
  // Nothing was loaded into memory ...
  CHECK(f.node().StateOf("t1") == "unknown");
  CHECK(f.node().StateOf("t2") == "unknown");
  // ... but a peer asking learns the outcome from the store.
  CHECK(f.PeerState("t1") == "committed");
  CHECK(f.node().StateOf("t1") == "committed");  // remembered from now on
  // The late prepare after the tombstone votes no, and runs nothing.
  NodeReply vote = f.Prepare("t2");
  CHECK(JsonOf(vote.body)["vote"] == "no");
  CHECK(f.Balance() == 70);
  CHECK(f.Records() == 0);
  // A repeated prepare of the committed one gets its yes, and runs nothing again.
  vote = f.Prepare("t1");
  CHECK(JsonOf(vote.body)["vote"] == "yes");
  CHECK(f.Balance() == 70);
  CHECK(f.Records() == 0);
  // A txid never seen is still unknown.
  CHECK(f.PeerState("t9") == "unknown");
}

// An agent that keeps outcomes in memory for 100 ms, and in its database for the default 24 h.
Config ShortOutcomeMemory() {
  Config c;
  c.outcome_memory_ms = 100;
  return c;
}

TEST_CASE("past the memory window, duplicates and late prepares are answered from the database without a restart") {
  Fixture f(ShortOutcomeMemory());
  f.RunFor(20);
  CHECK(JsonOf(f.Prepare("t1").body)["vote"] == "yes");
  CHECK(f.Ask([&](ReplyFn r) { f.node().Commit({"t1", ""}, r); }).status == 200);
  CHECK(f.Ask([&](ReplyFn r) { f.node().Abort({"t2", ""}, r); }).status == 200);  // a tombstone
  CHECK(f.Balance() == 70);
  CHECK(f.node().StateOf("t1") == "committed");
  f.RunFor(500);
  CHECK(f.node().StateOf("t1") == "unknown");  // forgotten from memory only
  CHECK(f.node().StateOf("t2") == "unknown");

  // A repeated prepare of the committed one gets its yes from its own
  // storage job, and runs nothing again.
  NodeReply vote = f.Prepare("t1");
  CHECK(JsonOf(vote.body)["vote"] == "yes");
  CHECK(JsonOf(vote.body)["results"].is_null());
  CHECK(f.Balance() == 70);
  CHECK(f.Records() == 0);
  CHECK(f.node().locks().size() == 0);
  CHECK(f.node().StateOf("t1") == "committed");  // in memory again

  // The late prepare after the tombstone votes no and runs nothing.
  vote = f.Prepare("t2");
  CHECK(JsonOf(vote.body)["vote"] == "no");
  CHECK(f.Balance() == 70);
  CHECK(f.Records() == 0);

  // A repeated commit and a contradicting abort, once forgotten again, are
  // answered from the store.
  f.RunFor(500);
  CHECK(f.Ask([&](ReplyFn r) { f.node().Commit({"t1", ""}, r); }).status == 200);
  f.RunFor(500);
  NodeReply refused = f.Ask([&](ReplyFn r) { f.node().Abort({"t1", ""}, r); });
  CHECK(refused.status == 409);
  CHECK(JsonOf(refused.body)["error"]["code"] == "already_committed");
  CHECK(f.Balance() == 70);
}

// t1 prepared, committed, and then out of the agent's memory (the database has it).
void CommitThenForget(Fixture& f) {
  f.RunFor(20);
  CHECK(JsonOf(f.Prepare("t1").body)["vote"] == "yes");
  CHECK(f.Ask([&](ReplyFn r) { f.node().Commit({"t1", ""}, r); }).status == 200);
  f.RunFor(500);
  CHECK(f.node().StateOf("t1") == "unknown");
}

TEST_CASE("a prepare whose remembered outcome is unreadable is answered 503 and changes nothing") {
  Fixture f(ShortOutcomeMemory());
  CommitThenForget(f);
  f.Exec("UPDATE _commitd_finished SET outcome = 'maybe' WHERE txid = 't1'");
  NodeReply reply = f.Prepare("t1");
  CHECK(reply.status == 503);
  CHECK(JsonOf(reply.body)["error"]["code"] == "storage_error");
  CHECK(f.Balance() == 70);
  CHECK(f.Records() == 0);
  CHECK(f.node().StateOf("t1") == "unknown");
  // The row is left as it was for the operator, not overwritten with a guess.
  f.Exec("UPDATE _commitd_finished SET outcome = 'committed' WHERE txid = 't1' AND outcome = 'maybe'");
  CHECK(JsonOf(f.Prepare("t1").body)["vote"] == "yes");
  CHECK(f.Balance() == 70);
}

TEST_CASE("a duplicate prepare of a committed txid whose batch fails is answered 503 and the txid stays committed") {
  Fixture f(ShortOutcomeMemory());
  CommitThenForget(f);
  f.FailNextBatch();
  NodeReply reply = f.Prepare("t1");
  CHECK(reply.status == 503);
  CHECK(JsonOf(reply.body)["error"]["code"] == "storage_error");
  CHECK(f.node().StateOf("t1") == "unknown");  // not "aborted", which a 3PC peer would act on
  CHECK(f.PeerState("t1") == "committed");
  CHECK(f.Ask([&](ReplyFn r) { f.node().Commit({"t1", ""}, r); }).status == 200);
  CHECK(f.Balance() == 70);
}

TEST_CASE("an abort before its prepare is acknowledged once its tombstone is durable; a failed write answers 503") {
  Fixture f;
  std::optional<NodeReply> reply;
  f.node().Abort(wire::AbortRequest{"t2", ""}, [&](NodeReply r) { reply = std::move(r); });
  CHECK_FALSE(reply.has_value());  // the tombstone is still queued
  f.Settle();
  REQUIRE(reply.has_value());
  CHECK(reply->status == 200);

  // The abort looks t3 up in the store first; the batch after that, with the tombstone, fails.
  reply.reset();
  f.node().Abort(wire::AbortRequest{"t3", ""}, [&](NodeReply r) { reply = std::move(r); });
  REQUIRE(f.RunOneBatch());
  CHECK_FALSE(reply.has_value());
  f.FailNextBatch();
  f.Settle();
  REQUIRE(reply.has_value());
  CHECK(reply->status == 503);
  CHECK(JsonOf(reply->body)["error"]["code"] == "storage_error");
  CHECK(JsonOf(reply->body)["error"]["message"].get<std::string>().find("could not be made durable") != std::string::npos);
  CHECK(JsonOf(f.Prepare("t3").body)["vote"] == "no");  // memory still says aborted
  CHECK(f.Balance() == 100);
  // The coordinator's retry writes it; from then on it outlives a restart.
  CHECK(f.Ask([&](ReplyFn r) { f.node().Abort({"t3", ""}, r); }).status == 200);
  f.Restart();
  CHECK(JsonOf(f.Prepare("t2").body)["vote"] == "no");
  CHECK(JsonOf(f.Prepare("t3").body)["vote"] == "no");
  CHECK(f.Balance() == 100);
  CHECK(f.Records() == 0);
}

TEST_CASE("after a no vote, the coordinator's abort is acknowledged once the no is durable, and it outlives a restart") {
  Fixture f;
  wire::PrepareRequest overdraft = Fixture::DebitRequest("t4");
  overdraft.ops[0].args["amount"] = 1000;  // more than alice has: expect_changes fails
  std::optional<NodeReply> vote;
  f.node().Prepare(overdraft, [&](NodeReply r) { vote = std::move(r); });
  REQUIRE(f.RunOneBatch());  // the prepare's batch: the vote is no, the "aborted" is queued
  REQUIRE(vote.has_value());
  CHECK(JsonOf(vote->body)["vote"] == "no");
  std::optional<NodeReply> abort;
  f.node().Abort(wire::AbortRequest{"t4", ""}, [&](NodeReply r) { abort = std::move(r); });
  CHECK_FALSE(abort.has_value());  // its "aborted" is not written yet
  f.Settle();
  REQUIRE(abort.has_value());
  CHECK(abort->status == 200);
  CHECK(f.node().counters().votes_no == 1);
  f.Restart();
  CHECK(JsonOf(f.Prepare("t4").body)["vote"] == "no");
  CHECK(f.Balance() == 100);
}

TEST_CASE("the memory holds only the window: many finished transactions leave nothing behind") {
  Fixture f(ShortOutcomeMemory());
  f.RunFor(20);
  for (int i = 0; i < 50; ++i) {
    const std::string txid = "a" + std::to_string(i);
    CHECK(f.Ask([&](ReplyFn r) { f.node().Abort({txid, ""}, r); }).status == 200);
  }
  CHECK(f.node().StateOf("a0") == "aborted");
  f.RunFor(500);
  for (int i = 0; i < 50; ++i) CHECK(f.node().StateOf("a" + std::to_string(i)) == "unknown");
  // ... while the database still has every one.
  CHECK(f.PeerState("a49") == "aborted");
}

// SQLite virtual-machine steps of a store's Load() on a database holding `outcomes` remembered outcomes.
int64_t LoadSteps(const std::string& path, int outcomes) {
  sqlite::OpenOptions oo;
  oo.create = true;
  auto db = sqlite::Database::Open(path, oo);
  REQUIRE(db.ok());
  REQUIRE((*db)->Exec(kSchema).ok());
  auto procedures = Procedures::Parse(kProcedures);
  REQUIRE(procedures.ok());
  auto rm = ResourceManager::Open(**db, std::move(procedures).value(), {});
  REQUIRE(rm.ok());
  {
    sqlite::Transaction txn(**db);
    for (int i = 0; i < outcomes; ++i) {
      REQUIRE((*rm)->RememberOutcome("t" + std::to_string(i), i % 2 ? "committed" : "aborted", 1000 + i).ok());
    }
    REQUIRE(txn.Commit().ok());
  }
  ManualStorageQueue queue(**db);
  ManualTimers timers;
  SqliteStore store(**rm, queue, timers);
  int64_t steps = 0;
  sqlite3_progress_handler(
      (*db)->handle(), 1,
      [](void* n) {
        ++*static_cast<int64_t*>(n);
        return 0;
      },
      &steps);
  auto contents = store.Load();
  sqlite3_progress_handler((*db)->handle(), 0, nullptr, nullptr);
  REQUIRE(contents.ok());
  return steps;
}

TEST_CASE("restart work does not grow with remembered outcomes: Load reads none of them") {
  testing::TempDir dir;
  const int64_t few = LoadSteps(dir.File("few.db"), 100);
  const int64_t many = LoadSteps(dir.File("many.db"), 20'000);
  MESSAGE("load steps: " << few << " with 100 outcomes, " << many << " with 20000");
  // An index search grows with the logarithm of the table; a scan would take 200 times as many.
  CHECK(many < 2 * few + 200);
}

// Runs a 3PC transaction past its deadline and grace with its coordinator
// silent; returns the termination's state call to the peer.
FakePeers::Called SilentCoordinator3pc(Fixture& f) {
  f.Prepare("t3", wire::Protocol::k3pc);
  for (int i = 0; i < 100 && f.peers().called.empty(); ++i) {
    f.RunFor(100);
    while (!f.coordinators().asked.empty()) f.coordinators().Next().done(Answer(DecisionAnswer::Kind::kError));
  }
  REQUIRE(f.peers().called.size() == 1);
  FakePeers::Called call = std::move(f.peers().called.front());
  f.peers().called.pop_front();
  CHECK(call.url == kPeer);
  CHECK(call.call == action::PeerCall::kState);
  CHECK(call.txid == "t3");
  return call;
}

TEST_CASE("3PC termination: a peer that never saw the transaction makes it abort") {
  Fixture f;
  auto call = SilentCoordinator3pc(f);
  PeerReply unknown;
  unknown.kind = PeerReply::Kind::kUnknownTransaction;
  call.done(unknown);
  f.Settle();
  CHECK(f.node().StateOf("t3") == "aborted");
  CHECK(f.Balance() == 100);
  CHECK(f.node().counters().termination_rounds == 1);
}

TEST_CASE("3PC termination: a peer that committed makes it commit") {
  Fixture f;
  auto call = SilentCoordinator3pc(f);
  PeerReply committed;
  committed.kind = PeerReply::Kind::kState;
  committed.state = "committed";
  call.done(committed);
  f.Settle();
  CHECK(f.node().StateOf("t3") == "committed");
  CHECK(f.Balance() == 70);
}

TEST_CASE("3PC termination: a silent peer lets a live participant abort, never a restarted one") {
  Fixture f;
  PeerReply none;
  none.error = "timeout";
  SUBCASE("live: all merely prepared, so abort (3PC does not block)") {
    auto call = SilentCoordinator3pc(f);
    call.done(none);
    f.Settle();
    CHECK(f.node().StateOf("t3") == "aborted");
    CHECK(f.Records() == 0);
  }
  SUBCASE("restarted from its records: it waits for every peer or the coordinator") {
    f.Prepare("t3", wire::Protocol::k3pc);
    f.Restart();
    f.RunFor(20);
    f.coordinators().Next().done(Answer(DecisionAnswer::Kind::kError));
    REQUIRE(f.peers().called.size() == 1);
    f.peers().called.front().done(none);
    f.Settle();
    CHECK(f.node().StateOf("t3") == "prepared");
    CHECK(f.Records() == 1);
  }
}

TEST_CASE("peer replies map to the engine's states") {
  PeerReply r;
  r.kind = PeerReply::Kind::kAlreadyAborted;
  CHECK(PeerStateOf(r, kPeer).value() == "aborted");
  r.kind = PeerReply::Kind::kUnknownTransaction;
  CHECK(PeerStateOf(r, kPeer).value() == "unknown");
  r.kind = PeerReply::Kind::kError;
  r.error = "HTTP 500";
  CHECK(!PeerStateOf(r, kPeer).ok());
}

TEST_CASE("HTTP answers are parsed by status and error code, not by searching the body") {
  auto response = [](int status, json body) -> Result<http::Response> {
    http::Response r;
    r.status = status;
    r.body = body.dump();
    return r;
  };
  CHECK(DecisionAnswerOf(response(200, {{"outcome", "committed"}})).kind == DecisionAnswer::Kind::kCommitted);
  CHECK(DecisionAnswerOf(response(200, {{"outcome", "pending"}})).kind == DecisionAnswer::Kind::kPending);
  auto presumed = DecisionAnswerOf(
      response(404, {{"error", {{"code", "not_found"}}}, {"outcome", "aborted"}, {"group", {kOwner, kOther}}}));
  CHECK(presumed.kind == DecisionAnswer::Kind::kNotKnown);
  CHECK(presumed.group == std::vector<std::string>{kOwner, kOther});
  CHECK(DecisionAnswerOf(response(404, {{"error", {{"code", "forgotten"}}}})).kind ==
        DecisionAnswer::Kind::kForgotten);
  // A 404 of no known form (a route missing, a proxy) proves nothing.
  CHECK(DecisionAnswerOf(response(404, {{"error", {{"code", "not_found"}}}})).kind == DecisionAnswer::Kind::kError);
  CHECK(DecisionAnswerOf(Status::Unavailable("refused")).kind == DecisionAnswer::Kind::kError);

  CHECK(PeerReplyOf(response(404, {{"error", {{"code", "unknown_transaction"}}}})).kind ==
        PeerReply::Kind::kUnknownTransaction);
  // The code in a message does not count.
  CHECK(PeerReplyOf(response(404, {{"error", {{"code", "not_found"}, {"message", "\"unknown_transaction\""}}}})).kind ==
        PeerReply::Kind::kError);
  CHECK(PeerReplyOf(response(409, {{"error", {{"code", "already_aborted"}}}})).kind ==
        PeerReply::Kind::kAlreadyAborted);
  auto state = PeerReplyOf(response(200, {{"txid", "t"}, {"state", "precommitted"}}));
  CHECK(state.kind == PeerReply::Kind::kState);
  CHECK(state.state == "precommitted");
}

}  // namespace
}  // namespace commitd::participant

namespace commitd::participant {
namespace {

TEST_CASE("a _commitd_prepared table of an older agent gets log_id, abort_key and commit_check; all round-trip") {
  testing::TempDir dir;
  auto db = sqlite::Database::Open(dir.File("old.db"));
  REQUIRE(db.ok());
  // The table as agents before log identities created it, with one record.
  REQUIRE((*db)->Exec(R"sql(
    CREATE TABLE _commitd_prepared(txid TEXT PRIMARY KEY, protocol TEXT NOT NULL, state TEXT NOT NULL,
      changeset BLOB NOT NULL, lock_keys TEXT NOT NULL, coordinator TEXT NOT NULL, participants TEXT NOT NULL,
      created_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL, last_error TEXT NOT NULL DEFAULT '');
    INSERT INTO _commitd_prepared VALUES('old-1', '2pc', 'prepared', x'', '["k"]', 'http://c1:7000', '[]', 1, 2, '');
  )sql").ok());
  PreparedRecordStore store(**db);
  REQUIRE(store.CreateTables().ok());
  REQUIRE(store.CreateTables().ok());  // again: nothing to add
  auto loaded = store.LoadPrepared();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 1);
  CHECK((*loaded)[0].log_id.empty());
  CHECK((*loaded)[0].abort_key.empty());  // aborted only on its coordinator's answer
  CHECK((*loaded)[0].commit_check.empty());  // committed by any commit, as before

  PreparedRecord r = (*loaded)[0];
  r.txid = "new-1";
  r.log_id = "feedc0de";
  r.abort_key = std::string(64, 'e');
  r.commit_check = std::string(64, 'f');
  REQUIRE(store.Persist(r).ok());
  loaded = store.LoadPrepared();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 2);
  const PreparedRecord& back = (*loaded)[0].txid == "new-1" ? (*loaded)[0] : (*loaded)[1];
  CHECK(back.txid == "new-1");
  CHECK(back.log_id == "feedc0de");
  CHECK(back.abort_key == std::string(64, 'e'));
  CHECK(back.commit_check == std::string(64, 'f'));
}

TEST_CASE("a table with log_id and abort_key but no commit_check gets it") {
  testing::TempDir dir;
  auto db = sqlite::Database::Open(dir.File("mid.db"));
  REQUIRE(db.ok());
  REQUIRE((*db)->Exec(R"sql(
    CREATE TABLE _commitd_prepared(txid TEXT PRIMARY KEY, protocol TEXT NOT NULL, state TEXT NOT NULL,
      changeset BLOB NOT NULL, lock_keys TEXT NOT NULL, coordinator TEXT NOT NULL, participants TEXT NOT NULL,
      created_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL, last_error TEXT NOT NULL DEFAULT '',
      log_id TEXT NOT NULL DEFAULT '', abort_key TEXT NOT NULL DEFAULT '') WITHOUT ROWID;
    INSERT INTO _commitd_prepared VALUES('mid-1', '3pc', 'precommitted', x'', '[]', 'http://c1:7000', '[]', 1, 2, '',
      'feedc0de', 'abcd');
  )sql").ok());
  PreparedRecordStore store(**db);
  REQUIRE(store.CreateTables().ok());
  auto loaded = store.LoadPrepared();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 1);
  CHECK((*loaded)[0].abort_key == "abcd");
  CHECK((*loaded)[0].commit_check.empty());
}

}  // namespace
}  // namespace commitd::participant
