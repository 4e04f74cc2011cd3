// Store: where a participant Node's durable work goes, one method per engine
// action that touches storage. SqliteStore (participant/sqlite_store.h) is
// the implementation on the SQLite ResourceManager, used by the binary and
// the simulator alike; another database would implement the same interface.
//
// Every `done` runs on the Node's event thread once the work is durable (or
// failed), in submission order: the engine's ordering assumption (engine.h).
//
// Thread: the Node's event thread.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/wire.h"
#include "participant/engine.h"
#include "participant/resource_manager.h"

namespace commitd::participant {

class Store {
 public:
  // What the database holds at start: the prepared records. Remembered
  // outcomes stay in the store (a prepare's job and FindOutcome read them),
  // so start work does not grow with finished history.
  struct Contents {
    std::vector<PreparedRecord> records;
  };

  virtual ~Store() = default;
  // Before any other call (no work queued yet).
  virtual Result<Contents> Load() = 0;
  // Checks ops against the procedures and the raw-SQL policy without running anything.
  virtual Status Validate(const std::vector<wire::Op>& ops) const = 0;
  virtual std::vector<std::string> ProcedureNames() const = 0;

  // First reads the txid's remembered outcome (PrepareResult::earlier), then,
  // unless there is one or it could not be read, runs the ops, takes their
  // keys and writes the prepared record; with one, nothing of the prepare
  // stays. SQLite reads after every job submitted before it; PostgreSQL's
  // connections run side by side, so an outcome written just before may not
  // be seen there (the engine's memory of recent outcomes covers that).
  virtual void Prepare(action::Prepare prepare,
                       std::function<void(const std::string& txid, PrepareResult, Status)> done) = 0;
  // Applies the changeset, deletes the record, remembers "committed". Conflict: the record stays.
  virtual void Commit(const std::string& txid, std::function<void(Status)> done) = 0;
  // Deletes the record, remembers "aborted".
  virtual void Abort(const std::string& txid, std::function<void(Status)> done) = 0;
  // 3PC: the record's state becomes "precommitted".
  virtual void Precommit(const std::string& txid, std::function<void(Status)> done) = 0;
  // The record is adopted by another decision log: its abort_key and
  // commit_check become the adoption's, and adopted_by its log_id, durably
  // before done. NotFound if there is no such record.
  virtual void Adopt(const std::string& txid, const Adoption& adoption, std::function<void(Status)> done) = 0;
  // "aborted" for a txid that holds no record here (a no vote, an abort
  // before its prepare), unless an outcome is written for it already. done
  // gets the outcome the store then holds for txid, once that is durable, or
  // why it could not be written.
  virtual void WriteTombstone(const std::string& txid, std::function<void(Result<Outcome>)> done) = 0;
  virtual void ForgetOutcomesBefore(int64_t cutoff_ms) = 0;
  // The outcome remembered for txid (nullopt: none), in order with the jobs
  // submitted before it.
  virtual void FindOutcome(const std::string& txid,
                           std::function<void(Result<std::optional<StoredOutcome>>)> done) = 0;
};

}  // namespace commitd::participant
