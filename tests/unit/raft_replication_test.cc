// Log replication and commitment: Figure 2's AppendEntries rules, the
// current-term commit rule (Figure 8) and fast backtracking.
#include <doctest/doctest.h>

#include "raft/node.h"
#include "tests/raft_sim/step_network.h"

using namespace commitd::raft;
using commitd::raft_sim::StepNetwork;

namespace {

Membership Voters(std::set<NodeId> voters) { return Membership{voters, {}}; }

std::vector<Entry> Entries(std::vector<Term> terms, Index first = 1) {
  std::vector<Entry> out;
  for (Term t : terms) out.push_back(Entry{t, first + out.size(), EntryType::kNormal, "e" + std::to_string(t)});
  return out;
}

Node Follower(Term term, std::vector<Term> log_terms) {
  RestoredState s;
  s.hard_state = {term, kNoNode};
  s.snapshot.membership = Voters({1, 2, 3});
  s.entries = Entries(log_terms);
  NodeOptions o;
  o.id = 2;
  return Node(o, std::move(s), 0);
}

Message Append(Term term, Index prev_index, Term prev_term, std::vector<Entry> entries, Index commit) {
  return Message{1, 2, term, AppendEntries{prev_index, prev_term, std::move(entries), commit}};
}

AppendEntriesResponse OnlyAppendResponse(const Ready& r) {
  REQUIRE(r.messages.size() == 1);
  return std::get<AppendEntriesResponse>(r.messages[0].body);
}

StepNetwork::Storage Stored(Term term, std::vector<Term> log_terms) {
  StepNetwork::Storage s;
  s.hard_state = {term, kNoNode};
  s.snapshot.membership = Voters({1, 2, 3});
  s.entries = Entries(log_terms);
  return s;
}

std::vector<Term> Terms(const Log& log) {
  std::vector<Term> out;
  for (Index i = log.first_index(); i <= log.last_index(); ++i) out.push_back(log.At(i).term);
  return out;
}

}  // namespace

TEST_CASE("Figure 2 AppendEntries: reply false if term < currentTerm") {
  Node n = Follower(4, {1, 2});
  n.Step(Append(3, 2, 2, Entries({3}, 3), 2), 0);
  Ready r = n.TakeReady();
  CHECK_FALSE(OnlyAppendResponse(r).success);
  CHECK(r.messages[0].term == 4);
  CHECK(n.log().last_index() == 2);
}

TEST_CASE("Figure 2 AppendEntries: reply false if the log has no entry at prevLogIndex with prevLogTerm") {
  SUBCASE("the log is too short: the hint is its end") {
    Node n = Follower(1, {1, 1});
    n.Step(Append(2, 5, 1, {}, 0), 0);
    AppendEntriesResponse r = OnlyAppendResponse(n.TakeReady());
    CHECK_FALSE(r.success);
    CHECK(r.rejected_prev_index == 5);
    CHECK(r.conflict_term == 0);
    CHECK(r.conflict_index == 3);
  }
  SUBCASE("the terms differ: the hint is the conflicting term and where it starts") {
    Node n = Follower(3, {1, 2, 2, 2, 3});
    n.Step(Append(4, 4, 3, {}, 0), 0);
    AppendEntriesResponse r = OnlyAppendResponse(n.TakeReady());
    CHECK_FALSE(r.success);
    CHECK(r.conflict_term == 2);
    CHECK(r.conflict_index == 2);
  }
}

TEST_CASE("Figure 2 AppendEntries: an existing entry that conflicts with a new one is deleted with all that follow") {
  Node n = Follower(2, {1, 2, 2, 2});
  n.Step(Append(3, 1, 1, Entries({3}, 2), 0), 0);
  Ready r = n.TakeReady();
  CHECK(OnlyAppendResponse(r).success);
  CHECK(OnlyAppendResponse(r).match_index == 2);
  CHECK(Terms(n.log()) == std::vector<Term>{1, 3});
  // The driver learns what to delete and what to append in the Ready that
  // carries the acknowledgement, and must make it durable before sending it.
  CHECK(r.truncate_from == Index{2});
  REQUIRE(r.append.size() == 1);
  CHECK(r.append[0].term == 3);
}

