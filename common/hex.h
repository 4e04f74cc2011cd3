// Bytes as lower-case hex digits, two per byte.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace commitd {

void AppendHex(std::string* out, const void* data, std::size_t size);
std::string Hex(const void* data, std::size_t size);

// Every character is one of 0-9 a-f (true for "").
inline bool IsLowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace commitd
