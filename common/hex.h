// Hex digits: bytes written as lower-case hex (two digits per byte), and digits checked and read.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace commitd {

void AppendHex(std::string* out, const void* data, std::size_t size);
std::string Hex(const void* data, std::size_t size);

// The value of one hex digit of either case (0-9 a-f A-F); -1 for any other character.
inline int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Every character is one of 0-9 a-f (true for "").
inline bool IsLowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace commitd