TEST_CASE("Figure 2 AppendEntries: a stale or duplicated append never truncates entries that match") {
  Node n = Follower(1, {1, 1, 1, 1, 1});
  // An old append carrying entries 2..3 arrives after 4..5 were appended.
  n.Step(Append(1, 1, 1, Entries({1, 1}, 2), 0), 0);
  Ready r = n.TakeReady();
  CHECK(OnlyAppendResponse(r).success);
  CHECK(OnlyAppendResponse(r).match_index == 3);
  CHECK_FALSE(r.truncate_from.has_value());
  CHECK(r.append.empty());
  CHECK(n.log().last_index() == 5);
}

TEST_CASE("Figure 2 AppendEntries: commitIndex = min(leaderCommit, index of last new entry)") {
  Node n = Follower(1, {1, 1, 1, 1, 1});
  // Entries 4..5 might not be the leader's: a heartbeat that only vouches up to 2 commits only 2.
  n.Step(Append(1, 2, 1, {}, 5), 0);
  CHECK(n.commit_index() == 2);
  Ready r = n.TakeReady();
  CHECK(r.committed.size() == 2);
  n.Step(Append(1, 4, 1, {}, 5), 0);
  CHECK(n.commit_index() == 4);
}

TEST_CASE("Figure 8: a leader only commits entries of its current term by counting replicas") {
  // Node 1 holds entry 2 of term 2 that no one else has; it wins term 3.
  // Appends carry one entry, so entry 2 reaches the followers before the
  // leader's own no-op (entry 3) does.
  auto run = [](bool unsafe) {
    NodeOptions tuning;
    tuning.max_entries_per_append = 1;
    tuning.unsafe_commit_previous_term = unsafe;
    auto net = std::make_unique<StepNetwork>(3, tuning);
    net->Load(1, Stored(2, {1, 2}));
    net->Load(2, Stored(2, {1}));
    net->Load(3, Stored(2, {1}));
    net->Campaign(1);
    // Deliver until both followers hold entry 2 but not entry 3.
    while (net->node(1).MatchIndex(2) < 2 || net->node(1).MatchIndex(3) < 2) net->DeliverAll(1);
    return net;
  };
  auto safe = run(false);
  CHECK(safe->node(1).term() == 3);
  CHECK(safe->node(1).log().TermAt(2) == Term{2});
  CHECK(safe->node(1).commit_index() == 0);  // replicated on all three, and still not committed
  safe->DeliverAll();
  CHECK(safe->node(1).commit_index() == 3);  // committed with the no-op of term 3

  auto unsafe = run(true);
  CHECK(unsafe->node(1).commit_index() == 2);  // what the paper's Figure 8 shows to be unsafe
}

TEST_CASE("fast backtracking: one round trip per conflicting term, not per entry") {
  // Node 2 holds 30 entries of terms 2, 3 and 4 that no leader kept; node 1
  // holds 20 of terms 5 and 6 and becomes leader of term 7.
  std::vector<Term> leader_log = {1}, follower_log = {1};
  for (Term t : {5, 6}) leader_log.insert(leader_log.end(), 10, t);
  for (Term t : {2, 3, 4}) follower_log.insert(follower_log.end(), 10, t);
  StepNetwork net(3);
  net.Load(1, Stored(6, leader_log));
  net.Load(2, Stored(6, follower_log));
  net.Load(3, Stored(6, {1}));
  net.Campaign(1);
  net.DeliverAll();
  REQUIRE(net.node(1).role() == Role::kLeader);
  std::size_t rejections_from_2 = 0;
  for (const std::string& line : net.transcript()) {
    if (line.rfind("2->1 t7 AppendEntriesResponse reject", 0) == 0) ++rejections_from_2;
  }
  // The probe at 21 finds term 3 (starting at 12), the probe at 11 finds term
  // 2 (starting at 2), the probe at 1 matches: two rejections where one entry
  // per round trip would take twenty.
  CHECK(rejections_from_2 == 2);
  CHECK(Terms(net.node(2).log()) == Terms(net.node(1).log()));
  CHECK(net.node(1).commit_index() == net.node(1).log().last_index());
}

TEST_CASE("a lagging follower with a short log is caught up from its end in one round trip") {
  std::vector<Term> long_log(40, 1);
  StepNetwork net(3);
  net.Load(1, Stored(1, long_log));
  net.Load(2, Stored(1, {1, 1}));
  net.Load(3, Stored(1, long_log));
  net.Campaign(1);
  net.DeliverAll();
  std::size_t rejections = 0;
  for (const std::string& line : net.transcript()) rejections += line.rfind("2->1 t2 AppendEntriesResponse reject", 0) == 0;
  CHECK(rejections == 1);
  CHECK(net.node(2).log().last_index() == 41);
}

