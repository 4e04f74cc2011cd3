// Snapshots: compaction, chunked InstallSnapshot, and restart from a snapshot.
#include <doctest/doctest.h>

#include "raft/node.h"
#include "tests/raft_sim/step_network.h"

using namespace commitd::raft;
using commitd::raft_sim::StepNetwork;

namespace {

Membership Voters(std::set<NodeId> voters) { return Membership{voters, {}}; }

std::size_t CountLines(const std::vector<std::string>& lines, const std::string& prefix) {
  std::size_t n = 0;
  for (const std::string& l : lines) n += l.rfind(prefix, 0) == 0;
  return n;
}

// A three-node group where node 3 missed 20 entries that the leader then compacted away.
std::unique_ptr<StepNetwork> LaggingBehindSnapshot(const std::string& snapshot_data) {
  NodeOptions tuning;
  tuning.snapshot_chunk_bytes = 16;
  auto net = std::make_unique<StepNetwork>(3, tuning);
  net->Campaign(1);
  net->DeliverAll();
  net->Isolate(3);
  for (int i = 0; i < 20; ++i) net->Propose(1, "v" + std::to_string(i));
  net->DeliverAll();
  REQUIRE(net->node(1).applied() == 21);
  net->With(1, [&](Node& n, int64_t) {
    n.CompactLog(n.applied(), std::make_shared<const std::string>(snapshot_data));
    return 0;
  });
  return net;
}

Message Chunk(Index index, Term term, uint64_t offset, std::string chunk, bool done) {
  InstallSnapshot is;
  is.meta = SnapshotMeta{index, term, Voters({1, 2, 3})};
  is.offset = offset;
  is.chunk = std::move(chunk);
  is.done = done;
  return Message{1, 2, 1, is};
}

Node FreshFollower() {
  RestoredState s;
  s.snapshot.membership = Voters({1, 2, 3});
  NodeOptions o;
  o.id = 2;
  return Node(o, std::move(s), 0);
}

InstallSnapshotResponse OnlySnapshotResponse(const Ready& r) {
  REQUIRE(r.messages.size() == 1);
  return std::get<InstallSnapshotResponse>(r.messages[0].body);
}

}  // namespace

TEST_CASE("a follower behind the compacted log gets the snapshot in chunks, then the log after it") {
  std::string data(100, 's');
  auto net = LaggingBehindSnapshot(data);
  CHECK(net->node(1).log().base().index == 21);
  net->Heal();
  net->Propose(1, "after");
  for (int i = 0; i < 10; ++i) {
    net->Advance(50);
    net->DeliverAll();
  }
  // 100 bytes in chunks of 16: seven chunks, each acknowledged before the next.
  CHECK(CountLines(net->transcript(), "1->3 t1 InstallSnapshot 21/1") >= 7);
  CHECK(CountLines(net->transcript(), "1->3 t1 InstallSnapshot 21/1 offset=96 len=4 done") >= 1);
  const auto& storage = net->storage(3);
  CHECK(storage.snapshot.index == 21);
  CHECK(storage.snapshot.membership == Voters({1, 2, 3}));
  REQUIRE(storage.snapshot_data);
  CHECK(*storage.snapshot_data == data);
  CHECK(net->node(3).log().last_index() == 22);
  CHECK(net->node(3).commit_index() == 22);
  // The state machine got the snapshot, then the entry after it.
  REQUIRE(net->applied(3).size() == 2);
  CHECK(net->applied(3)[0].data == "snapshot");
  CHECK(net->applied(3)[1].data == "after");

  SUBCASE("and restarts from the snapshot and the log after it") {
    net->Crash(3);
    net->Restart(3);
    CHECK(net->node(3).log().base().index == 21);
    CHECK(net->node(3).log().last_index() == 22);
    CHECK(net->node(3).applied() == 21);
  }
}

