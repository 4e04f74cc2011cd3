// Batches of requests in one HTTP exchange, so that many protocol messages to
// the same peer share one round trip (the network's group commit).
//
//   POST <path> {"requests":[{"method":"POST","target":"/v1/prepare","body":{...}}, ...]}
//   200 {"responses":[{"status":200,"body":{...}}, ...]}   (same order)
//
// Sub-request and sub-response bodies are JSON values, not strings.
#pragma once

#include <boost/asio/io_context.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_server.h"

namespace commitd::http {

// One element of a batch's "requests" or "responses", as it came in: its
// fields' JSON text (a string token keeps its quotes), so that a body passes
// through without being parsed and serialized again.
struct BatchPart {
  bool object = false;  // the element is a JSON object; if not, no field is set
  std::optional<std::string_view> method;
  std::optional<std::string_view> target;
  std::optional<std::string_view> status;
  std::optional<std::string_view> body;
};

// The elements of `text`'s array member `key`, viewing into `text`; nullopt
// unless `text` is valid JSON, an object, with `key` an array.
std::optional<std::vector<BatchPart>> ParseBatch(const std::string& text, std::string_view key);

// The value of a JSON string token ("\"a\\u0062\"" -> "ab").
std::string JsonStringValue(std::string_view token);

// Adds POST `path` to `router`: each sub-request is dispatched through the
// same router (with the batch's headers, e.g. Authorization) and the batch is
// answered once every sub-request is. `router` and `io` must outlive the server.
void AddBatchRoute(Router& router, boost::asio::io_context& io, const std::string& path,
                   std::size_t max_requests = 4096);

}  // namespace commitd::http
