// ParseJson, ParseJsonExplained: a JSON text into a nlohmann value, refusing
// a text that holds a NUL byte.
//
// nlohmann's lexer takes a NUL byte for the end of the input, so
// "{...}\0anything" would be read as the object before the NUL. Every JSON
// text from outside (a request, a peer's answer or message, a file, a stored
// row) goes through here or through wire's ParseBody, which refuses it too.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace commitd {

// The value, or a discarded value (is_discarded()) when text is not JSON,
// holds a NUL byte, or has a number outside double's range.
nlohmann::json ParseJson(std::string_view text);

// The value, or InvalidArgument saying why not: nlohmann's message without
// its "[json.exception.parse_error.101] " prefix (a syntax error, or a number
// outside double's range such as 1e400), or "it holds a NUL byte".
Result<nlohmann::json> ParseJsonExplained(std::string_view text);

}  // namespace commitd
