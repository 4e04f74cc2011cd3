#include <doctest/doctest.h>

#include "tests/unit/support/temp_dir.h"
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "coordinator/sqlite_decision_log.h"

namespace commitd::coordinator {
namespace {

using nlohmann::json;

using testing::TempDir;

// A log on a temp file, with an io_context the test thread runs.
class Fixture {
 public:
  Fixture() { Open(); }

  void Open() {
    auto log = SqliteDecisionLog::Open(path(), io_.get_executor(), entropy_);
    REQUIRE_MESSAGE(log.ok(), log.status().ToString());
    log_ = std::move(log).value();
  }
  void Close() {
    log_.reset();
    io_.restart();
    io_.run();  // completions posted while draining
  }
  std::string path() const { return dir_.File("decisions.db"); }
  SqliteDecisionLog& log() { return *log_; }

  // Runs io handlers on this thread until done() or a 10 s deadline.
  bool RunUntil(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  Status Append(DecisionRecord r) {
    std::optional<Status> result;
    log_->AppendDecision(std::move(r), [&](Status s) { result = s; });
    REQUIRE(RunUntil([&] { return result.has_value(); }));
    return *result;
  }
  Status Finish(const std::string& txid, int64_t ms) {
    std::optional<Status> result;
    log_->MarkFinished(txid, ms, [&](Status s) { result = s; });
    REQUIRE(RunUntil([&] { return result.has_value(); }));
    return *result;
  }
  Status Put(RegistryEntry e) {
    std::optional<Status> result;
    log_->PutParticipant(std::move(e), [&](Status s) { result = s; });
    REQUIRE(RunUntil([&] { return result.has_value(); }));
    return *result;
  }
  std::optional<DecisionRecord> Find(const std::string& txid) {
    std::optional<Result<std::optional<DecisionRecord>>> result;
    log_->FindDecision(txid, [&](Result<std::optional<DecisionRecord>> r) { result.emplace(std::move(r)); });
    REQUIRE(RunUntil([&] { return result.has_value(); }));
    REQUIRE_MESSAGE(result->ok(), result->status().ToString());
    return result->value();
  }
  std::optional<DecisionRecord> FindByKey(const std::string& key) {
    std::optional<Result<std::optional<DecisionRecord>>> result;
    log_->FindByIdempotencyKey(key, [&](Result<std::optional<DecisionRecord>> r) { result.emplace(std::move(r)); });
    REQUIRE(RunUntil([&] { return result.has_value(); }));
    REQUIRE_MESSAGE(result->ok(), result->status().ToString());
    return result->value();
  }
  std::vector<std::string> List(ListFilter filter) {
    std::optional<Result<std::vector<DecisionRecord>>> result;
    log_->ListDecisions(filter, [&](Result<std::vector<DecisionRecord>> r) { result.emplace(std::move(r)); });
    REQUIRE(RunUntil([&] { return result.has_value(); }));
    REQUIRE_MESSAGE(result->ok(), result->status().ToString());
    std::vector<std::string> txids;
    for (const DecisionRecord& r : result->value()) txids.push_back(r.txid);
    return txids;
  }

 private:
  TempDir dir_;
  SystemEntropy entropy_;
  boost::asio::io_context io_;
  std::unique_ptr<SqliteDecisionLog> log_;
};

DecisionRecord Record(const std::string& txid, Outcome outcome, int64_t decided_ms, std::string key = "") {
  DecisionRecord r;
  r.txid = txid;
  r.protocol = wire::Protocol::k2pc;
  r.outcome = outcome;
  r.participants = {{"bank-a", "http://127.0.0.1:7101"}, {"bank-b", "http://127.0.0.1:7102"}};
  r.reason = outcome == Outcome::kAborted ? "bank-a voted no: lock conflict with t0" : "";
  r.idempotency_key = std::move(key);
  r.reply = {{"txid", txid}, {"outcome", OutcomeName(outcome)}};
  r.created_ms = decided_ms - 5;
  r.decided_ms = decided_ms;
  return r;
}

void CheckSame(const DecisionRecord& got, const DecisionRecord& want) {
  CHECK(got.txid == want.txid);
  CHECK(got.protocol == want.protocol);
  CHECK(got.outcome == want.outcome);
  REQUIRE(got.participants.size() == want.participants.size());
  for (std::size_t i = 0; i < want.participants.size(); ++i) {
    CHECK(got.participants[i].name == want.participants[i].name);
    CHECK(got.participants[i].url == want.participants[i].url);
  }
  CHECK(got.reason == want.reason);
  CHECK(got.idempotency_key == want.idempotency_key);
  // Only a retry with the same Idempotency-Key reads a reply back: a record without a key keeps none.
  CHECK(got.reply == (want.idempotency_key.empty() ? json(nullptr) : want.reply));
  CHECK(got.created_ms == want.created_ms);
  CHECK(got.decided_ms == want.decided_ms);
  CHECK(got.finished == want.finished);
  CHECK(got.finished_ms == want.finished_ms);
}

TEST_CASE("OutcomeName and ParseOutcome") {
  for (Outcome o : {Outcome::kPending, Outcome::kCommitted, Outcome::kAborted}) {
    CHECK(ParseOutcome(OutcomeName(o)) == o);
  }
  CHECK(OutcomeName(Outcome::kCommitted) == "committed");
  CHECK_FALSE(ParseOutcome("Committed").has_value());
}

TEST_CASE("append then find") {
  Fixture f;
  DecisionRecord r = Record("t1", Outcome::kCommitted, 1000, "key-1");
  r.protocol = wire::Protocol::k3pc;
  REQUIRE(f.Append(r).ok());
  std::optional<DecisionRecord> got = f.Find("t1");
  REQUIRE(got.has_value());
  CheckSame(*got, r);
  CHECK_FALSE(f.Find("t2").has_value());
}

TEST_CASE("a decision is stored with its reply only when it has an Idempotency-Key") {
  Fixture f;
  DecisionRecord keyed = Record("t1", Outcome::kCommitted, 1000, "K");
  keyed.reply["branches"] = json::array({{{"participant", "bank-a"}, {"results", json::array({json::array()})}}});
  REQUIRE(f.Append(keyed).ok());
  CHECK(f.Find("t1")->reply == keyed.reply);
  CHECK(f.FindByKey("K")->reply == keyed.reply);

  DecisionRecord keyless = Record("t2", Outcome::kCommitted, 1001);
  REQUIRE(!keyless.reply.is_null());
  REQUIRE(f.Append(keyless).ok());
  std::optional<DecisionRecord> got = f.Find("t2");
  REQUIRE(got.has_value());
  CHECK(got->reply.is_null());
  CHECK(got->outcome == Outcome::kCommitted);
}

TEST_CASE("the first decision wins") {
  Fixture f;
  DecisionRecord first = Record("t1", Outcome::kCommitted, 1000);
  REQUIRE(f.Append(first).ok());
  Status s = f.Append(Record("t1", Outcome::kAborted, 2000));
  CHECK(s.code() == StatusCode::kConflict);
  CHECK(s.message() == "decision for t1 already recorded: committed");
  CheckSame(*f.Find("t1"), first);

  // Also within one batch: both appends are queued before either runs.
  Status a, b;
  int done = 0;
  f.log().AppendDecision(Record("t2", Outcome::kAborted, 3000), [&](Status st) {
    a = st;
    ++done;
  });
  f.log().AppendDecision(Record("t2", Outcome::kCommitted, 3001), [&](Status st) {
    b = st;
    ++done;
  });
  REQUIRE(f.RunUntil([&] { return done == 2; }));
  CHECK(a.ok());
  CHECK(b.message() == "decision for t2 already recorded: aborted");
  CHECK(f.Find("t2")->outcome == Outcome::kAborted);
}

TEST_CASE("a 3pc precommit record (outcome pending) is replaced by the decision, and only by a decision") {
  Fixture f;
  DecisionRecord pre = Record("t1", Outcome::kPending, 1000, "K");
  pre.protocol = wire::Protocol::k3pc;
  REQUIRE(f.Append(pre).ok());
  CHECK(f.Find("t1")->outcome == Outcome::kPending);
  CHECK(f.FindByKey("K")->txid == "t1");
  CHECK(f.Append(pre).code() == StatusCode::kConflict);  // a second precommit is not a decision
  DecisionRecord commit = Record("t1", Outcome::kCommitted, 2000, "K");
  commit.protocol = wire::Protocol::k3pc;
  REQUIRE(f.Append(commit).ok());
  std::optional<DecisionRecord> got = f.Find("t1");
  CHECK(got->outcome == Outcome::kCommitted);
  CHECK(got->decided_ms == 2000);
  CHECK(got->reply == commit.reply);
  // From now on the first decision wins as usual.
  CHECK(f.Append(Record("t1", Outcome::kAborted, 3000)).code() == StatusCode::kConflict);
  CHECK(f.Find("t1")->outcome == Outcome::kCommitted);
}

TEST_CASE("a 2pc decision does not replace a precommit record") {
  Fixture f;
  DecisionRecord pre = Record("t1", Outcome::kPending, 1000);
  pre.protocol = wire::Protocol::k3pc;
  REQUIRE(f.Append(pre).ok());
  CHECK(f.Append(Record("t1", Outcome::kCommitted, 2000)).code() == StatusCode::kConflict);
  std::optional<DecisionRecord> got = f.Find("t1");
  CHECK(got->outcome == Outcome::kPending);
  CHECK(got->protocol == wire::Protocol::k3pc);
}

TEST_CASE("idempotency keys") {
  Fixture f;
  DecisionRecord r = Record("t1", Outcome::kAborted, 1000, "K");
  REQUIRE(f.Append(r).ok());
  REQUIRE(f.Append(Record("t2", Outcome::kCommitted, 1001)).ok());
  REQUIRE(f.Append(Record("t3", Outcome::kCommitted, 1002)).ok());  // many without a key

  std::optional<DecisionRecord> got = f.FindByKey("K");
  REQUIRE(got.has_value());
  CheckSame(*got, r);
  CHECK_FALSE(f.FindByKey("other").has_value());
  CHECK_FALSE(f.FindByKey("").has_value());

  Status s = f.Append(Record("t4", Outcome::kCommitted, 1003, "K"));
  CHECK(s.code() == StatusCode::kConflict);
  CHECK(s.message() == "idempotency key 'K' already used by t1");
  CHECK_FALSE(f.Find("t4").has_value());
  CHECK(f.FindByKey("K")->txid == "t1");
}

TEST_CASE("mark finished") {
  Fixture f;
  REQUIRE(f.Append(Record("t1", Outcome::kCommitted, 1000)).ok());
  CHECK_FALSE(f.Find("t1")->finished);
  REQUIRE(f.Finish("t1", 1500).ok());
  std::optional<DecisionRecord> got = f.Find("t1");
  CHECK(got->finished);
  CHECK(got->finished_ms == 1500);

  // Again: fine, and the first finish time stays.
  REQUIRE(f.Finish("t1", 1900).ok());
  CHECK(f.Find("t1")->finished_ms == 1500);

  Status s = f.Finish("nope", 1);
  CHECK(s.code() == StatusCode::kNotFound);
}

TEST_CASE("a precommit record is never marked finished: it stays for the next start to resume") {
  Fixture f;
  DecisionRecord pre = Record("t1", Outcome::kPending, 1000);
  pre.protocol = wire::Protocol::k3pc;
  REQUIRE(f.Append(pre).ok());
  // An abort delivered although its record could not be written.
  CHECK(f.Finish("t1", 1500).code() == StatusCode::kNotFound);
  CHECK_FALSE(f.Find("t1")->finished);
  RecoveredLog rec = f.log().Recover().value();
  REQUIRE(rec.unfinished.size() == 1);
  CHECK(rec.unfinished[0].txid == "t1");
  CHECK(rec.unfinished[0].outcome == Outcome::kPending);

  // Its decision, once written, is marked as any other.
  DecisionRecord abort = Record("t1", Outcome::kAborted, 2000);
  abort.protocol = wire::Protocol::k3pc;
  REQUIRE(f.Append(abort).ok());
  REQUIRE(f.Finish("t1", 2500).ok());
  CHECK(f.Find("t1")->finished_ms == 2500);
}

TEST_CASE("Recover returns exactly the unfinished decisions and the registry") {
  Fixture f;
  {
    RecoveredLog empty = f.log().Recover().value();
    CHECK(empty.unfinished.empty());
    CHECK(empty.registry.empty());
  }
  REQUIRE(f.Append(Record("t3", Outcome::kCommitted, 3000)).ok());
  REQUIRE(f.Append(Record("t1", Outcome::kAborted, 1000)).ok());
  REQUIRE(f.Append(Record("t2", Outcome::kCommitted, 2000)).ok());
  REQUIRE(f.Finish("t2", 2500).ok());
  REQUIRE(f.Put({"bank-b", "http://b:1", 10}).ok());
  REQUIRE(f.Put({"bank-a", "http://a:1", 11}).ok());
  REQUIRE(f.Put({"bank-b", "http://b:2", 12}).ok());  // replaces

  Result<RecoveredLog> rec = f.log().Recover();
  REQUIRE(rec.ok());
  REQUIRE(rec->unfinished.size() == 2);
  CHECK(rec->unfinished[0].txid == "t1");  // oldest decision first
  CHECK(rec->unfinished[1].txid == "t3");
  CheckSame(rec->unfinished[0], Record("t1", Outcome::kAborted, 1000));
  REQUIRE(rec->registry.size() == 2);
  CHECK(rec->registry[0].name == "bank-a");
  CHECK(rec->registry[0].url == "http://a:1");
  CHECK(rec->registry[0].updated_ms == 11);
  CHECK(rec->registry[1].name == "bank-b");
  CHECK(rec->registry[1].url == "http://b:2");
  CHECK(rec->registry[1].updated_ms == 12);
}

TEST_CASE("reopening keeps everything") {
  Fixture f;
  DecisionRecord a = Record("ta", Outcome::kCommitted, 1000, "ka");
  DecisionRecord b = Record("tb", Outcome::kAborted, 2000);
  REQUIRE(f.Append(a).ok());
  REQUIRE(f.Append(b).ok());
  REQUIRE(f.Finish("ta", 1100).ok());
  REQUIRE(f.Put({"bank-a", "http://a", 5}).ok());

  // Queued but not waited for: the destructor must still write it.
  bool late_done = false;
  f.log().AppendDecision(Record("tc", Outcome::kCommitted, 3000), [&](Status s) {
    CHECK(s.ok());
    late_done = true;
  });
  f.Close();
  CHECK(late_done);

  f.Open();
  Result<RecoveredLog> rec = f.log().Recover();
  REQUIRE(rec.ok());
  REQUIRE(rec->unfinished.size() == 2);
  CheckSame(rec->unfinished[0], b);
  CHECK(rec->unfinished[1].txid == "tc");
  REQUIRE(rec->registry.size() == 1);
  CHECK(rec->registry[0].url == "http://a");
  a.finished = true;
  a.finished_ms = 1100;
  CheckSame(*f.Find("ta"), a);
  CHECK(f.FindByKey("ka")->txid == "ta");
  CHECK(f.Append(Record("ta", Outcome::kAborted, 4000)).code() == StatusCode::kConflict);
}

TEST_CASE("heuristic decisions are kept and counted") {
  Fixture f;
  DecisionRecord forced = Record("th", Outcome::kCommitted, 1000);
  forced.heuristic = true;
  REQUIRE(f.Append(forced).ok());
  REQUIRE(f.Append(Record("tn", Outcome::kCommitted, 2000)).ok());
  CHECK(f.Find("th")->heuristic);
  CHECK_FALSE(f.Find("tn")->heuristic);
  f.Close();
  f.Open();
  Result<RecoveredLog> rec = f.log().Recover();
  REQUIRE(rec.ok());
  CHECK(rec->heuristic_decisions == 1);
  REQUIRE(rec->unfinished.size() == 2);
  CHECK(rec->unfinished[0].heuristic);
}

TEST_CASE("a record whose txid is not a txid is a damaged file, not a transaction to recover") {
  Fixture f;
  REQUIRE(f.Append(Record("t1", Outcome::kCommitted, 1000)).ok());
  f.Close();
  {
    auto db = sqlite::Database::Open(f.path());
    REQUIRE(db.ok());
    // It would ask an agent about t1 (GET /v1/transactions/t1?state=prepared).
    REQUIRE((*db)->Exec("UPDATE decisions SET txid = 't1?state=prepared'").ok());
  }
  f.Open();
  Result<RecoveredLog> recovered = f.log().Recover();
  REQUIRE_FALSE(recovered.ok());
  CHECK(recovered.status().code() == StatusCode::kCorruption);
  CHECK(recovered.status().message().find("invalid txid 't1?state=prepared'") != std::string::npos);
}

TEST_CASE("a version-1 file gets the heuristic column and the forgotten keys' time on open") {
  Fixture f;
  f.Close();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(f.path() + suffix);
  {
    auto db = sqlite::Database::Open(f.path());
    REQUIRE(db.ok());
    REQUIRE((*db)->Exec(R"sql(
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
      CREATE TABLE decisions (txid TEXT PRIMARY KEY, protocol TEXT NOT NULL, outcome TEXT NOT NULL,
        participants TEXT NOT NULL, reason TEXT NOT NULL, idempotency_key TEXT, reply TEXT NOT NULL,
        created_ms INTEGER NOT NULL, decided_ms INTEGER NOT NULL, finished INTEGER NOT NULL DEFAULT 0,
        finished_ms INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE participants (name TEXT PRIMARY KEY, url TEXT NOT NULL, updated_ms INTEGER NOT NULL);
      INSERT INTO meta VALUES ('schema_version', '1');
      INSERT INTO decisions VALUES ('old', '2pc', 'committed', '[]', '', NULL, '{}', 1, 2, 0, 0);
    )sql").ok());
  }
  f.Open();
  std::optional<DecisionRecord> old = f.Find("old");
  REQUIRE(old.has_value());
  CHECK(old->outcome == Outcome::kCommitted);
  CHECK_FALSE(old->heuristic);
  DecisionRecord forced = Record("new", Outcome::kAborted, 3000);
  forced.heuristic = true;
  REQUIRE(f.Append(forced).ok());
  CHECK(f.Find("new")->heuristic);
  f.Close();
  auto db = sqlite::Database::Open(f.path());
  REQUIRE(db.ok());
  sqlite::Statement* stmt = (*db)->Prepare("SELECT value FROM meta WHERE key = 'schema_version'");
  REQUIRE(stmt != nullptr);
  REQUIRE(stmt->Step());
  CHECK(stmt->Text(0) == "3");
  stmt->Reset();
}

TEST_CASE("a file indexing every row's finished flag gets the index of unfinished rows on open") {
  Fixture f;
  REQUIRE(f.Append(Record("done", Outcome::kCommitted, 1000)).ok());
  REQUIRE(f.Finish("done", 1500).ok());
  REQUIRE(f.Append(Record("open", Outcome::kAborted, 2000)).ok());
  f.Close();
  auto index_names = [&] {
    auto db = sqlite::Database::Open(f.path());
    REQUIRE(db.ok());
    sqlite::Statement* stmt = (*db)->Prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'decisions' AND name LIKE 'decisions_%' "
        "ORDER BY name");
    REQUIRE(stmt != nullptr);
    std::vector<std::string> names;
    while (stmt->Step()) names.push_back(stmt->Text(0));
    stmt->Reset();
    return names;
  };
  {  // as files written before the index of unfinished rows
    auto db = sqlite::Database::Open(f.path());
    REQUIRE(db.ok());
    REQUIRE((*db)->Exec("DROP INDEX decisions_unfinished; CREATE INDEX decisions_finished ON decisions(finished)").ok());
  }
  CHECK(index_names() == std::vector<std::string>{"decisions_decided_ms", "decisions_finished",
                                                  "decisions_finished_order", "decisions_heuristic",
                                                  "decisions_idempotency_key"});
  f.Open();
  RecoveredLog rec = f.log().Recover().value();
  REQUIRE(rec.unfinished.size() == 1);
  CHECK(rec.unfinished[0].txid == "open");
  REQUIRE(f.Finish("open", 2500).ok());
  CHECK(f.log().Recover().value().unfinished.empty());
  f.Close();
  CHECK(index_names() == std::vector<std::string>{"decisions_decided_ms", "decisions_finished_order",
                                                  "decisions_heuristic", "decisions_idempotency_key",
                                                  "decisions_unfinished"});
}

TEST_CASE("list with filters, newest first") {
  Fixture f;
  REQUIRE(f.Append(Record("c1", Outcome::kCommitted, 100)).ok());
  REQUIRE(f.Append(Record("a1", Outcome::kAborted, 200)).ok());
  REQUIRE(f.Append(Record("c2", Outcome::kCommitted, 300)).ok());
  REQUIRE(f.Append(Record("c3", Outcome::kCommitted, 300)).ok());  // same time: by txid
  REQUIRE(f.Append(Record("a2", Outcome::kAborted, 400)).ok());
  REQUIRE(f.Finish("c2", 500).ok());
  REQUIRE(f.Finish("a1", 500).ok());

  using V = std::vector<std::string>;
  CHECK(f.List({}) == V{"a2", "c2", "c3", "a1", "c1"});
  CHECK(f.List({.limit = 2}) == V{"a2", "c2"});
  CHECK(f.List({.limit = 0}).empty());
  CHECK(f.List({.outcome = Outcome::kCommitted}) == V{"c2", "c3", "c1"});
  CHECK(f.List({.outcome = Outcome::kAborted}) == V{"a2", "a1"});
  CHECK(f.List({.unfinished_only = true}) == V{"a2", "c3", "c1"});
  CHECK(f.List({.outcome = Outcome::kCommitted, .unfinished_only = true, .limit = 1}) == V{"c3"});
  CHECK(f.List({.outcome = Outcome::kPending}).empty());
}

TEST_CASE("1000 appends submitted at once are group-committed") {
  Fixture f;
  constexpr int kAppends = 1000;
  int ok = 0;
  int failed = 0;
  std::vector<int> order;
  for (int i = 0; i < kAppends; ++i) {
    f.log().AppendDecision(Record("t" + std::to_string(i), i % 3 ? Outcome::kCommitted : Outcome::kAborted, i,
                                  "k" + std::to_string(i)),
                           [&, i](Status s) {
                             if (s.ok()) {
                               ++ok;
                             } else {
                               ++failed;
                             }
                             order.push_back(i);
                           });
  }
  REQUIRE(f.RunUntil([&] { return ok + failed == kAppends; }));
  CHECK(ok == kAppends);
  BatchWriter::Stats stats = f.log().writer_stats();
  CHECK(stats.jobs == kAppends);
  CHECK(stats.batches * 10 < kAppends);
  MESSAGE("batches for ", kAppends, " appends: ", stats.batches);
  bool in_order = true;
  for (int i = 0; i < kAppends; ++i) in_order = in_order && order[i] == i;
  CHECK(in_order);
  CHECK(f.List({.limit = 5000}).size() == kAppends);
  CHECK(f.log().Recover()->unfinished.size() == kAppends);
}

}  // namespace
}  // namespace commitd::coordinator
