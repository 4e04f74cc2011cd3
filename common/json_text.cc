#include "common/json_text.h"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace commitd {
namespace {

using nlohmann::json;

std::string NlohmannDump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// What nlohmann writes for a byte below 0x20, '"' and '\\'; nullptr: as it is.
const char* EscapeOf(unsigned char c) {
  switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\t': return "\\t";
    case '\n': return "\\n";
    case '\f': return "\\f";
    case '\r': return "\\r";
    default: return nullptr;
  }
}

bool IsPlain(unsigned char c) { return c >= 0x20 && c != '"' && c != '\\' && c < 0x80; }

// Whether all eight bytes of `word` are IsPlain: no high bit, none below 0x20,
// none equal to '"' or '\\' (the exact "has a byte less than n" test of
// bit-twiddling, n <= 0x80, and "has a zero byte" for the two equalities).
bool AllPlain(uint64_t word) {
  constexpr uint64_t kOnes = ~uint64_t{0} / 0xFF;
  constexpr uint64_t kHigh = kOnes * 0x80;
  auto has_less = [](uint64_t x, uint64_t n) { return (x - kOnes * n) & ~x & kHigh; };
  return ((word & kHigh) | has_less(word, 0x20) | has_less(word ^ (kOnes * '"'), 1) |
          has_less(word ^ (kOnes * '\\'), 1)) == 0;
}

// How many bytes from the start of `text` need no escape, eight at a time.
size_t PlainPrefix(std::string_view text) {
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, sizeof word);
    if (!AllPlain(word)) break;
  }
  while (i < text.size() && IsPlain(static_cast<unsigned char>(text[i]))) ++i;
  return i;
}

void AppendString(std::string* out, std::string_view text) {
  if (PlainPrefix(text) == text.size()) {  // the common case: nothing to escape
    out->push_back('"');
    out->append(text);
    out->push_back('"');
    return;
  }
  const size_t start = out->size();
  out->push_back('"');
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (IsPlain(c)) continue;
    if (c >= 0x80) {
      // Multi-byte characters, valid or not, take nlohmann's UTF-8 handling.
      out->resize(start);
      out->append(NlohmannDump(json(text)));
      return;
    }
    out->append(text.data() + run, i - run);
    run = i + 1;
    if (const char* escape = EscapeOf(c)) {
      out->append(escape);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      const char unicode[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out->append(unicode, sizeof unicode);
    }
  }
  out->append(text.data() + run, text.size() - run);
  out->push_back('"');
}

template <typename Integer>
void AppendInteger(std::string* out, Integer value) {
  char digits[24];
  auto [end, error] = std::to_chars(digits, digits + sizeof digits, value);
  (void)error;  // 24 characters hold every 64-bit integer
  out->append(digits, end);
}

}  // namespace

void AppendJson(std::string* out, const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      out->append("null");
      return;
    case json::value_t::boolean:
      out->append(value.get<bool>() ? "true" : "false");
      return;
    case json::value_t::number_integer:
      AppendInteger(out, value.get<json::number_integer_t>());
      return;
    case json::value_t::number_unsigned:
      AppendInteger(out, value.get<json::number_unsigned_t>());
      return;
    case json::value_t::string:
      AppendString(out, value.get_ref<const json::string_t&>());
      return;
    case json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const json& element : value) {
        if (!first) out->push_back(',');
        first = false;
        AppendJson(out, element);
      }
      out->push_back(']');
      return;
    }
    case json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, member] : value.items()) {
        if (!first) out->push_back(',');
        first = false;
        AppendString(out, key);
        out->push_back(':');
        AppendJson(out, member);
      }
      out->push_back('}');
      return;
    }
    case json::value_t::number_float:
    case json::value_t::binary:
    case json::value_t::discarded:
      out->append(NlohmannDump(value));
      return;
  }
}

void AppendJsonString(std::string* out, std::string_view text) { AppendString(out, text); }

std::string DumpJson(const json& value) {
  std::string out;
  AppendJson(&out, value);
  return out;
}

}  // namespace commitd
