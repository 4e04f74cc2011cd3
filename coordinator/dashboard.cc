#include "coordinator/dashboard.h"

#include <string>

namespace commitd::coordinator {
namespace {

const DashboardAsset* FindAsset(std::string_view name) {
  for (const DashboardAsset& asset : DashboardAssets()) {
    if (asset.name == name) return &asset;
  }
  return nullptr;
}

http::Response AssetResponse(const DashboardAsset& asset) {
  http::Response r;
  r.content_type = std::string(asset.content_type);
  r.body = std::string(asset.body);
  // The files change with the binary: revalidate rather than keep a stale page after an upgrade.
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // The page runs only its own files and talks only to this server.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
  return r;
}

}  // namespace

void AddDashboardRoutes(http::Router& router) {
  // The page's links to its files are relative: they need the trailing slash.
  router.Add("GET", "/ui", [](http::Request, http::Responder respond) {
    http::Response r;
    r.status = 308;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "the dashboard is at /ui/\n";
    r.headers.emplace_back("Location", "/ui/");
    respond(std::move(r));
  });
  router.Add("GET", "/ui/", [](http::Request, http::Responder respond) {
    const DashboardAsset* index = FindAsset("index.html");
    if (index == nullptr) {
      respond(http::ErrorResponse(404, "not_found", "this build has no dashboard"));
      return;
    }
    respond(AssetResponse(*index));
  });
  router.Add("GET", "/ui/{asset}", [](http::Request req, http::Responder respond) {
    const DashboardAsset* asset = FindAsset(req.path_params["asset"]);
    if (asset == nullptr) {
      respond(http::ErrorResponse(404, "not_found", "no dashboard file " + req.path_params["asset"]));
      return;
    }
    respond(AssetResponse(*asset));
  });
}

}  // namespace commitd::coordinator
