#include "common/json_text.h"

#include <doctest/doctest.h>

#include "common/json_plain_run.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace commitd {
namespace {

using nlohmann::json;

std::string Reference(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// Strings weighted towards what needs care: quotes, backslashes, every
// control character, DEL, multi-byte UTF-8, and bytes that are not UTF-8.
std::string RandomString(std::mt19937_64& random) {
  static const std::string kPieces[] = {"a", "txid-42", "\"", "\\", "/", "\x7f", "é", "€", "😀", "\xff", "\xc3",
                                        "\xe2\x82", "\xed\xa0\x80", " ", ""};
  std::string text;
  size_t length = random() % 12;
  for (size_t i = 0; i < length; ++i) {
    if (random() % 4 == 0) {
      text.push_back(static_cast<char>(random() % 0x20));
    } else {
      text += kPieces[random() % std::size(kPieces)];
    }
  }
  return text;
}

json RandomValue(std::mt19937_64& random, int depth) {
  switch (random() % (depth > 3 ? 6 : 8)) {
    case 0: return nullptr;
    case 1: return random() % 2 == 0;
    case 2: return static_cast<int64_t>(random());
    case 3: return static_cast<uint64_t>(random());
    case 4: return std::uniform_real_distribution<double>(-1e20, 1e20)(random);
    case 5: return RandomString(random);
    case 6: {
      json array = json::array();
      for (size_t i = random() % 5; i > 0; --i) array.push_back(RandomValue(random, depth + 1));
      return array;
    }
    default: {
      json object = json::object();
      for (size_t i = random() % 5; i > 0; --i) object[RandomString(random)] = RandomValue(random, depth + 1);
      return object;
    }
  }
}

TEST_CASE("json text is byte for byte what nlohmann writes with invalid UTF-8 replaced") {
  std::mt19937_64 random(20261204);
  for (int i = 0; i < 20000; ++i) {
    json value = RandomValue(random, 0);
    REQUIRE_MESSAGE(DumpJson(value) == Reference(value), Reference(value));
  }
}

TEST_CASE("json text of the edge values") {
  const json values[] = {json::object(),
                         json::array(),
                         std::numeric_limits<int64_t>::min(),
                         std::numeric_limits<int64_t>::max(),
                         std::numeric_limits<uint64_t>::max(),
                         0,
                         -0.0,
                         1e300,
                         std::numeric_limits<double>::quiet_NaN(),
                         std::numeric_limits<double>::infinity(),
                         std::string("\0nul", 4),
                         "\x01\x1f\x7f",
                         json::binary({1, 2, 3})};
  for (const json& value : values) CHECK(DumpJson(value) == Reference(value));
  CHECK(DumpJson(json("tab\there \"quoted\" back\\slash")) == R"("tab\there \"quoted\" back\\slash")");
  CHECK(DumpJson(json("\x01")) == R"("\u0001")");
  CHECK(DumpJson(json("bad \xff byte")) == "\"bad \xef\xbf\xbd byte\"");
}

TEST_CASE("json text of long strings with one byte that needs care anywhere in them") {
  // Plain text is copied eight bytes at a time: every position of the odd
  // byte, and every length around a multiple of eight, against nlohmann.
  const std::string kOdd[] = {"\"", "\\", std::string(1, '\0'), "\x1f", "\x20", "\x7f", "\x80", "\xff", "\xc3\xa9",
                              "!",  "#",  "[",                      "]",    "\x21", "\x5b", "\x5d"};
  for (size_t length = 0; length <= 40; ++length) {
    const std::string plain(length, 'x');
    CHECK(DumpJson(json(plain)) == Reference(json(plain)));
    for (size_t at = 0; at <= length; ++at) {
      for (const std::string& odd : kOdd) {
        const std::string text = plain.substr(0, at) + odd + plain.substr(at);
        REQUIRE_MESSAGE(DumpJson(json(text)) == Reference(json(text)), Reference(json(text)));
      }
    }
  }
}

TEST_CASE("json text appends to what the string holds") {
  std::string out = "prefix:";
  AppendJson(&out, json{{"b", 1}, {"a", {true, nullptr}}});
  CHECK(out == R"(prefix:{"a":[true,null],"b":1})");
  // A non-ASCII byte after an escape: what was written of the string is taken back.
  out = "prefix:";
  AppendJsonString(&out, "quote\" then \xc3\xa9 and \xff");
  CHECK(out == "prefix:" + Reference(json("quote\" then \xc3\xa9 and \xff")));
}

}  // namespace
}  // namespace commitd

TEST_CASE("the plain run of a JSON string: sixteen bytes at a time, the same as byte by byte") {
  auto byte_by_byte = [](std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && commitd::IsPlainJsonByte(static_cast<unsigned char>(text[i]))) ++i;
    return i;
  };
  for (int c = 0; c < 256; ++c) {
    const bool plain = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
    CHECK(commitd::IsPlainJsonByte(static_cast<unsigned char>(c)) == plain);
  }
  // Every byte value at every position of texts up to 40 bytes long, so
  // that each lands in the first, a middle and the last lane of a block,
  // and in the tail after the blocks.
  for (std::size_t length = 0; length <= 40; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      for (int c = 0; c < 256; ++c) {
        std::string text(length, 'a');
        text[at] = static_cast<char>(c);
        CHECK(commitd::PlainJsonRun(text) == byte_by_byte(text));
      }
    }
  }
  std::mt19937_64 random(47);
  for (int i = 0; i < 20'000; ++i) {
    std::string text(random() % 70, 'x');
    for (char& c : text) c = static_cast<char>(random() % 8 == 0 ? random() % 256 : 0x20 + random() % 0x5F);
    CHECK(commitd::PlainJsonRun(text) == byte_by_byte(text));
  }
}
