// The bytes a JSON string holds as they are: printable ASCII other than '"'
// and '\\'. The fast path shared by the JSON syntax check, JsonScanner and
// the text writer, which otherwise look at strings one byte at a time.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace commitd {

inline bool IsPlainJsonByte(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

// How many bytes from the start of text are IsPlainJsonByte, sixteen at a time.
inline std::size_t PlainJsonRun(std::string_view text) {
  const std::size_t size = text.size();
  const char* data = text.data();
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  // One bit per byte that is not plain. A signed comparison: bytes from 0x80
  // up are negative, so "below 0x20" takes them too.
  const auto stops = [&](const char* at) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    return static_cast<unsigned>(_mm_movemask_epi8(
        _mm_or_si128(_mm_cmplt_epi8(bytes, space),
                     _mm_or_si128(_mm_cmpeq_epi8(bytes, quote), _mm_cmpeq_epi8(bytes, backslash)))));
  };
  if (size < 16) {  // copied into a block of plain bytes: no read past the text
    if (size == 0) return 0;
    char block[16];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(block), _mm_set1_epi8('a'));
    std::memcpy(block, data, size);
    const unsigned mask = stops(block);
    return mask != 0 ? static_cast<std::size_t>(__builtin_ctz(mask)) : size;
  }
  std::size_t i = 0;
  for (; i + 16 <= size; i += 16) {
    if (const unsigned mask = stops(data + i); mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(mask));
  }
  if (i < size) {  // the last sixteen bytes; those before i were plain
    if (const unsigned mask = stops(data + size - 16); mask != 0) {
      return size - 16 + static_cast<std::size_t>(__builtin_ctz(mask));
    }
  }
  return size;
#else
  std::size_t i = 0;
  while (i < size && IsPlainJsonByte(static_cast<unsigned char>(data[i]))) ++i;
  return i;
#endif
}

}  // namespace commitd