TEST_CASE("chunks must arrive in order; the follower names the offset it expects") {
  Node n = FreshFollower();
  n.Step(Chunk(5, 1, 0, "abcd", false), 0);
  CHECK(OnlySnapshotResponse(n.TakeReady()).next_offset == 4);
  n.Step(Chunk(5, 1, 8, "ijkl", true), 0);  // skips a chunk
  Ready skipped = n.TakeReady();
  CHECK(OnlySnapshotResponse(skipped).next_offset == 4);
  CHECK_FALSE(OnlySnapshotResponse(skipped).done);
  CHECK_FALSE(skipped.snapshot.has_value());
  n.Step(Chunk(5, 1, 4, "efgh", false), 0);
  n.TakeReady();
  n.Step(Chunk(5, 1, 8, "ijkl", true), 0);
  Ready done = n.TakeReady();
  CHECK(OnlySnapshotResponse(done).done);
  REQUIRE(done.snapshot);
  CHECK(*done.snapshot->data == "abcdefghijkl");
  CHECK(done.snapshot->meta.index == 5);
  CHECK(n.commit_index() == 5);
  CHECK(n.log().base().index == 5);
}

TEST_CASE("a chunk of a different snapshot restarts the transfer from offset 0") {
  Node n = FreshFollower();
  n.Step(Chunk(5, 1, 0, "abcd", false), 0);
  n.TakeReady();
  n.Step(Chunk(9, 1, 4, "wxyz", false), 0);
  CHECK(OnlySnapshotResponse(n.TakeReady()).next_offset == 0);
}

TEST_CASE("a snapshot at or below the commit index is acknowledged, not installed") {
  StepNetwork net(3);
  net.Campaign(1);
  net.DeliverAll();
  net.Propose(1, "a");
  net.DeliverAll();
  net.Advance(50);
  net.DeliverAll();
  REQUIRE(net.node(2).commit_index() == 2);
  Message m = Chunk(2, 1, 0, "x", true);
  m.term = net.node(2).term();
  net.node(2).Step(m, net.now());
  Ready r = net.node(2).TakeReady();
  CHECK(OnlySnapshotResponse(r).done);
  CHECK_FALSE(r.snapshot.has_value());
  CHECK(net.node(2).log().last_index() == 2);
}

TEST_CASE("an empty snapshot is one chunk") {
  auto net = LaggingBehindSnapshot("");
  net->Heal();
  for (int i = 0; i < 4; ++i) {
    net->Advance(50);
    net->DeliverAll();
  }
  CHECK(CountLines(net->transcript(), "1->3 t1 InstallSnapshot 21/1 offset=0 len=0 done") >= 1);
  CHECK(net->node(3).commit_index() == 21);
}

TEST_CASE("a log compacted without snapshot bytes: the leader asks the driver for them when a follower needs them") {
  NodeOptions tuning;
  tuning.snapshot_chunk_bytes = 16;
  StepNetwork net(3, tuning);
  net.Campaign(1);
  net.DeliverAll();
  net.Isolate(3);
  for (int i = 0; i < 20; ++i) net.Propose(1, "v" + std::to_string(i));
  net.DeliverAll();
  REQUIRE(net.node(1).applied() == 21);
  net.With(1, [](Node& n, int64_t) {
    n.CompactLog(19, nullptr);
    return 0;
  });
  CHECK(net.node(1).log().base().index == 19);
  CHECK_FALSE(net.node(1).snapshot_wanted());  // nobody needs one yet
  net.Heal();
  for (int i = 0; i < 3; ++i) {
    net.Advance(50);
    net.DeliverAll();
  }
  CHECK(net.node(1).snapshot_wanted());
  CHECK(CountLines(net.transcript(), "1->3 t1 InstallSnapshot") == 0);
  CHECK(net.node(3).log().last_index() == 1);

  // The driver serializes its state machine as it is now, past the log's base;
  // the log stays, and the follower continues from the entry after the snapshot.
  net.Propose(1, "after");
  net.DeliverAll();
  REQUIRE(net.node(1).applied() == 22);
  net.With(1, [](Node& n, int64_t) {
    n.ProvideSnapshot(21, std::make_shared<const std::string>(40, 's'));
    return 0;
  });
  CHECK_FALSE(net.node(1).snapshot_wanted());
  CHECK(net.node(1).log().base().index == 19);
  for (int i = 0; i < 10; ++i) {
    net.Advance(50);
    net.DeliverAll();
  }
  CHECK(CountLines(net.transcript(), "1->3 t1 InstallSnapshot 21/1 offset=32 len=8 done") >= 1);
  CHECK(net.storage(3).snapshot.index == 21);
  CHECK(net.storage(3).snapshot.membership == Voters({1, 2, 3}));
  CHECK(net.node(3).log().last_index() == 22);
  CHECK(net.node(3).commit_index() == 22);
  REQUIRE(net.applied(3).size() == 2);
  CHECK(net.applied(3)[1].data == "after");

  SUBCASE("compacting past the snapshot drops it; the next follower that needs one asks again") {
    net.With(1, [](Node& n, int64_t) {
      n.CompactLog(22, nullptr);
      n.ProvideSnapshot(21, std::make_shared<const std::string>("stale"));  // below the base: ignored
      return 0;
    });
    net.Isolate(2);
    net.Propose(1, "x");
    net.Advance(50);
    net.DeliverAll();
    net.With(1, [](Node& n, int64_t) {
      n.CompactLog(n.applied(), nullptr);
      return 0;
    });
    net.Heal();
    for (int i = 0; i < 3; ++i) {
      net.Advance(50);
      net.DeliverAll();
    }
    CHECK(net.node(1).snapshot_wanted());
  }
}

