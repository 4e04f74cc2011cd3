// A node's Timers on the simulator's virtual clock and scheduler. Callbacks
// are tick events (the world favours other steps for crashes). Destroying
// them (a crash) voids every pending timer.
#pragma once

#include <memory>
#include <string>

#include "common/timers.h"
#include "tests/sim/scheduler.h"

namespace commitd::sim {

class SimTimers final : public commitd::Timers {
 public:
  SimTimers(Scheduler& scheduler, std::string node) : scheduler_(scheduler), node_(std::move(node)) {}
  ~SimTimers() override { *alive_ = false; }

  int64_t NowMs() const override { return scheduler_.now(); }
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
