// Elections: Figure 2's RequestVote rules, PreVote, CheckQuorum and the
// randomized timeouts, on single nodes fed by hand and on a StepNetwork.
#include <doctest/doctest.h>

#include "raft/node.h"
#include "tests/raft_sim/step_network.h"

using namespace commitd::raft;
using commitd::raft_sim::StepNetwork;

namespace {

Membership Voters(std::set<NodeId> voters) { return Membership{voters, {}}; }

// Node `id` of {1,2,3} at `term`, with a log of entries of the given terms.
Node MakeNode(NodeId id, Term term, std::vector<Term> log_terms = {}, NodeId voted_for = kNoNode) {
  RestoredState s;
  s.hard_state = {term, voted_for};
  s.snapshot.membership = Voters({1, 2, 3});
  for (Term t : log_terms) s.entries.push_back(Entry{t, s.entries.size() + 1, EntryType::kNormal, ""});
  NodeOptions o;
  o.id = id;
  return Node(o, std::move(s), 0);
}

Message Vote(NodeId from, NodeId to, Term term, Index last_index, Term last_term, bool pre_vote = false) {
  return Message{from, to, term, RequestVote{last_index, last_term, pre_vote, false}};
}

// The single vote response in a Ready.
RequestVoteResponse OnlyVoteResponse(const Ready& r, Term* term = nullptr) {
  REQUIRE(r.messages.size() == 1);
  if (term) *term = r.messages[0].term;
  return std::get<RequestVoteResponse>(r.messages[0].body);
}

}  // namespace

TEST_CASE("Figure 2 RequestVote: reply false if term < currentTerm") {
  Node n = MakeNode(1, 5);
  n.Step(Vote(2, 1, 3, 10, 3), 0);
  Term term = 0;
  CHECK_FALSE(OnlyVoteResponse(n.TakeReady(), &term).granted);
  CHECK(term == 5);  // so the candidate learns it is stale
  CHECK(n.term() == 5);
}

TEST_CASE("Figure 2 RequestVote: if votedFor is null or candidateId and the log is up-to-date, grant the vote") {
  Node n = MakeNode(1, 1, {1, 1});
  n.Step(Vote(2, 1, 2, 2, 1), 0);
  Ready r = n.TakeReady();
  CHECK(OnlyVoteResponse(r).granted);
  // The vote is in the same Ready as the response: durable before it is sent.
  REQUIRE(r.hard_state);
  CHECK(*r.hard_state == HardState{2, 2});

  SUBCASE("the same candidate asking again gets the vote again") {
    n.Step(Vote(2, 1, 2, 2, 1), 0);
    CHECK(OnlyVoteResponse(n.TakeReady()).granted);
  }
  SUBCASE("another candidate of the same term does not") {
    n.Step(Vote(3, 1, 2, 5, 1), 0);
    CHECK_FALSE(OnlyVoteResponse(n.TakeReady()).granted);
  }
}

TEST_CASE("Raft §5.4.1: no vote for a candidate whose log is less up-to-date") {
  Node n = MakeNode(1, 3, {1, 2, 3});
  SUBCASE("earlier last term") {
    n.Step(Vote(2, 1, 4, 10, 2), 0);
    CHECK_FALSE(OnlyVoteResponse(n.TakeReady()).granted);
  }
  SUBCASE("same last term, shorter log") {
    n.Step(Vote(2, 1, 4, 2, 3), 0);
    CHECK_FALSE(OnlyVoteResponse(n.TakeReady()).granted);
  }
  // The higher term is adopted all the same (Figure 2, Rules for Servers).
  CHECK(n.term() == 4);
  CHECK(n.voted_for() == kNoNode);
}

TEST_CASE("a vote survives a crash: the restarted node refuses a second candidate of that term") {
  StepNetwork net(3);
  net.node(1).Step(Vote(2, 1, 1, 0, 0), net.now());
  net.With(1, [](Node&, int64_t) { return 0; });  // collect the Ready into storage
  CHECK(net.storage(1).hard_state == HardState{1, 2});
  net.Crash(1);
  net.Restart(1);
  net.DropAll();
  net.node(1).Step(Vote(3, 1, 1, 0, 0), net.now());
  CHECK_FALSE(OnlyVoteResponse(net.node(1).TakeReady()).granted);
}

TEST_CASE("Figure 2 Rules for Servers: a higher term in any message makes a leader a follower") {
  StepNetwork net(3);
  net.Campaign(1);
  net.DeliverAll();
  REQUIRE(net.node(1).role() == Role::kLeader);
  Term t = net.node(1).term();
  net.node(1).Step(Message{2, 1, t + 3, AppendEntriesResponse{}}, net.now());
  CHECK(net.node(1).role() == Role::kFollower);
  CHECK(net.node(1).term() == t + 3);
}