TEST_CASE("without keep_snapshot_bytes the bytes live only while a follower is sent them, and are asked for again") {
  NodeOptions tuning;
  tuning.snapshot_chunk_bytes = 16;
  tuning.keep_snapshot_bytes = false;
  StepNetwork net(3, tuning);
  net.Campaign(1);
  net.DeliverAll();
  // A follower (isolated) misses entries the leader then compacts away; the
  // driver serializes when asked. Returns once it installed the snapshot.
  auto behind_then_caught_up = [&net](NodeId follower, const std::string& value) {
    net.Isolate(follower);
    for (int i = 0; i < 20; ++i) net.Propose(1, value + std::to_string(i));
    net.DeliverAll();
    net.With(1, [](Node& n, int64_t) {
      n.CompactLog(n.applied(), nullptr);
      return 0;
    });
    net.Heal();
    for (int i = 0; i < 3 && !net.node(1).snapshot_wanted(); ++i) {
      net.Advance(50);
      net.DeliverAll();
    }
    REQUIRE(net.node(1).snapshot_wanted());
    const Index at = net.node(1).applied();
    net.With(1, [at](Node& n, int64_t) {
      n.ProvideSnapshot(at, std::make_shared<const std::string>(40, 's'));
      return 0;
    });
    CHECK(net.node(1).holds_snapshot_bytes());
    for (int i = 0; i < 10; ++i) {
      net.Advance(50);
      net.DeliverAll();
    }
    REQUIRE(net.storage(follower).snapshot.index == at);
  };
  behind_then_caught_up(3, "a");
  CHECK_FALSE(net.node(1).holds_snapshot_bytes());  // sent: let go
  CHECK_FALSE(net.node(3).holds_snapshot_bytes());  // installed: not kept
  behind_then_caught_up(2, "b");                      // asked for again, and sent
  CHECK_FALSE(net.node(1).holds_snapshot_bytes());
  CHECK(net.node(2).commit_index() == net.node(1).commit_index());
}

TEST_CASE("the leader names the lowest index another member needs: the one after its match, or after the snapshot "
          "it is being sent") {
  std::string data(100, 's');
  auto net = LaggingBehindSnapshot(data);
  // Node 3 matched only the leader's first entry; node 2 has everything.
  CHECK(net->node(1).IndexNeededByMembers() == net->node(1).MatchIndex(3) + 1);
  CHECK(net->node(1).MatchIndex(3) < 21);
  CHECK_FALSE(net->node(2).IndexNeededByMembers().has_value());  // a follower names none
  net->Heal();
  // Its first chunk is never acknowledged: the transfer stays under way.
  net->DropIf([](const Message& m) { return std::holds_alternative<InstallSnapshotResponse>(m.body); });
  net->Advance(50);
  net->DeliverAll();
  REQUIRE(CountLines(net->transcript(), "1->3 t1 InstallSnapshot 21/1") >= 1);
  // The snapshot (base 21) is on its way: node 3 will need the entries after it.
  CHECK(net->node(1).IndexNeededByMembers() == 22);
}
