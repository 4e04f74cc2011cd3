// Single-server membership changes (thesis §4.1, §4.2.1): learners first,
// promotion once caught up, one change at a time.
#include <doctest/doctest.h>

#include "raft/node.h"
#include "tests/raft_sim/step_network.h"

using namespace commitd::raft;
using commitd::raft_sim::StepNetwork;

namespace {

void Settle(StepNetwork& net, int rounds = 4) {
  for (int i = 0; i < rounds; ++i) {
    net.Advance(50);
    net.DeliverAll();
  }
}

ProposeResult Change(StepNetwork& net, NodeId leader, ConfChangeType type, NodeId node) {
  return net.With(leader, [&](Node& n, int64_t now) { return n.ProposeConfChange({type, node}, now); });
}

// Nodes 1..3 vote, node 1 leads, node 4 is running but belongs to no group yet.
std::unique_ptr<StepNetwork> GroupWithSpare() {
  auto net = std::make_unique<StepNetwork>(3);
  net->Add(4, Membership{});
  net->Campaign(1);
  net->DeliverAll();
  REQUIRE(net->node(1).role() == Role::kLeader);
  return net;
}

}  // namespace

TEST_CASE("a new server joins as a learner: it receives the log but neither votes nor counts for commit") {
  auto net = GroupWithSpare();
  CHECK(Change(*net, 1, ConfChangeType::kAddLearner, 4).status == ProposeStatus::kOk);
  Settle(*net);
  CHECK(net->node(4).membership().IsLearner(4));
  CHECK(net->node(4).log().last_index() == net->node(1).log().last_index());

  net->Isolate(2);
  net->Isolate(3);
  Index before = net->node(1).commit_index();
  net->Propose(1, "x");
  net->DeliverAll();
  CHECK(net->node(1).MatchIndex(4) == net->node(1).log().last_index());
  CHECK(net->node(1).commit_index() == before);  // leader + learner is not a quorum of {1,2,3}

  // Nor does it campaign, however long it hears nothing.
  net->Isolate(1);
  for (int i = 0; i < 20; ++i) net->Advance(100);
  CHECK(net->node(4).role() == Role::kFollower);
  CHECK(net->node(4).term() == net->node(1).term());
}

TEST_CASE("a learner is promoted only once its log is within the promotion margin") {
  NodeOptions tuning;
  tuning.promotion_margin = 2;
  StepNetwork net(3, tuning);
  net.Add(4, Membership{});
  net.Campaign(1);
  net.DeliverAll();
  Change(net, 1, ConfChangeType::kAddLearner, 4);
  net.DeliverAll();
  net.Isolate(4);
  for (int i = 0; i < 10; ++i) net.Propose(1, "v" + std::to_string(i));
  Settle(net);
  CHECK(Change(net, 1, ConfChangeType::kPromote, 4).status == ProposeStatus::kNotCaughtUp);
  net.Heal();
  Settle(net);
  CHECK(Change(net, 1, ConfChangeType::kPromote, 4).status == ProposeStatus::kOk);
  Settle(net);
  CHECK(net.node(1).membership().IsVoter(4));
  CHECK(net.node(4).membership().IsVoter(4));
  CHECK(net.node(1).membership().Quorum() == 3);
}

TEST_CASE("one membership change at a time: a second waits until the first is committed") {
  auto net = GroupWithSpare();
  net->Add(5, Membership{});
  net->Isolate(2);
  net->Isolate(3);
  CHECK(Change(*net, 1, ConfChangeType::kAddLearner, 4).status == ProposeStatus::kOk);
  net->DeliverAll();
  CHECK(Change(*net, 1, ConfChangeType::kAddLearner, 5).status == ProposeStatus::kConfigPending);
  net->Heal();
  Settle(*net);
  CHECK(Change(*net, 1, ConfChangeType::kAddLearner, 5).status == ProposeStatus::kOk);
}

TEST_CASE("a new leader changes membership only after committing an entry of its own term") {
  auto net = std::make_unique<StepNetwork>(3);
  net->Add(4, Membership{});
  net->Campaign(1);
  // Elected, but its no-op is not acknowledged yet.
  while (net->node(1).role() != Role::kLeader) net->DeliverAll(1);
  CHECK(Change(*net, 1, ConfChangeType::kAddLearner, 4).status == ProposeStatus::kConfigPending);
  net->DeliverAll();
  CHECK(Change(*net, 1, ConfChangeType::kAddLearner, 4).status == ProposeStatus::kOk);
}

TEST_CASE("a configuration takes effect as soon as it is appended, on the leader and on followers") {
  auto net = GroupWithSpare();
  net->Isolate(3);
  net->DropIf([](const Message& m) { return m.from == 2 && m.to == 1; });  // node 2 gets it, the leader hears nothing back
  CHECK(Change(*net, 1, ConfChangeType::kRemove, 3).status == ProposeStatus::kOk);
  net->DeliverAll();
  CHECK(net->node(1).commit_index() < net->node(1).log().last_index());
  CHECK(net->node(1).membership().voters == std::set<NodeId>{1, 2});
  CHECK(net->node(2).membership().voters == std::set<NodeId>{1, 2});
}

TEST_CASE("removing a voter: the rest commit without it; the leader cannot remove itself") {
  auto net = GroupWithSpare();
  CHECK(Change(*net, 1, ConfChangeType::kRemove, 1).status == ProposeStatus::kCannotRemoveSelf);
  CHECK(Change(*net, 1, ConfChangeType::kRemove, 3).status == ProposeStatus::kOk);
  Settle(*net);
  net->Isolate(3);
  net->Propose(1, "x");
  net->DeliverAll();
  CHECK(net->node(1).commit_index() == net->node(1).log().last_index());
  CHECK(Change(*net, 1, ConfChangeType::kRemove, 7).status == ProposeStatus::kInvalidChange);
}

TEST_CASE("a removed server that never heard of its removal cannot disrupt the group") {
  auto net = GroupWithSpare();
  net->Isolate(3);
  CHECK(Change(*net, 1, ConfChangeType::kRemove, 3).status == ProposeStatus::kOk);
  Settle(*net);
  Term term = net->node(1).term();
  net->Heal();
  // The leader no longer sends to node 3, which times out and asks for votes.
  for (int i = 0; i < 40; ++i) {
    net->Advance(25);
    net->DeliverAll();
  }
  CHECK(net->node(1).role() == Role::kLeader);
  CHECK(net->node(1).term() == term);
  CHECK(net->node(3).membership().IsVoter(3));  // it still believes it votes
}
