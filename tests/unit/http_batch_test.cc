// Batched requests: BatchingClient coalescing under load and AddBatchRoute
// dispatching sub-requests through the router, over real sockets.
#include <utility>  // before asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/batching_client.h"
#include "common/http_batch.h"
#include "common/http_client.h"
#include "common/http_server.h"

using namespace commitd;
using namespace commitd::http;
using namespace std::chrono_literals;

namespace {

struct EchoServer {
  explicit EchoServer(boost::asio::io_context& io) {
    router.Add("POST", "/echo", [this](Request req, Responder respond) {
      ++calls;
      auto body = nlohmann::json::parse(req.body);
      // Answer later for odd ids, to check replies may complete out of order.
      int id = body["id"].get<int>();
      Response r = JsonResponse(id % 7 == 0 ? 409 : 200, {{"id", id},
                                                               {"auth", req.Header("authorization").value_or("")},
                                                               {"trace", req.Header("traceparent").value_or("")}});
      if (id % 2 == 0) {
        respond(std::move(r));
        return;
      }
      auto timer = std::make_shared<boost::asio::steady_timer>(*io_ptr, 2ms);
      timer->async_wait([timer, respond, r](boost::system::error_code) { respond(r); });
    });
    AddBatchRoute(router, io, "/v1/batch");
    io_ptr = &io;
    server = std::make_unique<Server>(io, ServerOptions{}, router);
    REQUIRE(server->Start().ok());
  }
  boost::asio::io_context* io_ptr = nullptr;
  Router router;
  std::unique_ptr<Server> server;
  int calls = 0;
};

ClientRequest Echo(uint16_t port, int id) {
  ClientRequest r;
  r.base_url = "http://127.0.0.1:" + std::to_string(port);
  r.method = "POST";
  r.target = "/echo";
  r.body = nlohmann::json{{"id", id}}.dump();
  r.headers.emplace_back("Authorization", "Bearer s3cret");
  return r;
}

void RunUntil(boost::asio::io_context& io, const std::function<bool()>& done) {
  auto give_up = std::chrono::steady_clock::now() + 20s;
  while (!done() && std::chrono::steady_clock::now() < give_up) io.run_one_for(50ms);
  REQUIRE(done());
}

}  // namespace

TEST_CASE("one request at a time goes out alone to its own target") {
  boost::asio::io_context io;
  EchoServer server(io);
  Client client(io);
  BatchingClient batching(client, io);
  int answered = 0;
  for (int i = 0; i < 3; ++i) {
    bool got = false;
    batching.Send(Echo(server.server->port(), 2 * i + 2), [&](Result<Response> r) {
      REQUIRE(r.ok());
      CHECK(r->status == 200);
      CHECK(nlohmann::json::parse(r->body)["id"] == 2 * i + 2);
      CHECK_FALSE(r->body_checked_json);  // not a batch's sub-response: its reader checks it
      got = true;
      ++answered;
    });
    RunUntil(io, [&] { return got; });
  }
  CHECK(answered == 3);
  CHECK(batching.stats().exchanges == 3);
}

TEST_CASE("requests sent in one handler leave in one exchange, though more are free") {
  boost::asio::io_context io;
  EchoServer server(io);
  Client client(io);
  BatchingClient batching(client, io);  // two exchanges in flight allowed
  std::map<int, int> status_by_id;
  for (int i : {2, 4, 6}) {
    batching.Send(Echo(server.server->port(), i), [&, i](Result<Response> r) {
      REQUIRE(r.ok());
      CHECK(nlohmann::json::parse(r->body)["id"] == i);
      CHECK(r->body_checked_json);  // a sub-response of a batch checked whole
      status_by_id[i] = r->status;
    });
  }
  CHECK(batching.stats().exchanges == 0);  // nothing leaves before the handler returns
  RunUntil(io, [&] { return status_by_id.size() == 3; });
  CHECK(batching.stats().exchanges == 1);
  CHECK(server.calls == 3);
  for (int i : {2, 4, 6}) CHECK(status_by_id[i] == 200);

  // A request sent from a callback joins the others sent from it.
  status_by_id.clear();
  batching.Send(Echo(server.server->port(), 8), [&](Result<Response> r) {
    REQUIRE(r.ok());
    status_by_id[8] = r->status;
    for (int i : {10, 12}) {
      batching.Send(Echo(server.server->port(), i), [&, i](Result<Response> r2) {
        REQUIRE(r2.ok());
        status_by_id[i] = r2->status;
      });
    }
  });
  RunUntil(io, [&] { return status_by_id.size() == 3; });
  CHECK(batching.stats().exchanges == 3);
}

