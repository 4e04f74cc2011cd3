// The parse side of HTTP batches (http_batch.h): the elements of a batch's
// "requests" or "responses" array, viewed in the text as it came in. No I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  // A sub-request's own W3C traceparent (common/trace_context.h).
  std::optional<std::string_view> traceparent;
};

// The elements of `text`'s array member `key`, viewing into `text`; nullopt
// unless `text` is valid JSON, an object, with `key` an array.
std::optional<std::vector<BatchPart>> ParseBatch(const std::string& text, std::string_view key);

// The value of a JSON string token ("\"a\\u0062\"" -> "ab").
std::string JsonStringValue(std::string_view token);

}  // namespace commitd::http
