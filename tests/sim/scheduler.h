// Scheduler: the virtual clock and the queue of future events.
//
// Time only moves when the next event runs; events at the same instant run in
// the order they were scheduled. Every event names the node it runs on (or ""
// for the world itself) so the world can inject a crash right after any step
// of any node; periodic ticks are marked so that crashes can favour the steps
// that do I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

namespace commitd::sim {

class Scheduler {
 public:
  enum class Kind { kStep, kTick };
  using AfterEventHook = std::function<void(const std::string& node, Kind kind)>;

  explicit Scheduler(int64_t start_ms) : now_(start_ms) {}

  int64_t now() const { return now_; }
  void At(int64_t when_ms, std::string node, std::function<void()> fn, Kind kind = Kind::kStep);
  void After(int64_t delay_ms, std::string node, std::function<void()> fn, Kind kind = Kind::kStep) {
    At(now_ + delay_ms, std::move(node), std::move(fn), kind);
  }
  // Runs the earliest event, then the hook; false when nothing is scheduled.
  bool Step();
  bool empty() const { return events_.empty(); }
  std::size_t size() const { return events_.size(); }
  void set_after_event(AfterEventHook hook) { after_event_ = std::move(hook); }

 private:
  struct Event {
    std::string node;
    std::function<void()> fn;
    Kind kind;
  };
  int64_t now_;
  uint64_t next_seq_ = 0;
  std::map<std::pair<int64_t, uint64_t>, Event> events_;
  AfterEventHook after_event_;
};

}  // namespace commitd::sim
