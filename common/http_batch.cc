#include "common/http_batch.h"
#include "common/json_text.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

namespace commitd::http {
namespace {

constexpr std::string_view kTraceparent = "traceparent";  // header names are lower-cased

// Collects sub-responses; answers the batch when the last one arrives. Io thread only.
struct BatchReply {
  explicit BatchReply(Responder r) : respond(std::move(r)) {}
  Responder respond;
  std::vector<Response> responses;
  std::size_t remaining = 0;

  void Set(std::size_t index, Response r) {
    responses[index] = std::move(r);
    if (--remaining != 0) return;
    // Sub-bodies are our own JSON; splice them in without re-parsing.
    std::size_t size = 16;
    for (const auto& r : responses) size += r.body.size() + 32;
    std::string body;
    body.reserve(size);  // one allocation: growing a large string by doubling churns malloc
    body += "{\"responses\":[";
    for (std::size_t i = 0; i < responses.size(); ++i) {
      if (i != 0) body += ',';
      body += "{\"status\":";
      body += std::to_string(responses[i].status);
      body += ",\"body\":";
      const std::string& sub = responses[i].body;
      const bool json = responses[i].content_type.rfind("application/json", 0) == 0 && !sub.empty();
      if (json) {
        body += sub;
      } else {
        AppendJsonString(&body, sub);
      }
      body += '}';
    }
    body += "]}";
    Response out;
    out.body = std::move(body);
    respond(std::move(out));
  }
};

}  // namespace

namespace {

// A sub-request's path as the router will see it, unless it could be read as
// another path: %-escapes, empty or dot segments.
bool IsPlainPath(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  if (path.find('%') != std::string_view::npos || path.find("//") != std::string_view::npos) return false;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    std::string_view segment = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (segment == "." || segment == "..") return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

}  // namespace

void AddBatchRoute(Router& router, boost::asio::io_context& io, const std::string& path, std::size_t max_requests,
                   BatchAdmission admit) {
  const Router* self = &router;
  router.Add("POST", path, [self, &io, path, max_requests, admit](Request request, Responder respond) {
    if (request.batched) {
      respond(ErrorResponse(400, "invalid_request", "batches cannot be nested"));
      return;
    }
    if (admit && !admit(request, respond)) return;
    std::optional<std::vector<BatchPart>> items = ParseBatch(request.body, "requests");
    if (!items) {
      respond(ErrorResponse(400, "invalid_request", "body: must be {\"requests\": [...]}"));
      return;
    }
    if (items->empty() || items->size() > max_requests) {
      respond(ErrorResponse(400, "invalid_request",
                            "requests: must hold 1 to " + std::to_string(max_requests) + " entries"));
      return;
    }
    auto reply = std::make_shared<BatchReply>(std::move(respond));
    reply->responses.resize(items->size());
    reply->remaining = items->size();
    for (std::size_t i = 0; i < items->size(); ++i) {
      const BatchPart& item = (*items)[i];
      const auto is_string = [](const std::optional<std::string_view>& token) {
        return token && token->front() == '"';
      };
      if (!item.object || !is_string(item.target) || (item.method && !is_string(item.method))) {
        const char* field = item.object && is_string(item.target) ? "method" : "target";
        reply->Set(i, ErrorResponse(400, "invalid_request",
                                    "requests[" + std::to_string(i) + "]." + field + ": must be a string"));
        continue;
      }
      Request sub;
      sub.headers.reserve(request.headers.size() + 1);
      for (const auto& header : request.headers) {
        if (header.first != kTraceparent) sub.headers.push_back(header);
      }
      // Not a string: no trace context, as a malformed header would be.
      if (is_string(item.traceparent)) sub.headers.emplace_back(kTraceparent, JsonStringValue(*item.traceparent));
      sub.method = item.method ? JsonStringValue(*item.method) : "POST";
      sub.target = JsonStringValue(*item.target);
      sub.path = sub.target.substr(0, sub.target.find('?'));
      sub.batched = true;
      if (!IsPlainPath(sub.path)) {
        reply->Set(i, ErrorResponse(400, "invalid_request",
                                    "requests[" + std::to_string(i) +
                                        "].target: must be a plain path (no %-escapes, empty or dot segments)"));
        continue;
      }
      if (item.body) {
        sub.body = std::string(*item.body);
        sub.body_checked_json = true;
      }
      Response error;
      const Handler* handler = self->Match(sub, &error);
      if (handler == nullptr) {
        reply->Set(i, std::move(error));
        continue;
      }
      (*handler)(std::move(sub), Responder::FromCallback(io, [reply, i](Response r) { reply->Set(i, std::move(r)); }));
    }
  });
}

}  // namespace commitd::http
