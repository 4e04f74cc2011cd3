#include "common/json_parse.h"

#include <doctest/doctest.h>

#include <string>

#include "common/config.h"
#include "coordinator/agent_answers.h"
#include "coordinator/raft_codec.h"
#include "participant/procedures.h"

namespace commitd {
namespace {

using namespace std::string_literals;

TEST_CASE("ParseJson reads JSON and refuses what is not, without throwing") {
  CHECK(ParseJson(R"({"a":[1,"x",null]})") == nlohmann::json{{"a", {1, "x", nullptr}}});
  CHECK(ParseJson("  200 ") == 200);
  CHECK(ParseJson("").is_discarded());
  CHECK(ParseJson("{").is_discarded());
  CHECK(ParseJson("1e400").is_discarded());
}

TEST_CASE("ParseJson refuses a NUL byte wherever it is, where nlohmann alone stops reading at it") {
  for (const std::string& text : {"{\"a\":1}\0junk"s, "200\0"s, "\0{}"s, "[1,\0 2]"s}) {
    CHECK(ParseJson(text).is_discarded());
  }
  // What it guards against: nlohmann takes the NUL for the end of the input.
  CHECK(nlohmann::json::parse("{\"a\":1}\0junk"s, nullptr, false) == nlohmann::json{{"a", 1}});
}

TEST_CASE("texts with a NUL byte are refused by the readers of files, peers' answers and raft entries") {
  CHECK(ParseJson(R"({"op":"finish","txid":"t1","finished_ms":5})").is_object());
  CHECK(coordinator::DecodeCommand(R"({"op":"finish","txid":"t1","finished_ms":5})").ok());
  CHECK_FALSE(coordinator::DecodeCommand("{\"op\":\"finish\",\"txid\":\"t1\",\"finished_ms\":5}\0junk"s).ok());

  CHECK(coordinator::CatalogOf(200, R"({"procedures":["debit"]})").ok());
  CHECK_FALSE(coordinator::CatalogOf(200, "{\"procedures\":[\"debit\"]}\0junk"s).ok());

  CHECK(Config::Parse("{}").ok());
  CHECK_FALSE(Config::Parse("{}\0{\"port\":1}"s).ok());

  CHECK(participant::Procedures::Parse(R"({"procedures": {}})").ok());
  Result<participant::Procedures> procedures = participant::Procedures::Parse("{\"procedures\": {}}\0junk"s);
  REQUIRE_FALSE(procedures.ok());
  CHECK(procedures.status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace commitd
