// Whether bytes are JSON, checked without building anything: the same text
// nlohmann::json::accept() takes (RFC 8259, strict UTF-8, no comments), but
// in one pass that builds nothing (it allocates only for containers nested
// deeper than 64, and a copy of a number too long to be an int64). No I/O.
#pragma once

#include <cstddef>
#include <string_view>

namespace commitd {

// Whether a text's JSON syntax is still to be checked, or was checked
// already (as a batch's sub-request is, by the walk that split the batch).
enum class JsonSyntax { kUnchecked, kChecked };

// `text` is one JSON value, with only whitespace around it. Like nlohmann, it
// refuses invalid UTF-8, lone surrogate escapes and numbers that overflow a
// double; unlike it, also a leading byte-order mark and any NUL byte (where
// nlohmann's reading of a string ends).
bool IsJson(std::string_view text);

// Where the JSON value starting at text[at] (after any whitespace) ends, one
// past its last byte, checked as IsJson checks a whole text; npos if no
// valid value starts there.
std::size_t JsonValueEnd(std::string_view text, std::size_t at);

}  // namespace commitd