TEST_CASE("a batching client destroyed before its flush ran sends nothing and calls nothing back") {
  boost::asio::io_context io;
  EchoServer server(io);
  Client client(io);
  bool called = false;
  {
    BatchingClient batching(client, io);
    batching.Send(Echo(server.server->port(), 2), [&](Result<Response>) { called = true; });
  }
  io.run_for(200ms);
  CHECK_FALSE(called);
  CHECK(server.calls == 0);
}

TEST_CASE("requests queued behind in-flight ones share exchanges, and each gets its own answer") {
  boost::asio::io_context io;
  EchoServer server(io);
  Client client(io);
  BatchingClient batching(client, io, BatchingOptions{"/v1/batch", 1, 64});
  const int n = 300;
  std::map<int, int> status_by_id;
  for (int i = 0; i < n; ++i) {
    batching.Send(Echo(server.server->port(), i), [&, i](Result<Response> r) {
      REQUIRE(r.ok());
      auto body = nlohmann::json::parse(r->body);
      CHECK(body["id"] == i);
      CHECK(body["auth"] == "Bearer s3cret");  // the batch's headers reach every sub-request
      status_by_id[i] = r->status;
    });
  }
  RunUntil(io, [&] { return static_cast<int>(status_by_id.size()) == n; });
  CHECK(server.calls == n);
  CHECK(status_by_id[7] == 409);
  CHECK(status_by_id[8] == 200);
  // All were sent before the io thread ran: batches of at most 64.
  CHECK(batching.stats().exchanges == (n + 63) / 64);
  CHECK(batching.stats().requests == static_cast<uint64_t>(n));
}

// A distinct, valid traceparent per id.
std::string TraceFor(int id) {
  char span[17];
  std::snprintf(span, sizeof span, "%016x", id + 1);
  return std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-") + span + "-01";
}

TEST_CASE("each batched request carries its own traceparent, not the first one's") {
  boost::asio::io_context io;
  EchoServer server(io);
  Client client(io);
  BatchingClient batching(client, io, BatchingOptions{"/v1/batch", 1, 64});
  const int n = 100;
  std::map<int, std::string> trace_by_id;
  for (int i = 0; i < n; ++i) {
    ClientRequest r = Echo(server.server->port(), i);
    if (i % 5 != 4) r.headers.emplace_back(i % 2 == 0 ? "traceparent" : "Traceparent", TraceFor(i));
    batching.Send(std::move(r), [&, i](Result<Response> resp) {
      REQUIRE(resp.ok());
      trace_by_id[i] = nlohmann::json::parse(resp->body)["trace"].get<std::string>();
    });
  }
  RunUntil(io, [&] { return static_cast<int>(trace_by_id.size()) == n; });
  CHECK(batching.stats().exchanges < static_cast<uint64_t>(n));  // most went in batches
  for (int i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(trace_by_id[i] == (i % 5 == 4 ? "" : TraceFor(i)));
  }
}

TEST_CASE("a sub-request's traceparent is its item's; the batch's header and a non-string item are not") {
  boost::asio::io_context io;
  EchoServer server(io);
  Client client(io);
  ClientRequest r;
  r.base_url = "http://127.0.0.1:" + std::to_string(server.server->port());
  r.method = "POST";
  r.target = "/v1/batch";
  r.headers.emplace_back("traceparent", TraceFor(99));
  r.body = R"({"requests":[{"target":"/echo","body":{"id":2},"traceparent":")" + TraceFor(2) +
           R"("},{"target":"/echo","body":{"id":4}},{"target":"/echo","body":{"id":6},"traceparent":{"x":1}},)"
           R"({"target":"/echo","body":{"id":8},"traceparent":"garbage"}]})";
  bool done = false;
  client.Send(r, [&](Result<Response> resp) {
    REQUIRE(resp.ok());
    REQUIRE(resp->status == 200);
    auto body = nlohmann::json::parse(resp->body);
    REQUIRE(body["responses"].size() == 4);
    for (const auto& sub : body["responses"]) CHECK(sub["status"] == 200);
    CHECK(body["responses"][0]["body"]["trace"] == TraceFor(2));
    CHECK(body["responses"][1]["body"]["trace"] == "");
    CHECK(body["responses"][2]["body"]["trace"] == "");
    // Passed on as given: the handler parses it (and treats garbage as absent).
    CHECK(body["responses"][3]["body"]["trace"] == "garbage");
    done = true;
  });
  RunUntil(io, [&] { return done; });
}

