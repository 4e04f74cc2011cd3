// ParticipantNode: one simulated participant process — participant::Node,
// the class commit-agent runs, on the real SQLite ResourceManager and its own
// database file, with the simulator's implementations of the Node's
// interfaces: SimStorageQueue under the SqliteStore (the same batch code as
// BatchWriter), transports over the sim Network, timers over the Scheduler.
// What is left here is the process around the Node: opening the file,
// crashing (the database closes, unsynced jobs are lost) and restarting
// (the Node recovers exactly as in commit-agent), turning the network's
// requests into Node calls, the world's checks, and the planted bugs'
// fault hooks.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/sqlite_db.h"
#include "participant/node.h"
#include "participant/procedures.h"
#include "participant/resource_manager.h"
#include "participant/sqlite_store.h"
#include "tests/sim/context.h"
#include "tests/sim/participant_transports.h"
#include "tests/sim/sim_storage_queue.h"
#include "tests/sim/sim_timers.h"

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
  // The database's queue: a power loss (World) is Crash(), then storage().LoseUnsynced().
  SimStorageQueue& storage() { return storage_; }

  // Nothing held by the node, no lock, storage idle, no prepared record in the database.
  bool Settled();
  std::string Describe();
  // Transactions the node holds in doubt (prepared or precommitted) now.
  std::size_t InDoubt();
  // Every balance equals its seed plus its journal; the bank's total in *total.
  std::optional<std::string> CheckBalances(int64_t* total);
  int64_t seed_total() const;

 private:
  void Handle(const Request& request, Responder respond);
  void AfterSync(sqlite::Database& db);
  void ReadNewJournalRows(sqlite::Database& db);
  void ReadNewAborts(sqlite::Database& db);

  std::string name_;
  Context& ctx_;
  std::string db_path_;
  participant::Procedures procedures_;
  std::vector<std::string> coordinator_urls_;  // every member of a group; one URL otherwise
  bool up_ = false;
  uint64_t incarnation_ = 0;
  SimStorageQueue storage_;
  SimTimers timers_;
  SimCoordinatorTransport coordinator_transport_;
  SimPeerTransport peer_transport_;
  // One process's worth; gone at a crash (node first, database last).
  std::unique_ptr<sqlite::Database> db_;
  std::unique_ptr<participant::ResourceManager> rm_;
  std::unique_ptr<participant::SqliteStore> store_;
  std::unique_ptr<participant::Node> node_;
  std::map<std::string, int64_t> seed_;  // account -> balance at creation
  int64_t journal_rowid_ = 0;            // journal rows up to here were reported to the checker
  int64_t aborts_read_ms_ = -1;          // aborted outcomes stamped up to here were reported
};

}  // namespace commitd::sim
