// Config::FromJson: the checks across and on single settings.
#include "common/config.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

namespace commitd {
namespace {

TEST_CASE("an agent keeps at least a second of outcomes in memory") {
  CHECK(Config::FromJson(nlohmann::json::object()).ok());
  auto short_memory = Config::FromJson({{"outcome_memory_ms", 999}});
  REQUIRE_FALSE(short_memory.ok());
  CHECK(short_memory.status().message() == "config.outcome_memory_ms: must be at least 1000");
  auto second = Config::FromJson({{"outcome_memory_ms", 1000}});
  REQUIRE(second.ok());
  CHECK(second->outcome_memory_ms == 1000);
}

TEST_CASE("a backoff may not start above its cap") {
  auto backwards = Config::FromJson({{"resolve_initial_ms", 6000}, {"resolve_max_ms", 5000}});
  REQUIRE_FALSE(backwards.ok());
  CHECK(backwards.status().message() == "config: resolve_initial_ms must not exceed resolve_max_ms");
}

}  // namespace
}  // namespace commitd
