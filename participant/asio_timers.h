// AsioTimers: a Node's Timers on an io_context (engine time from common/clock.h).
//
// Thread: the io_context's thread; NowMs() from any thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <list>
#include <memory>

#include "participant/timers.h"

namespace commitd::participant {

class AsioTimers final : public Timers {
 public:
  explicit AsioTimers(boost::asio::io_context& io) : io_(io) {}
  ~AsioTimers() override { Cancel(); }

  int64_t NowMs() const override;
  void After(int64_t delay_ms, std::function<void()> fn) override;
  // Every pending callback is dropped.
  void Cancel();

 private:
  boost::asio::io_context& io_;
  std::list<std::shared_ptr<boost::asio::steady_timer>> pending_;
};

}  // namespace commitd::participant
