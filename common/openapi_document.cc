#include "common/openapi_document.h"

#include <string>

namespace commitd::openapi {

void AddRoute(http::Router& router, std::string_view document) {
  router.Add("GET", "/openapi.json", [document](http::Request, http::Responder respond) {
    http::Response r;
    r.body = std::string(document);
    respond(std::move(r));
  });
}

}  // namespace commitd::openapi
