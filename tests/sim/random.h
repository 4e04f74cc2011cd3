// Random: the simulator's only source of randomness, seeded per run.
//
// Distributions are computed here from the raw 64-bit output of
// std::mt19937_64 (whose sequence the standard fixes), never with the
// <random> distributions, whose output differs between standard libraries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>

namespace commitd::sim {

class Random {
 public:
  explicit Random(uint64_t seed) : gen_(seed) {}

  uint64_t Next() { return gen_(); }
  // Uniform in [lo, hi] (lo <= hi), without modulo bias.
  int64_t Uniform(int64_t lo, int64_t hi);
  // True with probability p (0 <= p <= 1).
  bool Chance(double p);
  // An index below size (size > 0): Uniform(0, size - 1).
  std::size_t Index(std::size_t size) { return static_cast<std::size_t>(Uniform(0, static_cast<int64_t>(size) - 1)); }
  // Two different indices below size (size > 1), each pair equally likely.
  std::pair<std::size_t, std::size_t> DistinctPair(std::size_t size) {
    const std::size_t first = Index(size);
    std::size_t second = Index(size - 1);
    if (second >= first) ++second;
    return {first, second};
  }
  // A uniform permutation of `items` in place (Fisher-Yates, from the back).
  template <class Items>
  void Shuffle(Items& items) {
    using std::swap;
    for (std::size_t i = items.size(); i-- > 1;) swap(items[i], items[Index(i + 1)]);
  }

 private:
  std::mt19937_64 gen_;
};

}  // namespace commitd::sim
