// raft::Driver on real SQLite files: three members over an in-memory network,
// a storage queue that runs a batch when the test says so, and a hand-moved
// clock. The state machine is a counter table that refuses odd values.
#include <doctest/doctest.h>

#include <deque>
#include <functional>
#include <map>
#include <set>

#include "raft/driver.h"
#include "raft/storage.h"
#include "tests/unit/support/manual_storage_queue.h"
#include "tests/unit/support/temp_dir.h"

using namespace commitd;
using namespace commitd::raft;

namespace {

class CounterMachine final : public StateMachine {
 public:
  Status Apply(sqlite::Database& db, const Entry& e) override {
    if (e.type != EntryType::kNormal) return Status::Ok();
    if (Status s = db.Exec("INSERT INTO counter(value) VALUES (" + e.data + ")"); !s.ok()) return s;
    // Refused after writing: the driver's savepoint must roll the row back.
    if (std::stoi(e.data) % 2 == 1) return Status::Conflict("odd");
    return Status::Ok();
  }
  Result<std::string> Snapshot(sqlite::Database&) override { return std::string(); }
  Status Restore(sqlite::Database&, std::string_view) override { return Status::Ok(); }
};

using ManualQueue = testing::ManualStorageQueue;

struct Cluster;

class Net final : public Transport {
 public:
  Net(Cluster& c, NodeId self) : cluster_(c), self_(self) {}
  void Send(NodeId to, std::vector<Message> messages) override;

 private:
  Cluster& cluster_;
  NodeId self_;
};

class Clock final : public Timers {
 public:
  int64_t NowMs() override { return now; }
  void After(int64_t ms, std::function<void()> fn) override { timers.emplace(now + ms, std::move(fn)); }
  void Post(std::function<void()> fn) override { posted.push_back(std::move(fn)); }
  int64_t now = 1000;
  std::multimap<int64_t, std::function<void()>> timers;
  std::vector<std::function<void()>> posted;
};

struct Member {
  std::unique_ptr<sqlite::Database> db;
  std::unique_ptr<ManualQueue> queue;
  CounterMachine machine;
  std::unique_ptr<Net> net;
  std::unique_ptr<Driver> driver;
};

struct Cluster {
  testing::TempDir dir;
  Clock clock;
  std::map<NodeId, Member> members;
  std::deque<Message> wire;
  std::set<NodeId> cut;  // what they send and what is sent to them is lost

