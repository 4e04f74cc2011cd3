// Leadership transfer (thesis §3.10): catch the target up, then TimeoutNow.
#include <doctest/doctest.h>

#include "raft/node.h"
#include "tests/raft_sim/step_network.h"

using namespace commitd::raft;
using commitd::raft_sim::StepNetwork;

namespace {

ProposeStatus Transfer(StepNetwork& net, NodeId from, NodeId to) {
  return net.With(from, [&](Node& n, int64_t now) { return n.TransferLeadership(to, now); });
}

std::unique_ptr<StepNetwork> Elected() {
  auto net = std::make_unique<StepNetwork>(3);
  net->Campaign(1);
  net->DeliverAll();
  REQUIRE(net->node(1).role() == Role::kLeader);
  net->transcript().clear();
  return net;
}

}  // namespace

TEST_CASE("golden: transfer to an up-to-date voter is one TimeoutNow and one election that passes the lease") {
  auto net = Elected();
  CHECK(Transfer(*net, 1, 2) == ProposeStatus::kOk);
  net->DeliverAll();
  std::vector<std::string> expected = {
      "1->2 t1 TimeoutNow",
      // No PreVote, and node 3, which heard from its leader just now, still votes.
      "2->1 t2 RequestVote last=1/1 transfer",
      "2->3 t2 RequestVote last=1/1 transfer",
      "1->2 t2 RequestVoteResponse granted",
      "3->2 t2 RequestVoteResponse granted",
      // Node 2 has not heard that entry 1 is committed; its no-op commits it.
      "2->1 t2 AppendEntries prev=1/1 n=1 commit=0",
      "2->3 t2 AppendEntries prev=1/1 n=1 commit=0",
      "1->2 t2 AppendEntriesResponse ok match=2",
      "3->2 t2 AppendEntriesResponse ok match=2",
  };
  CHECK(net->transcript() == expected);
  CHECK(net->node(2).role() == Role::kLeader);
  CHECK(net->node(1).role() == Role::kFollower);
  CHECK(net->node(1).leader() == 2);
}

TEST_CASE("transfer to a lagging voter catches it up before TimeoutNow") {
  auto net = Elected();
  net->Isolate(3);
  for (int i = 0; i < 5; ++i) net->Propose(1, "v" + std::to_string(i));
  net->DeliverAll();
  net->Heal();
  CHECK(Transfer(*net, 1, 3) == ProposeStatus::kOk);
  net->DeliverAll();
  CHECK(net->node(3).role() == Role::kLeader);
  CHECK(net->node(3).log().At(6).data == "v4");
  // TimeoutNow went out only after an append that brought node 3 up to date.
  std::size_t first_timeout = 0, last_ok = 0;
  for (std::size_t i = 0; i < net->transcript().size(); ++i) {
    const std::string& l = net->transcript()[i];
    if (l == "1->3 t1 TimeoutNow" && !first_timeout) first_timeout = i;
    if (l == "3->1 t1 AppendEntriesResponse ok match=6") last_ok = i;
  }
  CHECK(last_ok > 0);
  CHECK(first_timeout > last_ok);
}

TEST_CASE("proposals wait during a transfer, which is abandoned after an election timeout") {
  auto net = Elected();
  net->DropIf([](const Message& m) { return std::holds_alternative<TimeoutNow>(m.body); });
  CHECK(Transfer(*net, 1, 2) == ProposeStatus::kOk);
  net->DeliverAll();
  CHECK(net->Propose(1, "x").status == ProposeStatus::kTransferring);
  for (int i = 0; i < 4; ++i) {
    net->Advance(50);
    net->DeliverAll();
  }
  CHECK(net->node(1).role() == Role::kLeader);
  CHECK(net->node(1).transfer_target() == kNoNode);
  CHECK(net->Propose(1, "x").status == ProposeStatus::kOk);
}

TEST_CASE("transfer is refused to a learner, to oneself, and by a follower") {
  auto net = Elected();
  net->Add(4, Membership{});
  net->With(1, [](Node& n, int64_t now) { return n.ProposeConfChange({ConfChangeType::kAddLearner, 4}, now); });
  net->DeliverAll();
  CHECK(Transfer(*net, 1, 4) == ProposeStatus::kInvalidChange);
  CHECK(Transfer(*net, 1, 1) == ProposeStatus::kInvalidChange);
  CHECK(Transfer(*net, 2, 3) == ProposeStatus::kNotLeader);
}

TEST_CASE("asking again for the same transfer does not extend its deadline (thesis 3.10)") {
  auto net = Elected();
  net->DropIf([](const Message& m) { return std::holds_alternative<TimeoutNow>(m.body); });
  CHECK(Transfer(*net, 1, 2) == ProposeStatus::kOk);
  net->DeliverAll();
  // Asked again every 50 ms, past one election timeout (150 ms) since the first ask.
  for (int i = 0; i < 4; ++i) {
    net->Advance(50);
    net->DeliverAll();
    if (net->node(1).transfer_target() != kNoNode) CHECK(Transfer(*net, 1, 2) == ProposeStatus::kOk);
  }
  net->Advance(50);
  net->DeliverAll();
  CHECK(net->node(1).role() == Role::kLeader);
  CHECK(net->node(1).transfer_target() == kNoNode);
  CHECK(net->Propose(1, "x").status == ProposeStatus::kOk);
}
