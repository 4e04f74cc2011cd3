#include <utility>  // before asio: Boost 1.74's awaitable.hpp uses std::exchange

#include "common/http_server.h"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/hex.h"
#include "common/http_read_buffer.h"
#include "common/http_head.h"
#include "common/log.h"

namespace commitd::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// Decodes %XX escapes (malformed ones are kept as they are); '+' becomes a
// space only in query strings.
std::string PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    const int high = c == '%' && i + 2 < in.size() ? HexDigitValue(in[i + 1]) : -1;
    const int low = high >= 0 ? HexDigitValue(in[i + 2]) : -1;
    if (low >= 0) {
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// "a=1&b=x%20y&flag" -> {a:1, b:"x y", flag:""}; the first of repeated keys wins.
void ParseQuery(std::string_view query, std::map<std::string, std::string>* out) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1), true);
    out->emplace(std::move(key), std::move(value));
  }
}

// The path without its leading '/' (optional), which SplitPath splits: the
// key of Router's exact routes.
std::string_view PathKey(std::string_view path) {
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return path;
}

// "/a/b" -> {"a","b"}; "/" -> {""}. The leading '/' is optional.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  path = PathKey(path);
  while (true) {
    std::size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

bool IsParamSegment(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

std::string Lowercase(beast::string_view s) {
  std::string out(s.data(), s.size());
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Router

void Router::Add(std::string method, std::string pattern, Handler handler) {
  Route route;
  route.method = std::move(method);
  for (std::string_view segment : SplitPath(pattern)) route.segments.emplace_back(segment);
  route.handler = std::move(handler);
  if (std::none_of(route.segments.begin(), route.segments.end(), IsParamSegment)) {
    exact_routes_[std::string(PathKey(pattern))].push_back(routes_.size());
  }
  routes_.push_back(std::move(route));
}

const Handler* Router::Match(Request& request, Response* error) const {
  // Segments are split on the raw path so that an escaped '/' (%2F) stays
  // inside one path parameter; each segment is decoded on its own.
  std::string_view raw_path = request.path;
  if (!request.target.empty() && request.target.front() == '/') {
    raw_path = std::string_view(request.target).substr(0, request.target.find('?'));
  }
  if (raw_path.find('%') == std::string_view::npos) {
    if (auto exact = exact_routes_.find(PathKey(raw_path)); exact != exact_routes_.end()) {
      for (std::size_t index : exact->second) {
        if (routes_[index].method == request.method) {
          request.path_params.clear();
          return &routes_[index].handler;
        }
      }
    }
  }
  std::vector<std::string_view> raw_segments = SplitPath(raw_path);
  std::vector<std::string> segments;
  segments.reserve(raw_segments.size());
  for (std::string_view s : raw_segments) segments.push_back(PercentDecode(s, false));

  const Route* best = nullptr;
  int best_params = 0;
  std::string allowed;  // methods of routes whose path matches, for 405
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    int params = 0;
    bool matches = true;
    for (std::size_t i = 0; i < segments.size() && matches; ++i) {
      if (IsParamSegment(route.segments[i])) {
        ++params;
      } else {
        matches = route.segments[i] == segments[i];
      }
    }
    if (!matches) continue;
    if (route.method != request.method) {
      if (allowed.find(route.method) == std::string::npos) {
        if (!allowed.empty()) allowed += ", ";
        allowed += route.method;
      }
      continue;
    }
    if (best == nullptr || params < best_params) {
      best = &route;
      best_params = params;
    }
  }

  if (best == nullptr) {
    if (error != nullptr) {
      if (allowed.empty()) {
        *error = ErrorResponse(404, "not_found", "no route for " + request.method + " " + request.path);
      } else {
        *error = ErrorResponse(405, "method_not_allowed",
                               "method " + request.method + " not allowed for " + request.path);
        error->headers.emplace_back("Allow", allowed);
      }
    }
    return nullptr;
  }
  request.path_params.clear();
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::string& pattern = best->segments[i];
    if (IsParamSegment(pattern)) {
      request.path_params[pattern.substr(1, pattern.size() - 2)] = std::move(segments[i]);
    }
  }
  return &best->handler;
}

// ---------------------------------------------------------------------------
// Responder

namespace {

// Type-erased, move-only completion handler of the session coroutine waiting
// for its response.
class PendingResponse {
 public:
  virtual ~PendingResponse() = default;
  // Posts the completion to `executor`; never runs it inline.
  virtual void Post(const asio::any_io_executor& executor, Response response) = 0;
};

template <class CompletionHandler>
class PendingResponseImpl final : public PendingResponse {
 public:
  explicit PendingResponseImpl(CompletionHandler handler) : handler_(std::move(handler)) {}
  void Post(const asio::any_io_executor& executor, Response response) override {
    asio::post(executor, [handler = std::move(handler_), response = std::move(response)]() mutable {
      std::move(handler)(std::move(response));
    });
  }

 private:
  CompletionHandler handler_;
};

}  // namespace

// Shared by all copies of one request's Responder. The session holds only a
// weak_ptr, so the State dies with the last Responder copy. Io thread only.
// A Responder must not outlive the io_context: its destruction posts to it.
struct Responder::State {
  asio::any_io_executor executor;
  std::unique_ptr<PendingResponse> pending;  // null once the response is sent

  ~State() {
    if (pending) Complete(ErrorResponse(500, "internal", "request dropped"));
  }

  // The first call wins; later ones are ignored.
  void Complete(Response response) {
    if (!pending) return;
    std::unique_ptr<PendingResponse> p = std::move(pending);
    p->Post(executor, std::move(response));
  }
};

Responder Responder::FromCallback(boost::asio::io_context& io, std::function<void(Response)> fn) {
  auto state = std::make_shared<State>();
  state->executor = io.get_executor();
  auto handler = [fn = std::move(fn)](Response r) { fn(std::move(r)); };
  state->pending = std::make_unique<PendingResponseImpl<decltype(handler)>>(std::move(handler));
  return Responder(std::move(state));
}

void Responder::operator()(Response response) const {
  if (state_) state_->Complete(std::move(response));
}

// ---------------------------------------------------------------------------
// Server

namespace {

enum class SessionPhase {
  kIdle,      // waiting for the first byte of the next request
  kBusy,      // reading a request, waiting for its handler or writing the response
};

// What the server's bookkeeping (cap, Stop, destruction) sees of a session.
struct Session {
  virtual ~Session() = default;
  virtual void Close() = 0;
  SessionPhase phase = SessionPhase::kIdle;
  std::chrono::steady_clock::time_point idle_since = std::chrono::steady_clock::now();
};

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

template <class Stream>
struct SessionOn final : Session {
  template <class... Args>
  explicit SessionOn(Args&&... args) : stream(std::forward<Args>(args)...) {}
  void Close() override { beast::get_lowest_layer(stream).close(); }
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream); }
  Stream stream;
  beast::flat_buffer buffer;
};

