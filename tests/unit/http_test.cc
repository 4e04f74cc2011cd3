// HTTP server and client over real sockets on 127.0.0.1. Each test runs one
// io_context on the test thread until its test coroutine finishes.
#include <utility>  // before asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "common/http_client.h"
#include "common/http_read_buffer.h"
#include "common/http_server.h"

namespace commitd::http {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

// Runs `io` until the coroutine made by `make` finishes (rethrowing its
// exception), or fails the test after `limit`.
template <class MakeCoroutine>
void RunTest(asio::io_context& io, MakeCoroutine make, std::chrono::seconds limit = 30s) {
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, make(), [&](std::exception_ptr e) {
    done = true;
    failure = e;
  });
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!done && std::chrono::steady_clock::now() < give_up) io.run_one_for(100ms);
  REQUIRE_MESSAGE(done, "test coroutine did not finish in time");
  if (failure) std::rethrow_exception(failure);
}

asio::awaitable<void> Sleep(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(d);
  co_await timer.async_wait(asio::use_awaitable);
}

ClientRequest Get(uint16_t port, std::string target) {
  ClientRequest request;
  request.base_url = "http://127.0.0.1:" + std::to_string(port);
  request.target = std::move(target);
  return request;
}

ClientRequest Post(uint16_t port, std::string target, std::string body) {
  ClientRequest request = Get(port, std::move(target));
  request.method = "POST";
  request.body = std::move(body);
  return request;
}

std::string ErrorCode(const Response& response) {
  return nlohmann::json::parse(response.body).at("error").at("code").get<std::string>();
}

// Forwards TCP connections from its own port to `target_port` and counts them,
// so tests can see how many connections a client opened.
struct CountingProxy {
  CountingProxy(asio::io_context& io, uint16_t target_port)
      : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), target(target_port) {
    asio::co_spawn(io, Accept(this), asio::detached);
  }
  ~CountingProxy() {
    error_code ec;
    acceptor.close(ec);
  }
  uint16_t port() const { return acceptor.local_endpoint().port(); }

  static asio::awaitable<void> Pipe(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
    char buf[8192];
    error_code ec;
    while (true) {
      std::size_t n = co_await from->async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      co_await asio::async_write(*to, asio::buffer(buf, n), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    to->shutdown(tcp::socket::shutdown_send, ec);
  }

  static asio::awaitable<void> Accept(CountingProxy* self) {
    auto executor = co_await asio::this_coro::executor;
    while (true) {
      error_code ec;
      auto inbound = std::make_shared<tcp::socket>(
          co_await self->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec)));
      if (ec) co_return;
      ++self->accepted;
      auto outbound = std::make_shared<tcp::socket>(executor);
      co_await outbound->async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), self->target),
                                       asio::redirect_error(asio::use_awaitable, ec));
      if (ec) continue;
      asio::co_spawn(executor, Pipe(inbound, outbound), asio::detached);
      asio::co_spawn(executor, Pipe(outbound, inbound), asio::detached);
    }
  }

  tcp::acceptor acceptor;
  uint16_t target;
  int accepted = 0;
};

// Writes raw bytes on a new connection and returns everything read until the
// server closes it.
asio::awaitable<std::string> RawExchange(uint16_t port, std::string bytes) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(bytes), asio::use_awaitable);
  std::string reply;
  error_code ec;
  co_await asio::async_read(socket, asio::dynamic_buffer(reply), asio::redirect_error(asio::use_awaitable, ec));
  co_return reply;
}

Router EchoRouter() {
  Router router;
  router.Add("GET", "/v1/items/{id}", [](Request request, Responder respond) {
    nlohmann::json j = {{"route", "item"},
                        {"path", request.path},
                        {"id", request.path_params["id"]},
                        {"query", request.query},
                        {"token", request.Header("X-Token").value_or("")}};
    respond(JsonResponse(200, j));
  });
  router.Add("GET", "/v1/items/special", [](Request, Responder respond) {
    respond(JsonResponse(200, {{"route", "special"}}));
  });
  router.Add("POST", "/echo", [](Request request, Responder respond) {
    Response response;
    response.content_type = "text/plain";
    response.body = std::move(request.body);
    response.headers.emplace_back("X-Echo", "yes");
    respond(std::move(response));
  });
  return router;
}

