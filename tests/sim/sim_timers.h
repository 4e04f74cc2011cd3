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
  // clock_offset_ms: this node's wall clock minus the virtual clock (a clock
  // set back is negative); delays are unaffected.
  SimTimers(Scheduler& scheduler, std::string node, int64_t clock_offset_ms = 0)
      : scheduler_(scheduler), node_(std::move(node)), clock_offset_ms_(clock_offset_ms) {}
  ~SimTimers() override { *alive_ = false; }

  int64_t NowMs() const override { return scheduler_.now() + clock_offset_ms_; }
  void After(int64_t delay_ms, std::function<void()> fn) override {
    scheduler_.After(delay_ms, node_, [alive = alive_, fn = std::move(fn)] {
      if (*alive) fn();
    }, Scheduler::Kind::kTick);
  }

 private:
  Scheduler& scheduler_;
  std::string node_;
  int64_t clock_offset_ms_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace commitd::sim
