// The durable half of a coordinator group member: raft::Storage on a real
// SQLite file, the state machine snapshot, and the codecs of what travels
// between members and what the Raft log holds.
#include <doctest/doctest.h>

#include "tests/unit/support/temp_dir.h"

#include "coordinator/decision_store.h"
#include "coordinator/group_members.h"
#include "coordinator/raft_codec.h"
#include "raft/storage.h"
#include "raft/wire.h"
#include "coordinator/state_snapshot.h"

using namespace commitd;
using namespace commitd::coordinator;

namespace {

std::unique_ptr<sqlite::Database> OpenDb(const std::string& path) {
  auto db = sqlite::Database::Open(path);
  REQUIRE(db.ok());
  REQUIRE(DecisionStore(**db).CreateSchema().ok());
  return std::move(db).value();
}

raft::Entry E(raft::Index i, raft::Term t, std::string data = "x") {
  return raft::Entry{t, i, raft::EntryType::kNormal, std::move(data)};
}

DecisionRecord Decided(const std::string& txid, Outcome outcome) {
  DecisionRecord r;
  r.txid = txid;
  r.outcome = outcome;
  r.participants = {{"bank-a", "http://a"}, {"bank-b", "http://b"}};
  r.reason = outcome == Outcome::kAborted ? "bank-a voted no: x" : "";
  r.idempotency_key = "key-" + txid;
  r.reply = {{"txid", txid}, {"outcome", OutcomeName(outcome)}};
  r.created_ms = 5;
  r.decided_ms = 7;
  return r;
}

}  // namespace

TEST_CASE("raft storage: term, vote and log survive a reopen; truncation and bootstrap membership") {
  testing::TempDir dir;
  const std::string path = dir.File("raft.db");
  raft::Membership boot;
  boot.voters = {1, 2, 3};
  {
    auto db = OpenDb(path);
    raft::Storage st(*db);
    REQUIRE(st.Init(boot).ok());
    REQUIRE(st.SaveHardState({4, 2}).ok());
    REQUIRE(st.Append({E(1, 1), E(2, 1), E(3, 4, "three")}).ok());
    REQUIRE(st.TruncateFrom(3).ok());
    REQUIRE(st.Append({E(3, 4, "new three"), E(4, 4)}).ok());
    REQUIRE(st.SetApplied(2).ok());
  }
  auto db = OpenDb(path);
  raft::Storage st(*db);
  raft::Membership other;
  other.voters = {9};
  REQUIRE(st.Init(other).ok());  // ignored: the file already has its membership
  auto loaded = st.Load();
  REQUIRE(loaded.ok());
  CHECK(loaded->hard_state.term == 4);
  CHECK(loaded->hard_state.voted_for == 2);
  CHECK(loaded->snapshot.membership == boot);
  CHECK(loaded->applied == 2);
  REQUIRE(loaded->entries.size() == 4);
  CHECK(loaded->entries[2].data == "new three");
  CHECK(loaded->entries[3].index == 4);
}

TEST_CASE("raft storage: a snapshot becomes the base and the log before it goes; its bytes are not stored") {
  testing::TempDir dir;
  auto db = OpenDb(dir.File("raft.db"));
  raft::Storage st(*db);
  raft::Membership boot;
  boot.voters = {1, 2, 3};
  REQUIRE(st.Init(boot).ok());
  REQUIRE(st.Append({E(1, 1), E(2, 1), E(3, 2), E(4, 2)}).ok());
  // A format-1 file kept the snapshot's bytes; saving a snapshot drops them.
  REQUIRE(db->Exec("INSERT INTO raft_state(key, value) VALUES ('snapshot_data', x'00')").ok());
  raft::SnapshotMeta meta{3, 2, boot};
  REQUIRE(st.SaveSnapshot(meta).ok());
  auto loaded = st.Load();
  REQUIRE(loaded.ok());
  CHECK(loaded->snapshot.index == 3);
  CHECK(loaded->snapshot.term == 2);
  CHECK(loaded->snapshot.membership == boot);
  CHECK_FALSE(loaded->snapshot_data);  // the state machine tables are the snapshot
  REQUIRE(loaded->entries.size() == 1);
  CHECK(loaded->entries[0].index == 4);
  CHECK(loaded->applied == 3);  // never below the snapshot
  CHECK(*st.Applied() == 3);
  REQUIRE(st.SetApplied(4).ok());
  CHECK(*st.Applied() == 4);
  sqlite::Statement* left = db->Prepare("SELECT count(*) FROM raft_state WHERE key = 'snapshot_data'");
  REQUIRE(left->Step());
  CHECK(left->Int(0) == 0);
  left->Reset();
}

