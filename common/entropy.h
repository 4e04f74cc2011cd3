// Entropy: where unguessable values (transaction ids, log identities) get
// their randomness. The binaries use the kernel's (getrandom); the simulator
// gives a seeded source so that runs replay.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace commitd {

class Entropy {
 public:
  virtual ~Entropy() = default;
  virtual void Fill(uint8_t* out, std::size_t n) = 0;
  // n random bytes as 2n lower-case hex digits.
  std::string Hex(std::size_t n);
};

// getrandom(2). A failure to read the kernel's randomness is not survivable
// (ids could repeat), so it terminates the process with a log line.
class SystemEntropy final : public Entropy {
 public:
  void Fill(uint8_t* out, std::size_t n) override;
};

}  // namespace commitd
