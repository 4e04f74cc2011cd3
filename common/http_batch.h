// Batches of requests in one HTTP exchange, so that many protocol messages to
// the same peer share one round trip (the network's group commit).
//
//   POST <path> {"requests":[{"method":"POST","target":"/v1/prepare","body":{...},
//                              "traceparent":"00-..."}, ...]}
//   200 {"responses":[{"status":200,"body":{...}}, ...]}   (same order)
//
// Sub-request and sub-response bodies are JSON values, not strings. A
// sub-request's "traceparent" (optional) is its own trace context: the batch
// exchange's traceparent header, if any, is not passed to sub-requests.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_batch_parse.h"
#include "common/http_server.h"

namespace commitd::http {

// Decides whether a request may use the batch route at all (answering it
// when not); empty: anyone may.
using BatchAdmission = std::function<bool(const Request&, const Responder&)>;

// Adds POST `path` to `router`: each sub-request is dispatched through the
// same router (with the batch's headers, e.g. Authorization, so each meets
// its route's own access check) and the batch is answered once every
// sub-request is. A sub-request's target path is taken as given: one with a
// %-escape, an empty or dot segment answers 400 in its place, and so does a
// sub-request that reaches the batch route again (no nesting, at any depth).
// `router` and `io` must outlive the server.
void AddBatchRoute(Router& router, boost::asio::io_context& io, const std::string& path,
                   std::size_t max_requests = 4096, BatchAdmission admit = {});

}  // namespace commitd::http
