// SyncQueue: a node's storage as the simulator sees it.
//
// Jobs wait in FIFO order until a sync runs them as one batch — one durable
// transaction, like BatchWriter's group commit — and their completions are
// then delivered in the same order, a little later, as separate events (the
// storage thread posting back to the io thread). A crash loses every job not
// yet synced and every completion not yet delivered; what a sync wrote stays.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/sim/random.h"
#include "tests/sim/scheduler.h"
#include "tests/sim/trace.h"

namespace commitd::sim {

class SyncQueue {
 public:
  struct Job {
    std::string label;
    std::function<void()> scratch;                 // first, in a transaction rolled back (BatchWriter::Job::scratch)
    std::function<Status()> run;                   // inside the batch transaction
    std::function<void(const Status&)> on_synced;  // right after the batch is durable (for checks)
    std::function<void(Status)> done;              // the completion the node sees; may be empty
  };
  // Runs a batch as one durable transaction; one status per job.
  using BatchRunner = std::function<std::vector<Status>(std::vector<Job>& batch)>;

  SyncQueue(std::string node, Scheduler& scheduler, Random& random, Trace& trace, BatchRunner runner)
      : node_(std::move(node)), scheduler_(scheduler), random_(random), trace_(trace), runner_(std::move(runner)) {}

  void set_max_delay_ms(int64_t ms) { max_delay_ms_ = ms; }
  void Submit(Job job);
  void Crash();
  bool idle() const { return queued_.empty() && completed_.empty(); }
  uint64_t syncs() const { return syncs_; }

 private:
  void Sync(uint64_t epoch);
  void Deliver(uint64_t epoch);

  std::string node_;
  Scheduler& scheduler_;
  Random& random_;
  Trace& trace_;
  BatchRunner runner_;
  int64_t max_delay_ms_ = 5;
  std::deque<Job> queued_;
  std::deque<std::pair<std::function<void(Status)>, Status>> completed_;
  bool sync_scheduled_ = false;
  bool delivery_scheduled_ = false;
  uint64_t epoch_ = 0;  // bumped by a crash: events scheduled before it do nothing
  uint64_t syncs_ = 0;
};

}  // namespace commitd::sim
