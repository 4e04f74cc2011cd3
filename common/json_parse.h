// ParseJson: a JSON text into a nlohmann value without exceptions, refusing a
// text that holds a NUL byte.
//
// nlohmann's lexer takes a NUL byte for the end of the input, so
// "{...}\0anything" would be read as the object before the NUL. Every JSON
// text from outside (a request, a peer's answer or message, a file, a stored
// row) goes through here or through wire's ParseBody, which refuses it too.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace commitd {

// The value, or a discarded value (is_discarded()) when text is not JSON,
// holds a NUL byte, or has a number outside double's range.
nlohmann::json ParseJson(std::string_view text);

}  // namespace commitd
