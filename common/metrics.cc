#include "common/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace commitd::metrics {
namespace {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

std::string EscapeLabel(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string LabelText(const Labels& labels, const std::pair<std::string, std::string>* extra = nullptr) {
  if (labels.empty() && extra == nullptr) return std::string();
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::pair<std::string, std::string>& l) {
    if (!first) out += ",";
    first = false;
    out += l.first + "=\"" + EscapeLabel(l.second) + "\"";
  };
  for (const auto& l : labels) add(l);
  if (extra != nullptr) add(*extra);
  return out + "}";
}

const char* TypeName(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
  }
  return "untyped";
}

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  std::size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::Cumulative() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t running = 0;
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = running += counts_[i].load(std::memory_order_relaxed);
  return out;
}

uint64_t Histogram::count() const { return Cumulative().back(); }

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> SizeBuckets() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}; }

Registry::Family& Registry::FamilyOf(const std::string& name, Type type, const std::string& help) {
  auto [it, inserted] = families_.try_emplace(name, Family{type, help, {}});
  return it->second;
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help, Labels labels) {
  Counter& c = counters_.emplace_back();
  FamilyOf(name, Type::kCounter, help).series.push_back({std::move(labels), &c, nullptr, nullptr, nullptr});
  return c;
}

Gauge& Registry::AddGauge(const std::string& name, const std::string& help, Labels labels) {
  Gauge& g = gauges_.emplace_back();
  FamilyOf(name, Type::kGauge, help).series.push_back({std::move(labels), nullptr, &g, nullptr, nullptr});
  return g;
}

void Registry::AddGaugeFn(const std::string& name, const std::string& help, Labels labels,
                          std::function<double()> read) {
  FamilyOf(name, Type::kGauge, help).series.push_back({std::move(labels), nullptr, nullptr, nullptr, std::move(read)});
}

void Registry::AddCounterFn(const std::string& name, const std::string& help, Labels labels,
                            std::function<double()> read) {
  FamilyOf(name, Type::kCounter, help)
      .series.push_back({std::move(labels), nullptr, nullptr, nullptr, std::move(read)});
}

void Registry::Remove(const std::string& name, const Labels& labels) {
  auto it = families_.find(name);
  if (it == families_.end()) return;
  std::erase_if(it->second.series, [&labels](const Series& s) { return s.labels == labels; });
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                                  Labels labels) {
  Histogram& h = histograms_.emplace_back(std::move(bounds));
  FamilyOf(name, Type::kHistogram, help).series.push_back({std::move(labels), nullptr, nullptr, &h, nullptr});
  return h;
}

std::string Registry::Render() const {
  std::string out;
  for (const auto& [name, family] : families_) {
    if (family.series.empty()) continue;
    out += "# HELP " + name + " " + EscapeHelp(family.help) + "\n";
    out += "# TYPE " + name + " " + TypeName(family.type) + "\n";
    for (const Series& s : family.series) {
      if (s.histogram != nullptr) {
        const Histogram& h = *s.histogram;
        // One read of the buckets: count and +Inf are the same number.
        std::vector<uint64_t> cumulative = h.Cumulative();
        for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
          std::pair<std::string, std::string> le{"le", i < h.bounds().size() ? FormatValue(h.bounds()[i]) : "+Inf"};
          out += name + "_bucket" + LabelText(s.labels, &le) + " " + std::to_string(cumulative[i]) + "\n";
        }
        out += name + "_sum" + LabelText(s.labels) + " " + FormatValue(h.sum()) + "\n";
        out += name + "_count" + LabelText(s.labels) + " " + std::to_string(cumulative.back()) + "\n";
        continue;
      }
      double value = s.read ? s.read() : s.counter != nullptr ? s.counter->value() : s.gauge->value();
      out += name + LabelText(s.labels) + " " + FormatValue(value) + "\n";
    }
  }
  return out;
}

void AddProcessMetrics(Registry& registry) {
  registry.AddGaugeFn("process_resident_memory_bytes", "Resident memory size in bytes.", {}, [] {
    std::istringstream statm(ReadFile("/proc/self/statm"));
    double pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<double>(sysconf(_SC_PAGESIZE));
  });
  registry.AddGaugeFn("process_open_fds", "Open file descriptors.", {}, [] {
    double n = 0;
    if (DIR* dir = opendir("/proc/self/fd")) {
      while (dirent* e = readdir(dir)) n += e->d_name[0] == '.' ? 0 : 1;
      closedir(dir);
      n -= 1;  // the directory stream's own descriptor
    }
    return n;
  });
  registry.AddGaugeFn("process_max_fds", "Limit on open file descriptors (soft).", {}, [] {
    rlimit rl{};
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? static_cast<double>(rl.rlim_cur)
                                                                               : 0.0;
  });
  registry.AddCounterFn("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", {}, [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  });
  // Start time: boot time (/proc/stat btime) plus the process's start in clock ticks (/proc/self/stat field 22).
  const double start_seconds = [] {
    std::istringstream stat(ReadFile("/proc/stat"));
    std::string key;
    double btime = 0;
    while (stat >> key) {
      if (key == "btime") {
        stat >> btime;
        break;
      }
    }
    std::string self = ReadFile("/proc/self/stat");
    std::size_t close = self.rfind(')');
    if (close == std::string::npos) return 0.0;
    std::istringstream fields(self.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 22 && fields >> field; ++i) {
      if (i == 22) return btime + std::stod(field) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    return 0.0;
  }();
  registry.AddGaugeFn("process_start_time_seconds", "Start time of the process since the epoch, in seconds.", {},
                      [start_seconds] { return start_seconds; });
}

void AddBuildInfo(Registry& registry, const std::string& prefix, const std::string& version,
                  const std::string& commit) {
  registry.AddGaugeFn(prefix + "_build_info", "Version and git commit of this build (always 1).",
                      {{"version", version}, {"commit", commit}}, [] { return 1.0; });
}

}  // namespace commitd::metrics
