// Changesets (sqlite3session format) as an agent stores them in
// _commitd_prepared and applies them at commit: ChangesetApplier::Apply on any
// bytes, against a bank database with a foreign key, a trigger, a UNIQUE
// NOCASE index and a composite BLOB/REAL primary key. Every apply runs in a
// savepoint rolled back afterwards. The same bytes are applied to two equal
// databases, one recorded by ChangesetRecorder and one by SQLite's own
// session (each uses the connection's one preupdate hook): both applies must
// end alike and the two changesets hold the same changes (ChangesetRecorder's
// contract is to record what sqlite3session records).
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/sqlite_db.h"
#include "participant/changeset_apply.h"
#include "participant/changeset_record.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using commitd::fuzz::Require;
namespace sqlite = commitd::sqlite;

constexpr char kSchema[] = R"sql(
CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0));
CREATE TABLE journal (txid TEXT NOT NULL, account TEXT NOT NULL, delta INTEGER NOT NULL, PRIMARY KEY (txid, account));
CREATE TABLE holds (id INTEGER PRIMARY KEY, account TEXT NOT NULL REFERENCES accounts(id), amount REAL);
CREATE TABLE items (sku BLOB, lot REAL, name TEXT UNIQUE COLLATE NOCASE, qty INTEGER DEFAULT 0, PRIMARY KEY (sku, lot));
CREATE TABLE audit (n INTEGER PRIMARY KEY, what TEXT);
CREATE TABLE notes (body TEXT);
CREATE TRIGGER holds_audit AFTER INSERT ON holds BEGIN INSERT INTO audit(what) VALUES ('hold ' || NEW.id); END;
INSERT INTO accounts VALUES ('alice', 100), ('bob', 50), ('carol', 0);
INSERT INTO journal VALUES ('t1', 'alice', -10), ('t1', 'bob', 10);
INSERT INTO holds VALUES (1, 'alice', 2.5);
INSERT INTO items VALUES (x'01', 1.5, 'Bolt', 10), (x'02', -0.0, 'nut', NULL);
)sql";

struct Side {
  std::unique_ptr<sqlite::Database> db;
  std::unique_ptr<commitd::participant::ChangesetApplier> applier;
};

Side Open() {
  auto db = sqlite::Database::Open(":memory:", {.wal = false, .synchronous_full = false});
  Require(db.ok(), "open an in-memory database");
  Require((*db)->Exec(kSchema).ok(), "create the bank schema");
  Side side;
  side.db = std::move(db).value();
  side.applier = std::make_unique<commitd::participant::ChangesetApplier>(*side.db);
  return side;
}

void AppendValue(std::string* out, sqlite3_value* value) {
  if (value == nullptr) {
    *out += "-|";
    return;
  }
  *out += std::to_string(sqlite3_value_type(value)) + ":";
  switch (sqlite3_value_type(value)) {
    case SQLITE_INTEGER: *out += std::to_string(sqlite3_value_int64(value)); break;
    case SQLITE_FLOAT: {
      const double d = sqlite3_value_double(value);
      *out += std::string(reinterpret_cast<const char*>(&d), sizeof d);
      break;
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB:
      out->append(static_cast<const char*>(sqlite3_value_blob(value)), sqlite3_value_bytes(value));
      break;
    default: break;
  }
  *out += "|";
}

// A changeset's tables in order, each with its changes sorted: sqlite3session
// writes a table's rows in the order of its hash table, ChangesetRecorder in
// the order they were first changed; the changes themselves must be equal.
std::vector<std::pair<std::string, std::vector<std::string>>> Canonical(const std::string& changeset) {
  std::vector<std::pair<std::string, std::vector<std::string>>> tables;
  sqlite3_changeset_iter* iter = nullptr;
  Require(sqlite3changeset_start(&iter, static_cast<int>(changeset.size()), const_cast<char*>(changeset.data())) ==
              SQLITE_OK,
          "a recorded changeset can be read");
  while (sqlite3changeset_next(iter) == SQLITE_ROW) {
    const char* table = nullptr;
    int ncol = 0;
    int op = 0;
    int indirect = 0;
    sqlite3changeset_op(iter, &table, &ncol, &op, &indirect);
    if (tables.empty() || tables.back().first != table) tables.emplace_back(table, std::vector<std::string>());
    std::string change = std::to_string(op) + "/" + std::to_string(indirect) + "/";
    for (int i = 0; i < ncol; ++i) {
      sqlite3_value* value = nullptr;
      if (op != SQLITE_INSERT) sqlite3changeset_old(iter, i, &value);
      AppendValue(&change, value);
      value = nullptr;
      if (op != SQLITE_DELETE) sqlite3changeset_new(iter, i, &value);
      AppendValue(&change, value);
    }
    tables.back().second.push_back(std::move(change));
  }
  Require(sqlite3changeset_finalize(iter) == SQLITE_OK, "a recorded changeset reads to its end");
  for (auto& [name, changes] : tables) std::sort(changes.begin(), changes.end());
  return tables;
}

std::string SessionChangeset(sqlite3_session* session) {
  int size = 0;
  void* bytes = nullptr;
  Require(sqlite3session_changeset(session, &size, &bytes) == SQLITE_OK, "sqlite3session_changeset");
  std::string out(static_cast<const char*>(bytes), static_cast<std::size_t>(size));
  sqlite3_free(bytes);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Side ours = Open();
  static Side theirs = Open();
  static commitd::participant::ChangesetRecorder recorder(*ours.db);
  const std::string_view changeset = commitd::fuzz::Text(data, size);

  Require(ours.db->Exec("SAVEPOINT fuzz").ok(), "savepoint");
  Require(theirs.db->Exec("SAVEPOINT fuzz").ok(), "savepoint");
  Require(recorder.Start().ok(), "start recording");
  sqlite3_session* session = nullptr;
  Require(sqlite3session_create(theirs.db->handle(), "main", &session) == SQLITE_OK, "sqlite3session_create");
  Require(sqlite3session_attach(session, nullptr) == SQLITE_OK, "sqlite3session_attach");

  const commitd::Status applied = ours.applier->Apply(changeset);
  const commitd::Status applied_too = theirs.applier->Apply(changeset);
  Require(applied.code() == applied_too.code() && applied.message() == applied_too.message(),
          "equal databases apply a changeset alike");
  if (applied.ok()) {
    commitd::Result<std::string> recorded = recorder.Changeset();
    Require(recorded.ok(), "the recorder reads an applied changeset back");
    Require(Canonical(*recorded) == Canonical(SessionChangeset(session)),
            "the recorder's changeset has sqlite3session's changes");
  } else {
    Require(applied.code() == commitd::StatusCode::kConflict || applied.code() == commitd::StatusCode::kIoError,
            "a changeset that does not apply is a Conflict (or a SQLite error)");
  }
  recorder.Stop();
  sqlite3session_delete(session);
  for (sqlite::Database* db : {ours.db.get(), theirs.db.get()}) {
    Require(db->Exec("ROLLBACK TO fuzz").ok(), "rollback to savepoint");
    Require(db->Exec("RELEASE fuzz").ok(), "release savepoint");
  }
  return 0;
}
