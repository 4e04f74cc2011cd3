// A small Prometheus metrics registry (text exposition format 0.0.4), shared
// by commitd and commit-agent instead of hand-written text in each.
//
//   metrics::Registry registry;
//   metrics::Counter& committed = registry.AddCounter(
//       "commitd_transactions_total", "Transactions by outcome.", {{"outcome", "committed"}});
//   metrics::Histogram& latency = registry.AddHistogram(
//       "commitd_transaction_duration_seconds", "...", metrics::LatencyBuckets(), {{"protocol", "2pc"}});
//   committed.Inc();  latency.Observe(0.0021);
//   std::string text = registry.Render();
//
// Series of one name share its type and help; label sets stay bounded (names
// of participants yes, txids never). Metric objects live as long as the
// registry and never move.
//
// Thread: one thread (the io thread) adds, updates and renders.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace commitd::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(double by = 1) { value_ += by; }
  double value() const { return value_; }

 private:
  double value_ = 0;
};

class Gauge {
 public:
  void Set(double v) { value_ = v; }
  void Add(double by) { value_ += by; }
  double value() const { return value_; }

 private:
  double value_ = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound, then +Inf (== count()).
  std::vector<uint64_t> Cumulative() const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;    // ascending upper bounds
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last: above every bound
  uint64_t count_ = 0;
  double sum_ = 0;
};

// 100 µs .. 10 s, for request and transaction latencies.
std::vector<double> LatencyBuckets();
// 1 .. 1024 in powers of two, for batch sizes.
std::vector<double> SizeBuckets();

enum class Type { kCounter, kGauge, kHistogram };

class Registry {
 public:
  // Adding a name again with another type or help is a programming error
  // (the first one stays; the new series is still returned and rendered).
  Counter& AddCounter(const std::string& name, const std::string& help, Labels labels = {});
  Gauge& AddGauge(const std::string& name, const std::string& help, Labels labels = {});
  // A gauge read when rendered.
  void AddGaugeFn(const std::string& name, const std::string& help, Labels labels, std::function<double()> read);
  void AddCounterFn(const std::string& name, const std::string& help, Labels labels, std::function<double()> read);
  Histogram& AddHistogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                          Labels labels = {});

  std::string Render() const;

 private:
  struct Series {
    Labels labels;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    Histogram* histogram = nullptr;
    std::function<double()> read;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<Series> series;
  };
  Family& FamilyOf(const std::string& name, Type type, const std::string& help);

  std::map<std::string, Family> families_;  // by name: a stable order
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
};

// process_resident_memory_bytes, process_open_fds, process_max_fds,
// process_cpu_seconds_total, process_start_time_seconds (from /proc/self).
void AddProcessMetrics(Registry& registry);
// <prefix>_build_info{version,commit} 1.
void AddBuildInfo(Registry& registry, const std::string& prefix, const std::string& version,
                  const std::string& commit);

}  // namespace commitd::metrics