TEST_CASE("golden: a three-node election with PreVote, then one entry committed") {
  StepNetwork net(3);
  net.Campaign(1);
  net.DeliverAll();
  CHECK(net.node(1).role() == Role::kLeader);
  CHECK(net.Propose(1, "x").status == ProposeStatus::kOk);
  net.DeliverAll();
  std::vector<std::string> expected = {
      "1->2 t1 PreVote last=0/0",
      "1->3 t1 PreVote last=0/0",
      "2->1 t1 PreVoteResponse granted",
      "3->1 t1 PreVoteResponse granted",  // the quorum was reached with the first; this one is ignored
      "1->2 t1 RequestVote last=0/0",
      "1->3 t1 RequestVote last=0/0",
      "2->1 t1 RequestVoteResponse granted",
      "3->1 t1 RequestVoteResponse granted",
      // The new leader's no-op, probed at the end of its log: both followers have 0/0.
      "1->2 t1 AppendEntries prev=0/0 n=1 commit=0",
      "1->3 t1 AppendEntries prev=0/0 n=1 commit=0",
      "2->1 t1 AppendEntriesResponse ok match=1",
      "3->1 t1 AppendEntriesResponse ok match=1",
      "1->2 t1 AppendEntries prev=1/1 n=1 commit=1",
      "1->3 t1 AppendEntries prev=1/1 n=1 commit=1",
      "2->1 t1 AppendEntriesResponse ok match=2",
      "3->1 t1 AppendEntriesResponse ok match=2",
  };
  CHECK(net.transcript() == expected);
  CHECK(net.node(1).commit_index() == 2);
  // The followers learn the commit with the next append (here a heartbeat).
  net.Advance(50);
  net.DeliverAll();
  for (NodeId id : {1, 2, 3}) {
    REQUIRE(net.applied(id).size() == 2);
    CHECK(net.applied(id)[0].type == EntryType::kNoop);
    CHECK(net.applied(id)[1].data == "x");
  }
}

TEST_CASE("PreVote: a partitioned node that keeps timing out does not raise its term") {
  StepNetwork net(3);
  net.Campaign(1);
  net.DeliverAll();
  Term term = net.node(1).term();
  net.Isolate(3);
  for (int i = 0; i < 20; ++i) {
    net.Advance(100);
    net.DeliverAll();
  }
  CHECK(net.node(3).role() == Role::kPreCandidate);
  CHECK(net.node(3).term() == term);  // its PreVotes never got a quorum, so no real election ran
  net.Heal();
  for (int i = 0; i < 10; ++i) {
    net.Advance(10);
    net.DeliverAll();
  }
  CHECK(net.node(1).role() == Role::kLeader);
  CHECK(net.node(1).term() == term);
  CHECK(net.node(3).role() == Role::kFollower);
}

// Node 3 stops hearing the leader (a one-way cut) but reaches node 2, and its
// log is as up-to-date as anyone's.
std::unique_ptr<StepNetwork> RunOneWayCut(NodeOptions tuning) {
  auto net = std::make_unique<StepNetwork>(3, tuning);
  net->Campaign(1);
  net->DeliverAll();
  net->DropIf([](const Message& m) { return m.from == 1 && m.to == 3; });
  for (int i = 0; i < 100; ++i) {
    net->Advance(10);
    net->DeliverAll();
  }
  return net;
}

TEST_CASE("PreVote does not disrupt a stable leader; without PreVote and CheckQuorum the same schedule does") {
  auto net = RunOneWayCut(NodeOptions{});
  CHECK(net->node(1).role() == Role::kLeader);
  CHECK(net->node(1).term() == 1);
  CHECK(net->node(3).term() == 1);

  NodeOptions plain;
  plain.pre_vote = false;
  plain.check_quorum = false;
  CHECK(RunOneWayCut(plain)->node(1).term() > 1);
}

TEST_CASE("PreVote with CheckQuorum: a voter that hears from its leader ignores vote requests (leader lease)") {
  StepNetwork net(3);
  net.Campaign(1);
  net.DeliverAll();
  Term term = net.node(1).term();
  // Node 2 heard from the leader just now; node 3 asks for a PreVote and a real vote for a later term.
  net.node(2).Step(Vote(3, 2, term + 1, 100, term, true), net.now());
  net.node(2).Step(Vote(3, 2, term + 1, 100, term, false), net.now());
  CHECK(net.node(2).TakeReady().messages.empty());
  CHECK(net.node(2).term() == term);
  CHECK(net.node(2).voted_for() == 1);
}

TEST_CASE("a PreVote is granted on the log alone and changes neither term nor vote") {
  Node n = MakeNode(1, 2, {1, 2}, 3);
  n.Step(Vote(2, 1, 3, 2, 2, true), 0);
  Term term = 0;
  CHECK(OnlyVoteResponse(n.TakeReady(), &term).granted);
  CHECK(term == 3);  // echoes the term the pre-candidate would campaign in
  CHECK(n.term() == 2);
  CHECK(n.voted_for() == 3);
}