struct ServerState {
  ServerState(asio::io_context& io_context, ServerOptions opts, const Router& r)
      : io(io_context), options(std::move(opts)), router(&r), acceptor(io_context) {}

  asio::io_context& io;
  const ServerOptions options;
  const Router* router;  // nulled by ~Server; sessions must check before use
  tcp::acceptor acceptor;
  uint16_t bound_port = 0;
  std::size_t max_connections = 0;  // options.max_connections, bounded by the fd limit at Start
  bool stopping = false;
  std::unordered_set<Session*> sessions;  // live sessions, owned by their coroutines
};

using ImplPtr = std::shared_ptr<ServerState>;

// Writes a response's head and body, in one system call where the socket takes both.
template <class Stream>
asio::awaitable<void> WriteResponse(SessionOn<Stream>& session, const Response& response, unsigned version,
                                    bool keep_alive, std::chrono::milliseconds timeout, error_code& ec) {
  const std::string head = ResponseHead(response, version, keep_alive);
  // A vector, not a std::array: for a two-buffer std::array whose first
  // buffer is used up, Beast's flat_stream (under ssl_stream) writes nothing,
  // which ends asio::async_write before the body.
  const std::vector<asio::const_buffer> buffers{asio::buffer(head), asio::buffer(response.body)};
  session.tcp().expires_after(timeout);
  co_await asio::async_write(session.stream, buffers, asio::redirect_error(asio::use_awaitable, ec));
}

