// The dashboard served at /ui/: static HTML, CSS and JavaScript from
// coordinator/ui/, built into the binary (cmake/embed_sources.py generates
// DashboardAssets()). The page asks for a token and calls the client API and
// /metrics from the browser; the server only hands out the files.
#pragma once

#include <span>
#include <string_view>

#include "common/http_server.h"

namespace commitd::coordinator {

struct DashboardAsset {
  std::string_view name;  // "index.html", "app.js", ...
  std::string_view content_type;
  std::string_view body;
};

// Every file of coordinator/ui/ (generated at build time).
std::span<const DashboardAsset> DashboardAssets();

// GET /ui/ (index.html), GET /ui/{asset}, and GET /ui answering a redirect to /ui/.
// Open to every caller, like /healthz: a browser cannot send a bearer token
// when it loads a page, and the files hold no data (docs/security.md).
void AddDashboardRoutes(http::Router& router);

}  // namespace commitd::coordinator
