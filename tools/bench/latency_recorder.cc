#include "tools/bench/latency_recorder.h"

#include <algorithm>
#include <cmath>

namespace commitd::bench {

void LatencyRecorder::Sort() {
  if (sorted_) return;
  std::sort(samples_.begin(), samples_.end());
  sorted_ = true;
}

int64_t LatencyRecorder::PercentileNs(double p) {
  if (samples_.empty()) return 0;
  Sort();
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples_.size())));
  rank = std::clamp<std::size_t>(rank, 1, samples_.size());
  return samples_[rank - 1];
}

int64_t LatencyRecorder::MaxNs() {
  if (samples_.empty()) return 0;
  return *std::max_element(samples_.begin(), samples_.end());
}

nlohmann::json LatencyRecorder::SummaryMs() {
  auto ms = [](int64_t ns) { return std::round(static_cast<double>(ns) / 1e4) / 100.0; };
  return {{"p50", ms(PercentileNs(50))}, {"p90", ms(PercentileNs(90))}, {"p99", ms(PercentileNs(99))},
          {"max", ms(MaxNs())}};
}

}  // namespace commitd::bench