TEST_CASE("raft storage: the file records its format and refuses a newer one") {
  testing::TempDir dir;
  const std::string path = dir.File("raft.db");
  raft::Membership boot;
  boot.voters = {1};
  {
    auto db = OpenDb(path);
    REQUIRE(raft::Storage(*db).Init(boot).ok());
    sqlite::Statement* format = db->Prepare("SELECT value FROM raft_state WHERE key = 'format'");
    REQUIRE(format->Step());
    CHECK(format->Int(0) == 2);
    format->Reset();
    REQUIRE(db->Exec("UPDATE raft_state SET value = 3 WHERE key = 'format'").ok());
  }
  auto db = OpenDb(path);
  CHECK(raft::Storage(*db).Init(boot).code() == StatusCode::kCorruption);
}

TEST_CASE("state machine snapshot: restore reproduces every decision and the registry, replacing what was there") {
  testing::TempDir dir;
  auto a = OpenDb(dir.File("a.db"));
  DecisionStore sa(*a);
  REQUIRE(sa.InsertDecision(Decided("t1", Outcome::kCommitted)).ok());
  DecisionRecord pre = Decided("t2", Outcome::kPending);
  pre.protocol = wire::Protocol::k3pc;
  REQUIRE(sa.InsertDecision(pre).ok());
  REQUIRE(sa.MarkFinished("t1", 9).ok());
  REQUIRE(sa.PutParticipant({"bank-a", "http://a", 3}).ok());
  auto snapshot = SnapshotStateMachine(*a);
  REQUIRE(snapshot.ok());

  auto b = OpenDb(dir.File("b.db"));
  DecisionStore sb(*b);
  REQUIRE(sb.InsertDecision(Decided("stale", Outcome::kAborted)).ok());
  REQUIRE(RestoreStateMachine(*b, *snapshot).ok());
  CHECK_FALSE(sb.FindByTxid("stale")->has_value());
  auto t1 = sb.FindByTxid("t1");
  REQUIRE(t1->has_value());
  CHECK((*t1)->finished);
  CHECK((*t1)->finished_ms == 9);
  CHECK((*t1)->reply == Decided("t1", Outcome::kCommitted).reply);
  auto t2 = sb.FindByIdempotencyKey("key-t2");
  REQUIRE(t2->has_value());
  CHECK((*t2)->outcome == Outcome::kPending);
  CHECK((*t2)->protocol == wire::Protocol::k3pc);
  auto registry = sb.Registry();
  REQUIRE(registry->size() == 1);
  CHECK((*registry)[0].url == "http://a");
  CHECK(RestoreStateMachine(*b, "{}").code() == StatusCode::kCorruption);
}

TEST_CASE("state machine snapshot: a decision whose txid is not a txid is refused, as the log would refuse to read it") {
  testing::TempDir dir;
  auto a = OpenDb(dir.File("a.db"));
  REQUIRE(DecisionStore(*a).InsertDecision(Decided("c1-2", Outcome::kCommitted)).ok());
  auto b = OpenDb(dir.File("b.db"));
  // Version 1, one document.
  auto document = SnapshotStateMachineAsOneDocument(*a);
  REQUIRE(document.ok());
  auto j = nlohmann::json::parse(*document);
  j["decisions"][0]["txid"] = "c1-]";  // found by the state_snapshot fuzz target
  Status s = RestoreStateMachine(*b, j.dump());
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message().find("invalid txid") != std::string::npos);
  // Version 2, a line per decision.
  auto lines = SnapshotStateMachine(*a);
  REQUIRE(lines.ok());
  const std::string bad = std::string(*lines).replace(lines->rfind("\"c1-2\""), 6, "\"c1-]\"");  // the record's own txid
  s = RestoreStateMachine(*b, bad);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK(s.message().find("invalid txid") != std::string::npos);
}

