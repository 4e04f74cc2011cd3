// DecisionStateMachine::ApplyAll, which writes a staging record and its
// decision as one row when a batch holds both (coordinator/staging_folds.h),
// against applying the same entries one by one: random batches of records,
// finished marks, retention and entries that do not decode, on two real
// SQLite files whose rows (rowids included) and results must come out equal.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "coordinator/decision_state_machine.h"
#include "coordinator/decision_store.h"
#include "coordinator/raft_codec.h"
#include "coordinator/staging_folds.h"
#include "tests/unit/support/temp_dir.h"

using namespace commitd;
using namespace commitd::coordinator;

namespace {

std::unique_ptr<sqlite::Database> OpenDb(const std::string& path) {
  auto db = sqlite::Database::Open(path);
  REQUIRE(db.ok());
  REQUIRE(DecisionStateMachine::CreateSchema(**db).ok());
  REQUIRE((*db)->Exec("PRAGMA synchronous=OFF").ok());  // compared, not kept
  return std::move(db).value();
}

DecisionRecord Record(std::mt19937_64& random, const std::string& txid, Outcome outcome) {
  DecisionRecord r;
  r.txid = txid;
  r.protocol = random() % 8 == 0 ? wire::Protocol::k3pc : wire::Protocol::k2pc;
  r.outcome = outcome;
  r.participants = {{"bank-" + std::to_string(random() % 3), "http://a"}};
  r.reason = outcome == Outcome::kAborted ? "no vote " + std::to_string(random() % 3) : "";
  if (random() % 3 != 0) r.idempotency_key = "key-" + std::to_string(random() % 64);
  r.reply = {{"txid", txid}, {"n", static_cast<int64_t>(random() % 100)}};
  r.created_ms = static_cast<int64_t>(random() % 50);
  r.decided_ms = static_cast<int64_t>(random() % 100);
  r.finished = outcome != Outcome::kPending && random() % 4 == 0;
  r.finished_ms = r.finished ? static_cast<int64_t>(random() % 100) : 0;
  r.heuristic = random() % 16 == 0;
  return r;
}

// Mostly a transaction's staging record, decision and finished mark, over
// few txids and keys so that they collide; now and then anything else.
// `round` moves the txids along, so that most batches bring new ones.
std::vector<raft::Entry> RandomEntries(std::mt19937_64& random, int round, raft::Index* next) {
  std::vector<raft::Entry> entries;
  const std::size_t n = 1 + random() % 24;
  std::vector<std::string> fresh_txids;  // of the transactions below, for the other entries to meet
  const auto txid_near = [&] {
    if (!fresh_txids.empty() && random() % 4 == 0) return fresh_txids[random() % fresh_txids.size()];
    return "tx-" + std::to_string(round + random() % 8);
  };
  // Decisions due a few entries after their staging record, as transactions write them.
  std::vector<std::pair<std::size_t, DecisionRecord>> due;
  for (std::size_t k = 0; k < n || !due.empty(); ++k) {
    const std::string txid = txid_near();
    raft::Entry e{1, (*next)++, raft::EntryType::kNormal, ""};
    if (auto d = std::find_if(due.begin(), due.end(), [k](const auto& p) { return p.first <= k; }); d != due.end()) {
      e.data = EncodeCommand(command::Decide{d->second});
      due.erase(d);
      entries.push_back(std::move(e));
      continue;
    }
    if (k >= n) continue;
    if (random() % 2 == 0) {
      const std::string fresh = "tx-new-" + std::to_string(e.index);
      fresh_txids.push_back(fresh);
      const DecisionRecord staging = Record(random, fresh, Outcome::kPending);
      DecisionRecord decision = Record(random, fresh, random() % 3 == 0 ? Outcome::kAborted : Outcome::kCommitted);
      decision.protocol = staging.protocol;
      due.emplace_back(k + 1 + random() % 6, decision);
      e.data = EncodeCommand(command::Decide{staging});
      entries.push_back(std::move(e));
      continue;
    }
    switch (random() % 32) {
      case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9: case 10: case 11:
        e.data = EncodeCommand(command::Decide{Record(random, txid, Outcome::kPending)});
        break;
      case 12: case 13: case 14: case 15: case 16: case 17: case 18: case 19: case 20: case 21:
        e.data = EncodeCommand(
            command::Decide{Record(random, txid, random() % 3 == 0 ? Outcome::kAborted : Outcome::kCommitted)});
        break;
      case 22: case 23:
        e.data = EncodeCommand(command::Finish{txid, static_cast<int64_t>(random() % 100)});
        break;
      case 24: case 25: case 26: {
        command::FinishMany many;
        for (std::size_t m = random() % 4; m > 0; --m) {
          many.marks.push_back({txid_near(), static_cast<int64_t>(random() % 100)});
        }
        e.data = EncodeCommand(many);
        break;
      }
      case 27:
        e.data = EncodeCommand(command::ForgetFinished{static_cast<int64_t>(random() % 120), 2, 0});
        break;
      case 28:
        e.data = EncodeCommand(command::PutParticipant{{"bank-" + std::to_string(random() % 3), "http://p", 1}});
        break;
      case 29:
        e.type = raft::EntryType::kNoop;
        break;
      default:
        e.data = "not a command";
        break;
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

// Every row of the state machine's tables, decisions with their rowids.
std::string Rows(sqlite::Database& db) {
  std::string out;
  for (const char* sql : {"SELECT rowid, * FROM decisions ORDER BY rowid", "SELECT * FROM participants ORDER BY 1",
                          "SELECT * FROM forgotten_txids ORDER BY 1, 2", "SELECT * FROM forgotten_keys ORDER BY 1",
                          "SELECT * FROM meta ORDER BY 1"}) {
    Status error;
    sqlite::Statement* stmt = db.Prepare(std::string(sql), &error);
    REQUIRE(stmt != nullptr);
    while (stmt->Step()) {
      for (int c = 0; c < sqlite3_column_count(stmt->handle()); ++c) out += stmt->Text(c) + "|";
      out += "\n";
    }
    REQUIRE(stmt->status().ok());
    stmt->Reset();
    out += "--\n";
  }
  return out;
}

// The rows of these transactions, rowids included, and the highest rowid:
// cheap enough to compare after every batch.
std::string RowsOf(sqlite::Database& db, const std::vector<raft::Entry>& entries) {
  std::string out;
  Status error;
  sqlite::Statement* stmt = db.Prepare(std::string("SELECT rowid, * FROM decisions WHERE txid = ?1"), &error);
  REQUIRE(stmt != nullptr);
  for (const raft::Entry& e : entries) {
    auto command = e.type == raft::EntryType::kNormal ? DecodeCommand(e.data) : Result<Command>(Status::NotFound(""));
    if (!command.ok()) continue;
    std::vector<std::string> txids;
    if (auto* d = std::get_if<command::Decide>(&*command)) txids.push_back(d->record.txid);
    if (auto* f = std::get_if<command::Finish>(&*command)) txids.push_back(f->txid);
    if (auto* many = std::get_if<command::FinishMany>(&*command)) {
      for (const auto& m : many->marks) txids.push_back(m.txid);
    }
    for (const std::string& txid : txids) {
      stmt->Bind(1, txid);
      while (stmt->Step()) {
        for (int c = 0; c < sqlite3_column_count(stmt->handle()); ++c) out += stmt->Text(c) + "|";
        out += "\n";
      }
      REQUIRE(stmt->status().ok());
      stmt->Reset();
    }
  }
  sqlite::Statement* last = db.Prepare(std::string("SELECT max(rowid) FROM decisions"), &error);
  REQUIRE(last != nullptr);
  REQUIRE(last->Step());
  out += last->Text(0);
  last->Reset();
  return out;
}

std::string Describe(const std::vector<Status>& results) {
  std::string out;
  for (const Status& s : results) out += s.ToString() + "\n";
  return out;
}

}  // namespace

TEST_CASE("records applied in batches come out as applied one by one") {
  testing::TempDir dir;
  auto one_by_one = OpenDb(dir.File("one.db"));
  auto batched = OpenDb(dir.File("batched.db"));
  DecisionStateMachine machine_one, machine_batched;
  std::mt19937_64 random(20261207);
  raft::Index next = 1;
  std::size_t folded = 0;  // planned, and the txid new to the table
  for (int round = 0; round < 2000; ++round) {
    const std::vector<raft::Entry> entries = RandomEntries(random, round, &next);
    std::vector<std::optional<Command>> commands;
    std::vector<bool> undecodable;
    for (const raft::Entry& e : entries) {
      auto c = e.type == raft::EntryType::kNormal ? std::optional<Result<Command>>(DecodeCommand(e.data))
                                                  : std::nullopt;
      undecodable.push_back(c && !c->ok());
      commands.push_back(c && c->ok() ? std::optional<Command>(**c) : std::nullopt);
    }
    for (const auto& [staging, fold] : PlanStagingFolds(commands, undecodable)) {
      auto existing = DecisionStore(*batched).FindByTxid(fold.row.txid);
      REQUIRE(existing.ok());
      folded += !existing->has_value();
    }

    std::vector<Status> expected, got;
    REQUIRE(one_by_one->Begin().ok());
    for (const raft::Entry& e : entries) REQUIRE(raft::ApplyEach(*one_by_one, machine_one, {e}, &expected).ok());
    REQUIRE(one_by_one->Commit().ok());
    REQUIRE(batched->Begin().ok());
    REQUIRE(machine_batched.ApplyAll(*batched, entries, &got).ok());
    REQUIRE(batched->Commit().ok());

    CAPTURE(round);
    REQUIRE(Describe(got) == Describe(expected));
    REQUIRE(RowsOf(*batched, entries) == RowsOf(*one_by_one, entries));
    if (round % 100 == 99) REQUIRE(Rows(*batched) == Rows(*one_by_one));
  }
  MESSAGE(folded << " staging records folded with their decision");
  CHECK(folded > 500);
}

TEST_CASE("a staging record folds with its decision only when nothing of its transaction comes between") {
  std::mt19937_64 random(7);
  const DecisionRecord staging = Record(random, "t", Outcome::kPending);
  DecisionRecord decision = Record(random, "t", Outcome::kCommitted);
  decision.protocol = staging.protocol;
  const auto plan = [](std::vector<Command> list) {
    std::vector<std::optional<Command>> commands(list.begin(), list.end());
    return PlanStagingFolds(commands, std::vector<bool>(commands.size(), false));
  };
  const auto folds = plan({command::Decide{staging}, command::Finish{"u", 1}, command::Decide{decision}});
  REQUIRE(folds.size() == 1);
  CHECK(folds.begin()->first == 0);
  CHECK(folds.begin()->second.decision == 2);
  const DecisionRecord& row = folds.begin()->second.row;
  CHECK(row.outcome == Outcome::kCommitted);
  CHECK(row.participants == staging.participants);
  CHECK(row.idempotency_key == staging.idempotency_key);
  CHECK(row.created_ms == staging.created_ms);
  CHECK(row.decided_ms == decision.decided_ms);
  CHECK(row.reply == decision.reply);

  // A finished mark of the transaction before its decision.
  CHECK(plan({command::Decide{staging}, command::Finish{"t", 1}, command::Decide{decision}}).empty());
  CHECK(plan({command::Decide{staging}, command::FinishMany{{{"u", 1}, {"t", 1}}}, command::Decide{decision}})
            .empty());
  // Another record of the transaction, before or after the decision.
  CHECK(plan({command::Decide{staging}, command::Decide{staging}, command::Decide{decision}}).empty());
  CHECK(plan({command::Decide{staging}, command::Decide{decision}, command::Decide{decision}}).empty());
  // Retention or any other command between them.
  CHECK(plan({command::Decide{staging}, command::ForgetFinished{1, 1, 0}, command::Decide{decision}}).empty());
  CHECK(plan({command::Decide{staging}, command::PutParticipant{{"p", "http://p", 1}}, command::Decide{decision}})
            .empty());
  // A decision of another protocol does not replace the staging record.
  DecisionRecord other = decision;
  other.protocol = staging.protocol == wire::Protocol::k2pc ? wire::Protocol::k3pc : wire::Protocol::k2pc;
  CHECK(plan({command::Decide{staging}, command::Decide{other}}).empty());
  // A finished mark after the decision applies to the row as usual.
  CHECK(plan({command::Decide{staging}, command::Decide{decision}, command::Finish{"t", 1}}).size() == 1);
  // An entry that did not decode ends the stretch.
  std::vector<std::optional<Command>> commands{Command{command::Decide{staging}}, std::nullopt,
                                               Command{command::Decide{decision}}};
  CHECK(PlanStagingFolds(commands, {false, true, false}).empty());
  CHECK(PlanStagingFolds(commands, {false, false, false}).size() == 1);
}
