// Timers: the clock and the timers a Node runs on. The binary's are the
// engine clock (common/clock.h) and asio steady timers; the simulator's are
// its virtual clock and scheduler.
//
// Thread: called on the Node's thread; callbacks run there.
#pragma once

#include <cstdint>
#include <functional>

namespace commitd::coordinator {

class Timers {
 public:
  virtual ~Timers() = default;
  virtual int64_t NowMs() = 0;
  // Runs fn once, delay_ms from now, unless the Timers are destroyed first.
  virtual void After(int64_t delay_ms, std::function<void()> fn) = 0;
};

}  // namespace commitd::coordinator