TEST_CASE("state machine snapshot: one line per decision, between a header and an end that counts them") {
  testing::TempDir dir;
  auto a = OpenDb(dir.File("a.db"));
  DecisionStore sa(*a);
  for (const char* txid : {"t1", "t2", "t3"}) REQUIRE(sa.InsertDecision(Decided(txid, Outcome::kCommitted)).ok());
  REQUIRE(sa.PutParticipant({"bank-a", "http://a", 3}).ok());
  auto snapshot = SnapshotStateMachine(*a);
  REQUIRE(snapshot.ok());
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < snapshot->size();) {
    const std::size_t end = snapshot->find('\n', at);
    REQUIRE(end != std::string::npos);  // every line ends with a newline
    lines.push_back(snapshot->substr(at, end - at));
    at = end + 1;
  }
  REQUIRE(lines.size() == 5);
  CHECK(nlohmann::json::parse(lines[0])["version"] == 2);
  CHECK(nlohmann::json::parse(lines[1])["txid"] == "t1");
  CHECK(lines[4] == R"({"end":{"decisions":3}})");

  auto b = OpenDb(dir.File("b.db"));
  DecisionStore sb(*b);
  REQUIRE(RestoreStateMachine(*b, *snapshot).ok());
  CHECK(sb.FindByTxid("t3")->has_value());
  CHECK(sb.Registry()->size() == 1);
  CHECK(*SnapshotStateMachine(*b) == *snapshot);

  auto joined = [&lines](std::vector<std::string> parts) {
    std::string out;
    for (const auto& p : parts) out += p + "\n";
    return out;
  };
  for (const std::string& broken : {
           joined({lines[0], lines[1], lines[2], lines[3]}),            // the end line cut off
           joined({lines[0], lines[1], lines[2], lines[3], lines[4]}).substr(0, snapshot->size() - 9),
           joined({lines[0], lines[1], lines[3], lines[4]}),            // a decision missing
           joined({lines[0], lines[1], lines[2], lines[3], lines[4], lines[1]}),  // something after the end
           joined({lines[0], lines[1], "", lines[2], lines[3], lines[4]}),
           joined({lines[1], lines[2], lines[3], lines[4]}),            // no header
       }) {
    CAPTURE(broken);
    Status s;
    CHECK_NOTHROW(s = RestoreStateMachine(*b, broken));
    CHECK(s.code() == StatusCode::kCorruption);
  }
}

TEST_CASE("state machine snapshot: a version-1 document, as older members sent it, restores the same state") {
  testing::TempDir dir;
  auto a = OpenDb(dir.File("a.db"));
  DecisionStore sa(*a);
  REQUIRE(sa.InsertDecision(Decided("t1", Outcome::kCommitted)).ok());
  REQUIRE(sa.InsertDecision(Decided("t2", Outcome::kAborted)).ok());
  REQUIRE(sa.PutParticipant({"bank-a", "http://a", 3}).ok());
  auto document = SnapshotStateMachineAsOneDocument(*a);
  REQUIRE(document.ok());
  CHECK(document->find('\n') == std::string::npos);
  auto b = OpenDb(dir.File("b.db"));
  REQUIRE(RestoreStateMachine(*b, *document).ok());
  CHECK(*SnapshotStateMachine(*b) == *SnapshotStateMachine(*a));
}

TEST_CASE("state machine snapshot: bytes from another member that are not a snapshot fail with Corruption, never throw") {
  testing::TempDir dir;
  auto b = OpenDb(dir.File("b.db"));
  REQUIRE(GroupMembersTable(*b).CreateSchema().ok());
  for (std::string garbage : {"", "not json", "[]", "{\"version\":\"1\",\"decisions\":[],\"participants\":[]}",
                              "{\"version\":1,\"decisions\":5,\"participants\":[]}",
                              "{\"version\":1,\"decisions\":[7],\"participants\":[]}",
                              "{\"version\":1,\"decisions\":[],\"participants\":[{\"name\":1}]}",
                              "{\"version\":1,\"decisions\":[],\"participants\":[],\"members\":{\"c1\":3}}"}) {
    CAPTURE(garbage);
    Status s;
    CHECK_NOTHROW(s = RestoreStateMachine(*b, garbage));
    CHECK(s.code() == StatusCode::kCorruption);
  }
}

