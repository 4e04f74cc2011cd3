#include <doctest/doctest.h>

#include <vector>

#include "common/config_file.h"
#include "common/flags.h"

using namespace commitd;

namespace {

const std::set<std::string> kValued = {"id", "listen", "data-dir", "participant", "config", "log-level"};
const std::set<std::string> kSwitches = {"join", "help"};

Result<Flags> ParseArgs(std::vector<std::string> args) {
  std::vector<char*> argv;
  static std::string program = "commitd";
  argv.push_back(program.data());
  for (auto& a : args) argv.push_back(a.data());
  return Flags::Parse(static_cast<int>(argv.size()), argv.data(), kValued, kSwitches);
}

}  // namespace

TEST_CASE("flags: -h is --help, any other single-dash flag is unknown") {
  auto help = ParseArgs({"-h"});
  REQUIRE(help.ok());
  CHECK(help->Has("help"));
  auto bad = ParseArgs({"-x"});
  REQUIRE(!bad.ok());
  CHECK(bad.status().message() == "unknown flag -x");
  auto value = ParseArgs({"--id", "-5"});  // a value may start with '-'
  REQUIRE(value.ok());
  CHECK(value->Get("id") == "-5");
}

TEST_CASE("flags: a comma-separated value's items, with and without the empty ones") {
  using Items = std::vector<std::string>;
  CHECK(CommaItems("a,b") == Items{"a", "b"});
  CHECK(CommaItems("a,,b,") == Items{"a", "", "b", ""});
  CHECK(CommaItems("") == Items{""});
  CHECK(SplitCommas("a,,b,") == Items{"a", "b"});
  CHECK(SplitCommas(",") == Items{});
  CHECK(SplitCommas("http://x:1") == Items{"http://x:1"});
}

TEST_CASE("config file: flags by their names with '_', timeouts beside them") {
  auto file = ParseConfigFile(nlohmann::json::parse(R"({"id": "c2", "data_dir": "/var/lib/commitd",
      "participant": ["a=http://127.0.0.1:1", "b=http://127.0.0.1:2"], "join": true, "retry_max_ms": 900})"),
                              kValued, kSwitches);
  REQUIRE(file.ok());
  CHECK(file->flags.Get("id") == "c2");
  CHECK(file->flags.Get("data-dir") == "/var/lib/commitd");
  CHECK(file->flags.GetAll("participant").size() == 2);
  CHECK(file->flags.Has("join"));
  CHECK(file->config.retry_max_ms == 900);
  CHECK(file->config.request_timeout_ms == Config{}.request_timeout_ms);
}

TEST_CASE("config file: the command line wins, the file fills in the rest") {
  auto flags = ParseArgs({"--id", "c1", "--participant", "x=http://127.0.0.1:9"});
  REQUIRE(flags.ok());
  auto file = ParseConfigFile(
      nlohmann::json::parse(R"({"id": "c2", "listen": "127.0.0.1:7005", "participant": "y=http://127.0.0.1:8"})"),
      kValued, kSwitches);
  REQUIRE(file.ok());
  flags->AddMissing(file->flags);
  CHECK(flags->Get("id") == "c1");
  CHECK(flags->Get("listen") == "127.0.0.1:7005");
  CHECK(flags->GetAll("participant") == std::vector<std::string>{"x=http://127.0.0.1:9"});
}

TEST_CASE("config file: unknown keys, wrong types and forbidden flags are errors") {
  auto check_error = [](const char* text, const std::string& want) {
    auto file = ParseConfigFile(nlohmann::json::parse(text), kValued, kSwitches);
    REQUIRE(!file.ok());
    CHECK(file.status().message().find(want) != std::string::npos);
  };
  check_error(R"({"no_such_key": 1})", "unknown key 'no_such_key'");
  check_error(R"({"data-dir": "/x"})", "'_' for '-'");
  check_error(R"({"config": "other.json"})", "cannot be set in the file");
  check_error(R"({"help": true})", "cannot be set in the file");
  check_error(R"({"join": "yes"})", "config.join: must be true or false");
  check_error(R"({"id": {"a": 1}})", "config.id: must be a string");
  check_error(R"({"participant": [1.5]})", "config.participant: must be a string");
  check_error(R"({"retry_max_ms": -1})", "positive integer");
  check_error(R"([1, 2])", "must be a JSON object");
}

TEST_CASE("config file: a number is taken as its decimal text") {
  auto file = ParseConfigFile(nlohmann::json::parse(R"({"listen": 7000})"), kValued, kSwitches);
  REQUIRE(file.ok());
  CHECK(file->flags.Get("listen") == "7000");
}
