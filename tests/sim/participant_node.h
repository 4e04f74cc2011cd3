// ParticipantNode: the real participant::Engine and the real SQLite
// ResourceManager on a database file of its own, driven the way
// participant/agent.cc drives them.
//
// Storage is a SyncQueue standing in for BatchWriter: Execute, PersistPrepared,
// ApplyCommit... run in FIFO order, a batch per real SQLite transaction, and
// completions come back in order (the engine's ordering assumption). A crash
// closes the database and loses the unsynced jobs; a restart reopens the file
// and recovers exactly as Agent::Start does.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/sqlite_db.h"
#include "participant/engine.h"
#include "participant/procedures.h"
#include "participant/resource_manager.h"
#include "tests/sim/context.h"
#include "tests/sim/sync_queue.h"

namespace commitd::sim {

class ParticipantNode {
 public:
  ParticipantNode(std::string name, Context& ctx, std::string db_path, participant::Procedures procedures,
                  std::vector<std::string> coordinator_urls);
  ~ParticipantNode();

  // A fresh database holding the bank schema and its seed rows.
  Status Create(const std::string& schema_sql, const std::string& seed_sql);
  // Boots a process on the existing database file.
  Status Start();
  void Crash();
  bool up() const { return up_; }
  const std::string& name() const { return name_; }
  void set_storage_delay_ms(int64_t ms) { storage_.set_max_delay_ms(ms); }

  // Nothing held by the engine, no lock, storage idle, no prepared record in the database.
  bool Settled();
  std::string Describe();
  // Transactions the engine holds in doubt (prepared or precommitted) now.
  std::size_t InDoubt();
  // Every balance equals its seed plus its journal; the bank's total in *total.
  std::optional<std::string> CheckBalances(int64_t* total);
  int64_t seed_total() const;

 private:
  void Handle(const Request& request, Responder respond);
  void Pump();
  void Execute(participant::Action& a);
  void QueryDecision(std::string txid, std::vector<std::string> urls, std::size_t index, std::string errors);
  void ScheduleTick();
  void CommitOnTimeout();
  void CallPeers(participant::action::CallPeers call);
  participant::RequestToken Track(Responder respond);
  std::vector<Status> RunBatch(std::vector<SyncQueue::Job>& batch);
  void ReadNewJournalRows();

  std::string name_;
  Context& ctx_;
  std::string db_path_;
  participant::Procedures procedures_;
  std::vector<std::string> coordinator_urls_;  // every member of a group; one URL otherwise
  bool up_ = false;
  uint64_t incarnation_ = 0;
  std::unique_ptr<sqlite::Database> db_;
  std::unique_ptr<participant::ResourceManager> rm_;
  std::unique_ptr<participant::Engine> engine_;
  SyncQueue storage_;
  std::unordered_map<participant::RequestToken, Responder> requests_;
  participant::RequestToken next_token_ = 1;
  std::map<std::string, int64_t> seed_;  // account -> balance at creation
  int64_t journal_rowid_ = 0;            // journal rows up to here were reported to the checker
};

}  // namespace commitd::sim
