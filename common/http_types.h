// Plain HTTP request/response values shared by the server, the client and handlers.
// They hold no sockets, so protocol code and tests can build them freely.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace commitd::http {

// Header field names compare without case.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

struct Request {
  std::string method;                              // "GET", "POST", ...
  std::string target;                              // raw target, e.g. "/v1/transactions?state=pending"
  std::string path;                                // target without the query, percent-decoded
  std::map<std::string, std::string> query;        // decoded query parameters
  std::map<std::string, std::string> path_params;  // filled by the router: "/v1/transactions/{txid}" -> txid
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool batched = false;  // a sub-request of a batch (http_batch.h), never a batch itself
  // The body is one JSON value whose syntax was checked already (a batch's
  // sub-request: ParseBatch checked the batch whole), so a reader need not check it again.
  bool body_checked_json = false;

  // Header value by case-insensitive name, or nullopt.
  std::optional<std::string> Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, e.g. Retry-After
  // The body is one JSON value whose syntax was checked already (a batch's
  // sub-response: ParseBatch checked the batch whole), so a reader need not check it again.
  bool body_checked_json = false;

  std::optional<std::string> Header(std::string_view name) const;
};

// {"error":{"code":code,"message":message}} with the given status.
Response ErrorResponse(int status, std::string_view code, std::string_view message);
// body = value.dump()
Response JsonResponse(int status, const nlohmann::json& value);

// RFC 3986 percent-encoding of everything but unreserved characters, for a
// path segment or a query value.
std::string PercentEncode(std::string_view text);

// What a peer's error response says, for a reason shown to users and stored
// in logs: error.message of a JSON error body, else the body itself (cut to
// 300 bytes); always valid UTF-8.
std::string ErrorMessageOf(const Response& response);

}  // namespace commitd::http
