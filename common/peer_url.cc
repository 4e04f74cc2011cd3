#include "common/peer_url.h"

#include <algorithm>
#include <cctype>

#include "common/http_server.h"

namespace commitd {

Result<std::string> ValidatePeerUrl(const std::string& url) {
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else {
    return Status::InvalidArgument("'" + url + "': must be http://HOST:PORT or https://HOST:PORT");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find_first_of("/?#@ \t\r\n\\") != std::string::npos) {
    return Status::InvalidArgument("'" + url + "': must be http(s)://HOST:PORT, without user, path, query or fragment");
  }
  auto host_port = http::ParseHostPort(rest);
  if (!host_port.ok() || host_port->first.empty() || host_port->second == 0) {
    return Status::InvalidArgument("'" + url + "': must be http(s)://HOST:PORT with a port from 1 to 65535");
  }
  return url.substr(0, url.find("://") + 3) + rest;
}

std::string NormalizedPeerUrl(const std::string& url) {
  std::string lower = url;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  Result<std::string> valid = ValidatePeerUrl(lower);
  return valid.ok() ? std::move(valid).value() : url;
}

}  // namespace commitd