  explicit Cluster(const std::function<void(DriverOptions&)>& tune = {}) {
    Membership boot{{1, 2, 3}, {}};
    for (NodeId id = 1; id <= 3; ++id) {
      Member& m = members[id];
      auto db = sqlite::Database::Open(dir.File("m" + std::to_string(id) + ".db"));
      REQUIRE(db.ok());
      m.db = std::move(db).value();
      REQUIRE(m.db->Exec("CREATE TABLE counter(value INTEGER)").ok());
      REQUIRE(Storage(*m.db).Init(boot).ok());
      auto restored = Storage(*m.db).Load();
      REQUIRE(restored.ok());
      m.queue = std::make_unique<ManualQueue>(*m.db);
      m.net = std::make_unique<Net>(*this, id);
      DriverOptions o;
      o.node.id = id;
      o.node.seed = id;
      if (tune) tune(o);
      m.driver = std::make_unique<Driver>(o, std::move(restored).value(), m.machine, *m.queue, *m.net, clock);
      m.driver->Start();
    }
  }
  // Until nothing moves: deliver messages, sync every queue, run posted work.
  void Settle() {
    for (int round = 0; round < 1000; ++round) {
      bool moved = false;
      while (!wire.empty()) {
        Message m = std::move(wire.front());
        wire.pop_front();
        members.at(m.to).driver->Receive({m});
        moved = true;
      }
      for (auto& [id, m] : members) {
        if (m.queue->queued() > 0) {
          m.queue->Sync();
          moved = true;
        }
      }
      auto posted = std::move(clock.posted);
      clock.posted.clear();
      for (auto& fn : posted) fn();
      if (!moved && posted.empty()) return;
    }
    FAIL("the cluster never settled");
  }
  void Advance(int64_t ms) {
    const int64_t until = clock.now + ms;
    while (!clock.timers.empty() && clock.timers.begin()->first <= until) {
      auto it = clock.timers.begin();
      clock.now = std::max(clock.now, it->first);
      auto fn = std::move(it->second);
      clock.timers.erase(it);
      fn();
      Settle();
    }
    clock.now = until;
  }
  Member* Leader() {
    for (auto& [id, m] : members) {
      if (m.driver->leader_ready()) return &m;
    }
    return nullptr;
  }
  int64_t Rows(Member& m) {
    sqlite::Statement* stmt = m.db->Prepare("SELECT COUNT(*) FROM counter");
    REQUIRE(stmt != nullptr);
    REQUIRE(stmt->Step());
    int64_t n = stmt->Int(0);
    stmt->Reset();
    return n;
  }
};

void Net::Send(NodeId to, std::vector<Message> messages) {
  if (cluster_.cut.contains(to) || cluster_.cut.contains(self_)) return;
  for (auto& m : messages) {
    CHECK(m.from == self_);
    CHECK(m.to == to);
    cluster_.wire.push_back(std::move(m));
  }
}

Member& ElectedLeader(Cluster& c) {
  for (int i = 0; i < 100 && c.Leader() == nullptr; ++i) c.Advance(50);
  REQUIRE(c.Leader() != nullptr);
  return *c.Leader();
}

// Compaction every 10 applied entries, and at most `keep` kept for a member behind.
std::function<void(DriverOptions&)> CompactingEvery10Keeping(Index keep) {
  return [keep](DriverOptions& o) {
    o.snapshot_entries = 10;
    o.log_keep_entries = keep;
  };
}

std::pair<NodeId, NodeId> Followers(Cluster& c, const Member& leader) {
  std::vector<NodeId> ids;
  for (auto& [id, m] : c.members) {
    if (&m != &leader) ids.push_back(id);
  }
  REQUIRE(ids.size() == 2);
  return {ids[0], ids[1]};
}

}  // namespace

TEST_CASE("driver: a proposal completes with its apply result on every member; a refusal changes nothing") {
  Cluster c;
  Member& leader = ElectedLeader(c);
  std::vector<Status> results;
  leader.driver->Propose("2", [&](Status s) { results.push_back(s); });
  leader.driver->Propose("3", [&](Status s) { results.push_back(s); });
  c.Settle();
  c.Advance(100);  // heartbeats carry the commit index to the followers
  REQUIRE(results.size() == 2);
  CHECK(results[0].ok());
  CHECK(results[1].code() == StatusCode::kConflict);
  for (auto& [id, m] : c.members) {
    CHECK(c.Rows(m) == 1);  // "3" was written, then rolled back by its savepoint
    auto applied = Storage(*m.db).Applied();
    REQUIRE(applied.ok());
    CHECK(*applied == leader.driver->applied());
  }
}

TEST_CASE("driver: a Ready with nothing to write takes no storage job") {
  Cluster c;
  Member& leader = ElectedLeader(c);
  c.Settle();
  const uint64_t batches = leader.queue->stats().batches;
  c.Advance(500);  // heartbeats and their answers only
  CHECK(leader.queue->stats().batches == batches);
  CHECK(leader.driver->leader_ready());
}

TEST_CASE("driver: messages of a Ready leave only once it is durable, except a leader's appends") {
  Cluster c;
  Member& leader = ElectedLeader(c);
  c.Settle();
  leader.driver->Propose("4", [](Status) {});
  // The leader's append left while its own write waits in the queue.
  CHECK(leader.queue->queued() == 1);
  REQUIRE(c.wire.size() == 2);
  Message append = c.wire.front();
  c.wire.clear();
  Member& follower = c.members.at(append.to);
  follower.driver->Receive({append});
  // The follower's acknowledgement waits for its own write.
  CHECK(follower.queue->queued() == 1);
  CHECK(c.wire.empty());
  follower.queue->Sync();
  REQUIRE(c.wire.size() == 1);
  CHECK(std::holds_alternative<AppendEntriesResponse>(c.wire.front().body));
}

