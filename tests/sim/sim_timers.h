// The coordinator's Timers on the simulator's virtual clock and scheduler.
// Destroying them (a crash) voids every pending timer.
#pragma once

#include <memory>
#include <string>

#include "coordinator/timers.h"
#include "tests/sim/scheduler.h"

namespace commitd::sim {

class SimTimers final : public coordinator::Timers {
 public:
  SimTimers(Scheduler& scheduler, std::string node) : scheduler_(scheduler), node_(std::move(node)) {}
  ~SimTimers() override { *alive_ = false; }

  int64_t NowMs() override { return scheduler_.now(); }
  void After(int64_t delay_ms, std::function<void()> fn) override {
    scheduler_.After(delay_ms, node_, [alive = alive_, fn = std::move(fn)] {
      if (*alive) fn();
    }, Scheduler::Kind::kTick);
  }

 private:
  Scheduler& scheduler_;
  std::string node_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace commitd::sim
