// Timers: a participant Node's clock and its way to be woken later. The
// binary's implementation is Asio (participant/asio_timers.h); the
// simulator's runs in virtual time.
//
// Thread: the Node's event thread; callbacks run there. NowMs() is also
// called from storage jobs (outcomes are stamped with it), so it must be safe
// from the storage thread.
#pragma once

#include <cstdint>
#include <functional>

namespace commitd::participant {

class Timers {
 public:
  virtual ~Timers() = default;
  // Wall clock in milliseconds (engine time: common/clock.h).
  virtual int64_t NowMs() const = 0;
  // Runs fn once, delay_ms from now, unless the timers are stopped first.
  virtual void After(int64_t delay_ms, std::function<void()> fn) = 0;
};

}  // namespace commitd::participant
