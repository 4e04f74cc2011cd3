// Trace: what happened in a run, one line per event, for replaying a failure
// by eye. Keeps the last `capacity` lines (printed on a violation), or echoes
// every line to stdout as it happens (--trace). A hash of every line lets
// two runs of one seed be compared for determinism.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

namespace commitd::sim {

class Trace {
 public:
  Trace(int64_t origin_ms, std::size_t capacity, bool echo)
      : origin_ms_(origin_ms), capacity_(capacity), echo_(echo) {}

  void Add(int64_t now_ms, const std::string& node, const std::string& what);
  // Also keeps, without limit, every line that mentions `focus` or comes
  // from the world (faults, heals): one transaction's whole story.
  void set_focus(std::string focus) { focus_ = std::move(focus); }
  // Prints the kept lines to stdout.
  void Dump() const;
  // Prints the focused lines to stdout.
  void DumpFocus() const;
  uint64_t hash() const { return hash_; }
  uint64_t lines() const { return count_; }

 private:
  int64_t origin_ms_;
  std::size_t capacity_;
  bool echo_;
  std::deque<std::string> ring_;
  std::string focus_;
  std::deque<std::string> focused_;
  uint64_t hash_ = 14695981039346656037ull;  // FNV-1a offset basis
  uint64_t count_ = 0;
};

}  // namespace commitd::sim
