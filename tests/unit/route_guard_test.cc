#include <doctest/doctest.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <stdexcept>

#include "common/route_guard.h"

namespace commitd::auth {
namespace {

using nlohmann::json;

AuthTable Table() {
  json j = {{"tokens",
             {{{"name", "orders"}, {"token", "client-token-0123456789"}, {"roles", {"client"}}},
              {{"name", "ops"}, {"token", "admin-token-0123456789"}, {"roles", {"admin"}}},
              {{"name", "bank-a"}, {"token", "peer-token-bank-a-0123"}, {"roles", {"peer"}}}}}};
  auto t = AuthTable::FromJson(j);
  REQUIRE_MESSAGE(t.ok(), t.status().ToString());
  return std::move(t).value();
}

constexpr std::array<RouteRule, 4> kRules{{
    {"POST", "/v1/transactions", Permission::kSubmit},
    {"GET", "/v1/transactions/{txid}", Permission::kReadTransactions, PeerSelf::kQueryParticipant},
    {"PUT", "/v1/participants/{name}", Permission::kAdminister, PeerSelf::kPathName},
    {"GET", "/v1/participants", Permission::kReadCluster},
}};

// Runs one request through a router built with AddGuarded and returns the
// response; `ran` tells whether the handler itself ran.
struct Outcome {
  int status = 0;
  bool ran = false;
  std::string body;
};

Outcome Call(const RouteGuard& guard, std::string method, std::string path,
             std::optional<std::string> token, std::map<std::string, std::string> query = {}) {
  boost::asio::io_context io;
  http::Router router;
  Outcome out;
  for (const RouteRule& rule : kRules) {
    AddGuarded(router, guard, kRules, std::string(rule.method), std::string(rule.pattern),
               [&out](http::Request, http::Responder respond) {
                 out.ran = true;
                 respond(http::JsonResponse(200, json{{"ok", true}}));
               });
  }
  http::Request req;
  req.method = std::move(method);
  req.path = path;
  req.target = path;
  req.query = std::move(query);
  if (token) req.headers.emplace_back("authorization", "Bearer " + *token);
  http::Response error;
  const http::Handler* handler = router.Match(req, &error);
  REQUIRE(handler != nullptr);
  (*handler)(req, http::Responder::FromCallback(io, [&out](http::Response r) {
               out.status = r.status;
               out.body = r.body;
             }));
  io.run();
  return out;
}

TEST_CASE("without an auth table every route is open") {
  RouteGuard guard;
  CHECK(guard.open());
  Outcome o = Call(guard, "PUT", "/v1/participants/bank-a", std::nullopt);
  CHECK(o.status == 200);
  CHECK(o.ran);
}

TEST_CASE("401 without a valid token, 403 with a token lacking the role; the handler does not run") {
  RouteGuard guard(Table());
  CHECK_FALSE(guard.open());

  Outcome none = Call(guard, "POST", "/v1/transactions", std::nullopt);
  CHECK(none.status == 401);
  CHECK_FALSE(none.ran);
  CHECK(json::parse(none.body)["error"]["code"] == "unauthorized");

  Outcome wrong = Call(guard, "POST", "/v1/transactions", std::string("client-token-012345678X"));
  CHECK(wrong.status == 401);
  CHECK_FALSE(wrong.ran);

  Outcome reader_route = Call(guard, "GET", "/v1/participants", std::string("client-token-0123456789"));
  CHECK(reader_route.status == 403);
  CHECK_FALSE(reader_route.ran);
  CHECK(json::parse(reader_route.body)["error"]["code"] == "forbidden");

  CHECK(Call(guard, "POST", "/v1/transactions", std::string("client-token-0123456789")).status == 200);
  CHECK(Call(guard, "GET", "/v1/participants", std::string("admin-token-0123456789")).status == 200);
  CHECK(Call(guard, "POST", "/v1/transactions", std::string("admin-token-0123456789")).status == 403);
}

TEST_CASE("a peer may register only its own name") {
  RouteGuard guard(Table());
  CHECK(Call(guard, "PUT", "/v1/participants/bank-a", std::string("peer-token-bank-a-0123")).status == 200);
  Outcome other = Call(guard, "PUT", "/v1/participants/bank-b", std::string("peer-token-bank-a-0123"));
  CHECK(other.status == 403);
  CHECK_FALSE(other.ran);
  CHECK(Call(guard, "PUT", "/v1/participants/bank-b", std::string("admin-token-0123456789")).status == 200);
  CHECK(Call(guard, "PUT", "/v1/participants/bank-b", std::string("client-token-0123456789")).status == 403);
}

TEST_CASE("a peer may read a transaction only as a decision query naming itself") {
  RouteGuard guard(Table());
  const std::string peer = "peer-token-bank-a-0123";
  CHECK(Call(guard, "GET", "/v1/transactions/t1", peer, {{"participant", "bank-a"}}).status == 200);
  CHECK(Call(guard, "GET", "/v1/transactions/t1", peer, {{"participant", "bank-b"}}).status == 403);
  CHECK(Call(guard, "GET", "/v1/transactions/t1", peer).status == 403);
  // Clients read transactions by their own role, with or without the parameter.
  CHECK(Call(guard, "GET", "/v1/transactions/t1", std::string("client-token-0123456789")).status == 200);
}

TEST_CASE("a route missing from the access table is refused at startup") {
  RouteGuard guard(Table());
  http::Router router;
  CHECK_THROWS_AS(AddGuarded(router, guard, kRules, "DELETE", "/v1/participants/{name}",
                             [](http::Request, http::Responder) {}),
                  std::logic_error);
  CHECK_THROWS_AS(AddGuarded(router, guard, kRules, "GET", "/v1/transactions", [](http::Request, http::Responder) {}),
                  std::logic_error);
}

TEST_CASE("the shared token grants every role") {
  RouteGuard guard = RouteGuard::SharedToken("shared-secret-0123456789");
  CHECK_FALSE(guard.open());
  CHECK(Call(guard, "PUT", "/v1/participants/x", std::string("shared-secret-0123456789")).status == 200);
  CHECK(Call(guard, "POST", "/v1/transactions", std::string("shared-secret-0123456789")).status == 200);
  CHECK(Call(guard, "POST", "/v1/transactions", std::string("shared-secret-012345678")).status == 401);
}

}  // namespace
}  // namespace commitd::auth
