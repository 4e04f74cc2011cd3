#include "common/utf8.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace commitd {
namespace {

// nlohmann's strict dump: it throws on text that is not UTF-8.
bool NlohmannTakes(const std::string& text) {
  try {
    (void)nlohmann::json(text).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

TEST_CASE("IsUtf8 takes every one- to four-byte sequence nlohmann takes, and no other") {
  // Every lead byte with the tails that decide: the boundaries of each range.
  const int tails[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
  int taken = 0;
  for (int lead = 0; lead < 256; ++lead) {
    for (int t1 : tails) {
      for (int t2 : tails) {
        for (int t3 : tails) {
          for (std::size_t length = 1; length <= 4; ++length) {
            const char bytes[] = {static_cast<char>(lead), static_cast<char>(t1), static_cast<char>(t2),
                                  static_cast<char>(t3)};
            const std::string text(bytes, length);
            CAPTURE(text);
            REQUIRE(IsUtf8(text) == NlohmannTakes(text));
            taken += IsUtf8(text);
          }
        }
      }
    }
  }
  CHECK(taken > 1000);
}

TEST_CASE("IsUtf8 agrees with nlohmann on mutated text") {
  std::mt19937_64 random(7);
  const std::string seeds[] = {"plain ascii", "é à ü", "😀 and 中文", std::string("nul\0inside", 10)};
  for (int i = 0; i < 20'000; ++i) {
    std::string text = seeds[random() % std::size(seeds)];
    for (std::size_t k = random() % 3; k > 0; --k) text[random() % text.size()] = static_cast<char>(random());
    REQUIRE(IsUtf8(text) == NlohmannTakes(text));
  }
}

}  // namespace
}  // namespace commitd