Request ToRequest(bhttp::request<bhttp::string_body>&& msg) {
  Request request;
  request.method = std::string(msg.method_string());
  request.target = std::string(msg.target());
  std::string_view target = request.target;
  std::size_t question = target.find('?');
  request.path = PercentDecode(target.substr(0, question), false);
  if (question != std::string_view::npos) ParseQuery(target.substr(question + 1), &request.query);
  request.headers.reserve(std::distance(msg.begin(), msg.end()));
  for (const auto& field : msg) {
    request.headers.emplace_back(Lowercase(field.name_string()), std::string(field.value()));
  }
  request.body = std::move(msg.body());
  return request;
}

// Calls the handler and suspends until its Responder is called, the last
// Responder copy is dropped (500) or handler_timeout passes (504).
asio::awaitable<Response> CallHandler(const ImplPtr& impl, const Handler& handler, Request request) {
  auto state = std::make_shared<Responder::State>();
  state->executor = impl->io.get_executor();
  std::weak_ptr<Responder::State> weak_state = state;

  asio::steady_timer deadline(impl->io);
  deadline.expires_after(impl->options.handler_timeout);
  deadline.async_wait([weak_state, timeout = impl->options.handler_timeout](error_code ec) {
    if (ec) return;
    if (auto s = weak_state.lock()) {
      s->Complete(ErrorResponse(504, "handler_timeout",
                                "no response within " + std::to_string(timeout.count()) + " ms"));
    }
  });

  Response response = co_await asio::async_initiate<decltype(asio::use_awaitable), void(Response)>(
      [&](auto completion) {
        state->pending = std::make_unique<PendingResponseImpl<decltype(completion)>>(std::move(completion));
        Responder respond(std::move(state));
        try {
          handler(std::move(request), respond);
        } catch (const std::exception& e) {
          respond(ErrorResponse(500, "internal", std::string("handler failed: ") + e.what()));
        }
      },
      asio::use_awaitable);
  deadline.cancel();
  co_return response;
}

// Half-closes and discards what the peer still sends (for a short while), so
// that an error reply sent before the request body was read reaches the
// client instead of being destroyed by a TCP reset.
template <class Stream>
asio::awaitable<void> LingeringClose(SessionOn<Stream>& session) {
  error_code ec;
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    // TLS: a close_notify, then the connection goes (draining would need the record layer).
    session.tcp().expires_after(std::chrono::seconds(1));
    co_await session.stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    session.tcp().close();
    co_return;
  }
  session.tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
  std::size_t drained = 0;
  char scratch[16 * 1024];
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!ec && drained < (8u << 20)) {
    session.tcp().expires_at(until);
    std::size_t n = co_await session.stream.async_read_some(asio::buffer(scratch),
                                                              asio::redirect_error(asio::use_awaitable, ec));
    drained += n;
  }
  session.tcp().close();
}

