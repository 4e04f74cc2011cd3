// Bytes as lower-case hex digits, two per byte.
#pragma once

#include <cstddef>
#include <string>

namespace commitd {

void AppendHex(std::string* out, const void* data, std::size_t size);
std::string Hex(const void* data, std::size_t size);

}  // namespace commitd
