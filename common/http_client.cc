#include <utility>  // before asio: Boost 1.74's awaitable.hpp uses std::exchange

#include "common/http_client.h"
#include "common/http_head.h"
#include "common/http_read_buffer.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

// g++ 12 reports -Wmismatched-new-delete for Asio's recycled coroutine frames
// (class operator new/delete that both go through thread_info_base); the
// allocator pairs them correctly, so the warning is a false positive.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace commitd::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// One keep-alive connection with its read buffer (kept across requests to
// avoid reallocating it).
struct Connection {
  // Room for Beast's largest read up front, so that a response of up to
  // 64 KiB (a batch of votes is several) is read in one piece, with no
  // separate read of its header.
  explicit Connection(const asio::any_io_executor& executor) : stream(executor) { buffer.reserve(kMaxReadBytes); }
  beast::tcp_stream stream;
  // https: TLS over `stream`, set up by Connect.
  std::unique_ptr<asio::ssl::stream<beast::tcp_stream&>> tls;
  std::string tls_verify_error;  // why the server's certificate was refused, for the error message
  beast::flat_buffer buffer;
};

struct ParsedUrl {
  bool https = false;
  std::string host;         // without brackets
  uint16_t port = 80;
  std::string authority;    // "127.0.0.1:7101": Host header
  std::string origin;       // "http://127.0.0.1:7101": pool key, for messages
  std::string path_prefix;  // base URL path without trailing '/', usually empty
};

Result<ParsedUrl> ParseBaseUrl(const std::string& url) {
  std::string_view s = url;
  auto invalid = [&url] {
    return Status::InvalidArgument("invalid URL '" + url + "': want http://host:port or https://host:port");
  };
  ParsedUrl parsed;
  if (s.substr(0, 7) == "http://") {
    s.remove_prefix(7);
  } else if (s.substr(0, 8) == "https://") {
    s.remove_prefix(8);
    parsed.https = true;
    parsed.port = 443;
  } else {
    return invalid();
  }
  std::size_t slash = s.find('/');
  std::string_view authority = s.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : s.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);

  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid();
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return invalid();
      port = rest.substr(1);
    }
  } else if (std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return invalid();
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (err != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return invalid();
    parsed.port = static_cast<uint16_t>(value);
  }
  parsed.host = std::string(host);
  parsed.authority = std::string(authority);
  parsed.origin = (parsed.https ? "https://" : "http://") + parsed.authority;
  parsed.path_prefix = std::string(path);
  return parsed;
}

// Shared by the Client and its in-flight coroutines, so that it outlives a
// Client destroyed mid-request. Io thread only.
struct ClientState {
  ClientState(asio::io_context& io_context, ClientOptions opts) : io(io_context), options(std::move(opts)) {}

  asio::io_context& io;
  const ClientOptions options;
  bool destroyed = false;  // set by ~Client: in-flight requests abort, Send callbacks are dropped
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle;  // by origin
  std::unordered_set<Connection*> active;  // connections in use by a request

  std::unique_ptr<Connection> TakeIdle(const std::string& origin) {
    auto it = idle.find(origin);
    if (it == idle.end() || it->second.empty()) return nullptr;
    std::unique_ptr<Connection> conn = std::move(it->second.back());
    it->second.pop_back();
    return conn;
  }

  void ReturnIdle(const std::string& origin, std::unique_ptr<Connection> conn) {
    if (destroyed) return;
    std::vector<std::unique_ptr<Connection>>& pool = idle[origin];
    if (pool.size() >= options.max_idle_per_host) return;
    conn->stream.expires_never();
    pool.push_back(std::move(conn));
  }

  void CloseIdle() {
    for (auto& [authority, pool] : idle) {
      for (auto& conn : pool) conn->stream.close();
    }
    idle.clear();
  }
};

using ImplPtr = std::shared_ptr<ClientState>;

