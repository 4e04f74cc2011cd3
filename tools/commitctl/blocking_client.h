// One HTTP request at a time, run to completion on a private io_context.
// commitctl is a short-lived command, so blocking is what it wants.
//
// Thread: used by one thread; each call runs the io_context until its
// request is answered or fails.
#pragma once

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "common/http_client.h"
#include "common/tls.h"
#include "common/status.h"

namespace commitd::commitctl {

// Who is being asked, for error messages: "cannot reach <what> at <url>: ... — <hint>".
struct Endpoint {
  std::string what;  // "coordinator", "participant bank-a"
  std::string url;
  std::string hint;  // "is commitd running? check --coordinator"
};

struct JsonReply {
  int status = 0;
  nlohmann::json body;  // null when the body was empty
};

class BlockingClient {
 public:
  // tls: for https:// URLs (tls::ClientContext; unset: http:// only).
  explicit BlockingClient(std::string token, tls::Context tls = nullptr);

  // The reply of any status, parsed as JSON. Errors are phrased for the user:
  // Unavailable/Timeout when unreachable, InvalidArgument on 401 or a bad URL,
  // Internal when the body is not JSON.
  Result<JsonReply> Call(const Endpoint& to, const std::string& method, const std::string& target,
                         const std::string& body = "");

 private:
  std::string token_;
  boost::asio::io_context io_;
  http::Client client_;
};

// "error.message" of an error body, else the raw body, else "HTTP <status>".
std::string ErrorMessage(const JsonReply& reply);

}  // namespace commitd::commitctl