// One connection. Timeouts: idle_timeout covers the wait for the first byte of
// each request, read_timeout the rest of that request (header and body, one
// deadline), write_timeout each write.
template <class Stream>
asio::awaitable<void> ServeRequests(ImplPtr impl, SessionOn<Stream>& session) {
  const ServerOptions& options = impl->options;
  error_code ec;
  bool first = true;
  while (!impl->stopping) {
    session.phase = SessionPhase::kIdle;
    session.idle_since = std::chrono::steady_clock::now();
    if (session.buffer.size() == 0) {
      session.tcp().expires_after(first ? options.first_request_timeout : options.idle_timeout);
      std::size_t n = co_await session.stream.async_read_some(session.buffer.prepare(kFirstReadBytes),
                                                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      session.buffer.commit(n);
    }
    session.phase = SessionPhase::kBusy;
    first = false;
    if (impl->router == nullptr) break;

    const auto read_deadline = std::chrono::steady_clock::now() + options.read_timeout;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    session.tcp().expires_at(read_deadline);
    co_await bhttp::async_read_header(session.stream, session.buffer, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && !parser.is_done()) {
      if (auto expect = parser.get().find(bhttp::field::expect);
          expect != parser.get().end() && beast::iequals(expect->value(), "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        session.tcp().expires_after(options.write_timeout);
        co_await asio::async_write(session.stream, asio::buffer(kContinue),
                                   asio::redirect_error(asio::use_awaitable, ec));
      }
      if (!ec) {
        ReserveForBody(session.buffer, parser);
        session.tcp().expires_at(read_deadline);
        co_await bhttp::async_read(session.stream, session.buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
      }
    }
    if (ec) {
      Response error;
      if (ec == bhttp::error::body_limit) {
        error = ErrorResponse(413, "payload_too_large",
                              "request body exceeds " + std::to_string(options.max_body_bytes) + " bytes");
      } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
                 ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
        error = ErrorResponse(400, "invalid_request", "malformed HTTP request: " + ec.message());
      } else {
        break;  // timeout, reset, eof: nobody to answer
      }
      co_await WriteResponse(session, error, 11, false, options.write_timeout, ec);
      if (!ec) co_await LingeringClose(session);
      co_return;
    }

    bhttp::request<bhttp::string_body> msg = parser.release();
    const unsigned version = msg.version();
    const bool client_keep_alive = msg.keep_alive();
    Request request = ToRequest(std::move(msg));
    if (impl->router == nullptr) break;
    Response response;
    const Handler* handler = impl->router->Match(request, &response);
    if (handler != nullptr) response = co_await CallHandler(impl, *handler, std::move(request));

    const bool keep_alive = client_keep_alive && !impl->stopping;
    co_await WriteResponse(session, response, version, keep_alive, options.write_timeout, ec);
    if (ec || !keep_alive) break;
  }
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    session.tcp().expires_after(options.write_timeout);
    co_await session.stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  } else {
    session.tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
  }
  session.tcp().close();
}

// Registers a session with the server for as long as it lives.
struct Registration {
  Registration(ServerState* impl, Session* session) : impl(impl), session(session) { impl->sessions.insert(session); }
  ~Registration() { impl->sessions.erase(session); }
  ServerState* impl;
  Session* session;
};

asio::awaitable<void> RunSession(ImplPtr impl, tcp::socket socket) {
  SessionOn<beast::tcp_stream> session(std::move(socket));
  Registration registration(impl.get(), &session);
  co_await ServeRequests(impl, session);
}

asio::awaitable<void> RunTlsSession(ImplPtr impl, tcp::socket socket) {
  SessionOn<TlsStream> session(std::move(socket), *impl->options.tls);
  Registration registration(impl.get(), &session);
  error_code ec;
  session.tcp().expires_after(impl->options.first_request_timeout);
  co_await session.stream.async_handshake(asio::ssl::stream_base::server,
                                          asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    session.tcp().close();
    co_return;
  }
  co_await ServeRequests(impl, session);
}


// At the connection cap: closes the session that has waited longest for a
// request (it ends and unregisters itself). False if every session is busy.
bool MakeRoom(ServerState& impl) {
  Session* oldest = nullptr;
  for (Session* s : impl.sessions) {
    if (s->phase == SessionPhase::kIdle && (oldest == nullptr || s->idle_since < oldest->idle_since)) oldest = s;
  }
  if (oldest == nullptr) {
    log::Warn("http_connection_refused", {{"open", impl.sessions.size()}, {"max_connections", impl.max_connections}});
    return false;
  }
  // Not erased here: the session's coroutine erases itself as it ends, and
  // until then it must not count twice; so allow one over while it closes.
  oldest->phase = SessionPhase::kBusy;
  oldest->Close();
  return true;
}

// Raises the soft limit on open files to the hard one; returns the soft limit now.
std::size_t RaiseFileLimit() {
  static const std::size_t limit = [] {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return std::size_t{1024};
    if (rl.rlim_cur < rl.rlim_max) {
      rlimit raised = rl;
      raised.rlim_cur = rl.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    return rl.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 20 : static_cast<std::size_t>(rl.rlim_cur);
  }();
  return limit;
}

asio::awaitable<void> AcceptLoop(ImplPtr impl) {
  asio::steady_timer backoff(impl->io);
  while (impl->acceptor.is_open()) {
    error_code ec;
    tcp::socket socket = co_await impl->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !impl->acceptor.is_open()) break;
      // Out of descriptors and the like: back off instead of spinning.
      log::Warn("http_accept_failed", {{"error", ec.message()}});
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (impl->stopping) break;
    if (impl->sessions.size() >= impl->max_connections && !MakeRoom(*impl)) {
      socket.close(ec);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    if (impl->options.tls) {
      asio::co_spawn(impl->io, RunTlsSession(impl, std::move(socket)), asio::detached);
    } else {
      asio::co_spawn(impl->io, RunSession(impl, std::move(socket)), asio::detached);
    }
  }
}

}  // namespace

struct Server::Impl : ServerState {
  using ServerState::ServerState;
};

Server::Server(asio::io_context& io, ServerOptions options, const Router& router)
    : impl_(std::make_shared<Impl>(io, std::move(options), router)) {}

Server::~Server() {
  Stop();
  // The router may die with us: sessions check this before routing. Busy
  // sessions are cut too; their handlers' later responses go nowhere.
  impl_->router = nullptr;
  for (Session* session : impl_->sessions) session->Close();
}

Status Server::Start() {
  Impl& impl = *impl_;
  if (impl.acceptor.is_open()) return Status::InvalidArgument("server already started");
  error_code ec;
  asio::ip::address address = asio::ip::make_address(impl.options.host, ec);
  if (ec) {
    tcp::resolver resolver(impl.io);
    auto results = resolver.resolve(impl.options.host, "", ec);
    if (ec || results.empty()) {
      return Status::InvalidArgument("cannot resolve listen host '" + impl.options.host + "'");
    }
    address = results.begin()->endpoint().address();
  }
  const tcp::endpoint endpoint(address, impl.options.port);
  const std::string where = impl.options.host + ":" + std::to_string(impl.options.port);
  impl.acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor.bind(endpoint, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) impl.bound_port = impl.acceptor.local_endpoint(ec).port();
  if (ec) {
    error_code ignored;
    impl.acceptor.close(ignored);
    return Status::Unavailable("listen on " + where + " failed: " + ec.message());
  }
  impl.stopping = false;
  impl.max_connections = std::max<std::size_t>(1, std::min(impl.options.max_connections, RaiseFileLimit() / 2));
  asio::co_spawn(impl.io, AcceptLoop(impl_), asio::detached);
  return Status::Ok();
}

uint16_t Server::port() const { return impl_->bound_port; }

void Server::Stop() {
  Impl& impl = *impl_;
  impl.stopping = true;
  error_code ec;
  impl.acceptor.close(ec);
  for (Session* session : impl.sessions) {
    if (session->phase == SessionPhase::kIdle) session->Close();
  }
}

Result<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& address) {
  std::string_view s = address;
  std::string_view host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {  // "[::1]:7000"
    std::size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return Status::InvalidArgument("malformed address '" + address + "', want [host]:port");
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    std::size_t colon = s.rfind(':');
    if (colon == std::string_view::npos || s.find(':') != colon) {
      return Status::InvalidArgument("malformed address '" + address + "', want host:port");
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || err != std::errc() || end != port.data() + port.size() || value > 65535) {
    return Status::InvalidArgument("malformed address '" + address + "', want host:port");
  }
  return std::make_pair(std::string(host), static_cast<uint16_t>(value));
}

}  // namespace commitd::http