TEST_CASE("CheckQuorum: a leader that has not heard from a quorum within an election timeout steps down") {
  NodeOptions tuning;
  StepNetwork net(3, tuning);
  net.Campaign(1);
  net.DeliverAll();
  REQUIRE(net.node(1).role() == Role::kLeader);
  net.Isolate(1);
  // One timeout may have had answers before the cut; the next one cannot.
  for (int elapsed = 0; elapsed <= 2 * tuning.election_timeout_ms; elapsed += 10) {
    net.node(1).Tick(net.now() + elapsed);
  }
  CHECK(net.node(1).role() == Role::kFollower);
  CHECK(net.node(1).leader() == kNoNode);

  SUBCASE("while a leader that hears from one follower of two stays") {
    StepNetwork net2(3, tuning);
    net2.Campaign(1);
    net2.DeliverAll();
    net2.Isolate(3);
    for (int i = 0; i < 20; ++i) {
      net2.Advance(50);
      net2.DeliverAll();
    }
    CHECK(net2.node(1).role() == Role::kLeader);
  }
}

TEST_CASE("election timeouts are randomized within [T, 2T) and repeat under the same seed") {
  auto first_campaign_ms = [](uint64_t seed) {
    RestoredState s;
    s.snapshot.membership = Voters({1, 2, 3});
    NodeOptions o;
    o.id = 1;
    o.seed = seed;
    Node n(o, std::move(s), 0);
    for (int64_t t = 1;; ++t) {
      n.Tick(t);
      if (n.role() != Role::kFollower) return t;
    }
  };
  std::set<int64_t> seen;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    int64_t t = first_campaign_ms(seed);
    CHECK(t >= 150);
    CHECK(t < 300);
    CHECK(first_campaign_ms(seed) == t);
    seen.insert(t);
  }
  CHECK(seen.size() > 10);
}

TEST_CASE("a single voter elects itself at once") {
  RestoredState s;
  s.snapshot.membership = Voters({1});
  NodeOptions o;
  o.id = 1;
  Node n(o, std::move(s), 0);
  n.Tick(1000);
  CHECK(n.role() == Role::kLeader);
  Ready r = n.TakeReady();
  CHECK(r.messages.empty());
  REQUIRE(r.committed.size() == 1);  // its no-op, committed by itself
  CHECK(r.append.size() == 1);       // and persisted in the same Ready, before it is applied
}

TEST_CASE("Figure 2 Candidates: an AppendEntries from the leader of the same term makes a candidate a follower") {
  NodeOptions o;
  o.id = 2;
  o.pre_vote = false;
  RestoredState s;
  s.snapshot.membership = Voters({1, 2, 3});
  Node n(o, std::move(s), 0);
  n.Tick(1000);
  REQUIRE(n.role() == Role::kCandidate);
  Term term = n.term();
  n.Step(Message{1, 2, term, AppendEntries{0, 0, {}, 0}}, 1000);
  CHECK(n.role() == Role::kFollower);
  CHECK(n.leader() == 1);
  CHECK(n.term() == term);
}

TEST_CASE("a pre-candidate rejected by a quorum goes back to follower in the same term") {
  Node n = MakeNode(1, 4, {4});
  n.Tick(1000);
  REQUIRE(n.role() == Role::kPreCandidate);
  n.TakeReady();
  n.Step(Message{2, 1, 4, RequestVoteResponse{false, true}}, 1000);
  CHECK(n.role() == Role::kPreCandidate);  // one rejection of three is not a quorum
  n.Step(Message{3, 1, 4, RequestVoteResponse{false, true}}, 1000);
  CHECK(n.role() == Role::kFollower);
  CHECK(n.term() == 4);
  CHECK_FALSE(n.TakeReady().hard_state.has_value());  // nothing to persist: PreVote changed nothing
}

TEST_CASE("a candidate counts only the votes of voters in its configuration") {
  RestoredState s;
  s.snapshot.membership = Membership{{1, 2, 3}, {4, 5}};
  NodeOptions o;
  o.id = 1;
  o.pre_vote = false;
  Node n(o, std::move(s), 0);
  n.Tick(1000);
  REQUIRE(n.role() == Role::kCandidate);
  Ready r = n.TakeReady();
  CHECK(r.messages.size() == 2);  // learners are not asked
  n.Step(Message{4, 1, n.term(), RequestVoteResponse{true, false}}, 1000);
  n.Step(Message{5, 1, n.term(), RequestVoteResponse{true, false}}, 1000);
  CHECK(n.role() == Role::kCandidate);
  n.Step(Message{3, 1, n.term(), RequestVoteResponse{true, false}}, 1000);
  CHECK(n.role() == Role::kLeader);
}