TEST_CASE("driver: a reply rides the delivery it answers") {
  Cluster c;
  Member& leader = ElectedLeader(c);
  c.Settle();
  leader.driver->Propose("6", [](Status) {});
  Message append = c.wire.front();
  c.wire.clear();
  Member& follower = c.members.at(append.to);
  std::vector<Message> replied;
  bool answered = false;
  follower.driver->Receive({append}, [&](Result<std::vector<Message>> r) {
    REQUIRE(r.ok());
    replied = *r;
    answered = true;
  });
  CHECK_FALSE(answered);
  follower.queue->Sync();
  CHECK(answered);
  REQUIRE(replied.size() == 1);
  CHECK(std::holds_alternative<AppendEntriesResponse>(replied[0].body));
  CHECK(c.wire.empty());  // nothing went through the transport
}

TEST_CASE("driver: proposals and reads are refused off the ready leader and fail when it stops") {
  Cluster c;
  Member& leader = ElectedLeader(c);
  for (auto& [id, m] : c.members) {
    if (&m == &leader) continue;
    Status got;
    m.driver->Propose("8", [&](Status s) { got = s; });
    CHECK(got.code() == StatusCode::kUnavailable);
  }
  Status pending;
  leader.driver->Propose("10", [&](Status s) { pending = s; });
  leader.driver->Stop("stopping");
  CHECK(pending.code() == StatusCode::kUnavailable);
}

TEST_CASE("driver: a barrier completes after every entry proposed before it; a transfer in progress refuses it") {
  Cluster c;
  Member& leader = ElectedLeader(c);
  c.Settle();
  std::vector<std::string> done;
  int64_t rows_at_barrier = -1;
  leader.driver->Propose("2", [&](Status s) {
    CHECK(s.ok());
    done.push_back("2");
  });
  leader.driver->Barrier([&](Status s) {
    CHECK(s.ok());
    done.push_back("barrier");
    rows_at_barrier = c.Rows(leader);
  });
  c.Settle();
  CHECK(done == std::vector<std::string>{"2", "barrier"});
  CHECK(rows_at_barrier == 1);

  NodeId to = kNoNode;
  for (auto& [id, m] : c.members) {
    if (&m != &leader) to = id;
  }
  REQUIRE(leader.driver->TransferLeadership(to) == ProposeStatus::kOk);
  Status refused;
  leader.driver->Barrier([&](Status s) { refused = s; });
  CHECK(refused.code() == StatusCode::kUnavailable);
  CHECK(refused.message().find("transferring") != std::string::npos);
}

TEST_CASE("driver: a follower applies committed entries together, a lag after the first; a new leader "
          "first applies them all") {
  Cluster c;
  Member& leader = ElectedLeader(c);
  c.Advance(200);
  for (auto& [id, m] : c.members) REQUIRE(m.driver->applied() == leader.driver->applied());
  leader.driver->Propose("2", [](Status) {});
  c.Settle();
  leader.driver->Propose("4", [](Status) {});  // its append carries the commit of "2"
  c.Settle();
  CHECK(c.Rows(leader) == 2);
  std::vector<Member*> followers;
  for (auto& [id, m] : c.members) {
    if (&m != &leader) followers.push_back(&m);
  }
  for (Member* f : followers) {
    CHECK(f->driver->node().commit_index() > f->driver->applied());  // committed, deferred
    CHECK(c.Rows(*f) == 0);
  }
  c.Advance(DriverOptions{}.follower_apply_lag_ms + 20);
  for (Member* f : followers) {
    CHECK(f->driver->applied() == f->driver->node().commit_index());
    CHECK(c.Rows(*f) == 2);  // both, in one storage job
  }

  // Deferred entries on the followers, then the leader goes: whoever leads
  // next has applied every committed entry before it is ready.
  leader.driver->Propose("6", [](Status) {});
  c.Settle();
  leader.driver->Propose("8", [](Status) {});
  c.Settle();
  for (Member* f : followers) REQUIRE(c.Rows(*f) == 2);
  leader.driver->Stop("gone");
  Member* next = nullptr;
  for (int i = 0; i < 100 && next == nullptr; ++i) {
    c.Advance(10);
    for (Member* f : followers) {
      if (f->driver->leader_ready()) next = f;
    }
    if (next == nullptr) {
      for (Member* f : followers) {
        // Not ready yet: still a follower (deferring), or everything committed applied.
        if (f->driver->node().role() != Role::kFollower) {
          CHECK(f->driver->applied() == f->driver->node().commit_index());
        }
      }
    }
  }
  REQUIRE(next != nullptr);
  CHECK(c.Rows(*next) == 4);  // "6" was committed; "8", in its log, with its noop
  CHECK(next->driver->applied() == next->driver->node().commit_index());
}