TEST_CASE("codecs: raft messages and log commands round-trip") {
  raft::AppendEntries ae;
  ae.prev_index = 7;
  ae.prev_term = 3;
  ae.entries = {E(8, 3, "{\"op\":1}"), raft::Entry{4, 9, raft::EntryType::kConfig, "v=1,2,3;l="}};
  ae.leader_commit = 6;
  ae.read_round = 2;
  raft::Message m{NodeIdOf("c1"), NodeIdOf("c2"), 4, ae};

  raft::InstallSnapshot is;
  is.meta.index = 5;
  is.meta.term = 2;
  is.meta.membership.voters = {1, 2, 3};
  is.meta.membership.learners = {4};
  is.chunk = std::string("\0\xff binary", 9);
  is.done = true;
  std::vector<raft::Message> all = {
      m,
      raft::Message{1, 2, 2, is},
      raft::Message{2, 1, 3, raft::RequestVote{10, 3, true, false}},
      raft::Message{1, 2, 3, raft::RequestVoteResponse{true, true}},
      raft::Message{2, 1, 4, raft::AppendEntriesResponse{false, 0, 7, 2, 5, 9}},
      raft::Message{2, 1, 4, raft::InstallSnapshotResponse{5, 64, false}},
      raft::Message{1, 3, 4, raft::TimeoutNow{}}};
  const std::string frame = raft::EncodeMessages(all);
  auto back = raft::DecodeMessages(frame);
  REQUIRE(back.ok());
  REQUIRE(back->size() == all.size());
  CHECK((*back)[0].from == m.from);
  CHECK((*back)[0].term == 4);
  const auto& got = std::get<raft::AppendEntries>((*back)[0].body);
  CHECK(got.entries == ae.entries);
  CHECK(got.leader_commit == 6);
  CHECK(got.read_round == 2);
  CHECK(std::get<raft::InstallSnapshot>((*back)[1].body).chunk == is.chunk);
  CHECK(std::get<raft::InstallSnapshot>((*back)[1].body).meta == is.meta);
  CHECK(std::get<raft::RequestVote>((*back)[2].body).pre_vote);
  CHECK(std::get<raft::AppendEntriesResponse>((*back)[4].body).conflict_index == 5);
  CHECK(std::get<raft::InstallSnapshotResponse>((*back)[5].body).next_offset == 64);
  CHECK(std::holds_alternative<raft::TimeoutNow>((*back)[6].body));
  // Every truncation, and garbage, is refused rather than misread.
  for (std::size_t n = 0; n < frame.size(); ++n) CHECK_FALSE(raft::DecodeMessages(frame.substr(0, n)).ok());
  CHECK_FALSE(raft::DecodeMessages(frame + "x").ok());
  CHECK_FALSE(raft::DecodeMessages("{\"messages\":[]}").ok());

  DecisionRecord full = Decided("t9", Outcome::kAborted);
  full.protocol = wire::Protocol::k3pc;
  full.finished = true;
  full.finished_ms = -3;
  full.heuristic = true;
  const std::string encoded = EncodeCommand(command::Decide{full});
  CHECK(encoded[0] != '{');  // binary (format 2), not JSON
  auto decide = DecodeCommand(encoded);
  REQUIRE(decide.ok());
  const DecisionRecord& got_record = std::get<command::Decide>(*decide).record;
  CHECK(got_record.txid == "t9");
  CHECK(got_record.protocol == wire::Protocol::k3pc);
  CHECK(got_record.outcome == Outcome::kAborted);
  REQUIRE(got_record.participants.size() == 2);
  CHECK(got_record.participants[1].url == "http://b");
  CHECK(got_record.reason == "bank-a voted no: x");
  CHECK(got_record.idempotency_key == "key-t9");
  CHECK(got_record.reply == full.reply);
  CHECK(got_record.created_ms == 5);
  CHECK(got_record.decided_ms == 7);
  CHECK(got_record.finished);
  CHECK(got_record.finished_ms == -3);
  CHECK(got_record.heuristic);
  DecisionRecord no_reply = Decided("t10", Outcome::kCommitted);
  no_reply.reply = nullptr;
  auto decoded_no_reply = DecodeCommand(EncodeCommand(command::Decide{no_reply}));
  REQUIRE(decoded_no_reply.ok());
  CHECK(std::get<command::Decide>(*decoded_no_reply).record.reply.is_null());
  for (std::size_t n = 0; n < encoded.size(); ++n) CHECK_FALSE(DecodeCommand(encoded.substr(0, n)).ok());
  CHECK_FALSE(DecodeCommand(encoded + "x").ok());
  // A decision whose txid is not a txid, from a peer: refused, in either format.
  DecisionRecord bad_txid = Decided("t9?state=prepared", Outcome::kCommitted);
  CHECK(DecodeCommand(EncodeCommand(command::Decide{bad_txid})).status().code() == StatusCode::kCorruption);
  CHECK(DecodeCommand("{\"op\":\"decide\",\"record\":{\"txid\":\"t1/x\",\"protocol\":\"2pc\",\"outcome\":"
                      "\"committed\",\"participants\":[],\"reason\":\"\",\"idempotency_key\":\"\",\"reply\":{},"
                      "\"created_ms\":1,\"decided_ms\":2,\"finished\":false,\"finished_ms\":0,\"heuristic\":false}}")
            .status()
            .code() == StatusCode::kCorruption);
  // Format 1 (JSON), as raft.db files written before hold it, still decodes.
  auto legacy = DecodeCommand(
      "{\"op\":\"decide\",\"record\":{\"txid\":\"t1\",\"protocol\":\"2pc\",\"outcome\":\"committed\","
      "\"participants\":[{\"name\":\"bank-a\",\"url\":\"http://a\"}],\"reason\":\"\",\"idempotency_key\":\"\","
      "\"reply\":{\"txid\":\"t1\"},\"created_ms\":1,\"decided_ms\":2,\"finished\":false,\"finished_ms\":0,"
      "\"heuristic\":false}}");
  REQUIRE(legacy.ok());
  CHECK(std::get<command::Decide>(*legacy).record.participants[0].name == "bank-a");
  auto legacy_finish = DecodeCommand("{\"op\":\"finish\",\"txid\":\"t1\",\"finished_ms\":4}");
  REQUIRE(legacy_finish.ok());
  CHECK(std::get<command::Finish>(*legacy_finish).finished_ms == 4);
  auto finish = DecodeCommand(EncodeCommand(command::Finish{"t9", 42}));
  REQUIRE(finish.ok());
  CHECK(std::get<command::Finish>(*finish).finished_ms == 42);
  auto many = DecodeCommand(EncodeCommand(command::FinishMany{{{"a", 1}, {"b", 2}}}));
  REQUIRE(many.ok());
  REQUIRE(std::get<command::FinishMany>(*many).marks.size() == 2);
  CHECK(std::get<command::FinishMany>(*many).marks[1].txid == "b");
  auto member = DecodeCommand(EncodeCommand(command::SetMember{"c4", "http://h:1"}));
  REQUIRE(member.ok());
  CHECK(std::get<command::SetMember>(*member).url == "http://h:1");
  CHECK(DecodeCommand("not json").status().code() == StatusCode::kCorruption);
  CHECK(DecodeCommand("").status().code() == StatusCode::kCorruption);
  auto participant = DecodeCommand(EncodeCommand(command::PutParticipant{{"bank-c", "http://c", 11}}));
  REQUIRE(participant.ok());
  CHECK(std::get<command::PutParticipant>(*participant).entry.updated_ms == 11);
  CHECK(NodeIdOf("c1") != NodeIdOf("c2"));
  CHECK(NodeIdOf("c1") != raft::kNoNode);
}

