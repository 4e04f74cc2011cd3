// CoordinatorNode: one simulated coordinator process running the real
// coordinator::Node, on the real SqliteDecisionLog over a real SQLite file
// (in the run's tmp dir) written through a SimStorageQueue, with the
// simulator's AgentTransport and Timers. Client requests arriving over the
// simulated network are parsed and answered as the HTTP adapter does
// (coordinator/api_render.h).
//
// A crash loses the Node, its waiting clients and every storage job not yet
// synced, and closes the database; a restart reopens it and starts a Node.
// The checker hears of a decision only once the batch holding it is durable.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "coordinator/node.h"
#include "coordinator/sqlite_decision_log.h"
#include "tests/sim/context.h"
#include "tests/sim/seeded_entropy.h"
#include "tests/sim/sim_agent_transport.h"
#include "tests/sim/sim_storage_queue.h"
#include "tests/sim/sim_timers.h"

namespace commitd::sim {

class CoordinatorNode {
 public:
  // participants: the registered agents (their network nodes).
  CoordinatorNode(std::string name, Context& ctx, std::string db_path, std::vector<std::string> participants);
  ~CoordinatorNode();

  // Boots a process: opens the database and starts a Node (which resumes).
  Status Start();
  void Crash();
  bool up() const { return up_; }
  const std::string& name() const { return name_; }
  void set_log_delay_ms(int64_t ms) { queue_.set_max_delay_ms(ms); }
  // The log's queue: a power loss (World) is Crash(), then storage().LoseUnsynced().
  SimStorageQueue& storage() { return queue_; }
  // The machine's wall clock minus the virtual clock, from the next Start on
  // (the adversary sets it back).
  void set_clock_offset_ms(int64_t ms) { clock_offset_ms_ = ms; }
  int64_t clock_offset_ms() const { return clock_offset_ms_; }
  // The log's identity ("" while down): what every prepare it sends carries.
  std::string log_id();
  // While down: decisions.db (and its -wal/-shm) replaced by an empty file.
  void ReplaceLogWithEmptyFile();

  // Up, storage idle, nothing in the engine and every recorded decision finished.
  bool Settled();
  std::string Describe();

 private:
  class FaultyLog;

  void Handle(const Request& request, Responder respond);
  void ReportDurable(sqlite::Database& db);

  std::string name_;
  Context& ctx_;
  std::string db_path_;
  std::vector<std::string> participants_;
  bool up_ = false;
  uint64_t incarnation_ = 0;
  int64_t started_ms_ = 0;  // the node's clock at the last Start
  int64_t clock_offset_ms_ = 0;
  SimStorageQueue queue_;
  std::unique_ptr<sqlite::Database> db_;
  std::unique_ptr<coordinator::SqliteDecisionLog> store_;
  std::unique_ptr<FaultyLog> log_;
  std::unique_ptr<SimAgentTransport> agents_;
  std::unique_ptr<SimTimers> timers_;
  SeededEntropy entropy_;
  std::unique_ptr<coordinator::Node> node_;
  std::set<std::string> appended_;  // decisions submitted to storage, not yet seen durable
};

}  // namespace commitd::sim
