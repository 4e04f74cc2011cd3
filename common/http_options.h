// What every commitd server and client takes from the Config, in one place.
#pragma once

#include <cstdint>
#include <string>

#include "common/config.h"
#include "common/http_client.h"
#include "common/http_server.h"

namespace commitd::http {

ServerOptions ServerOptionsFor(const Config& config, std::string host, uint16_t port);
ClientOptions ClientOptionsFor(const Config& config);

// True when no token is required or the request carries "Bearer <token>";
// otherwise answers 401 through respond and returns false.
bool CheckBearer(const Request& request, const std::string& token, const Responder& respond);

}  // namespace commitd::http
