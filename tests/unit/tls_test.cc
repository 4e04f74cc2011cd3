// HTTPS between the server and the client over 127.0.0.1, with certificates
// made at test time by the openssl command: server verification, a wrong CA,
// a missing TLS configuration, and mutual TLS.
#include <utility>  // before asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/tls.h"
#include "tests/unit/support/temp_dir.h"

namespace commitd::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A CA and, signed by it, a server certificate for 127.0.0.1 and a client certificate.
struct Pki {
  testing::TempDir dir{"commitd_tls"};
  std::string File(const std::string& name) const { return dir.File(name); }

  void Run(const std::string& command) const {
    const std::string full = "cd " + dir.path().string() + " && " + command + " > /dev/null 2>&1";
    REQUIRE_MESSAGE(std::system(full.c_str()) == 0, command);
  }
  void MakeCa(const std::string& name) const {
    Run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name + " -keyout " + name +
        ".key -out " + name + ".crt");
  }
  void MakeSigned(const std::string& name, const std::string& ca, const std::string& ext) const {
    Run("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " + name + ".key -out " + name + ".csr");
    std::ofstream(File(name + ".ext")) << ext << "\n";
    Run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".crt -CAkey " + ca + ".key -CAcreateserial -days 2 -out " +
        name + ".crt -extfile " + name + ".ext");
  }
  Pki() {
    MakeCa("ca");
    MakeCa("other-ca");
    MakeSigned("server", "ca", "subjectAltName=IP:127.0.0.1");
    MakeSigned("client", "ca", "extendedKeyUsage=clientAuth");
  }
};

const Pki& Certificates() {
  static const Pki pki;
  return pki;
}

template <class MakeCoroutine>
void RunTest(asio::io_context& io, MakeCoroutine make) {
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, make(), [&](std::exception_ptr e) {
    done = true;
    failure = e;
  });
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (!done && std::chrono::steady_clock::now() < give_up) io.run_one_for(100ms);
  REQUIRE_MESSAGE(done, "test coroutine did not finish in time");
  if (failure) std::rethrow_exception(failure);
}

Router Hello() {
  Router router;
  router.Add("GET", "/hello", [](Request, Responder respond) { respond(JsonResponse(200, {{"hello", "tls"}})); });
  return router;
}

ClientRequest Get(const std::string& scheme, uint16_t port) {
  ClientRequest r;
  r.base_url = scheme + "://127.0.0.1:" + std::to_string(port);
  r.target = "/hello";
  return r;
}

tls::Context ServerTls(bool require_client_cert) {
  const Pki& pki = Certificates();
  auto ctx = tls::ServerContext({pki.File("server.crt"), pki.File("server.key"), pki.File("ca.crt"),
                                 require_client_cert});
  REQUIRE_MESSAGE(ctx.ok(), ctx.status().ToString());
  return *ctx;
}

tls::Context ClientTrusting(const std::string& ca, bool with_cert = false) {
  const Pki& pki = Certificates();
  tls::ClientFiles files{pki.File(ca + ".crt"), "", ""};
  if (with_cert) {
    files.client_cert = pki.File("client.crt");
    files.client_key = pki.File("client.key");
  }
  auto ctx = tls::ClientContext(files);
  REQUIRE_MESSAGE(ctx.ok(), ctx.status().ToString());
  return *ctx;
}

