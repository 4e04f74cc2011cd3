#include "common/entropy.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/hex.h"
#include "common/log.h"

namespace commitd {

std::string Entropy::Hex(std::size_t n) {
  std::vector<uint8_t> bytes(n);
  Fill(bytes.data(), n);
  return commitd::Hex(bytes.data(), n);
}

namespace {

void ReadKernel(uint8_t* out, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    ssize_t got = getrandom(out + done, n - done, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      log::Error("entropy_unavailable", {{"errno", errno}});
      std::abort();
    }
    done += static_cast<std::size_t>(got);
  }
}

}  // namespace

SystemEntropy::~SystemEntropy() { explicit_bzero(block_.data(), block_.size()); }

void SystemEntropy::Fill(uint8_t* out, std::size_t n) {
  if (n >= kBlock) {
    ReadKernel(out, n);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (kBlock - used_ < n) {
    ReadKernel(block_.data(), kBlock);
    used_ = 0;
  }
  std::memcpy(out, block_.data() + used_, n);
  explicit_bzero(block_.data() + used_, n);
  used_ += n;
}

}  // namespace commitd
