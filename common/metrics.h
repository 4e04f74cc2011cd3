// A small Prometheus metrics registry (text exposition format 0.0.4), shared
// by commitd and commit-agent.
//
//   metrics::Registry registry;
//   metrics::Counter& committed = registry.AddCounter(
//       "commitd_transactions_total", "Transactions by outcome.", {{"outcome", "committed"}});
//   metrics::HistogramFamily rtt(registry, "commitd_participant_round_trip_seconds", "...",
//                                {"participant", "phase"}, metrics::LatencyBuckets());
//   metrics::Histogram& prepare_a = rtt.With({"bank-a", "prepare"});  // resolved once, kept
//   committed.Inc();  prepare_a.Observe(0.0021);
//   std::string text = registry.Render();
//
// Series of one name share its type and help; label sets stay bounded (names
// of participants yes, txids never). Metric objects live as long as the
// registry and never move, also after Remove (it only stops rendering them).
//
// Thread: adding, resolving (Family::With), removing and rendering happen on
// the owner's thread (the io thread of the process). Recording (Inc, Set, Add,
// Observe) is lock-free with relaxed atomics and may run on any thread: the
// storage threads observe batch sizes and fsync latencies. A render running
// while a histogram is observed may see its sum one observation apart from its
// buckets; count and the +Inf bucket are always the same number.
#pragma once

#include <atomic>
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
  void Inc(double by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // Upper bounds (base units: seconds, items); sorted and deduplicated here.
  explicit Histogram(std::vector<double> bounds);
  // No allocation, no lock: a search over the bounds and two relaxed adds.
  void Observe(double value);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound, then +Inf (== count()).
  std::vector<uint64_t> Cumulative() const;
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;                     // ascending upper bounds, fixed
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; last: above every bound
  std::atomic<double> sum_{0};
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
  // A gauge (or counter) whose value is read when rendered.
  void AddGaugeFn(const std::string& name, const std::string& help, Labels labels, std::function<double()> read);
  void AddCounterFn(const std::string& name, const std::string& help, Labels labels, std::function<double()> read);
  Histogram& AddHistogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                          Labels labels = {});
  // Stops rendering every series of `name` with exactly these labels (a
  // participant removed from the registry). The objects stay valid.
  void Remove(const std::string& name, const Labels& labels);

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

// A labelled family: one name, fixed label names, a child per label-value
// tuple, made on first use. With() looks the child up (a map search): call it
// once per child and keep the reference, not once per observation.
template <class Metric>
class Family {
 public:
  Family(Registry& registry, std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : registry_(registry),
        name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  // values: one per label name, in their order.
  Metric& With(const std::vector<std::string>& values) {
    auto it = children_.find(values);
    if (it != children_.end()) return *it->second;
    Metric* m = Make(LabelsOf(values));
    children_.emplace(values, m);
    return *m;
  }
  // The child stops being rendered; With() makes a fresh one (from zero).
  void Remove(const std::vector<std::string>& values) {
    if (children_.erase(values) != 0) registry_.Remove(name_, LabelsOf(values));
  }

 private:
  Labels LabelsOf(const std::vector<std::string>& values) const {
    Labels labels;
    for (std::size_t i = 0; i < label_names_.size() && i < values.size(); ++i) {
      labels.emplace_back(label_names_[i], values[i]);
    }
    return labels;
  }
  Metric* Make(Labels labels);

  Registry& registry_;
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  std::map<std::vector<std::string>, Metric*> children_;
};

template <>
inline Counter* Family<Counter>::Make(Labels labels) {
  return &registry_.AddCounter(name_, help_, std::move(labels));
}
template <>
inline Gauge* Family<Gauge>::Make(Labels labels) {
  return &registry_.AddGauge(name_, help_, std::move(labels));
}
template <>
inline Histogram* Family<Histogram>::Make(Labels labels) {
  return &registry_.AddHistogram(name_, help_, bounds_, std::move(labels));
}

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// process_resident_memory_bytes, process_open_fds, process_max_fds,
// process_cpu_seconds_total, process_start_time_seconds (from /proc/self).
void AddProcessMetrics(Registry& registry);
// <prefix>_build_info{version,commit} 1.
void AddBuildInfo(Registry& registry, const std::string& prefix, const std::string& version,
                  const std::string& commit);

}  // namespace commitd::metrics