TEST_CASE("Router: exact routes beat patterns, path params, 404 and 405") {
  Router router;
  int hit = 0;
  router.Add("GET", "/v1/transactions/{txid}", [&](Request, Responder) { hit = 1; });
  router.Add("GET", "/v1/transactions/pending", [&](Request, Responder) { hit = 2; });
  router.Add("PUT", "/v1/participants/{name}", [&](Request, Responder) { hit = 3; });
  router.Add("GET", "/", [&](Request, Responder) { hit = 4; });

  Request request;
  request.method = "GET";
  request.target = "/v1/transactions/tx%2F1?x=1";
  request.path = "/v1/transactions/tx/1";
  Response error;
  const Handler* handler = router.Match(request, &error);
  REQUIRE(handler != nullptr);
  (*handler)(request, Responder(nullptr));
  CHECK(hit == 1);
  CHECK(request.path_params.at("txid") == "tx/1");

  request.target = request.path = "/v1/transactions/pending";
  handler = router.Match(request, &error);
  REQUIRE(handler != nullptr);
  (*handler)(request, Responder(nullptr));
  CHECK(hit == 2);

  request.target = request.path = "/";
  REQUIRE(router.Match(request, &error) != nullptr);

  request.target = request.path = "/v1/participants/bank-a";
  CHECK(router.Match(request, &error) == nullptr);
  CHECK(error.status == 405);
  CHECK(ErrorCode(error) == "method_not_allowed");
  CHECK(error.Header("allow") == "PUT");

  request.method = "PUT";
  REQUIRE(router.Match(request, &error) != nullptr);
  CHECK(request.path_params.at("name") == "bank-a");

  request.target = request.path = "/v1/participants/bank-a/extra";
  CHECK(router.Match(request, &error) == nullptr);
  CHECK(error.status == 404);
  CHECK(ErrorCode(error) == "not_found");
}

TEST_CASE("Router: a path without parameters is found by its text, as the general rule would find it") {
  Router router;
  int hit = 0;
  router.Add("GET", "/v1/items/{id}", [&](Request, Responder) { hit = 1; });
  router.Add("GET", "/v1/items/all", [&](Request, Responder) { hit = 2; });
  router.Add("POST", "/v1/items/all", [&](Request, Responder) { hit = 3; });
  router.Add("GET", "/v1/items/all", [&](Request, Responder) { hit = 4; });  // added later: never chosen
  router.Add("GET", "/v1/items/all/", [&](Request, Responder) { hit = 5; });

  const auto match = [&](const std::string& method, const std::string& target, const std::string& path) {
    Request request;
    request.method = method;
    request.target = target;
    request.path = path;
    request.path_params["stale"] = "x";
    Response error;
    hit = 0;
    const Handler* handler = router.Match(request, &error);
    if (handler != nullptr) (*handler)(request, Responder(nullptr));
    return std::make_tuple(hit, error.status, request.path_params);
  };
  using Params = std::map<std::string, std::string>;
  CHECK(match("GET", "/v1/items/all", "/v1/items/all") == std::make_tuple(2, 200, Params{}));
  CHECK(match("POST", "/v1/items/all?x=1", "/v1/items/all") == std::make_tuple(3, 200, Params{}));
  CHECK(match("GET", "/v1/items/all/", "/v1/items/all/") == std::make_tuple(5, 200, Params{}));
  CHECK(match("GET", "/v1/items/a11", "/v1/items/a11") == std::make_tuple(1, 200, Params{{"id", "a11"}}));
  // An escaped path takes the general rule and finds the same routes.
  CHECK(match("GET", "/v1/items/al%6C", "/v1/items/all") == std::make_tuple(2, 200, Params{}));
  CHECK(match("GET", "/v1/items/a%2Fb", "/v1/items/a/b") == std::make_tuple(1, 200, Params{{"id", "a/b"}}));
  // A broken escape stays as it is: a bad second digit, a missing one.
  CHECK(match("GET", "/v1/items/%4g", "/v1/items/%4g") == std::make_tuple(1, 200, Params{{"id", "%4g"}}));
  CHECK(match("GET", "/v1/items/a%4", "/v1/items/a%4") == std::make_tuple(1, 200, Params{{"id", "a%4"}}));
  // Another method: 405, naming every method the path has.
  Request put;
  put.method = "PUT";
  put.target = put.path = "/v1/items/all";
  Response error;
  CHECK(router.Match(put, &error) == nullptr);
  CHECK(error.status == 405);
  CHECK(error.Header("allow") == "GET, POST");
  put.target = put.path = "/v1/items/all/more";
  CHECK(router.Match(put, &error) == nullptr);
  CHECK(error.status == 404);
}

