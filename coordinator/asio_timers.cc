#include "coordinator/asio_timers.h"

#include <chrono>

#include "common/clock.h"

namespace commitd::coordinator {

AsioTimers::~AsioTimers() { CancelAll(); }

int64_t AsioTimers::NowMs() { return EngineClockMs(); }

void AsioTimers::CancelAll() {
  for (auto& t : pending_) t.cancel();
}

void AsioTimers::After(int64_t delay_ms, std::function<void()> fn) {
  pending_.emplace_back(io_, std::chrono::milliseconds(delay_ms));
  auto it = std::prev(pending_.end());
  it->async_wait([this, it, fn = std::move(fn)](boost::system::error_code ec) {
    if (ec) return;  // cancelled: `this` may be gone
    pending_.erase(it);
    fn();
  });
}

}  // namespace commitd::coordinator
