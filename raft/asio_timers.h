// The binary's raft::Timers: the io_context's timers and the engine clock
// (common/clock.h). Timers still pending when it is destroyed never fire.
//
// Thread: the io thread, except Post (any thread).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>

#include "common/clock.h"
#include "raft/timers.h"

namespace commitd::raft {

class AsioTimers final : public Timers {
 public:
  explicit AsioTimers(boost::asio::io_context& io) : io_(io) {}
  ~AsioTimers() override { *alive_ = false; }

  int64_t NowMs() override { return EngineClockMs(); }
  void After(int64_t ms, std::function<void()> fn) override {
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(ms));
    timer->async_wait([timer, alive = alive_, fn = std::move(fn)](boost::system::error_code ec) {
      if (!ec && *alive) fn();
    });
  }
  void Post(std::function<void()> fn) override { boost::asio::post(io_, std::move(fn)); }

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace commitd::raft
