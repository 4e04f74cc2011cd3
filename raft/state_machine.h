// What a raft::Driver replicates: a state machine whose tables live in the
// same SQLite file as the Raft log (raft/storage.h), so that applying an
// entry and recording it applied are one transaction.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"
#include "raft/types.h"

namespace commitd::raft {

class StateMachine;

// Applies each entry with machine.Apply in a savepoint of its own, rolled
// back when the result is not ok; the results in *results. kIoError (the
// disk failed) is returned, not a result: nothing after it was applied.
Status ApplyEach(sqlite::Database& db, StateMachine& machine, const std::vector<Entry>& entries,
                 std::vector<Status>* results);
// Runs apply() in a savepoint, rolled back when its result (in *result) is not ok.
Status ApplyInSavepoint(sqlite::Database& db, const std::function<Status()>& apply, Status* result);

class StateMachine {
 public:
  virtual ~StateMachine() = default;

  // Storage thread, inside the transaction of the Ready that commits the
  // entry, in a savepoint of its own: applies one committed entry (every type;
  // kNoop and kConfig entries usually change nothing). The result goes to the
  // member that proposed it and must be the same on every member; a non-ok
  // result rolls back what the entry changed. kIoError (the disk failed) is
  // not a result: the driver stops the member rather than move past it.
  virtual Status Apply(sqlite::Database& db, const Entry& entry) = 0;
  // Storage thread, inside the transaction of the Ready that applies them:
  // applies committed entries in log order, with (*results)[i] for
  // entries[i]. The tables and results must come out as Apply gives them one
  // after another, each in a savepoint of its own, which is what this does
  // (ApplyEach); a state machine may apply several entries in fewer writes
  // where it shows they come out the same. A non-ok return is a failed disk,
  // as for Apply.
  virtual Status ApplyAll(sqlite::Database& db, const std::vector<Entry>& entries, std::vector<Status>* results) {
    return ApplyEach(db, *this, entries, results);
  }
  // In a read transaction (storage thread, or a thread of its own with its
  // own connection): the whole state, as bytes Restore accepts.
  virtual Result<std::string> Snapshot(sqlite::Database& db) = 0;
  // Storage thread, inside a Ready's transaction: replaces the whole state
  // with a snapshot's. Bytes from another member: fail on garbage.
  virtual Status Restore(sqlite::Database& db, std::string_view snapshot) = 0;
  // Owner's thread, once the Ready that applied `entries` (after restoring a
  // snapshot first, when `restored`) is durable.
  virtual void AfterDurable(const std::vector<Entry>& entries, bool restored) {
    (void)entries;
    (void)restored;
  }
};

}  // namespace commitd::raft
