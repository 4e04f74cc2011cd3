// AsioTimers: a node's Timers on an io_context (engine time from common/clock.h).
//
// Thread: the io_context's thread; NowMs() from any thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <map>
#include <memory>

#include "common/timers.h"

namespace commitd {

class AsioTimers final : public Timers {
 public:
  explicit AsioTimers(boost::asio::io_context& io) : io_(io) {}
  ~AsioTimers() override {
    *alive_ = false;
    Cancel();
  }

  int64_t NowMs() const override;
  void After(int64_t delay_ms, std::function<void()> fn) override;
  // Every pending callback is dropped.
  void Cancel();

 private:
  boost::asio::io_context& io_;
  uint64_t next_id_ = 0;
  // A timer whose id is gone from here was cancelled, even if it had already expired.
  std::map<uint64_t, std::shared_ptr<boost::asio::steady_timer>> pending_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace commitd
