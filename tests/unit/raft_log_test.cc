// raft::Log and raft::Membership: the in-memory log view and configurations.
#include <doctest/doctest.h>

#include "raft/log.h"

using namespace commitd::raft;

namespace {

Entry E(Index index, Term term, std::string data = "") { return Entry{term, index, EntryType::kNormal, std::move(data)}; }

Entry Config(Index index, Term term, const Membership& m) { return Entry{term, index, EntryType::kConfig, m.Encode()}; }

Membership Voters(std::set<NodeId> voters, std::set<NodeId> learners = {}) { return Membership{voters, learners}; }

}  // namespace

TEST_CASE("an empty log has index 0 and term 0, and answers TermAt(0)") {
  Log log;
  CHECK(log.last_index() == 0);
  CHECK(log.last_term() == 0);
  CHECK(log.TermAt(0) == Term{0});
  CHECK_FALSE(log.TermAt(1).has_value());
}

TEST_CASE("TermAt, Slice and truncation") {
  Log log({}, {E(1, 1), E(2, 1), E(3, 2), E(4, 3)});
  CHECK(log.last_index() == 4);
  CHECK(log.last_term() == 3);
  CHECK(log.TermAt(3) == Term{2});
  CHECK(log.Slice(2, 4, 2).size() == 2);
  CHECK(log.Slice(2, 4, 2).back().index == 3);
  log.TruncateFrom(3);
  CHECK(log.last_index() == 2);
  CHECK(log.last_term() == 1);
  CHECK_FALSE(log.TermAt(3).has_value());
}

TEST_CASE("FirstIndexOfTerm and LastIndexOfTerm find the edges of a term's run") {
  Log log({}, {E(1, 1), E(2, 2), E(3, 2), E(4, 2), E(5, 4), E(6, 4)});
  CHECK(log.FirstIndexOfTerm(4) == 2);
  CHECK(log.FirstIndexOfTerm(6) == 5);
  CHECK(log.LastIndexOfTerm(2) == Index{4});
  CHECK(log.LastIndexOfTerm(4) == Index{6});
  CHECK_FALSE(log.LastIndexOfTerm(3).has_value());
  CHECK_FALSE(log.LastIndexOfTerm(5).has_value());
}

TEST_CASE("up-to-date comparison (Raft §5.4.1): later last term wins, then longer log") {
  Log log({}, {E(1, 1), E(2, 2), E(3, 2)});
  CHECK(log.IsUpToDate(1, 3));
  CHECK(log.IsUpToDate(3, 2));
  CHECK(log.IsUpToDate(4, 2));
  CHECK_FALSE(log.IsUpToDate(2, 2));
  CHECK_FALSE(log.IsUpToDate(10, 1));
}

TEST_CASE("compaction keeps the base term and the membership in force at the base") {
  Membership m1 = Voters({1, 2, 3});
  Membership m2 = Voters({1, 2, 3}, {4});
  Log log(SnapshotMeta{0, 0, m1}, {E(1, 1), Config(2, 1, m2), E(3, 2), E(4, 2)});
  CHECK(log.membership() == m2);
  CHECK(log.MembershipAt(1) == m1);
  log.CompactTo(3);
  CHECK(log.base().index == 3);
  CHECK(log.base().term == 2);
  CHECK(log.base().membership == m2);
  CHECK(log.first_index() == 4);
  CHECK(log.TermAt(3) == Term{2});
  CHECK_FALSE(log.TermAt(2).has_value());
  CHECK(log.membership() == m2);
  CHECK(log.LastIndexOfTerm(2) == Index{4});
}

TEST_CASE("a configuration takes effect when appended and is undone when truncated away") {
  Membership m1 = Voters({1, 2, 3});
  Membership m2 = Voters({1, 2});
  Log log(SnapshotMeta{0, 0, m1}, {E(1, 1)});
  log.Append(Config(2, 1, m2));
  CHECK(log.membership() == m2);
  CHECK(log.last_config_index() == 2);
  log.TruncateFrom(2);
  CHECK(log.membership() == m1);
  CHECK(log.last_config_index() == 0);
}

TEST_CASE("installing a snapshot keeps a matching suffix and drops a conflicting log") {
  Membership m = Voters({1, 2, 3});
  Log matching({}, {E(1, 1), E(2, 1), E(3, 2), E(4, 2)});
  CHECK(matching.InstallSnapshot(SnapshotMeta{2, 1, m}));
  CHECK(matching.first_index() == 3);
  CHECK(matching.last_index() == 4);

  Log conflicting({}, {E(1, 1), E(2, 1), E(3, 2)});
  CHECK_FALSE(conflicting.InstallSnapshot(SnapshotMeta{3, 3, m}));
  CHECK(conflicting.last_index() == 3);
  CHECK(conflicting.last_term() == 3);
  CHECK(conflicting.membership() == m);
}

TEST_CASE("membership encoding round-trips and rejects garbage") {
  Membership m = Voters({1, 2, 30}, {4});
  CHECK(m.Encode() == "v=1,2,30;l=4");
  CHECK(Membership::Decode(m.Encode()) == m);
  CHECK(Membership::Decode("v=;l=") == Membership{});
  CHECK_FALSE(Membership::Decode("v=1,x;l=").has_value());
  CHECK_FALSE(Membership::Decode("v=1;l=1").has_value());  // a learner cannot also vote
  CHECK_FALSE(Membership::Decode("1,2").has_value());
}

TEST_CASE("single-server changes: learner first, then promote; never remove the last voter") {
  Membership m = Voters({1, 2, 3});
  CHECK_FALSE(Apply(m, {ConfChangeType::kPromote, 4}).has_value());  // not a learner yet
  auto with_learner = Apply(m, {ConfChangeType::kAddLearner, 4});
  REQUIRE(with_learner);
  CHECK(with_learner->IsLearner(4));
  CHECK(with_learner->Quorum() == 2);  // learners do not count
  auto promoted = Apply(*with_learner, {ConfChangeType::kPromote, 4});
  REQUIRE(promoted);
  CHECK(promoted->IsVoter(4));
  CHECK(promoted->Quorum() == 3);
  CHECK_FALSE(Apply(m, {ConfChangeType::kAddLearner, 2}).has_value());
  CHECK_FALSE(Apply(Voters({1}), {ConfChangeType::kRemove, 1}).has_value());
  CHECK(Apply(m, {ConfChangeType::kRemove, 2})->voters == std::set<NodeId>{1, 3});
}
