// ReplicatedDecisionLog as the simulator runs it (OpenOn): a group of one on
// a real SQLite file, a storage queue that runs a batch when the test says
// so, and a hand-moved clock. A group of one commits an entry once its own
// write is done, so what reaches the disk per write is visible here.
#include <doctest/doctest.h>

#include <map>

#include "coordinator/replicated_decision_log.h"
#include "raft/storage.h"
#include "tests/unit/support/manual_storage_queue.h"
#include "tests/unit/support/temp_dir.h"

namespace commitd::coordinator {
namespace {

using ManualQueue = testing::ManualStorageQueue;

class NoPeers final : public raft::Transport {
 public:
  void Send(raft::NodeId, std::vector<raft::Message>) override {}
};

class Clock final : public raft::Timers {
 public:
  int64_t NowMs() override { return now; }
  void After(int64_t ms, std::function<void()> fn) override { timers.emplace(now + ms, std::move(fn)); }
  void Post(std::function<void()> fn) override { posted.push_back(std::move(fn)); }
  // Moves the clock by ms, running every timer due on the way.
  void Advance(int64_t ms) {
    const int64_t until = now + ms;
    while (!timers.empty() && timers.begin()->first <= until) {
      now = std::max(now, timers.begin()->first);
      auto fn = std::move(timers.begin()->second);
      timers.erase(timers.begin());
      fn();
    }
    now = until;
  }
  int64_t now = 1000;
  std::multimap<int64_t, std::function<void()>> timers;
  std::vector<std::function<void()>> posted;
};

DecisionRecord Committed(const std::string& txid) {
  DecisionRecord r;
  r.txid = txid;
  r.outcome = Outcome::kCommitted;
  r.participants = {{"bank-a", "http://a"}, {"bank-b", "http://b"}};
  r.created_ms = 5;
  r.decided_ms = 7;
  return r;
}

struct Fixture {
  testing::TempDir dir{"replicated_decision_log_test"};
  std::unique_ptr<sqlite::Database> db;
  std::unique_ptr<ManualQueue> queue;
  NoPeers peers;
  Clock clock;
  std::unique_ptr<ReplicatedDecisionLog> log;

  Fixture() {
    auto opened = sqlite::Database::Open(dir.File("raft.db"));
    REQUIRE(opened.ok());
    db = std::move(opened).value();
    queue = std::make_unique<ManualQueue>(*db);
    ReplicatedLogOptions o;
    o.self_id = "c1";
    o.members = {{"c1", "http://127.0.0.1:1"}};
    o.seed = 1;
    auto made = ReplicatedDecisionLog::OpenOn(*db, *queue, peers, clock, o);
    REQUIRE(made.ok());
    log = std::move(made).value();
    log->Start();
    for (int i = 0; i < 200 && !log->leader_ready(); ++i) {
      clock.Advance(10);
      queue->Sync();
    }
    REQUIRE(log->leader_ready());
  }
  // t1 decided commit, written and applied.
  void DecideT1() {
    Status decided = Status::Internal("not called");
    log->AppendDecision(Committed("t1"), [&](Status s) { decided = s; });
    SyncAll();
    REQUIRE(decided.ok());
  }
  // Runs batches until nothing is queued.
  void SyncAll() {
    while (queue->queued() > 0) queue->Sync();
  }
  int64_t LogEntries() {
    sqlite::Statement* stmt = db->Prepare("SELECT count(*) FROM raft_log");
    REQUIRE(stmt != nullptr);
    REQUIRE(stmt->Step());
    int64_t n = stmt->Int(0);
    stmt->Reset();
    return n;
  }
  bool Finished(const std::string& txid) {
    sqlite::Statement* stmt = db->Prepare("SELECT finished FROM decisions WHERE txid = ?1");
    REQUIRE(stmt != nullptr);
    stmt->Bind(1, txid);
    REQUIRE(stmt->Step());
    bool finished = stmt->Int(0) != 0;
    stmt->Reset();
    return finished;
  }
};

TEST_CASE("a finished mark rides in the next decision's write instead of one of its own") {
  Fixture f;
  f.DecideT1();
  const int64_t entries_before = f.LogEntries();

  Status marked = Status::Internal("not called");
  Status second = Status::Internal("not called");
  f.log->MarkFinished("t1", 9, [&](Status s) { marked = s; });
  CHECK(f.queue->queued() == 0);  // the mark waits for company
  f.log->AppendDecision(Committed("t2"), [&](Status s) { second = s; });
  REQUIRE(f.queue->queued() == 1);
  f.queue->Sync();  // one write: the mark and the decision together
  CHECK(f.LogEntries() == entries_before + 2);
  f.SyncAll();  // their application
  CHECK(second.ok());
  CHECK(marked.ok());
  CHECK(f.LogEntries() == entries_before + 2);
  CHECK(f.Finished("t1"));
}

TEST_CASE("a finished mark with nothing to ride in is written after a short linger, each time") {
  Fixture f;
  f.DecideT1();
  Status decided = Status::Internal("not called");
  f.log->AppendDecision(Committed("t2"), [&](Status s) { decided = s; });
  f.SyncAll();
  REQUIRE(decided.ok());

  // Two rounds: the linger's timer must arm again after it fired.
  for (const char* txid : {"t1", "t2"}) {
    CAPTURE(txid);
    Status marked = Status::Internal("not called");
    f.log->MarkFinished(txid, 9, [&](Status s) { marked = s; });
    f.clock.Advance(4);
    CHECK(f.queue->queued() == 0);
    CHECK(marked.code() == StatusCode::kInternal);
    f.clock.Advance(2);
    REQUIRE(f.queue->queued() == 1);
    f.SyncAll();
    CHECK(marked.ok());
    CHECK(f.Finished(txid));
  }
}

TEST_CASE("finished marks held when the log stops are failed, later ones at once, and a late linger does nothing") {
  Fixture f;
  f.DecideT1();
  Status marked = Status::Internal("not called");
  f.log->MarkFinished("t1", 9, [&](Status s) { marked = s; });
  f.log->Stop();
  CHECK(marked.code() == StatusCode::kUnavailable);
  Status late = Status::Internal("not called");
  f.log->MarkFinished("t1", 10, [&](Status s) { late = s; });
  CHECK(late.code() == StatusCode::kUnavailable);
  f.log.reset();
  f.clock.Advance(50);  // the linger's timer fires after the log is gone
  CHECK(f.queue->queued() == 0);
}

TEST_CASE("a barrier completes after every append made before it, finished marks held back included") {
  Fixture f;
  f.DecideT1();
  Status decided = Status::Internal("not called");
  Status marked = Status::Internal("not called");
  Status barrier = Status::Internal("not called");
  f.log->AppendDecision(Committed("t2"), [&](Status s) { decided = s; });
  f.log->MarkFinished("t1", 9, [&](Status s) { marked = s; });
  f.log->Barrier([&](Status s) {
    barrier = s;
    CHECK(decided.ok());
    CHECK(marked.ok());
    CHECK(f.Finished("t1"));
  });
  f.SyncAll();
  CHECK(barrier.ok());
}

}  // namespace
}  // namespace commitd::coordinator