TEST_CASE("lost appends are repaired by the heartbeat") {
  StepNetwork net(3);
  net.Campaign(1);
  net.DeliverAll();
  net.DropIf([](const Message& m) { return m.to == 3; });
  for (int i = 0; i < 5; ++i) net.Propose(1, "v" + std::to_string(i));
  net.DeliverAll();
  CHECK(net.node(1).commit_index() == 6);  // nodes 1 and 2 are a quorum
  CHECK(net.node(3).log().last_index() == 1);
  net.Heal();
  for (int i = 0; i < 4; ++i) {
    net.Advance(50);
    net.DeliverAll();
  }
  CHECK(net.node(3).log().last_index() == 6);
  CHECK(net.applied(3).size() == 6);
  CHECK(net.applied(3).back().data == "v4");
}

TEST_CASE("a follower refuses proposals and names the leader") {
  StepNetwork net(3);
  net.Campaign(1);
  net.DeliverAll();
  ProposeResult r = net.Propose(2, "x");
  CHECK(r.status == ProposeStatus::kNotLeader);
  CHECK(r.leader == 1);
}

TEST_CASE("a restarted node rebuilds its log and term from storage and relearns the commit index") {
  StepNetwork net(3);
  net.Campaign(1);
  net.DeliverAll();
  net.Propose(1, "a");
  net.Propose(1, "b");
  net.DeliverAll();
  net.Advance(50);
  net.DeliverAll();
  Term term = net.node(2).term();
  net.Crash(2);
  net.Restart(2);
  CHECK(net.node(2).term() == term);
  CHECK(net.node(2).log().last_index() == 3);
  CHECK(net.node(2).commit_index() == 0);  // the commit index is volatile
  net.Advance(50);
  net.DeliverAll();
  CHECK(net.node(2).commit_index() == 3);
  // Its state machine was volatile too: the entries are applied again, in order.
  CHECK(net.applied(2).size() == 6);
  CHECK(net.applied(2)[3].index == 1);
}

namespace {

// A follower whose log was compacted up to (5, term 3), holding 6..8 after it.
Node CompactedFollower() {
  RestoredState s;
  s.hard_state = {4, kNoNode};
  s.snapshot = SnapshotMeta{5, 3, Voters({1, 2, 3})};
  s.entries = Entries({3, 4, 4}, 6);
  s.applied = 5;
  NodeOptions o;
  o.id = 2;
  return Node(o, std::move(s), 0);
}

}  // namespace

TEST_CASE("an append whose prevLogIndex is the log's base with another prevLogTerm is refused, never read below the log") {
  SUBCASE("base 0: no entry 0 has a term but 0") {
    Node n = Follower(1, {1, 1});
    n.Step(Append(2, 0, 7, Entries({2}, 1), 0), 0);
    AppendEntriesResponse r = OnlyAppendResponse(n.TakeReady());
    CHECK_FALSE(r.success);
    CHECK(r.rejected_prev_index == 0);
    CHECK(r.conflict_index == 1);
    CHECK(Terms(n.log()) == std::vector<Term>{1, 1});
  }
  SUBCASE("a snapshot base") {
    Node n = CompactedFollower();
    n.Step(Append(4, 5, 2, Entries({4}, 6), 0), 0);
    AppendEntriesResponse r = OnlyAppendResponse(n.TakeReady());
    CHECK_FALSE(r.success);
    CHECK(r.rejected_prev_index == 5);
    CHECK(r.conflict_term == 3);
    CHECK(r.conflict_index == 6);
    CHECK(Terms(n.log()) == std::vector<Term>{3, 4, 4});
  }
  SUBCASE("entries that start inside the snapshot and then skip indexes") {
    Node n = CompactedFollower();
    std::vector<Entry> gap = Entries({3}, 4);
    gap.push_back(Entry{4, 20, EntryType::kNormal, "far"});
    n.Step(Append(4, 3, 3, gap, 0), 0);
    AppendEntriesResponse r = OnlyAppendResponse(n.TakeReady());
    CHECK_FALSE(r.success);
    CHECK(n.log().last_index() == 8);
  }
}

TEST_CASE("Log::FirstIndexOfTerm never reads outside the log") {
  Log log(SnapshotMeta{5, 3, Voters({1})}, Entries({3, 4, 4}, 6));
  CHECK(log.FirstIndexOfTerm(5) == 6);
  CHECK(log.FirstIndexOfTerm(0) == 6);
  CHECK(log.FirstIndexOfTerm(9) == 6);
  CHECK(log.FirstIndexOfTerm(8) == 7);
}
