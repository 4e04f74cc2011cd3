// The bench's running commentary: once a second, a line on stderr with what
// that second did (committed/s, p50, p99, errors), and the verdict that
// nothing answers any more, which ends the run early.
//
// Thread: used on the bench's one io_context thread only.
#pragma once

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "tools/bench/latency_recorder.h"

namespace commitd::bench {

class Progress {
 public:
  using Clock = std::chrono::steady_clock;
  // Requests failing with no reply at all for this long end the run.
  static constexpr Clock::duration kGiveUpAfter = std::chrono::seconds(5);

  // mode: "transfers", "agent"; target: what is asked, for the error.
  Progress(std::string mode, std::string target, Clock::time_point measure_from);

  // One request finished: committed (with its latency) or not.
  void Committed(Clock::duration latency);
  // Any other HTTP reply (an abort, a refusal, an error status): something answers.
  void Answered(bool is_error);
  // No reply at all (refused connection, timeout, reset).
  void Unanswered();

  // Runs until stop_at or until nothing answers; prints a line each second.
  boost::asio::awaitable<void> Run(Clock::time_point stop_at);

  // Nothing answered for kGiveUpAfter while requests failed: the load stops.
  bool gave_up() const { return gave_up_; }
  // "nothing answered http://... for 5 s: connection refused ..."
  std::string GiveUpMessage() const;

 private:
  void PrintSecond(Clock::time_point now);

  std::string mode_;
  std::string target_;
  Clock::time_point start_;
  Clock::time_point measure_from_;
  Clock::time_point last_answer_;
  bool any_unanswered_since_answer_ = false;
  bool gave_up_ = false;
  int64_t second_committed_ = 0;
  int64_t second_errors_ = 0;
  LatencyRecorder second_latency_;
};

}  // namespace commitd::bench
