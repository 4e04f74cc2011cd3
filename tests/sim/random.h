// Random: the simulator's only source of randomness, seeded per run.
//
// Distributions are computed here from the raw 64-bit output of
// std::mt19937_64 (whose sequence the standard fixes), never with the
// <random> distributions, whose output differs between standard libraries.
#pragma once

#include <cstdint>
#include <random>

namespace commitd::sim {

class Random {
 public:
  explicit Random(uint64_t seed) : gen_(seed) {}

  uint64_t Next() { return gen_(); }
  // Uniform in [lo, hi] (lo <= hi), without modulo bias.
  int64_t Uniform(int64_t lo, int64_t hi);
  // True with probability p (0 <= p <= 1).
  bool Chance(double p);

 private:
  std::mt19937_64 gen_;
};

}  // namespace commitd::sim
