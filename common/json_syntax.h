// Whether bytes are JSON, checked without building anything: the same text
// nlohmann::json::accept() takes (RFC 8259, strict UTF-8, no comments), but
// in one pass that builds nothing (it allocates only a stack of the open
// containers, and a copy of a number too long to be an int64). No I/O.
#pragma once

#include <string_view>

namespace commitd {

// `text` is one JSON value, with only whitespace around it. Like nlohmann, it
// refuses invalid UTF-8, lone surrogate escapes and numbers that overflow a
// double; unlike it, also a leading byte-order mark and any NUL byte (where
// nlohmann's reading of a string ends).
bool IsJson(std::string_view text);

}  // namespace commitd
