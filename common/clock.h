// The time the protocol engines run on.
#pragma once

#include <chrono>
#include <cstdint>

namespace commitd {

// Milliseconds since the epoch as the wall clock read at the first call, then
// advanced by the monotonic clock: close to wall time (it is persisted and
// shown, e.g. prepare deadlines), but a wall-clock step (NTP, an operator)
// cannot stall or rush deadlines and backoffs inside a running process.
// Thread-safe.
inline int64_t EngineClockMs() {
  using namespace std::chrono;
  static const int64_t wall_at_start = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  static const steady_clock::time_point steady_at_start = steady_clock::now();
  return wall_at_start + duration_cast<milliseconds>(steady_clock::now() - steady_at_start).count();
}

}  // namespace commitd
