#include "common/entropy.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "common/log.h"

namespace commitd {

std::string Entropy::Hex(std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::vector<uint8_t> bytes(n);
  Fill(bytes.data(), n);
  std::string out;
  out.reserve(2 * n);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

void SystemEntropy::Fill(uint8_t* out, std::size_t n) {
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

}  // namespace commitd