TEST_CASE("HTTPS: a client trusting the CA gets answers; other clients get clear errors; the server goes on") {
  asio::io_context io;
  Router router = Hello();
  ServerOptions options;
  options.tls = ServerTls(false);
  Server server(io, options, router);
  REQUIRE(server.Start().ok());
  Client trusting(io, ClientOptions{1s, 5s, 64, 16 << 20, ClientTrusting("ca")});
  Client wrong_ca(io, ClientOptions{1s, 5s, 64, 16 << 20, ClientTrusting("other-ca")});
  Client no_tls(io);
  RunTest(io, [&]() -> asio::awaitable<void> {
    Result<Response> got = co_await trusting.Fetch(Get("https", server.port()));
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    CHECK(got->status == 200);
    CHECK(got->body == "{\"hello\":\"tls\"}");

    got = co_await wrong_ca.Fetch(Get("https", server.port()));
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().code() == StatusCode::kUnavailable);

    got = co_await no_tls.Fetch(Get("https", server.port()));
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().code() == StatusCode::kInvalidArgument);

    got = co_await no_tls.Fetch(Get("http", server.port()));  // plain HTTP to an HTTPS port
    const bool plain_served = got.ok() && got->status == 200;
    CHECK_FALSE(plain_served);

    got = co_await trusting.Fetch(Get("https", server.port()));  // a reused connection still works
    REQUIRE(got.ok());
    CHECK(got->status == 200);
  });
}

TEST_CASE("HTTPS: request and answer bodies larger than a TLS record arrive whole") {
  // Above 16 KiB a head and body written together go as two writes; each
  // must carry all of its part.
  asio::io_context io;
  Router router;
  router.Add("POST", "/echo", [](Request req, Responder respond) {
    Response r;
    r.content_type = "text/plain";
    r.body = req.body + req.body;
    respond(std::move(r));
  });
  ServerOptions options;
  options.tls = ServerTls(false);
  Server server(io, options, router);
  REQUIRE(server.Start().ok());
  Client trusting(io, ClientOptions{1s, 5s, 64, 16 << 20, ClientTrusting("ca")});
  RunTest(io, [&]() -> asio::awaitable<void> {
    for (std::size_t size : {std::size_t{100}, std::size_t{20'000}, std::size_t{300'000}}) {
      ClientRequest r;
      r.base_url = "https://127.0.0.1:" + std::to_string(server.port());
      r.method = "POST";
      r.target = "/echo";
      r.body.assign(size, 'x');
      r.body.back() = 'y';
      Result<Response> got = co_await trusting.Fetch(r);
      REQUIRE_MESSAGE(got.ok(), got.status().ToString());
      CHECK(got->status == 200);
      CHECK(got->body == r.body + r.body);
    }
  });
}

TEST_CASE("mutual TLS: a server requiring client certificates refuses clients without one") {
  asio::io_context io;
  Router router = Hello();
  ServerOptions options;
  options.tls = ServerTls(true);
  Server server(io, options, router);
  REQUIRE(server.Start().ok());
  Client with_cert(io, ClientOptions{1s, 5s, 64, 16 << 20, ClientTrusting("ca", true)});
  Client without_cert(io, ClientOptions{1s, 5s, 64, 16 << 20, ClientTrusting("ca", false)});
  RunTest(io, [&]() -> asio::awaitable<void> {
    Result<Response> got = co_await with_cert.Fetch(Get("https", server.port()));
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    CHECK(got->status == 200);
    got = co_await without_cert.Fetch(Get("https", server.port()));
    const bool served_without_cert = got.ok() && got->status == 200;
    CHECK_FALSE(served_without_cert);
  });
}

TEST_CASE("TLS configuration errors name the file") {
  const Pki& pki = Certificates();
  auto missing = tls::ServerContext({pki.File("nope.crt"), pki.File("server.key"), "", false});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("nope.crt") != std::string::npos);
  auto mismatch = tls::ServerContext({pki.File("server.crt"), pki.File("client.key"), "", false});
  REQUIRE_FALSE(mismatch.ok());
  CHECK(mismatch.status().message().find("client.key") != std::string::npos);
  auto no_ca = tls::ServerContext({pki.File("server.crt"), pki.File("server.key"), "", true});
  CHECK_FALSE(no_ca.ok());
  auto half = tls::ClientContext({pki.File("ca.crt"), pki.File("client.crt"), ""});
  CHECK_FALSE(half.ok());
}

}  // namespace
}  // namespace commitd::http
