// The URL of an agent or coordinator a process is given (registry,
// --participant, --peers, cluster members).
#pragma once

#include <string>

#include "common/status.h"

namespace commitd {

// http://HOST:PORT or https://HOST:PORT, port 1-65535, without user info,
// path, query or fragment; returned without trailing '/'. InvalidArgument
// otherwise.
Result<std::string> ValidatePeerUrl(const std::string& url);

// The form two URLs of one server are compared in: ValidatePeerUrl's, with
// scheme and host lower-cased. A URL ValidatePeerUrl refuses stays as it is
// (it equals only itself: the simulator's sim://NAME).
std::string NormalizedPeerUrl(const std::string& url);

}  // namespace commitd
