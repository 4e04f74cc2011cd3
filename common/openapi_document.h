// The OpenAPI 3.1 documents of commitd's two servers: docs/openapi.yaml,
// turned into JSON at build time (cmake/embed_sources.py, into a generated
// source of this library), and the route that serves one.
#pragma once

#include <string_view>

#include "common/http_server.h"

namespace commitd::openapi {

// The coordinator's routes: client API, admin API, group routes.
std::string_view CoordinatorDocument();
// The participant agent's routes.
std::string_view AgentDocument();

// GET /openapi.json answering `document` (which must outlive the router).
// Open to every caller, like /healthz: it describes the API, it holds no data
// (docs/security.md).
void AddRoute(http::Router& router, std::string_view document);

}  // namespace commitd::openapi