TEST_CASE("a batch with a bad sub-request answers that one with an error and the rest normally") {
  boost::asio::io_context io;
  EchoServer server(io);
  Client client(io);
  ClientRequest r;
  r.base_url = "http://127.0.0.1:" + std::to_string(server.server->port());
  r.method = "POST";
  r.target = "/v1/batch";
  r.body = R"({"requests":[{"target":"/echo","body":{"id":2}},{"target":"/nowhere"},{"target":"/v1/batch","body":{}},{"method":"POST"}]})";
  bool done = false;
  client.Send(r, [&](Result<Response> resp) {
    REQUIRE(resp.ok());
    REQUIRE(resp->status == 200);
    auto body = nlohmann::json::parse(resp->body);
    REQUIRE(body["responses"].size() == 4);
    CHECK(body["responses"][0]["status"] == 200);
    CHECK(body["responses"][0]["body"]["id"] == 2);
    CHECK(body["responses"][1]["status"] == 404);
    CHECK(body["responses"][2]["status"] == 400);
    CHECK(body["responses"][3]["status"] == 400);
    done = true;
  });
  RunUntil(io, [&] { return done; });
  r.body = R"({"requests":"nope"})";
  done = false;
  client.Send(r, [&](Result<Response> resp) {
    REQUIRE(resp.ok());
    CHECK(resp->status == 400);
    done = true;
  });
  RunUntil(io, [&] { return done; });
}

TEST_CASE("sub-request paths are taken as given, nesting is refused at any depth, admission runs first") {
  boost::asio::io_context io;
  EchoServer server(io);
  Router guarded;
  int echoed = 0;
  guarded.Add("POST", "/echo", [&](Request, Responder respond) {
    ++echoed;
    respond(JsonResponse(200, {{"ok", true}}));
  });
  AddBatchRoute(guarded, io, "/v1/batch", 4096, [](const Request& req, const Responder& respond) {
    if (req.Header("authorization") == std::optional<std::string>("Bearer peer")) return true;
    respond(ErrorResponse(401, "unauthorized", "no"));
    return false;
  });
  Server guarded_server(io, ServerOptions{}, guarded);
  REQUIRE(guarded_server.Start().ok());
  Client client(io);
  auto send = [&](uint16_t port, std::string body, std::optional<std::string> token) {
    ClientRequest r;
    r.base_url = "http://127.0.0.1:" + std::to_string(port);
    r.method = "POST";
    r.target = "/v1/batch";
    r.body = std::move(body);
    if (token) r.headers.emplace_back("Authorization", "Bearer " + *token);
    std::optional<Response> got;
    client.Send(r, [&](Result<Response> resp) {
      REQUIRE(resp.ok());
      got = std::move(resp).value();
    });
    RunUntil(io, [&] { return got.has_value(); });
    return *got;
  };
  Response r = send(server.server->port(),
                    R"({"requests":[{"target":"/v1/%62atch","body":{"requests":[{"target":"/echo","body":{"id":2}}]}},)"
                    R"({"target":"/%65cho","body":{"id":2}},{"target":"//echo","body":{"id":2}},)"
                    R"({"target":"/./echo","body":{"id":2}},{"target":"/v1/batch?x=1","body":{"requests":[]}}]})",
                    std::nullopt);
  REQUIRE(r.status == 200);
  auto body = nlohmann::json::parse(r.body);
  REQUIRE(body["responses"].size() == 5);
  for (const auto& sub : body["responses"]) CHECK(sub["status"] == 400);
  CHECK(server.calls == 0);

  // A batch nested 20,000 deep: refused at its first level, nothing runs.
  std::string deep;
  for (int i = 0; i < 20000; ++i) deep += R"({"requests":[{"target":"/v1/batch","body":)";
  deep += R"({"requests":[{"target":"/echo","body":{"id":2}}]})";
  for (int i = 0; i < 20000; ++i) deep += "}]}";
  r = send(server.server->port(), deep, std::nullopt);
  REQUIRE(r.status == 200);
  body = nlohmann::json::parse(r.body);
  CHECK(body["responses"][0]["status"] == 400);
  CHECK(server.calls == 0);

  r = send(guarded_server.port(), R"({"requests":[{"target":"/echo","body":{}}]})", std::nullopt);
  CHECK(r.status == 401);
  r = send(guarded_server.port(), R"({"requests":[{"target":"/echo","body":{}}]})", "other");
  CHECK(r.status == 401);
  CHECK(echoed == 0);
  r = send(guarded_server.port(), R"({"requests":[{"target":"/echo","body":{}}]})", "peer");
  CHECK(r.status == 200);
  CHECK(echoed == 1);
}

