#include "tests/sim/trace.h"

#include <cstdio>

namespace commitd::sim {

void Trace::Add(int64_t now_ms, const std::string& node, const std::string& what) {
  const int64_t t = now_ms - origin_ms_;
  char head[48];
  std::snprintf(head, sizeof head, "%5lld.%03lld %-7s ", static_cast<long long>(t / 1000),
                static_cast<long long>(t % 1000), node.c_str());
  std::string line = head + what;
  for (unsigned char c : line) {
    hash_ ^= c;
    hash_ *= 1099511628211ull;
  }
  ++count_;
  if (echo_) std::printf("%s\n", line.c_str());
  if (!focus_.empty() && (node == "world" || what.find(focus_) != std::string::npos)) focused_.push_back(line);
  if (capacity_ == 0) return;
  if (ring_.size() == capacity_) ring_.pop_front();
  ring_.push_back(std::move(line));
}

void Trace::DumpFocus() const {
  for (const auto& line : focused_) std::printf("%s\n", line.c_str());
}

void Trace::Dump() const {
  for (const auto& line : ring_) std::printf("%s\n", line.c_str());
}

}  // namespace commitd::sim
