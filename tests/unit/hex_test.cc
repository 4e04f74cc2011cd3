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

}  // namespace
}  // namespace commitd
