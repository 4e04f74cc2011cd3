#include "common/entropy.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace commitd {
namespace {

TEST_CASE("system entropy hands out every byte once, across read-ahead blocks") {
  SystemEntropy entropy;
  std::set<std::string> ids;
  // 16-byte ids over several 4 KiB blocks, and odd sizes that straddle a block's end.
  for (int i = 0; i < 2000; ++i) ids.insert(entropy.Hex(i % 7 == 0 ? 13 : 16));
  CHECK(ids.size() == 2000);
  for (const std::string& id : ids) CHECK(id != std::string(id.size(), '0'));
}

TEST_CASE("a fill larger than a block is read straight from the kernel") {
  SystemEntropy entropy;
  std::vector<uint8_t> big(10000, 0);
  entropy.Fill(big.data(), big.size());
  // All-zero 64-byte stretches would mean a part was left unfilled.
  for (std::size_t at = 0; at + 64 <= big.size(); at += 64) {
    CHECK(std::any_of(big.begin() + static_cast<long>(at), big.begin() + static_cast<long>(at + 64),
                      [](uint8_t b) { return b != 0; }));
  }
}

TEST_CASE("threads sharing system entropy never get the same bytes") {
  SystemEntropy entropy;
  std::vector<std::vector<std::string>> got(4);
  std::vector<std::thread> threads;
  for (auto& mine : got) {
    threads.emplace_back([&entropy, &mine] {
      for (int i = 0; i < 500; ++i) mine.push_back(entropy.Hex(8));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& mine : got) all.insert(mine.begin(), mine.end());
  CHECK(all.size() == 2000);
}

}  // namespace
}  // namespace commitd
