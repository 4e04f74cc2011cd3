// Batch bodies (common/http_batch_parse.h): {"requests":[...]} as a server
// receives it and {"responses":[...]} as a client receives it, read the way
// AddBatchRoute and BatchingClient read them, checking their syntax as they
// walk; and that syntax check (common/json_syntax.h) against nlohmann's.
#include <charconv>
#include <nlohmann/json.hpp>
#include <string>

#include "common/http_batch_parse.h"
#include "common/json_syntax.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using commitd::fuzz::Require;
namespace http = commitd::http;

bool Inside(std::string_view part, const std::string& text) {
  return part.data() >= text.data() && part.data() + part.size() <= text.data() + text.size();
}

void CheckToken(const std::optional<std::string_view>& token, const std::string& text) {
  if (!token) return;
  Require(!token->empty() && Inside(*token, text), "a field's token is a non-empty view into the body");
  // Each token is one whole JSON value: the body's bytes, never re-serialized.
  Require(nlohmann::json::accept(*token), "a field's token is a JSON value");
  if (token->front() == '"') {
    const std::string value = http::JsonStringValue(*token);
    Require(nlohmann::json::parse(*token).get<std::string>() == value, "a string token decodes as JSON does");
  }
}

void Read(const std::string& text, std::string_view key) {
  std::optional<std::vector<http::BatchPart>> parts = http::ParseBatch(text, key);
  if (!parts) {
    // Refused: then a DOM parser finds no such array either.
    const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
    const bool nlohmann_only = text.rfind("\xef\xbb\xbf", 0) == 0 || text.find('\0') != std::string::npos;
    Require(nlohmann_only || parsed.is_discarded() || !parsed.is_object() || !parsed.contains(key) ||
                !parsed.at(std::string(key)).is_array(),
            "a batch a DOM parser reads is not refused");
    return;
  }
  // A batch is also JSON a DOM parser accepts, with `key` an array of as many elements.
  Require(commitd::IsJson(text), "an accepted batch passes the syntax check");
  const nlohmann::json parsed = nlohmann::json::parse(text);
  Require(parsed.is_object() && parsed.contains(key) && parsed.at(std::string(key)).is_array(),
          "an accepted batch has the array");
  const nlohmann::json& array = parsed.at(std::string(key));
  Require(array.size() == parts->size(), "one part per element");
  for (std::size_t i = 0; i < parts->size(); ++i) {
    const http::BatchPart& part = (*parts)[i];
    Require(part.object == array[i].is_object(), "objects are recognized");
    CheckToken(part.method, text);
    CheckToken(part.target, text);
    CheckToken(part.status, text);
    CheckToken(part.body, text);
    CheckToken(part.traceparent, text);
    if (part.body) Require(nlohmann::json::parse(*part.body) == array[i].at("body"), "a body is the element's body");
    if (part.status) {
      int status = 500;
      std::from_chars(part.status->data(), part.status->data() + part.status->size(), status);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(commitd::fuzz::Text(data, size));
  // nlohmann skips a leading byte-order mark and stops reading at a NUL byte; IsJson refuses both.
  const bool nlohmann_only = text.rfind("\xef\xbb\xbf", 0) == 0 || text.find('\0') != std::string::npos;
  Require(commitd::IsJson(text) == (nlohmann::json::accept(text) && !nlohmann_only), "IsJson judges as nlohmann does");
  Read(text, "requests");
  Read(text, "responses");
  return 0;
}
