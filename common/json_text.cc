#include "common/json_text.h"

#include <charconv>
#include <cstring>
#include <string_view>

#include "common/json_plain_run.h"

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

void AppendString(std::string* out, std::string_view text) {
  if (PlainJsonRun(text) == text.size()) {  // the common case: nothing to escape
    const std::size_t at = out->size();
    out->resize(at + text.size() + 2);
    char* quoted = out->data() + at;
    quoted[0] = '"';
    std::memcpy(quoted + 1, text.data(), text.size());
    quoted[text.size() + 1] = '"';
    return;
  }
  const size_t start = out->size();
  out->push_back('"');
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (IsPlainJsonByte(c)) continue;
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
