// The driver's clock and event loop: raft/asio_timers.h in the binary, the
// simulator's scheduler in virtual time.
#pragma once

#include <cstdint>
#include <functional>

namespace commitd::raft {

class Timers {
 public:
  virtual ~Timers() = default;
  virtual int64_t NowMs() = 0;
  // fn runs on the owner's thread after ms.
  virtual void After(int64_t ms, std::function<void()> fn) = 0;
  // Callable from any thread: fn runs on the owner's thread soon.
  virtual void Post(std::function<void()> fn) = 0;
};

}  // namespace commitd::raft
