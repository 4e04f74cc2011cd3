// The coordinator group's replicated state machine: decision
// records, the participant registry and the members' URLs, on
// DecisionStore's tables in the member's raft.db, changed only by applying
// committed entries (raft_codec.h commands) in log order. Applying is
// deterministic and "first decision for a txid wins": a refused decision is
// Conflict for the member that proposed it.
//
// Thread: Apply, Snapshot and Restore on the storage thread (raft/driver.h);
// AfterDurable and the callback on the owner's.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "coordinator/raft_codec.h"
#include "raft/state_machine.h"

namespace commitd::coordinator {

class DecisionStateMachine final : public raft::StateMachine {
 public:
  // overwrite_decisions: deliberately wrong, only for proving that the
  // simulator's checker catches it: a later decision replaces an earlier one.
  explicit DecisionStateMachine(bool overwrite_decisions = false) : overwrite_decisions_(overwrite_decisions) {}
  // Creates the state machine's tables (DecisionStore's and group_members).
  static Status CreateSchema(sqlite::Database& db);

  Status Apply(sqlite::Database& db, const raft::Entry& entry) override;
  // As Apply one by one in savepoints, but a staging record and its decision
  // in the same batch (staging_folds.h) are written as one row, once, and a
  // record or a single finished mark, which writes in one statement or not
  // at all, takes no savepoint.
  Status ApplyAll(sqlite::Database& db, const std::vector<raft::Entry>& entries,
                  std::vector<Status>* results) override;
  Result<std::string> Snapshot(sqlite::Database& db) override;
  Status Restore(sqlite::Database& db, std::string_view snapshot) override;
  void AfterDurable(const std::vector<raft::Entry>& entries, bool restored) override;

  // Owner's thread: a member's URL was replicated ("" once it is removed).
  // Storage thread, after each entry is applied, with its result (the simulator's checks).
  void set_observer(std::function<void(const raft::Entry&, const Status&)> fn) { observer_ = std::move(fn); }
  void set_on_member_url(std::function<void(const std::string& id, const std::string& url)> fn) {
    on_member_url_ = std::move(fn);
  }
  // How many decisions the last applied ForgetFinished deleted (read once its proposal completed).
  std::size_t last_forgotten() const { return last_forgotten_.load(); }

 private:
  Status ApplyCommand(sqlite::Database& db, const raft::Entry& entry);
  Status ApplyDecoded(sqlite::Database& db, const Command& command);

  const bool overwrite_decisions_;
  std::function<void(const raft::Entry&, const Status&)> observer_;
  std::mutex mu_;
  // Storage thread to owner's thread: URLs applied since the last AfterDurable.
  std::vector<command::SetMember> member_urls_;
  std::function<void(const std::string&, const std::string&)> on_member_url_;
  std::atomic<std::size_t> last_forgotten_{0};
};

}  // namespace commitd::coordinator
