// The --config file of both executables: Config::Parse, the text
// Config::Load reads. An accepted config round-trips through ToJson.
#include <string>

#include "common/config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace commitd;
  using fuzz::Require;
  Result<Config> config = Config::Parse(fuzz::Text(data, size));
  if (!config.ok()) {
    Require(config.status().code() == StatusCode::kInvalidArgument, "a bad config is InvalidArgument");
    Require(!config.status().message().empty(), "a refusal says why");
    return 0;
  }
  const nlohmann::json written = config->ToJson();
  for (const auto& [key, value] : written.items()) Require(value.get<int64_t>() > 0, "every value is positive");
  Result<Config> again = Config::FromJson(written);
  Require(again.ok() && again->ToJson() == written, "a config round-trips");
  return 0;
}
