#include "common/asio_timers.h"

#include <chrono>

#include "common/clock.h"

namespace commitd {

int64_t AsioTimers::NowMs() const { return EngineClockMs(); }

void AsioTimers::After(int64_t delay_ms, std::function<void()> fn) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(delay_ms));
  const uint64_t id = next_id_++;
  pending_.emplace(id, timer);
  timer->async_wait([this, alive = alive_, id, timer, fn = std::move(fn)](boost::system::error_code ec) {
    if (ec || !*alive || pending_.erase(id) == 0) return;
    fn();
  });
}

void AsioTimers::Cancel() {
  for (auto& [id, t] : pending_) t->cancel();
  pending_.clear();
}

}  // namespace commitd
