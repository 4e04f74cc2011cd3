// Timers: a node's clock and its way to be woken later. The binaries'
// implementation is Asio (common/asio_timers.h: engine time from
// common/clock.h and steady timers); the simulator's runs on its virtual
// clock and scheduler.
//
// Thread: the node's event thread; callbacks run there. NowMs() is also
// called from storage jobs (a participant stamps outcomes with it), so it must
// be safe from the storage thread.
#pragma once

#include <cstdint>
#include <functional>

namespace commitd {

class Timers {
 public:
  virtual ~Timers() = default;
  // Wall clock in milliseconds (engine time: common/clock.h).
  virtual int64_t NowMs() const = 0;
  // Runs fn once, delay_ms from now, unless the timers are stopped first.
  virtual void After(int64_t delay_ms, std::function<void()> fn) = 0;
};

}  // namespace commitd