TEST_CASE("ParseHostPort") {
  auto ok = ParseHostPort("127.0.0.1:7000");
  REQUIRE(ok.ok());
  CHECK(ok->first == "127.0.0.1");
  CHECK(ok->second == 7000);
  auto v6 = ParseHostPort("[::1]:0");
  REQUIRE(v6.ok());
  CHECK(v6->first == "::1");
  CHECK(v6->second == 0);
  for (const char* bad : {"", "127.0.0.1", ":7000", "host:", "host:70000", "host:7x", "[::1]7000"}) {
    CAPTURE(bad);
    CHECK(ParseHostPort(bad).status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("Response helpers and case-insensitive headers") {
  Response error = ErrorResponse(400, "invalid_request", "bad \"thing\"");
  CHECK(error.status == 400);
  CHECK(error.content_type == "application/json");
  auto body = nlohmann::json::parse(error.body);
  CHECK(body["error"]["code"] == "invalid_request");
  CHECK(body["error"]["message"] == "bad \"thing\"");

  Response json = JsonResponse(201, {{"a", 1}});
  CHECK(json.status == 201);
  CHECK(json.body == R"({"a":1})");
  json.headers.emplace_back("Retry-After", "2");
  CHECK(json.Header("retry-after") == "2");
  CHECK(json.Header("Content-Type") == "application/json");
  CHECK_FALSE(json.Header("x-missing").has_value());

  Request request;
  request.headers.emplace_back("idempotency-key", "k1");
  CHECK(request.Header("Idempotency-Key") == "k1");
}

TEST_CASE("Server routes requests with path params, decoded query and headers") {
  asio::io_context io;
  Router router = EchoRouter();
  Server server(io, {}, router);
  REQUIRE(server.Start().ok());
  Client client(io);
  RunTest(io, [&]() -> asio::awaitable<void> {
    ClientRequest request = Get(server.port(), "/v1/items/a%2Fb%20c?state=in%20doubt&who=x+y&flag&e=%zz");
    request.headers.emplace_back("X-Token", "secret");
    Result<Response> got = co_await client.Fetch(request);
    REQUIRE(got.ok());
    CHECK(got->status == 200);
    CHECK(got->content_type == "application/json");
    auto body = nlohmann::json::parse(got->body);
    CHECK(body["route"] == "item");
    CHECK(body["id"] == "a/b c");
    CHECK(body["path"] == "/v1/items/a/b c");
    CHECK(body["query"]["state"] == "in doubt");
    CHECK(body["query"]["who"] == "x y");
    CHECK(body["query"]["flag"] == "");
    CHECK(body["query"]["e"] == "%zz");
    CHECK(body["token"] == "secret");

    got = co_await client.Fetch(Get(server.port(), "/v1/items/special"));
    REQUIRE(got.ok());
    CHECK(nlohmann::json::parse(got->body)["route"] == "special");

    got = co_await client.Fetch(Post(server.port(), "/echo", "hello"));
    REQUIRE(got.ok());
    CHECK(got->status == 200);
    CHECK(got->body == "hello");
    CHECK(got->content_type == "text/plain");
    CHECK(got->Header("x-echo") == "yes");

    got = co_await client.Fetch(Get(server.port(), "/nope"));
    REQUIRE(got.ok());
    CHECK(got->status == 404);
    CHECK(ErrorCode(*got) == "not_found");

    got = co_await client.Fetch(Get(server.port(), "/echo"));
    REQUIRE(got.ok());
    CHECK(got->status == 405);
    CHECK(ErrorCode(*got) == "method_not_allowed");
  });
}

TEST_CASE("Server answers 413 to a body over the limit and 400 to malformed HTTP") {
  asio::io_context io;
  Router router = EchoRouter();
  ServerOptions options;
  options.max_body_bytes = 1024;
  Server server(io, options, router);
  REQUIRE(server.Start().ok());
  Client client(io);
  RunTest(io, [&]() -> asio::awaitable<void> {
    Result<Response> got = co_await client.Fetch(Post(server.port(), "/echo", std::string(1024, 'a')));
    REQUIRE(got.ok());
    CHECK(got->status == 200);

    got = co_await client.Fetch(Post(server.port(), "/echo", std::string(64 * 1024, 'b')));
    REQUIRE(got.ok());
    CHECK(got->status == 413);
    CHECK(ErrorCode(*got) == "payload_too_large");
    CHECK(got->Header("connection") == "close");

    // Chunked body: the limit is only discovered while reading it.
    std::string chunked =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "800\r\n" + std::string(0x800, 'c') + "\r\n0\r\n\r\n";
    std::string reply = co_await RawExchange(server.port(), chunked);
    CHECK(reply.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(reply.find("payload_too_large") != std::string::npos);

    reply = co_await RawExchange(server.port(), "NOT HTTP AT ALL\r\n\r\n");
    CHECK(reply.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(reply.find("\"invalid_request\"") != std::string::npos);

    // The server still works afterwards.
    got = co_await client.Fetch(Post(server.port(), "/echo", "ok"));
    REQUIRE(got.ok());
    CHECK(got->body == "ok");
  });
}

TEST_CASE("A read buffer is given room for the announced body, up to one read's worth") {
  namespace bhttp = boost::beast::http;
  auto header_parsed = [](const std::string& header) {
    auto parser = std::make_unique<bhttp::request_parser<bhttp::string_body>>();
    parser->body_limit(64u << 20);
    error_code ec;
    parser->put(asio::buffer(header), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(parser->is_header_done());
    return parser;
  };

  boost::beast::flat_buffer buffer;
  buffer.reserve(kFirstReadBytes);
  ReserveForBody(buffer, *header_parsed("POST /x HTTP/1.1\r\nContent-Length: 20000\r\n\r\n"));
  CHECK(buffer.capacity() >= 20000);

  // A length a peer only announces reserves no more than one read takes.
  boost::beast::flat_buffer capped;
  ReserveForBody(capped, *header_parsed("POST /x HTTP/1.1\r\nContent-Length: 50000000\r\n\r\n"));
  CHECK(capped.capacity() >= kMaxReadBytes);
  CHECK(capped.capacity() < 2 * kMaxReadBytes);

  // No announced length (chunked) and no body leave the buffer as it was.
  boost::beast::flat_buffer untouched;
  untouched.reserve(kFirstReadBytes);
  ReserveForBody(untouched, *header_parsed("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  CHECK(untouched.capacity() == kFirstReadBytes);
  ReserveForBody(untouched, *header_parsed("POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
  CHECK(untouched.capacity() == kFirstReadBytes);

  // Bytes already buffered (a pipelined request) are kept.
  boost::beast::flat_buffer pipelined;
  const std::string next = "GET /next HTTP/1.1\r\n\r\n";
  asio::buffer_copy(pipelined.prepare(next.size()), asio::buffer(next));
  pipelined.commit(next.size());
  ReserveForBody(pipelined, *header_parsed("POST /x HTTP/1.1\r\nContent-Length: 9000\r\n\r\n"));
  CHECK(pipelined.capacity() >= 9000);
  CHECK(boost::beast::buffers_to_string(pipelined.data()) == next);
}

TEST_CASE("Bodies larger than a read arrive whole, sent at once or in pieces") {
  asio::io_context io;
  Router router = EchoRouter();
  ServerOptions options;
  options.max_body_bytes = 4u << 20;
  Server server(io, options, router);
  REQUIRE(server.Start().ok());
  Client client(io);
  RunTest(io, [&]() -> asio::awaitable<void> {
    for (std::size_t size : {std::size_t{5000}, kFirstReadBytes + 1, kMaxReadBytes + 7, std::size_t{3} << 20}) {
      std::string body(size, '\0');
      for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>('a' + (i * 7919 + i / 251) % 26);
      Result<Response> got = co_await client.Fetch(Post(server.port(), "/echo", body));
      REQUIRE(got.ok());
      CHECK(got->status == 200);
      CHECK(got->body.size() == size);
      CHECK(got->body == body);
    }

    // The header first, then the body in three writes with pauses between.
    tcp::socket socket(co_await asio::this_coro::executor);
    co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()),
                                  asio::use_awaitable);
    const std::string body(12000, 'p');
    const std::string header = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n";
    co_await asio::async_write(socket, asio::buffer(header), asio::use_awaitable);
    for (std::size_t from = 0; from < body.size(); from += 4000) {
      co_await Sleep(20ms);
      co_await asio::async_write(socket, asio::buffer(body.data() + from, 4000), asio::use_awaitable);
    }
    std::string reply;
    error_code ec;
    co_await asio::async_read(socket, asio::dynamic_buffer(reply), asio::redirect_error(asio::use_awaitable, ec));
    CHECK(reply.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(reply.size() > body.size());
    CHECK(reply.compare(reply.size() - body.size(), body.size(), body) == 0);
  });
}

TEST_CASE("Server honours Expect: 100-continue and pipelined requests") {
  asio::io_context io;
  Router router = EchoRouter();
  Server server(io, {}, router);
  REQUIRE(server.Start().ok());
  RunTest(io, [&]() -> asio::awaitable<void> {
    tcp::socket socket(co_await asio::this_coro::executor);
    co_await socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()),
                                  asio::use_awaitable);
    std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    co_await asio::async_write(socket, asio::buffer(head), asio::use_awaitable);
    std::string interim;
    co_await asio::async_read_until(socket, asio::dynamic_buffer(interim), "\r\n\r\n", asio::use_awaitable);
    CHECK(interim.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0) == 0);
    // The body, then two pipelined requests; the last one closes.
    std::string rest =
        "abc"
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ndef"
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nghi";
    co_await asio::async_write(socket, asio::buffer(rest), asio::use_awaitable);
    std::string replies;
    error_code ec;
    co_await asio::async_read(socket, asio::dynamic_buffer(replies), asio::redirect_error(asio::use_awaitable, ec));
    CHECK(ec == asio::error::eof);
    auto first = replies.find("\r\n\r\nabc");
    auto second = replies.find("\r\n\r\ndef");
    auto third = replies.find("\r\n\r\nghi");
    CHECK(first != std::string::npos);
    CHECK(second != std::string::npos);
    CHECK(third != std::string::npos);
    CHECK(first < second);
    CHECK(second < third);
  });
}

TEST_CASE("Client reuses keep-alive connections and retries a stale one") {
  asio::io_context io;
  Router router = EchoRouter();
  ServerOptions options;
  options.idle_timeout = 200ms;
  Server server(io, options, router);
  REQUIRE(server.Start().ok());
  CountingProxy proxy(io, server.port());
  Client client(io);
  RunTest(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 10; ++i) {
      Result<Response> got = co_await client.Fetch(Post(proxy.port(), "/echo", std::to_string(i)));
      REQUIRE(got.ok());
      CHECK(got->body == std::to_string(i));
    }
    CHECK(proxy.accepted == 1);

    // The server drops the idle connection; the client notices only when it
    // reuses it and must retry on a new one transparently.
    co_await Sleep(500ms);
    Result<Response> got = co_await client.Fetch(Post(proxy.port(), "/echo", "after idle"));
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    CHECK(got->body == "after idle");
    CHECK(proxy.accepted == 2);

    // A response with Connection: close is not pooled.
    ClientRequest close = Post(proxy.port(), "/echo", "close");
    close.headers.emplace_back("Connection", "close");
    got = co_await client.Fetch(close);
    REQUIRE(got.ok());
    got = co_await client.Fetch(Post(proxy.port(), "/echo", "x"));
    REQUIRE(got.ok());
    CHECK(proxy.accepted == 3);

    client.CloseIdle();
    got = co_await client.Fetch(Post(proxy.port(), "/echo", "y"));
    REQUIRE(got.ok());
    CHECK(proxy.accepted == 4);
  });
}

TEST_CASE("Responder: later response, dropped responder, handler timeout") {
  asio::io_context io;
  Router router;
  std::vector<Responder> parked;
  router.Add("GET", "/later", [&io](Request, Responder respond) {
    auto timer = std::make_shared<asio::steady_timer>(io, 50ms);
    timer->async_wait([timer, respond](error_code) { respond(JsonResponse(200, {{"late", true}})); });
  });
  router.Add("GET", "/drop", [](Request, Responder) {});
  router.Add("GET", "/twice", [](Request, Responder respond) {
    respond(JsonResponse(200, {{"n", 1}}));
    respond(JsonResponse(200, {{"n", 2}}));
  });
  router.Add("GET", "/throw", [](Request, Responder) { throw std::runtime_error("boom"); });
  router.Add("GET", "/park", [&parked](Request, Responder respond) { parked.push_back(respond); });
  ServerOptions options;
  options.handler_timeout = 200ms;
  Server server(io, options, router);
  REQUIRE(server.Start().ok());
  Client client(io);
  RunTest(io, [&]() -> asio::awaitable<void> {
    Result<Response> got = co_await client.Fetch(Get(server.port(), "/later"));
    REQUIRE(got.ok());
    CHECK(got->status == 200);
    CHECK(got->body == R"({"late":true})");

    got = co_await client.Fetch(Get(server.port(), "/drop"));
    REQUIRE(got.ok());
    CHECK(got->status == 500);
    CHECK(ErrorCode(*got) == "internal");
    CHECK(nlohmann::json::parse(got->body)["error"]["message"] == "request dropped");

    got = co_await client.Fetch(Get(server.port(), "/twice"));
    REQUIRE(got.ok());
    CHECK(got->body == R"({"n":1})");

    got = co_await client.Fetch(Get(server.port(), "/throw"));
    REQUIRE(got.ok());
    CHECK(got->status == 500);

    got = co_await client.Fetch(Get(server.port(), "/park"));
    REQUIRE(got.ok());
    CHECK(got->status == 504);
    CHECK(ErrorCode(*got) == "handler_timeout");
    REQUIRE(parked.size() == 1);
    parked[0](JsonResponse(200, {{"too", "late"}}));  // ignored

    // The connection is still usable after the late call.
    got = co_await client.Fetch(Get(server.port(), "/twice"));
    REQUIRE(got.ok());
    CHECK(got->status == 200);
  });
}

TEST_CASE("Client errors: timeout, refused, bad URL") {
  asio::io_context io;
  Router router;
  std::vector<Responder> parked;
  router.Add("GET", "/never", [&parked](Request, Responder respond) { parked.push_back(respond); });
  Server server(io, {}, router);
  REQUIRE(server.Start().ok());
  Client client(io);

  uint16_t closed_port = 0;
  {
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    closed_port = probe.local_endpoint().port();
  }

  RunTest(io, [&]() -> asio::awaitable<void> {
    ClientRequest slow = Get(server.port(), "/never");
    slow.timeout = 200ms;
    const auto start = std::chrono::steady_clock::now();
    Result<Response> got = co_await client.Fetch(slow);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().code() == StatusCode::kTimeout);
    CHECK(got.status().message() ==
          "request to http://127.0.0.1:" + std::to_string(server.port()) + "/never timed out after 200 ms");

    got = co_await client.Fetch(Get(closed_port, "/"));
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().code() == StatusCode::kUnavailable);
    CHECK(got.status().message() ==
          "connect to http://127.0.0.1:" + std::to_string(closed_port) + " failed: Connection refused");

    for (const char* url : {"https://127.0.0.1:1", "127.0.0.1:7000", "http://:80", "http://host:99999"}) {
      ClientRequest bad;
      bad.base_url = url;
      got = co_await client.Fetch(bad);
      CAPTURE(url);
      CHECK(got.status().code() == StatusCode::kInvalidArgument);
    }
  });
  parked.clear();  // drop the parked Responder while the io_context is alive
}

TEST_CASE("Server Stop: in-flight request finishes, then requests fail") {
  asio::io_context io;
  Router router = EchoRouter();
  router.Add("GET", "/slow", [&io](Request, Responder respond) {
    auto timer = std::make_shared<asio::steady_timer>(io, 100ms);
    timer->async_wait([timer, respond](error_code) { respond(JsonResponse(200, {{"slow", true}})); });
  });
  Server server(io, {}, router);
  REQUIRE(server.Start().ok());
  const uint16_t port = server.port();
  Client client(io);
  RunTest(io, [&]() -> asio::awaitable<void> {
    // Leave an idle pooled connection behind, then start a slow request.
    REQUIRE((co_await client.Fetch(Post(port, "/echo", "warm"))).ok());
    REQUIRE((co_await client.Fetch(Post(port, "/echo", "warm"))).ok());
    bool slow_done = false;
    Result<Response> slow = Status::Internal("unset");
    client.Send(Get(port, "/slow"), [&](Result<Response> r) {
      slow = std::move(r);
      slow_done = true;
    });
    co_await Sleep(20ms);
    server.Stop();
    while (!slow_done) co_await Sleep(10ms);
    REQUIRE_MESSAGE(slow.ok(), slow.status().ToString());
    CHECK(slow->status == 200);
    CHECK(slow->Header("connection") == "close");

    Result<Response> got = co_await client.Fetch(Post(port, "/echo", "after stop"));
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().code() == StatusCode::kUnavailable);
  });
}

// Parameters by value: the coroutine frame owns them.
asio::awaitable<void> FetchDelayedEcho(Client& client, uint16_t port, int i, int* answered, int* correct) {
  const std::string body = "request-" + std::to_string(i) + std::string(i * 10, 'x');
  Result<Response> got = co_await client.Fetch(Post(port, "/delayed/" + std::to_string(i), body));
  ++*answered;
  if (got.ok() && got->status == 200 && nlohmann::json::parse(got->body)["body"] == body) ++*correct;
}

TEST_CASE("200 concurrent requests are all answered correctly") {
  asio::io_context io;
  Router router = EchoRouter();
  router.Add("POST", "/delayed/{n}", [&io](Request request, Responder respond) {
    auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(std::stoi(request.path_params["n"]) % 7));
    timer->async_wait([timer, respond, body = std::move(request.body)](error_code) {
      respond(JsonResponse(200, {{"body", body}}));
    });
  });
  Server server(io, {}, router);
  REQUIRE(server.Start().ok());
  Client client(io);
  constexpr int kRequests = 200;
  int answered = 0;
  int correct = 0;
  RunTest(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    for (int i = 0; i < kRequests; ++i) {
      asio::co_spawn(executor, FetchDelayedEcho(client, server.port(), i, &answered, &correct), asio::detached);
    }
    for (int i = 0; i < kRequests; ++i) {
      client.Send(Post(server.port(), "/echo", std::to_string(i)), [&, i](Result<Response> got) {
        ++answered;
        if (got.ok() && got->body == std::to_string(i)) ++correct;
      });
    }
    while (answered < 2 * kRequests) co_await Sleep(5ms);
  });
  CHECK(correct == 2 * kRequests);
}

