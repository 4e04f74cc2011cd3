// Entropy: where unguessable values (transaction ids, log identities) get
// their randomness. The binaries use the kernel's (getrandom); the simulator
// gives a seeded source so that runs replay.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace commitd {

class Entropy {
 public:
  virtual ~Entropy() = default;
  virtual void Fill(uint8_t* out, std::size_t n) = 0;
  // n random bytes as 2n lower-case hex digits.
  std::string Hex(std::size_t n);
};

// The kernel's randomness (getrandom(2)), read ahead a block at a time: a
// coordinator takes a few ids per transaction, and a system call each is
// dear. Bytes are handed out once and wiped from the block. A failure to
// read the kernel's randomness is not survivable (ids could repeat), so it
// terminates the process with a log line.
// Thread: Fill may be called from any thread.
class SystemEntropy final : public Entropy {
 public:
  SystemEntropy() = default;
  SystemEntropy(const SystemEntropy&) = delete;
  SystemEntropy& operator=(const SystemEntropy&) = delete;
  ~SystemEntropy() override;
  void Fill(uint8_t* out, std::size_t n) override;

 private:
  static constexpr std::size_t kBlock = 4096;
  std::mutex mu_;
  std::array<uint8_t, kBlock> block_{};
  std::size_t used_ = kBlock;  // block_[used_..] not handed out yet
};

}  // namespace commitd