TEST_CASE("a peer that cannot be reached fails every request of the exchange") {
  boost::asio::io_context io;
  Client client(io);
  BatchingClient batching(client, io, BatchingOptions{"/v1/batch", 1, 64});
  int failed = 0;
  for (int i = 0; i < 10; ++i) {
    batching.Send(Echo(1, i), [&](Result<Response> r) {
      CHECK_FALSE(r.ok());
      CHECK(r.status().code() == StatusCode::kUnavailable);
      ++failed;
    });
  }
  RunUntil(io, [&] { return failed == 10; });
}

TEST_CASE("an exchange never carries more request bytes than max_batch_bytes (a lone big request still goes)") {
  boost::asio::io_context io;
  EchoServer server(io);
  Client client(io);
  BatchingClient batching(client, io, BatchingOptions{"/v1/batch", 1, 256, 4096});
  int answered = 0;
  for (int i = 0; i < 40; ++i) {
    ClientRequest r = Echo(server.server->port(), i);
    // ~1 KiB of padding each: at most 4 fit in one exchange.
    r.body = nlohmann::json{{"id", i}, {"pad", std::string(1000, 'x')}}.dump();
    batching.Send(std::move(r), [&](Result<Response> resp) {
      REQUIRE(resp.ok());
      ++answered;
    });
  }
  ClientRequest big = Echo(server.server->port(), 1000);
  big.body = nlohmann::json{{"id", 1000}, {"pad", std::string(10000, 'y')}}.dump();
  batching.Send(std::move(big), [&](Result<Response> resp) {
    REQUIRE(resp.ok());
    CHECK(resp->status == 200);
    ++answered;
  });
  RunUntil(io, [&] { return answered == 41; });
  CHECK(batching.stats().exchanges >= 11);  // 40 padded requests, at most 4 per exchange, plus the big one
}

TEST_CASE("a sub-request with a body says its JSON was checked; one without, and a plain request, do not") {
  boost::asio::io_context io;
  Router router;
  std::vector<std::pair<std::string, bool>> seen;  // body, body_checked_json
  router.Add("POST", "/note", [&](Request req, Responder respond) {
    seen.emplace_back(req.body, req.body_checked_json);
    respond(JsonResponse(200, nlohmann::json::object()));
  });
  AddBatchRoute(router, io, "/v1/batch");
  Server server(io, ServerOptions{}, router);
  REQUIRE(server.Start().ok());
  Client client(io);
  auto post = [&](std::string target, std::string body) {
    ClientRequest r;
    r.base_url = "http://127.0.0.1:" + std::to_string(server.port());
    r.method = "POST";
    r.target = std::move(target);
    r.body = std::move(body);
    bool done = false;
    client.Send(r, [&](Result<Response> resp) {
      REQUIRE(resp.ok());
      CHECK(resp->status == 200);
      done = true;
    });
    RunUntil(io, [&] { return done; });
  };
  post("/v1/batch", R"({"requests":[{"target":"/note","body":{"a":[1,"x"]}},{"target":"/note"}]})");
  post("/note", R"({"a":1})");
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == std::pair<std::string, bool>{R"({"a":[1,"x"]})", true});
  CHECK(seen[1] == std::pair<std::string, bool>{"", false});
  CHECK(seen[2] == std::pair<std::string, bool>{R"({"a":1})", false});
}
