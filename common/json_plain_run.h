// The bytes a JSON string holds as they are: printable ASCII other than '"'
// and '\\'. The fast path shared by the JSON syntax check, JsonScanner and
// the text writer, which otherwise look at strings one byte at a time.
#pragma once

#include <cstddef>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace commitd {

inline bool IsPlainJsonByte(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

// How many bytes from the start of text are IsPlainJsonByte, sixteen at a time.
inline std::size_t PlainJsonRun(std::string_view text) {
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  for (; i + 16 <= text.size(); i += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
    // A signed comparison: bytes from 0x80 up are negative, so "below 0x20" takes them too.
    const __m128i stop = _mm_or_si128(_mm_cmplt_epi8(bytes, space),
                                      _mm_or_si128(_mm_cmpeq_epi8(bytes, quote), _mm_cmpeq_epi8(bytes, backslash)));
    const int mask = _mm_movemask_epi8(stop);
    if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  while (i < text.size() && IsPlainJsonByte(static_cast<unsigned char>(text[i]))) ++i;
  return i;
}

}  // namespace commitd
