// Pooled keep-alive HTTP/1.1 client on Boost.Beast.
//
// Thread: all calls and all completions happen on the io_context given to the
// constructor (run by one thread). Connections to one host:port are reused;
// at most max_idle_per_host idle ones are kept.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/http_types.h"
#include "common/status.h"
#include "common/tls.h"

namespace commitd::http {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{1'000};
  std::chrono::milliseconds request_timeout{5'000};  // default per request: write + read of the response
  std::size_t max_idle_per_host = 64;
  std::size_t max_response_bytes = 16 << 20;
  // For https:// URLs (tls::ClientContext: the CA servers are verified
  // against, and the client certificate if any). Unset: https:// URLs fail.
  tls::Context tls;
};

struct ClientRequest {
  std::string base_url;  // "http://127.0.0.1:7101" or "https://..." (trailing '/' allowed)
  std::string method = "GET";
  std::string target = "/";  // "/v1/prepare"
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. {"Authorization","Bearer x"}
  std::chrono::milliseconds timeout{0};                       // 0: options.request_timeout
};

class Client {
 public:
  Client(boost::asio::io_context& io, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Completion runs on the io thread with the response (any status code), or
  // Unavailable (connect refused/reset), Timeout, or InvalidArgument (bad URL).
  // A request that fails on a reused idle connection before any response byte
  // arrived is retried once on a fresh connection.
  void Send(ClientRequest request, std::function<void(Result<Response>)> done);

  // Coroutine form of Send.
  boost::asio::awaitable<Result<Response>> Fetch(ClientRequest request);

  // Closes idle connections; later Sends still work.
  void CloseIdle();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace commitd::http
