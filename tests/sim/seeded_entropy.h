// SeededEntropy: the randomness of txids and log identities in the
// simulator, drawn from the run's seeded Random so that a seed replays.
#pragma once

#include "common/entropy.h"
#include "tests/sim/random.h"

namespace commitd::sim {

class SeededEntropy final : public Entropy {
 public:
  // random must outlive this.
  explicit SeededEntropy(Random& random) : random_(random) {}
  void Fill(uint8_t* out, std::size_t n) override {
    for (std::size_t i = 0; i < n; i += 8) {
      uint64_t word = random_.Next();
      for (std::size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = static_cast<uint8_t>(word >> (8 * j));
    }
  }

 private:
  Random& random_;
};

}  // namespace commitd::sim
