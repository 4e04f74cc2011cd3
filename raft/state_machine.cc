#include "raft/state_machine.h"

namespace commitd::raft {

Status ApplyInSavepoint(sqlite::Database& db, const std::function<Status()>& apply, Status* result) {
  if (Status s = db.Exec("SAVEPOINT apply_entry"); !s.ok()) return s;
  *result = apply();
  // A failed disk is not a refusal every member would repeat: stop rather
  // than advance the applied index past an entry not applied.
  if (result->code() == StatusCode::kIoError) return *result;
  if (!result->ok()) {
    if (Status s = db.Exec("ROLLBACK TO apply_entry"); !s.ok()) return s;
  }
  return db.Exec("RELEASE apply_entry");
}

Status ApplyEach(sqlite::Database& db, StateMachine& machine, const std::vector<Entry>& entries,
                 std::vector<Status>* results) {
  results->reserve(results->size() + entries.size());
  for (const Entry& e : entries) {
    Status result;
    if (Status s = ApplyInSavepoint(db, [&] { return machine.Apply(db, e); }, &result); !s.ok()) return s;
    results->push_back(std::move(result));
  }
  return Status::Ok();
}

}  // namespace commitd::raft
