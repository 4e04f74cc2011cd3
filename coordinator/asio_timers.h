// Timers on an io_context: the engine clock (common/clock.h) and steady
// timers. Destroying it cancels every pending timer.
//
// Thread: the io thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <list>
#include <memory>

#include "coordinator/timers.h"

namespace commitd::coordinator {

class AsioTimers final : public Timers {
 public:
  explicit AsioTimers(boost::asio::io_context& io) : io_(io) {}
  ~AsioTimers() override;

  int64_t NowMs() override;
  void After(int64_t delay_ms, std::function<void()> fn) override;
  // Cancels every pending timer; later ones still run.
  void CancelAll();

 private:
  boost::asio::io_context& io_;
  std::list<boost::asio::steady_timer> pending_;
};

}  // namespace commitd::coordinator