TEST_CASE("Destroying the client with requests in flight drops their callbacks") {
  asio::io_context io;
  Router router;
  std::vector<Responder> parked;
  router.Add("GET", "/never", [&parked](Request, Responder respond) { parked.push_back(respond); });
  Server server(io, {}, router);
  REQUIRE(server.Start().ok());
  auto client = std::make_unique<Client>(io);
  bool called = false;
  RunTest(io, [&]() -> asio::awaitable<void> {
    client->Send(Get(server.port(), "/never"), [&](Result<Response>) { called = true; });
    while (parked.empty()) co_await Sleep(5ms);
    client.reset();
    co_await Sleep(50ms);
  });
  CHECK_FALSE(called);
  parked.clear();
}

}  // namespace
}  // namespace commitd::http

namespace commitd::http {
namespace {

// Whether the server has closed a raw connection: a read returns EOF/reset
// (true) rather than timing out (false).
asio::awaitable<bool> ClosedByServer(tcp::socket& socket, std::chrono::milliseconds within) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  timer.expires_after(within);
  bool closed = false, finished = false;
  char byte;
  socket.async_read_some(asio::buffer(&byte, 1), [&](error_code ec, std::size_t) {
    closed = static_cast<bool>(ec) && ec != asio::error::operation_aborted;
    finished = true;
    timer.cancel();
  });
  error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!finished) {
    socket.cancel();
    while (!finished) co_await Sleep(1ms);
  }
  co_return closed;
}

