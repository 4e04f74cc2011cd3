#include "common/http_head.h"

#include <boost/beast/http/status.hpp>

#include <string_view>

namespace commitd::http {
namespace {

bool SafeName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c == ':' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

bool SafeValue(std::string_view value) { return value.find_first_of(std::string_view("\r\n\0", 3)) == value.npos; }

// A method or target: no space, control character or DEL.
bool SafeToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) return false;
  }
  return true;
}

using Fields = std::vector<std::pair<std::string, std::string>>;

// A field given again later is replaced by the later one.
bool GivenAgain(std::string_view name, const Fields& fields, std::size_t after) {
  for (std::size_t i = after; i < fields.size(); ++i) {
    if (EqualsIgnoreCase(name, fields[i].first)) return true;
  }
  return false;
}

// The body's framing: only the writer's own length is written.
bool Framing(std::string_view name) {
  return EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding");
}

// A given field an answer may carry: one that stays in its place and is not the writer's own framing.
bool Writable(std::string_view name, std::string_view value) {
  return SafeName(name) && SafeValue(value) && !Framing(name);
}

void AppendField(std::string* head, std::string_view name, std::string_view value) {
  head->append(name);
  head->append(": ");
  head->append(value);
  head->append("\r\n");
}

}  // namespace

std::string ResponseHead(const Response& response, unsigned version, bool keep_alive) {
  namespace bhttp = boost::beast::http;
  std::string head;
  head.reserve(96 + response.content_type.size());
  head.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  head.append(std::to_string(response.status));
  head.push_back(' ');
  const unsigned status = response.status < 0 ? 0u : static_cast<unsigned>(response.status);
  const boost::beast::string_view reason = bhttp::obsolete_reason(bhttp::int_to_status(status));
  head.append(reason.data(), reason.size());
  head.append("\r\n");
  if (!response.content_type.empty() && SafeValue(response.content_type) &&
      !GivenAgain("Content-Type", response.headers, 0)) {
    AppendField(&head, "Content-Type", response.content_type);
  }
  for (std::size_t i = 0; i < response.headers.size(); ++i) {
    const auto& [name, value] = response.headers[i];
    // Whether the connection stays is keep_alive's to say.
    if (Writable(name, value) && !GivenAgain(name, response.headers, i + 1) && !EqualsIgnoreCase(name, "Connection")) {
      AppendField(&head, name, value);
    }
  }
  if (version >= 11 && !keep_alive) head.append("Connection: close\r\n");
  if (version < 11 && keep_alive) head.append("Connection: keep-alive\r\n");
  head.append("Content-Length: ");
  head.append(std::to_string(response.body.size()));
  head.append("\r\n\r\n");
  return head;
}

Result<std::string> RequestHead(std::string_view method, std::string_view target, std::string_view host,
                                const std::vector<std::pair<std::string, std::string>>& headers,
                                std::size_t body_size) {
  if (!SafeToken(method)) return Status::InvalidArgument("HTTP method '" + std::string(method) + "' is not a token");
  if (!SafeToken(target)) {
    return Status::InvalidArgument("HTTP target '" + std::string(target) + "' has a space or control character");
  }
  if (host.empty() || !SafeValue(host)) {
    return Status::InvalidArgument("HTTP host '" + std::string(host) + "' is not valid");
  }
  for (const auto& [name, value] : headers) {
    if (!SafeName(name) || !SafeValue(value)) {
      return Status::InvalidArgument("HTTP header field '" + name + "' has a name or value that would end it early");
    }
  }
  std::string head;
  head.reserve(64 + target.size() + host.size());
  head.append(method);
  head.push_back(' ');
  head.append(target);
  head.append(" HTTP/1.1\r\n");
  // Every given field was found safe above.
  if (!GivenAgain("Host", headers, 0)) AppendField(&head, "Host", host);
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const auto& [name, value] = headers[i];
    if (!Framing(name) && !GivenAgain(name, headers, i + 1)) AppendField(&head, name, value);
  }
  if (body_size > 0 || method == "POST" || method == "PUT" || method == "OPTIONS") {
    head.append("Content-Length: ");
    head.append(std::to_string(body_size));
    head.append("\r\n");
  }
  head.append("\r\n");
  return head;
}

}  // namespace commitd::http
