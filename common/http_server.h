// HTTP/1.1 server on Boost.Beast with C++20 coroutines.
//
// Thread: everything (accept, sessions, handler calls, Responder calls) runs on
// the io_context given to the constructor, which must be run by one thread.
// Handlers therefore touch protocol state without locks.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/http_types.h"
#include "common/status.h"
#include "common/tls.h"

namespace commitd::http {

// Sends the response of one request. Copyable; all copies share one state.
// Call it exactly once, from the io thread. If every copy is destroyed without
// a call, the client gets 500 {"error":{"code":"internal","message":"request dropped"}}.
class Responder {
 public:
  struct State;
  explicit Responder(std::shared_ptr<State> state) : state_(std::move(state)) {}
  // A Responder that hands the response to `fn`, posted to `io` (never run
  // inline); used to dispatch the sub-requests of a batch through a Router.
  static Responder FromCallback(boost::asio::io_context& io, std::function<void(Response)> fn);
  void operator()(Response response) const;

 private:
  std::shared_ptr<State> state_;
};

using Handler = std::function<void(Request request, Responder respond)>;

// Routes by method and path pattern. Patterns are literal segments and
// "{name}" segments, e.g. "/v1/transactions/{txid}". Exact matches win over
// patterns. Unknown path -> 404 JSON error; known path, wrong method -> 405.
class Router {
 public:
  void Add(std::string method, std::string pattern, Handler handler);
  // Finds the handler and fills request.path_params; nullptr and an error response if none.
  const Handler* Match(Request& request, Response* error) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
  struct PathHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view path) const noexcept { return std::hash<std::string_view>{}(path); }
  };
  // Indexes into routes_ of the routes without a parameter, by their path
  // (its segments joined by '/'), in the order they were added: a request
  // whose path has no %-escape finds such a route here, as the general rule
  // (fewest parameters, then the first added) would.
  std::unordered_map<std::string, std::vector<std::size_t>, PathHash, std::equal_to<>> exact_routes_;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: pick a free port (see Server::port())
  std::size_t max_body_bytes = 1 << 20;                  // larger -> 413
  std::chrono::milliseconds read_timeout{10'000};        // reading one request once it started
  std::chrono::milliseconds idle_timeout{60'000};        // keep-alive wait for the next request
  std::chrono::milliseconds first_request_timeout{5'000};  // a new connection's wait for its first request
  // Open connections. At the cap, a new connection closes the longest-idle
  // one (waiting for its next or first request) or, if none is idle, is
  // closed itself. Start() lowers it to half the process's fd limit.
  std::size_t max_connections = 1024;
  std::chrono::milliseconds write_timeout{10'000};
  std::chrono::milliseconds handler_timeout{120'000};    // a handler that never responds -> 504
  // Set: serve HTTPS only (tls::ServerContext); the handshake must finish
  // within first_request_timeout.
  tls::Context tls;
};

class Server {
 public:
  // The router must outlive the server.
  Server(boost::asio::io_context& io, ServerOptions options, const Router& router);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. Error if the address cannot be bound. Raises
  // the process's soft RLIMIT_NOFILE to its hard limit first (once).
  Status Start();
  // The bound port (useful with port 0).
  uint16_t port() const;
  // Stops accepting and closes idle keep-alive connections; requests in
  // flight finish and their connections then close.
  void Stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// "127.0.0.1:7000" -> host, port. Error on a malformed address.
Result<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& address);

}  // namespace commitd::http
