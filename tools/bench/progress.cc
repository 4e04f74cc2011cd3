#include "tools/bench/progress.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>

namespace commitd::bench {

namespace asio = boost::asio;

Progress::Progress(std::string mode, std::string target, Clock::time_point measure_from)
    : mode_(std::move(mode)),
      target_(std::move(target)),
      start_(Clock::now()),
      measure_from_(measure_from),
      last_answer_(start_) {}

void Progress::Committed(Clock::duration latency) {
  ++second_committed_;
  second_latency_.Record(latency);
  last_answer_ = Clock::now();
  any_unanswered_since_answer_ = false;
}

void Progress::Answered(bool is_error) {
  if (is_error) ++second_errors_;
  last_answer_ = Clock::now();
  any_unanswered_since_answer_ = false;
}

void Progress::Unanswered() {
  ++second_errors_;
  any_unanswered_since_answer_ = true;
}

std::string Progress::GiveUpMessage() const {
  return "nothing answered at " + target_ + " for " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kGiveUpAfter).count()) +
         " s (every request failed); stopped early";
}

void Progress::PrintSecond(Clock::time_point now) {
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "%s %5.0fs%s: %lld committed/s, p50 %.2f ms, p99 %.2f ms, %lld errors\n", mode_.c_str(),
               elapsed, now <= measure_from_ ? " (warmup)" : "", static_cast<long long>(second_committed_),
               static_cast<double>(second_latency_.PercentileNs(50)) / 1e6,
               static_cast<double>(second_latency_.PercentileNs(99)) / 1e6, static_cast<long long>(second_errors_));
  std::fflush(stderr);
  second_committed_ = 0;
  second_errors_ = 0;
  second_latency_ = LatencyRecorder();
}

asio::awaitable<void> Progress::Run(Clock::time_point stop_at) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  Clock::time_point next = start_ + std::chrono::seconds(1);
  while (next <= stop_at) {
    timer.expires_at(next);
    co_await timer.async_wait(asio::use_awaitable);
    PrintSecond(next);
    if (any_unanswered_since_answer_ && Clock::now() - last_answer_ >= kGiveUpAfter) {
      gave_up_ = true;
      co_return;
    }
    next += std::chrono::seconds(1);
  }
}

}  // namespace commitd::bench
