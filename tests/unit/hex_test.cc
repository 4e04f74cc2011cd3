#include "common/hex.h"

#include <doctest/doctest.h>

#include <string>

namespace commitd {
namespace {

TEST_CASE("hex is two lower-case digits per byte, appended in order") {
  const unsigned char bytes[] = {0x00, 0x0f, 0xa5, 0xff};
  CHECK(Hex(bytes, sizeof bytes) == "000fa5ff");
  CHECK(Hex(bytes, 0).empty());
  std::string out = "00-";
  AppendHex(&out, bytes + 2, 2);
  CHECK(out == "00-a5ff");
}

TEST_CASE("IsLowerHex takes exactly the digits Hex writes") {
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    const bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    CHECK_MESSAGE(IsLowerHex(one) == digit, "byte ", c);
    CHECK(IsLowerHex("0a" + one + "f9") == digit);
  }
  CHECK(IsLowerHex(""));
  const unsigned char bytes[] = {0x00, 0x9a, 0xf0, 0xff};
  CHECK(IsLowerHex(Hex(bytes, sizeof bytes)));
  CHECK_FALSE(IsLowerHex("00AB"));
}

TEST_CASE("HexDigitValue reads a digit of either case and refuses every other byte") {
  for (int c = 0; c < 256; ++c) {
    int expected = -1;
    if (c >= '0' && c <= '9') expected = c - '0';
    if (c >= 'a' && c <= 'f') expected = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') expected = c - 'A' + 10;
    CHECK_MESSAGE(HexDigitValue(static_cast<char>(c)) == expected, "byte ", c);
  }
  const unsigned char bytes[] = {0x00, 0x9a, 0xf0, 0xff};
  const std::string hex = Hex(bytes, sizeof bytes);
  for (std::size_t i = 0; i < sizeof bytes; ++i) {
    CHECK(HexDigitValue(hex[2 * i]) * 16 + HexDigitValue(hex[2 * i + 1]) == bytes[i]);
  }
}

}  // namespace
}  // namespace commitd
