// Collects request latencies and reports percentiles over everything recorded.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace commitd::bench {

class LatencyRecorder {
 public:
  void Record(std::chrono::nanoseconds latency) {
    samples_.push_back(latency.count());
    sorted_ = false;
  }
  std::size_t count() const { return samples_.size(); }

  // Nearest-rank percentile (0 < p <= 100) in nanoseconds; 0 when empty.
  int64_t PercentileNs(double p);
  int64_t MaxNs();

  // {"p50":..,"p90":..,"p99":..,"max":..} in milliseconds.
  nlohmann::json SummaryMs();

 private:
  void Sort();

  std::vector<int64_t> samples_;
  bool sorted_ = true;
};

}  // namespace commitd::bench
