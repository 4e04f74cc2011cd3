#include "common/http_options.h"

namespace commitd::http {

ServerOptions ServerOptionsFor(const Config& config, std::string host, uint16_t port) {
  ServerOptions so;
  so.host = std::move(host);
  so.port = port;
  so.max_body_bytes = static_cast<std::size_t>(config.max_body_bytes);
  so.read_timeout = std::chrono::milliseconds(config.http_read_timeout_ms);
  so.idle_timeout = std::chrono::milliseconds(config.http_idle_timeout_ms);
  so.first_request_timeout = std::chrono::milliseconds(config.http_first_request_timeout_ms);
  so.max_connections = static_cast<std::size_t>(config.max_connections);
  so.write_timeout = std::chrono::milliseconds(config.http_write_timeout_ms);
  so.handler_timeout = std::chrono::milliseconds(config.handler_timeout_ms);
  return so;
}

ClientOptions ClientOptionsFor(const Config& config) {
  ClientOptions co;
  co.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
  co.request_timeout = std::chrono::milliseconds(config.request_timeout_ms);
  return co;
}

bool CheckBearer(const Request& request, const std::string& token, const Responder& respond) {
  if (token.empty()) return true;
  auto header = request.Header("authorization");
  if (header && *header == "Bearer " + token) return true;
  respond(ErrorResponse(401, "unauthorized", "missing or wrong bearer token"));
  return false;
}

}  // namespace commitd::http