// Keeps a connection in ClientState::active while a request uses it.
class ActiveConnection {
 public:
  ActiveConnection(ClientState* impl, Connection* conn) : impl_(impl), conn_(conn) { impl_->active.insert(conn_); }
  ~ActiveConnection() { impl_->active.erase(conn_); }
  ActiveConnection(const ActiveConnection&) = delete;
  ActiveConnection& operator=(const ActiveConnection&) = delete;

 private:
  ClientState* impl_;
  Connection* conn_;
};

Status DestroyedStatus() { return Status::Unavailable("http client destroyed"); }

asio::awaitable<Status> Connect(ImplPtr impl, Connection& conn, const ParsedUrl& url) {
  error_code ec;
  const std::chrono::milliseconds timeout = impl->options.connect_timeout;
  asio::ip::address address = asio::ip::make_address(url.host, ec);
  if (!ec) {
    conn.stream.expires_after(timeout);
    co_await conn.stream.async_connect(tcp::endpoint(address, url.port),
                                       asio::redirect_error(asio::use_awaitable, ec));
  } else {
    tcp::resolver resolver(impl->io);
    auto endpoints = co_await resolver.async_resolve(url.host, std::to_string(url.port),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Status::Unavailable("resolve " + url.host + " failed: " + ec.message());
    conn.stream.expires_after(timeout);
    co_await conn.stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  }
  if (impl->destroyed) co_return DestroyedStatus();
  if (ec == beast::error::timeout) {
    co_return Status::Timeout("connect to " + url.origin + " timed out after " + std::to_string(timeout.count()) +
                              " ms");
  }
  if (ec) co_return Status::Unavailable("connect to " + url.origin + " failed: " + ec.message());
  conn.stream.socket().set_option(tcp::no_delay(true), ec);
  if (!url.https) co_return Status::Ok();
  conn.tls = std::make_unique<asio::ssl::stream<beast::tcp_stream&>>(conn.stream, *impl->options.tls);
  // SNI for host names, and the name or address checked against the certificate.
  error_code not_an_address;
  asio::ip::make_address(url.host, not_an_address);
  if (not_an_address) SSL_set_tlsext_host_name(conn.tls->native_handle(), url.host.c_str());
  conn.tls->set_verify_callback(
      [check = asio::ssl::host_name_verification(url.host), &conn](bool preverified, asio::ssl::verify_context& ctx) {
        X509_STORE_CTX* store = ctx.native_handle();
        if (!preverified) {
          conn.tls_verify_error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
          return false;
        }
        if (check(preverified, ctx)) return true;
        conn.tls_verify_error = "the certificate is not for this host or address";
        return false;
      });
  conn.stream.expires_after(timeout);
  co_await conn.tls->async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
  if (impl->destroyed) co_return DestroyedStatus();
  if (ec) {
    co_return Status::Unavailable("TLS handshake with " + url.origin + " failed: " + ec.message() +
                                  (conn.tls_verify_error.empty() ? "" : " (" + conn.tls_verify_error + ")"));
  }
  co_return Status::Ok();
}

Status RequestError(const ImplPtr& impl, const error_code& ec, const ParsedUrl& url, std::string_view target,
                    std::chrono::milliseconds timeout) {
  if (impl->destroyed) return DestroyedStatus();
  std::string where = url.origin;
  where += target;
  if (ec == beast::error::timeout) {
    return Status::Timeout("request to " + where + " timed out after " + std::to_string(timeout.count()) + " ms");
  }
  if (ec == bhttp::error::body_limit) {
    return Status::Unavailable("response from " + where + " exceeds " +
                               std::to_string(impl->options.max_response_bytes) + " bytes");
  }
  return Status::Unavailable("request to " + where + " failed: " + ec.message());
}

Response ToResponse(bhttp::response<bhttp::string_body>& msg) {
  Response response;
  response.status = static_cast<int>(msg.result_int());
  response.body = std::move(msg.body());
  response.content_type.clear();
  response.headers.reserve(std::distance(msg.begin(), msg.end()));
  for (const auto& field : msg) {
    if (field.name() == bhttp::field::content_type) response.content_type = std::string(field.value());
    response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return response;
}

asio::awaitable<Result<Response>> FetchWith(ImplPtr impl, ClientRequest request) {
  if (impl->destroyed) co_return DestroyedStatus();
  Result<ParsedUrl> parsed = ParseBaseUrl(request.base_url);
  if (!parsed.ok()) co_return parsed.status();
  const ParsedUrl& url = parsed.value();
  if (url.https && !impl->options.tls) {
    co_return Status::InvalidArgument("cannot reach " + url.origin + ": https:// needs TLS configured (--tls-ca)");
  }
  const std::chrono::milliseconds timeout =
      request.timeout.count() > 0 ? request.timeout : impl->options.request_timeout;

  const std::string target =
      url.path_prefix.empty() && request.target.empty() ? std::string("/") : url.path_prefix + request.target;
  Result<std::string> head = RequestHead(request.method, target, url.authority, request.headers, request.body.size());
  if (!head.ok()) co_return head.status();
  const bool is_head = request.method == "HEAD";
  // A vector, as the server writes (common/http_server.cc says why).
  const std::vector<asio::const_buffer> message{asio::buffer(*head), asio::buffer(request.body)};

  error_code ec;
  for (int attempt = 0; attempt < 2; ++attempt) {
    // The retry always uses a fresh connection: the idle ones may all be stale.
    std::unique_ptr<Connection> conn = attempt == 0 ? impl->TakeIdle(url.origin) : nullptr;
    const bool reused = conn != nullptr;
    if (!reused) conn = std::make_unique<Connection>(impl->io.get_executor());
    ActiveConnection active(impl.get(), conn.get());
    if (!reused) {
      Status connected = co_await Connect(impl, *conn, url);
      if (!connected.ok()) co_return connected;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;

    conn->stream.expires_at(deadline);
    if (conn->tls) {
      co_await asio::async_write(*conn->tls, message, asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await asio::async_write(conn->stream, message, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      if (reused && ec != beast::error::timeout && !impl->destroyed) continue;
      co_return RequestError(impl, ec, url, target, timeout);
    }

    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(impl->options.max_response_bytes);
    if (is_head) parser.skip(true);
    conn->stream.expires_at(deadline);
    if (conn->tls) {
      co_await bhttp::async_read(*conn->tls, conn->buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    } else {
      co_await bhttp::async_read(conn->stream, conn->buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      const bool nothing_received = !parser.got_some() && conn->buffer.size() == 0;
      if (reused && nothing_received && ec != beast::error::timeout && !impl->destroyed) continue;
      co_return RequestError(impl, ec, url, target, timeout);
    }

    bhttp::response<bhttp::string_body>& msg = parser.get();
    const bool reusable = msg.keep_alive() && conn->buffer.size() == 0;
    Response response = ToResponse(msg);
    if (reusable) {
      impl->ReturnIdle(url.origin, std::move(conn));
    } else {
      conn->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    }
    co_return response;
  }
  co_return RequestError(impl, ec, url, target, timeout);
}

asio::awaitable<void> SendWith(ImplPtr impl, ClientRequest request, std::function<void(Result<Response>)> done) {
  Result<Response> result = co_await FetchWith(impl, std::move(request));
  if (!impl->destroyed) done(std::move(result));
}

}  // namespace

struct Client::Impl : ClientState {
  using ClientState::ClientState;
};

Client::Client(asio::io_context& io, ClientOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

Client::~Client() {
  impl_->destroyed = true;
  impl_->CloseIdle();
  for (Connection* conn : impl_->active) conn->stream.close();
}

void Client::Send(ClientRequest request, std::function<void(Result<Response>)> done) {
  asio::co_spawn(impl_->io, SendWith(impl_, std::move(request), std::move(done)), asio::detached);
}

asio::awaitable<Result<Response>> Client::Fetch(ClientRequest request) {
  return FetchWith(impl_, std::move(request));
}

void Client::CloseIdle() { impl_->CloseIdle(); }

}  // namespace commitd::http
