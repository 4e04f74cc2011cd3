// ReadIndex (thesis §6.4): linearizable reads without writing to the log.
#include <doctest/doctest.h>

#include "raft/node.h"
#include "tests/raft_sim/step_network.h"

using namespace commitd::raft;
using commitd::raft_sim::StepNetwork;

namespace {

ProposeStatus Read(StepNetwork& net, NodeId at, uint64_t request) {
  return net.With(at, [&](Node& n, int64_t now) { return n.ReadIndex(request, now); });
}

std::unique_ptr<StepNetwork> Elected(NodeOptions tuning = {}) {
  auto net = std::make_unique<StepNetwork>(3, tuning);
  net->Campaign(1);
  net->DeliverAll();
  REQUIRE(net->node(1).role() == Role::kLeader);
  return net;
}

}  // namespace

TEST_CASE("ReadIndex answers at the commit index noted when asked, once a quorum acknowledged a later heartbeat") {
  auto net = Elected();
  net->Propose(1, "a");
  net->DeliverAll();
  Index commit = net->node(1).commit_index();
  CHECK(Read(*net, 1, 7) == ProposeStatus::kOk);
  CHECK(net->reads(1).empty());  // not before the round trip
  net->DeliverAll(2);            // the heartbeats reach 2 and 3
  CHECK(net->reads(1).empty());
  net->DeliverAll(1);  // one acknowledgement: with the leader, a quorum
  REQUIRE(net->reads(1).size() == 1);
  CHECK(net->reads(1)[0].request == 7);
  CHECK(net->reads(1)[0].ok);
  CHECK(net->reads(1)[0].index == commit);
}

TEST_CASE("a new leader refuses ReadIndex until it has committed an entry of its own term") {
  auto net = std::make_unique<StepNetwork>(3);
  net->Campaign(1);
  while (net->node(1).role() != Role::kLeader) net->DeliverAll(1);
  CHECK(Read(*net, 1, 1) == ProposeStatus::kLeaderNotReady);
  net->DeliverAll();
  CHECK(Read(*net, 1, 1) == ProposeStatus::kOk);
  CHECK(Read(*net, 2, 2) == ProposeStatus::kNotLeader);
}

TEST_CASE("a deposed leader never answers a read: it fails the read when it learns of the new term") {
  auto run = [](bool unsafe) {
    NodeOptions tuning;
    tuning.unsafe_read_without_quorum = unsafe;
    auto net = Elected(tuning);
    net->Isolate(1);
    // The majority elects node 2 and commits a write the old leader never sees.
    net->Campaign(2);
    net->DeliverAll();
    REQUIRE(net->node(2).role() == Role::kLeader);
    net->Propose(2, "w");
    net->DeliverAll();
    REQUIRE(net->node(2).commit_index() == 3);
    // The old leader, still leader in its own eyes, is asked to read.
    REQUIRE(net->node(1).role() == Role::kLeader);
    Read(*net, 1, 9);
    net->Heal();
    net->Advance(50);
    net->DeliverAll();
    return net;
  };
  auto safe = run(false);
  REQUIRE(safe->reads(1).size() == 1);
  CHECK_FALSE(safe->reads(1)[0].ok);
  CHECK(safe->node(1).role() == Role::kFollower);

  auto unsafe = run(true);
  REQUIRE(unsafe->reads(1).size() == 1);
  CHECK(unsafe->reads(1)[0].ok);
  CHECK(unsafe->reads(1)[0].index == 1);  // stale: misses write 3, committed before the read was asked
}

TEST_CASE("a single voter answers ReadIndex at once") {
  auto net = std::make_unique<StepNetwork>(1);
  net->Campaign(1);
  REQUIRE(net->node(1).role() == Role::kLeader);
  CHECK(Read(*net, 1, 3) == ProposeStatus::kOk);
  REQUIRE(net->reads(1).size() == 1);
  CHECK(net->reads(1)[0].ok);
  CHECK(net->reads(1)[0].index == 1);
}