TEST_CASE("codecs: the JSON forms refuse a float or a string where an integer belongs, cleanly") {
  // get<int64_t>() of 1e300 is undefined behaviour; these must be errors.
  for (const std::string entry : {
           R"({"op":"finish","txid":"t1","finished_ms":1e300})",
           R"({"op":"finish","txid":"t1","finished_ms":4.5})",
           R"({"op":"finish","txid":"t1","finished_ms":"4"})",
           R"({"op":"finish_many","marks":[{"txid":"t1","finished_ms":-1e300}]})",
           R"({"op":"participant","name":"bank-a","url":"http://a","updated_ms":1e300})",
           R"({"op":"decide","record":{"txid":"t1","protocol":"2pc","outcome":"committed","participants":[],)"
           R"("reason":"","idempotency_key":"","reply":null,"created_ms":1e300,"decided_ms":2,"finished":false,)"
           R"("finished_ms":0,"heuristic":false}})",
       }) {
    CAPTURE(entry);
    CHECK(DecodeCommand(entry).status().code() == StatusCode::kCorruption);
  }
  nlohmann::json record = RecordToJson(Decided("t1", Outcome::kCommitted));
  REQUIRE(RecordFromJson(record).ok());
  record["decided_ms"] = 7.0;
  CHECK(RecordFromJson(record).status().code() == StatusCode::kInvalidArgument);
  CHECK(RegistryEntryFromJson({{"name", "a"}, {"url", "http://a"}, {"updated_ms", 3}})->updated_ms == 3);
  CHECK(RegistryEntryFromJson({{"name", "a"}, {"url", "http://a"}, {"updated_ms", 1e300}}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(RegistryEntryFromJson(nlohmann::json::array()).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("state machine snapshot: a malformed snapshot is Corruption, not an exception") {
  testing::TempDir dir;
  auto db = OpenDb(dir.File("a.db"));
  for (const std::string snapshot : {
           R"({"version":"1","decisions":[],"participants":[]})",  // value("version", 0) threw type_error
           R"({"version":1e300,"decisions":[],"participants":[]})",
           R"({"version":1,"decisions":{},"participants":[]})",
           R"({"version":1,"decisions":[],"participants":7})",
           R"({"version":1,"decisions":[],"participants":[{"name":"a","url":"u","updated_ms":1e300}]})",
           R"({"version":1,"decisions":[],"participants":[["a","u",1]]})",
       }) {
    CAPTURE(snapshot);
    CHECK(RestoreStateMachine(*db, snapshot).code() == StatusCode::kCorruption);
  }
  CHECK(RestoreStateMachine(*db, R"({"version":1,"decisions":[],"participants":[]})").ok());
}

TEST_CASE("group log identity: the command round-trips, the first applied wins, snapshots carry it") {
  auto encoded = EncodeCommand(command::SetIdentity{"feedc0de", "5ec7e7"});
  auto decoded = DecodeCommand(encoded);
  REQUIRE(decoded.ok());
  const auto* identity = std::get_if<command::SetIdentity>(&*decoded);
  REQUIRE(identity != nullptr);
  CHECK(identity->log_id == "feedc0de");
  CHECK(identity->abort_secret == "5ec7e7");

  testing::TempDir dir;
  auto a = OpenDb(dir.File("a.db"));
  DecisionStore sa(*a);
  REQUIRE(sa.SetIdentity("feedc0de", "5ec7e7").ok());
  CHECK(sa.SetIdentity("feedc0de", "5ec7e7").ok());  // the same again: applied twice changes nothing
  CHECK(sa.SetIdentity("0ther", "5ec7e7").code() == StatusCode::kConflict);
  CHECK(sa.SetIdentity("feedc0de", "0ther").code() == StatusCode::kConflict);
  CHECK(*sa.LogId() == "feedc0de");
  CHECK(*sa.AbortSecret() == "5ec7e7");
  REQUIRE(sa.InsertDecision(Decided("t1", Outcome::kCommitted)).ok());
  auto snapshot = SnapshotStateMachine(*a);
  REQUIRE(snapshot.ok());

  auto b = OpenDb(dir.File("b.db"));
  REQUIRE(RestoreStateMachine(*b, *snapshot).ok());
  CHECK(*DecisionStore(*b).LogId() == "feedc0de");
  CHECK(*DecisionStore(*b).AbortSecret() == "5ec7e7");

  // A snapshot of another group's log is refused.
  auto c = OpenDb(dir.File("c.db"));
  REQUIRE(DecisionStore(*c).SetIdentity("another", "secret").ok());
  CHECK(RestoreStateMachine(*c, *snapshot).code() == StatusCode::kCorruption);
  CHECK(*DecisionStore(*c).LogId() == "another");
}
