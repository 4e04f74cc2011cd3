#include "participant/asio_timers.h"

#include <chrono>

#include "common/clock.h"

namespace commitd::participant {

int64_t AsioTimers::NowMs() const { return EngineClockMs(); }

void AsioTimers::After(int64_t delay_ms, std::function<void()> fn) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(delay_ms));
  auto it = pending_.insert(pending_.end(), timer);
  timer->async_wait([this, it, timer, fn = std::move(fn)](boost::system::error_code ec) {
    if (ec) return;  // cancelled: `it` may be gone with the list
    pending_.erase(it);
    fn();
  });
}

void AsioTimers::Cancel() {
  for (auto& t : pending_) t->cancel();
  pending_.clear();
}

}  // namespace commitd::participant
