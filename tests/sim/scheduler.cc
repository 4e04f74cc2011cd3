#include "tests/sim/scheduler.h"

namespace commitd::sim {

void Scheduler::At(int64_t when_ms, std::string node, std::function<void()> fn, Kind kind) {
  if (when_ms < now_) when_ms = now_;
  events_.emplace(std::make_pair(when_ms, next_seq_++), Event{std::move(node), std::move(fn), kind});
}

bool Scheduler::Step() {
  if (events_.empty()) return false;
  auto node = events_.extract(events_.begin());
  now_ = node.key().first;
  Event& event = node.mapped();
  event.fn();
  if (after_event_ && !event.node.empty()) after_event_(event.node, event.kind);
  return true;
}

}  // namespace commitd::sim
