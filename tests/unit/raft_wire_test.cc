// raft/wire.h on bytes from outside: a frame is well formed, or refused with
// a Status before the Raft core sees it; never a crash.
#include <doctest/doctest.h>

#include <random>

#include "coordinator/raft_codec.h"
#include "raft/node.h"
#include "raft/wire.h"

using namespace commitd;
using namespace commitd::raft;

namespace {

Message AppendOf(Index prev_index, Term prev_term, std::vector<Entry> entries) {
  return Message{1, 2, 5, AppendEntries{prev_index, prev_term, std::move(entries), 0, 0}};
}

Entry E(Index index, Term term, EntryType type = EntryType::kNormal, std::string data = "x") {
  return Entry{term, index, type, std::move(data)};
}

}  // namespace

TEST_CASE("wire: an append whose entries do not follow its prevLogIndex one by one is refused") {
  CHECK(DecodeMessages(EncodeMessages({AppendOf(3, 2, {E(4, 2), E(5, 3)})})).ok());
  CHECK(DecodeMessages(EncodeMessages({AppendOf(3, 2, {})})).ok());
  CHECK_FALSE(DecodeMessages(EncodeMessages({AppendOf(3, 2, {E(5, 2)})})).ok());          // skips 4
  CHECK_FALSE(DecodeMessages(EncodeMessages({AppendOf(3, 2, {E(4, 2), E(4, 2)})})).ok());  // repeats 4
  CHECK_FALSE(DecodeMessages(EncodeMessages({AppendOf(3, 2, {E(4, 3), E(5, 2)})})).ok());  // terms go down
  CHECK_FALSE(DecodeMessages(EncodeMessages({AppendOf(3, 4, {E(4, 3)})})).ok());           // below prevLogTerm
}

TEST_CASE("wire: a configuration entry that holds no membership is refused") {
  CHECK(DecodeMessages(EncodeMessages({AppendOf(0, 0, {E(1, 1, EntryType::kConfig, "v=1,2;l=")})})).ok());
  auto bad = DecodeMessages(EncodeMessages({AppendOf(0, 0, {E(1, 1, EntryType::kConfig, "garbage")})}));
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("wire and commands: random bytes and mutated frames fail with a Status or decode to what a node steps") {
  std::vector<Message> all = {
      AppendOf(3, 2, {E(4, 2), E(5, 3, EntryType::kConfig, "v=1,2,3;l=4")}),
      Message{2, 1, 4, AppendEntriesResponse{false, 0, 7, 2, 5, 9}},
      Message{2, 1, 3, RequestVote{10, 3, true, false}},
      Message{1, 2, 2, InstallSnapshot{SnapshotMeta{5, 2, Membership{{1, 2}, {}}}, 0, "chunk", true}},
  };
  const std::string frame = EncodeMessages(all);
  coordinator::DecisionRecord record;
  record.txid = "t1";
  record.outcome = coordinator::Outcome::kCommitted;
  record.participants = {{"a", "http://a"}};
  record.reply = {{"txid", "t1"}};
  const std::string command = coordinator::EncodeCommand(coordinator::command::Decide{record});
  std::mt19937_64 random(7);
  for (int round = 0; round < 20000; ++round) {
    std::string f = frame;
    std::string c = command;
    const int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) {
      f[4 + random() % (f.size() - 4)] = static_cast<char>(random());
      c[random() % c.size()] = static_cast<char>(random());
    }
    auto messages = DecodeMessages(f);
    (void)coordinator::DecodeCommand(c);
    if (!messages.ok()) continue;
    // What decodes is stepped into a follower whose log could hold it.
    RestoredState s;
    s.snapshot.membership = Membership{{1, 2, 3}, {}};
    for (Index i = 1; i <= 4; ++i) s.entries.push_back(E(i, i <= 3 ? 1 : 2));
    NodeOptions o;
    o.id = 2;
    Node node(o, std::move(s), 0);
    for (auto& m : *messages) {
      m.to = 2;
      node.Step(m, 1);
    }
    node.TakeReady();
  }
  std::string noise(64, '\0');
  for (int round = 0; round < 2000; ++round) {
    for (auto& ch : noise) ch = static_cast<char>(random());
    CHECK_FALSE(DecodeMessages("RFT1" + noise).ok());
    (void)coordinator::DecodeCommand(noise);
  }
}
