#include "tests/sim/random.h"

namespace commitd::sim {

int64_t Random::Uniform(int64_t lo, int64_t hi) {
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) + 1;
  if (range == 0) return static_cast<int64_t>(Next());  // the whole 64-bit range
  // 2^64 mod range: drawing below it would favour small remainders.
  const uint64_t threshold = (0 - range) % range;
  uint64_t r = Next();
  while (r < threshold) r = Next();
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + r % range);
}

bool Random::Chance(double p) {
  if (p <= 0) return false;
  const double unit = static_cast<double>(Next() >> 11) * 0x1.0p-53;  // [0, 1) from 53 bits
  return unit < p;
}

}  // namespace commitd::sim
