#include "common/http_types.h"
#include "common/json_text.h"
#include "common/json_parse.h"

#include <algorithm>
#include <cctype>

namespace commitd::http {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

namespace {

std::optional<std::string> FindHeader(const std::vector<std::pair<std::string, std::string>>& headers,
                                      std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> Request::Header(std::string_view name) const { return FindHeader(headers, name); }

std::optional<std::string> Response::Header(std::string_view name) const {
  if (EqualsIgnoreCase(name, "content-type") && !content_type.empty()) {
    if (auto extra = FindHeader(headers, name)) return extra;
    return content_type;
  }
  return FindHeader(headers, name);
}

Response ErrorResponse(int status, std::string_view code, std::string_view message) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  Response response;
  response.status = status;
  response.body = DumpJson(body);
  return response;
}

Response JsonResponse(int status, const nlohmann::json& value) {
  Response response;
  response.status = status;
  response.body = DumpJson(value);
  return response;
}

std::string PercentEncode(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string ErrorMessageOf(const Response& response) {
  auto body = ParseJson(response.body);
  std::string message;
  if (body.is_object() && body.contains("error")) {
    const auto& error = body["error"];
    if (error.is_object() && error.contains("message") && error["message"].is_string()) {
      message = error["message"].get<std::string>();
    } else if (error.is_string()) {
      message = error.get<std::string>();
    }
  }
  if (message.empty()) message = response.body.substr(0, 300);
  // Round-trip through the serializer to replace invalid UTF-8.
  auto cleaned = nlohmann::json::parse(
      nlohmann::json(message).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), nullptr, false);
  return cleaned.is_string() ? cleaned.get<std::string>() : std::string("(unreadable error body)");
}

}  // namespace commitd::http
