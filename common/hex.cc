#include "common/hex.h"

namespace commitd {

void AppendHex(std::string* out, const void* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* bytes = static_cast<const unsigned char*>(data);
  const std::size_t start = out->size();
  out->resize(start + 2 * size);
  char* digits = out->data() + start;
  for (std::size_t i = 0; i < size; ++i) {
    digits[2 * i] = kDigits[bytes[i] >> 4];
    digits[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
}

std::string Hex(const void* data, std::size_t size) {
  std::string out;
  AppendHex(&out, data, size);
  return out;
}

}  // namespace commitd