TEST_CASE("At the connection cap the longest-idle connection makes room, and requests are still served") {
  asio::io_context io;
  Router router = EchoRouter();
  ServerOptions options;
  options.max_connections = 4;
  Server server(io, options, router);
  REQUIRE(server.Start().ok());
  Client client(io);
  RunTest(io, [&]() -> asio::awaitable<void> {
    std::vector<std::unique_ptr<tcp::socket>> idle;
    for (int i = 0; i < 4; ++i) {
      idle.push_back(std::make_unique<tcp::socket>(io));
      co_await idle.back()->async_connect({asio::ip::make_address("127.0.0.1"), server.port()}, asio::use_awaitable);
      co_await Sleep(5ms);  // distinct idle_since, oldest first
    }
    // A fifth connection (the client's) is served: the oldest idle one made room.
    Result<Response> got = co_await client.Fetch(Post(server.port(), "/echo", "still here"));
    REQUIRE(got.ok());
    CHECK(got->body == "still here");
    CHECK(co_await ClosedByServer(*idle[0], 500ms));
    CHECK_FALSE(co_await ClosedByServer(*idle[3], 50ms));
  });
}

TEST_CASE("A connection that sends no request is closed after the first-request timeout") {
  asio::io_context io;
  Router router = EchoRouter();
  ServerOptions options;
  options.first_request_timeout = 100ms;
  options.idle_timeout = 10s;
  Server server(io, options, router);
  REQUIRE(server.Start().ok());
  RunTest(io, [&]() -> asio::awaitable<void> {
    tcp::socket silent(io);
    co_await silent.async_connect({asio::ip::make_address("127.0.0.1"), server.port()}, asio::use_awaitable);
    CHECK(co_await ClosedByServer(silent, 2s));
  });
}

}  // namespace
}  // namespace commitd::http
