// SqliteStore: a participant's Store on the SQLite ResourceManager. Each
// engine action becomes one StorageJob on the node's StorageQueue
// (BatchWriter in the binary, SimStorageQueue in the simulator), so what a
// batch does to the database is the same code in both.
//
// Thread: the Node's event thread. The ResourceManager is used only inside
// jobs (the queue's storage thread), except Validate() and
// ProcedureNames(), which read only what Open() fixed.
#pragma once

#include <functional>

#include "common/storage_queue.h"
#include "participant/resource_manager.h"
#include "participant/store.h"
#include "common/timers.h"

namespace commitd::participant {

class SqliteStore final : public Store {
 public:
  // All three must outlive the store; `timers` gives the time outcomes are stamped with.
  SqliteStore(ResourceManager& rm, StorageQueue& queue, const Timers& timers)
      : rm_(rm), queue_(queue), timers_(timers) {}

  Result<Contents> Load() override;
  Status Validate(const std::vector<wire::Op>& ops) const override { return rm_.Validate(ops); }
  std::vector<std::string> ProcedureNames() const override { return rm_.procedures().Names(); }

  void Prepare(action::Prepare prepare,
               std::function<void(const std::string& txid, PrepareResult, Status)> done) override;
  void Commit(const std::string& txid, std::function<void(Status)> done) override;
  void Abort(const std::string& txid, std::function<void(Status)> done) override;
  void Precommit(const std::string& txid, std::function<void(Status)> done) override;
  void Adopt(const std::string& txid, const Adoption& adoption, std::function<void(Status)> done) override;
  void WriteTombstone(const std::string& txid, std::function<void(Result<Outcome>)> done) override;
  void ForgetOutcomesBefore(int64_t cutoff_ms) override;
  void FindOutcome(const std::string& txid,
                   std::function<void(Result<std::optional<StoredOutcome>>)> done) override;

  // Test-only fault switch (the simulator's bug commit-without-fsync): a
  // commit asks for no fsync (Durability::kNone), so its done, and the
  // agent's ack, may come before anything made it durable.
  void set_unsafe_commit_without_sync(bool on) { unsafe_commit_without_sync_ = on; }

 private:
  ResourceManager& rm_;
  StorageQueue& queue_;
  const Timers& timers_;
  bool unsafe_commit_without_sync_ = false;
};

}  // namespace commitd::participant
