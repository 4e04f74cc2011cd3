// CoordinatorNode: the real coordinator::Engine, driven the way
// coordinator/service.cc drives it, with a simulated decision log.
//
// The log is a durable map (decisions and finished marks) written only by
// syncs of a SyncQueue, so a crash loses exactly the writes not yet synced.
// Like the real SqliteDecisionLog the first decision for a txid wins; unlike
// it, a finished decision is forgotten kFinishedRetentionMs later, which
// presumed abort allows and which makes an early ack visible.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "coordinator/engine.h"
#include "tests/sim/context.h"
#include "tests/sim/sync_queue.h"

namespace commitd::sim {

class CoordinatorNode {
 public:
  CoordinatorNode(std::string name, Context& ctx);

  // Boots a process: resumes every unfinished durable decision.
  void Start();
  // The process dies: engine, waiting clients and unsynced log writes are gone.
  void Crash();
  bool up() const { return up_; }
  const std::string& name() const { return name_; }
  void set_log_delay_ms(int64_t ms) { log_.set_max_delay_ms(ms); }

  // Nothing in flight and every durable decision finished.
  bool Settled() const;
  std::string Describe() const;

 private:
  void Handle(const Request& request, Responder respond);
  void HandleSubmit(const Request& request, Responder respond);
  void HandleGetTransaction(const std::string& txid, Responder respond);
  void Pump();
  void Execute(coordinator::Action& a);
  void ScheduleTick();
  std::vector<Status> RunBatch(std::vector<SyncQueue::Job>& batch);

  std::string name_;
  Context& ctx_;
  bool up_ = false;
  uint64_t incarnation_ = 0;
  uint64_t txid_counter_ = 0;
  std::map<std::string, coordinator::DecisionRecord> durable_;  // survives crashes
  SyncQueue log_;
  std::unique_ptr<coordinator::Engine> engine_;
  std::unordered_map<coordinator::ClientToken, Responder> clients_;
  coordinator::ClientToken next_client_ = 1;
};

}  // namespace commitd::sim