TEST_CASE("driver: a follower's clock that went back does not hold its committed entries") {
  Cluster c;
  Member& leader = ElectedLeader(c);
  c.Advance(200);
  leader.driver->Propose("2", [](Status) {});
  c.Settle();
  leader.driver->Propose("4", [](Status) {});
  c.Settle();
  std::vector<Member*> followers;
  for (auto& [id, m] : c.members) {
    if (&m != &leader) followers.push_back(&m);
  }
  for (Member* f : followers) REQUIRE(c.Rows(*f) == 0);  // "2" committed, held
  c.clock.now -= 10'000;
  leader.driver->Propose("6", [](Status) {});  // its append carries the commit of "4"
  c.Settle();
  for (Member* f : followers) {
    CHECK(c.Rows(*f) == 2);
    CHECK(f->driver->applied() == f->driver->node().commit_index());
  }
}

TEST_CASE("driver: a leader keeps the entries a member behind needs, up to log_keep_entries; past them it sends a "
          "snapshot") {
  for (const bool past_the_cap : {false, true}) {
    CAPTURE(past_the_cap);
    Cluster c(CompactingEvery10Keeping(100));
    Member& leader = ElectedLeader(c);
    c.Advance(200);
    const auto [behind, other] = Followers(c, leader);
    const Index match_before = leader.driver->node().MatchIndex(behind);
    c.cut.insert(behind);
    const int entries = past_the_cap ? 150 : 60;
    for (int i = 0; i < entries; ++i) {
      leader.driver->Propose(std::to_string(2 * i), [](Status) {});
      c.Settle();
    }
    c.Advance(200);
    REQUIRE(leader.driver->node().MatchIndex(behind) == match_before);
    // The member that kept up is no reason to keep anything: it compacts as before.
    CHECK(c.members.at(other).driver->counters().snapshots_taken > 0);
    const Index base = leader.driver->node().log().base().index;
    if (past_the_cap) {
      CHECK(base > match_before);
      CHECK(base + 10 >= leader.driver->applied() - 100);  // within a compaction step of the cap
    } else {
      CHECK(base <= match_before);
    }

    c.cut.clear();
    Member& late = c.members.at(behind);
    for (int i = 0; i < 100 && late.driver->applied() < leader.driver->applied(); ++i) c.Advance(100);
    CHECK(late.driver->applied() == leader.driver->applied());
    CHECK(late.driver->counters().snapshots_installed == (past_the_cap ? 1u : 0u));
    if (!past_the_cap) CHECK(c.Rows(late) == entries);  // every entry applied from the log

    // Caught up, it holds nothing back: the leader compacts again.
    for (int i = 0; i < 40; ++i) {
      leader.driver->Propose(std::to_string(1000 + 2 * i), [](Status) {});
      c.Settle();
    }
    c.Advance(200);
    CHECK(leader.driver->node().log().base().index > match_before + entries / 2);
  }
}

TEST_CASE("driver: what a leader kept for a member goes a step at a time once no member needs it") {
  Cluster c(CompactingEvery10Keeping(1000));
  Member& leader = ElectedLeader(c);
  c.Advance(200);
  const NodeId behind = Followers(c, leader).first;
  c.cut.insert(behind);
  for (int i = 0; i < 100; ++i) {
    leader.driver->Propose(std::to_string(2 * i), [](Status) {});
    c.Settle();
  }
  const Index base_before = leader.driver->node().log().base().index;
  REQUIRE(base_before <= leader.driver->node().MatchIndex(behind));
  const uint64_t taken_before = leader.driver->counters().snapshots_taken;

  // Removed, it needs nothing: about 90 entries go, 15 at most in each storage job.
  REQUIRE(leader.driver->ProposeConfChange({ConfChangeType::kRemove, behind}).status == ProposeStatus::kOk);
  c.Settle();
  c.Advance(200);
  const Index base_after = leader.driver->node().log().base().index;
  CHECK(base_after >= base_before + 80);
  CHECK(leader.driver->counters().snapshots_taken - taken_before >= (base_after - base_before + 14) / 15);
}
