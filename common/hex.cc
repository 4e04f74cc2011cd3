#include "common/hex.h"

namespace commitd {

void AppendHex(std::string* out, const void* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* bytes = static_cast<const unsigned char*>(data);
  out->reserve(out->size() + 2 * size);
  for (std::size_t i = 0; i < size; ++i) {
    out->push_back(kDigits[bytes[i] >> 4]);
    out->push_back(kDigits[bytes[i] & 0xf]);
  }
}

std::string Hex(const void* data, std::size_t size) {
  std::string out;
  AppendHex(&out, data, size);
  return out;
}

}  // namespace commitd
