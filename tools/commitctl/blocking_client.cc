#include "tools/commitctl/blocking_client.h"
#include "common/json_parse.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cctype>
#include <optional>

namespace commitd::commitctl {
namespace {

namespace asio = boost::asio;

http::ClientOptions Options(tls::Context tls) {
  http::ClientOptions o;
  o.tls = std::move(tls);
  o.connect_timeout = std::chrono::milliseconds(2'000);
  o.request_timeout = std::chrono::milliseconds(10'000);
  o.max_idle_per_host = 2;
  return o;
}

asio::awaitable<void> FetchInto(http::Client& client, http::ClientRequest request,
                                std::optional<Result<http::Response>>* out) {
  out->emplace(co_await client.Fetch(std::move(request)));
}

}  // namespace

BlockingClient::BlockingClient(std::string token, tls::Context tls)
    : token_(std::move(token)), client_(io_, Options(std::move(tls))) {}

Result<JsonReply> BlockingClient::Call(const Endpoint& to, const std::string& method, const std::string& target,
                                       const std::string& body) {
  http::ClientRequest request;
  request.base_url = to.url;
  request.method = method;
  request.target = target;
  request.body = body;
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  if (!token_.empty()) request.headers.emplace_back("Authorization", "Bearer " + token_);

  std::optional<Result<http::Response>> response;
  asio::co_spawn(io_, FetchInto(client_, std::move(request), &response), asio::detached);
  io_.restart();
  io_.run();

  if (!response.has_value()) return Status::Internal("request to " + to.url + target + " did not complete");
  if (!response->ok()) {
    const Status& s = response->status();
    std::string message = "cannot reach " + to.what + " at " + to.url + ": " + s.message() + " — " + to.hint;
    if (s.code() == StatusCode::kInvalidArgument) return Status::InvalidArgument(message);
    return Status(s.code(), message);
  }
  const http::Response& r = response->value();
  if (r.status == 401) {
    return Status::InvalidArgument(to.what + " at " + to.url +
                                   " refused the request (401): pass a valid token with --token-file FILE or $COMMITD_TOKEN");
  }
  if (r.status == 403) {
    return Status::InvalidArgument(to.what + " at " + to.url +
                                   " refused the request (403): the token's roles do not allow it (docs/security.md)");
  }
  JsonReply reply;
  reply.status = r.status;
  if (!r.body.empty()) {
    reply.body = ParseJson(r.body);
    if (reply.body.is_discarded()) {
      return Status::Internal(to.what + " at " + to.url + " answered " + method + " " + target + " with HTTP " +
                              std::to_string(r.status) + " and a body that is not JSON: " + r.body.substr(0, 200) +
                              " — is that URL really a " + to.what + "?");
    }
  }
  return reply;
}

std::string ErrorMessage(const JsonReply& reply) {
  const nlohmann::json& b = reply.body;
  if (b.is_object() && b.contains("error") && b["error"].is_object() && b["error"].contains("message") &&
      b["error"]["message"].is_string()) {
    return b["error"]["message"].get<std::string>();
  }
  if (!b.is_null()) return b.dump();
  return "HTTP " + std::to_string(reply.status);
}

}  // namespace commitd::commitctl
