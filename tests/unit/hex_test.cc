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

}  // namespace
}  // namespace commitd
