// The start line and header fields written before a message's body (of a
// fixed length: every body this project sends is in memory): the server's
// responses and the client's requests.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/http_types.h"
#include "common/status.h"

namespace commitd::http {

// version: the request's (10 or 11). keep_alive: the connection stays open
// after this response ("Connection: close" for HTTP/1.1 otherwise,
// "Connection: keep-alive" for HTTP/1.0 when it does). A header field whose
// name or value could end the field early (CR, LF or NUL; a name with a
// colon or space, or empty) is left out: it would let the rest of it be read
// as fields or a body of its own. A field given twice (names compared
// without case) is written once, with the later value. Content-Length,
// Transfer-Encoding and Connection are the writer's own: given ones are
// left out.
std::string ResponseHead(const Response& response, unsigned version, bool keep_alive);

// An HTTP/1.1 request's head: Host, then the given fields (a later one
// replaces an earlier of the same name, Host included; a given
// Content-Length or Transfer-Encoding is left out), then the body's length
// (left out for an empty body, except for POST, PUT and OPTIONS).
// InvalidArgument when the method, target, host or a field would not stay
// within its place in the head (a space or line break, an empty method).
Result<std::string> RequestHead(std::string_view method, std::string_view target, std::string_view host,
                                const std::vector<std::pair<std::string, std::string>>& headers,
                                std::size_t body_size);

}  // namespace commitd::http
