// The prepared-record store: the _commitd_prepared table (one record per
// transaction this agent voted yes on and has not finished) and the
// _commitd_finished table (outcomes remembered for duplicate requests), in the
// agent's own database. Each call is one or two statements on the caller's
// transaction; none takes or releases lock keys.
//
// Thread: the storage thread (the thread of `db`).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"
#include "common/wire.h"
#include "participant/outcome.h"

namespace commitd::participant {

// An outcome _commitd_finished remembers.
struct StoredOutcome {
  Outcome outcome = Outcome::kAborted;
  int64_t finished_ms = 0;
};

struct PreparedRecord {
  std::string txid;
  std::string protocol;       // "2pc" | "3pc"
  std::string state;          // "prepared" | "precommitted" | "conflict"
  std::string changeset;
  std::vector<std::string> lock_keys;
  std::string coordinator;    // URL
  std::string log_id;         // the coordinator's decision log identity ("" if the prepare named none)
  std::string abort_key;      // the transaction's abort capability ("" if the prepare carried none)
  std::string commit_check;   // SHA-256 of its commit capability, hex ("" if the prepare carried none)
  std::vector<wire::ParticipantRef> participants;
  int64_t created_ms = 0;     // wall clock
  int64_t deadline_ms = 0;    // wall clock
  std::string last_error;
  // The decision log that adopted the record (wire::AdoptRequest), "" if
  // none: abort_key and commit_check are then that log's, and the record
  // waits for that log's decision (no 3PC termination).
  std::string adopted_by;
};

// What an adoption writes into a record.
struct Adoption {
  std::string log_id;  // -> adopted_by
  std::string abort_key;
  std::string commit_check;
};

class PreparedRecordStore {
 public:
  explicit PreparedRecordStore(sqlite::Database& db) : db_(db) {}

  // Creates the _commitd_* tables if needed, and adds the log_id,
  // abort_key, commit_check and adopted_by columns to a _commitd_prepared
  // table made before they existed (its records get "").
  Status CreateTables();

  // INSERT OR REPLACE.
  Status Persist(const PreparedRecord& record);
  // Updates state (unless empty) and last_error; NotFound if there is no such record.
  Status Update(const std::string& txid, const std::string& state, const std::string& last_error);
  // Sets abort_key, commit_check and adopted_by (the adoption's log_id);
  // NotFound if there is no such record.
  Status Adopt(const std::string& txid, const Adoption& adoption);
  // The record's changeset; NotFound if there is no such record.
  Result<std::string> Changeset(const std::string& txid);
  // Deletes the record. Ok if absent.
  Status Delete(const std::string& txid);
  // Sets state "conflict" and last_error to `conflict`.
  Status MarkConflict(const std::string& txid, const std::string& conflict);

  // Remembers a finished txid ("committed" | "aborted"). An outcome once
  // remembered is never changed: another for the same txid is dropped.
  Status RememberOutcome(const std::string& txid, const std::string& outcome, int64_t now_ms);
  // Forgets outcomes older than cutoff_ms, at most kForgetOutcomesBatch of
  // them (oldest first): one bounded job; the engine asks every second.
  static constexpr int64_t kForgetOutcomesBatch = 16'384;
  Status ForgetOutcomesBefore(int64_t cutoff_ms);

  // Every record, oldest first; Corruption if one does not parse.
  Result<std::vector<PreparedRecord>> LoadPrepared();
  // txid -> outcome.
  Result<std::map<std::string, std::string>> LoadOutcomes();
  // One remembered outcome (by primary key), nullopt if none.
  Result<std::optional<StoredOutcome>> FindOutcome(const std::string& txid);

 private:
  sqlite::Database& db_;
};

}  // namespace commitd::participant
