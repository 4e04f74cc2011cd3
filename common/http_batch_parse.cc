#include "common/http_batch_parse.h"

#include "common/json_scanner.h"

namespace commitd::http {

std::optional<std::vector<BatchPart>> ParseBatch(const std::string& text, std::string_view key) {
  JsonScanner scan(text);
  if (scan.Peek() != '{') return std::nullopt;
  std::optional<std::vector<BatchPart>> parts;
  scan.Object([&](std::string_view name, JsonScanner& s) {
    if (name != key || s.Peek() != '[') {
      s.Value();
      if (name == key) parts.reset();  // the last of repeated keys counts, as in a parsed object
      return;
    }
    parts.emplace();
    s.Array([&](JsonScanner& a) {
      BatchPart& part = parts->emplace_back();
      if (a.Peek() != '{') {
        a.Value();
        return;
      }
      part.object = true;
      a.Object([&](std::string_view field, JsonScanner& o) {
        std::string_view value = o.Value();
        if (field == "method") part.method = value;
        if (field == "target") part.target = value;
        if (field == "status") part.status = value;
        if (field == "body") part.body = value;
        if (field == "traceparent") part.traceparent = value;
      });
    });
  });
  if (!scan.Finished()) return std::nullopt;
  return parts;
}

std::string JsonStringValue(std::string_view token) { return JsonScanner::String(token); }

}  // namespace commitd::http
