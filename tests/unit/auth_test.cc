#include <doctest/doctest.h>

#include <fstream>

#include "common/auth.h"
#include "tests/unit/support/temp_dir.h"

namespace commitd::auth {
namespace {

using nlohmann::json;

std::string Hex(const Digest& d) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

AuthTable Table() {
  json j = {{"tokens",
             {{{"name", "orders"}, {"token", "client-token-0123456789"}, {"roles", {"client"}}},
              {{"name", "ops"}, {"sha256", Hex(Sha256("admin-token-0123456789"))}, {"roles", {"admin"}}},
              {{"name", "grafana"}, {"token", "reader-token-0123456789"}, {"roles", {"reader"}}},
              {{"name", "bank-a"}, {"token", "peer-token-0123456789ab"}, {"roles", {"peer"}}}}}};
  auto t = AuthTable::FromJson(j);
  REQUIRE_MESSAGE(t.ok(), t.status().ToString());
  return std::move(t).value();
}

TEST_CASE("SHA-256 of a known input") {
  CHECK(Hex(Sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("tokens authenticate by hash or by plain value, and roles decide 401/403") {
  AuthTable t = Table();
  Principal who;
  CHECK(t.Check("Bearer client-token-0123456789", Permission::kSubmit, &who) == Verdict::kAllowed);
  CHECK(who.name == "orders");
  CHECK(t.Check("Bearer client-token-0123456789", Permission::kReadTransactions) == Verdict::kAllowed);
  CHECK(t.Check("Bearer client-token-0123456789", Permission::kAdminister) == Verdict::kForbidden);
  CHECK(t.Check("Bearer client-token-0123456789", Permission::kProtocol) == Verdict::kForbidden);
  CHECK(t.Check("Bearer admin-token-0123456789", Permission::kAdminister, &who) == Verdict::kAllowed);
  CHECK(who.name == "ops");
  CHECK(t.Check("Bearer admin-token-0123456789", Permission::kReadCluster) == Verdict::kAllowed);
  CHECK(t.Check("Bearer admin-token-0123456789", Permission::kSubmit) == Verdict::kForbidden);
  CHECK(t.Check("Bearer reader-token-0123456789", Permission::kReadCluster) == Verdict::kAllowed);
  CHECK(t.Check("Bearer reader-token-0123456789", Permission::kSubmit) == Verdict::kForbidden);
  CHECK(t.Check("Bearer peer-token-0123456789ab", Permission::kProtocol) == Verdict::kAllowed);
  CHECK(t.Check("Bearer peer-token-0123456789ab", Permission::kReadTransactions) == Verdict::kForbidden);
}

TEST_CASE("missing, malformed and unknown tokens are 401") {
  AuthTable t = Table();
  for (std::optional<std::string_view> header :
       {std::optional<std::string_view>(), std::optional<std::string_view>(""),
        std::optional<std::string_view>("Bearer "), std::optional<std::string_view>("Basic b3JkZXJz"),
        std::optional<std::string_view>("bearer client-token-0123456789"),
        std::optional<std::string_view>("Bearer client-token-012345678"),
        std::optional<std::string_view>("Bearer client-token-0123456789 ")}) {
    CHECK(t.Check(header, Permission::kReadTransactions) == Verdict::kUnauthenticated);
  }
}

TEST_CASE("a name may hold two tokens while one is rotated") {
  json j = {{"tokens",
             {{{"name", "bank-a"}, {"token", "old-peer-token-0123456789"}, {"roles", {"peer"}}},
              {{"name", "bank-a"}, {"token", "new-peer-token-0123456789"}, {"roles", {"peer"}}}}}};
  auto t = AuthTable::FromJson(j);
  REQUIRE_MESSAGE(t.ok(), t.status().ToString());
  Principal who;
  CHECK(t->Check("Bearer old-peer-token-0123456789", Permission::kProtocol, &who) == Verdict::kAllowed);
  CHECK(who.name == "bank-a");
  CHECK(t->Check("Bearer new-peer-token-0123456789", Permission::kProtocol, &who) == Verdict::kAllowed);
  CHECK(who.name == "bank-a");
}

TEST_CASE("malformed auth files are refused with the place of the error") {
  struct Case {
    json value;
    const char* where;
  };
  const Case cases[] = {
      {json::array(), "must be an object"},
      {{{"tokens", json::array()}, {"extra", 1}}, "unknown field \"extra\""},
      {{{"tokens", {{{"token", "0123456789abcdefg"}, {"roles", {"client"}}}}}}, "tokens[0].name"},
      {{{"tokens", {{{"name", "a"}, {"roles", {"client"}}}}}}, "exactly one of sha256 and token"},
      {{{"tokens", {{{"name", "a"}, {"sha256", "abc"}, {"roles", {"client"}}}}}}, "tokens[0].sha256"},
      {{{"tokens", {{{"name", "a"}, {"token", "short"}, {"roles", {"client"}}}}}}, "tokens[0].token"},
      {{{"tokens", {{{"name", "a"}, {"token", "0123456789abcdefg"}, {"roles", {"root"}}}}}}, "tokens[0].roles"},
      {{{"tokens", {{{"name", "a"}, {"token", "0123456789abcdefg"}, {"roles", json::array()}}}}}, "tokens[0].roles"},
      {{{"tokens",
         {{{"name", "a"}, {"token", "0123456789abcdefg"}, {"roles", {"client"}}},
          {{"name", "b"}, {"token", "0123456789abcdefg"}, {"roles", {"admin"}}}}}},
       "the same token as 'a'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value.dump());
    auto t = AuthTable::FromJson(c.value);
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().message().find(c.where) != std::string::npos);
  }
}

TEST_CASE("auth file text: invalid JSON, out-of-range numbers and deep nesting are refused cleanly") {
  for (std::string text : {std::string("{not json"), std::string("{\"tokens\": 1e400}"), std::string(""),
                           std::string(100000, '[') + std::string(100000, ']')}) {
    auto t = AuthTable::Parse(text);
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().code() == StatusCode::kInvalidArgument);
  }
  auto t = AuthTable::Parse(R"({"tokens":[{"name":"a","token":"0123456789abcdefg","roles":["reader"]}]})");
  REQUIRE(t.ok());
  CHECK(t->Authenticate("Bearer 0123456789abcdefg")->name == "a");
}

TEST_CASE("auth and secret files: errors name the file") {
  testing::TempDir dir;
  const std::string path = dir.File("auth.json");
  CHECK(AuthTable::Load(path).status().message().find(path) != std::string::npos);
  std::ofstream(path) << "{not json";
  CHECK(AuthTable::Load(path).status().message().find(path) != std::string::npos);
  const std::string secret = dir.File("peer.token");
  std::ofstream(secret) << "  peer-token-0123456789ab\n";
  CHECK(ReadSecretFile(secret).value() == "peer-token-0123456789ab");
  std::ofstream(secret) << "\n";
  CHECK_FALSE(ReadSecretFile(secret).ok());
  std::ofstream(secret) << "two words\n";
  CHECK_FALSE(ReadSecretFile(secret).ok());
}

}  // namespace
}  // namespace commitd::auth
