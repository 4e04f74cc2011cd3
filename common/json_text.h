// JSON text of a nlohmann::json value, written straight into a string.
//
// The same bytes as value.dump(-1, ' ', false, error_handler_t::replace):
// compact, keys in the object's (sorted) order, control characters escaped,
// other characters as they are, invalid UTF-8 replaced by U+FFFD. It never
// throws. nlohmann's serializer passes every byte of every string through a
// UTF-8 decoder and every character through a virtual call; this one copies
// runs of plain ASCII whole, and hands strings with non-ASCII bytes, and
// floating-point numbers, to nlohmann's serializer.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace commitd {

void AppendJson(std::string* out, const nlohmann::json& value);
// A JSON string of text, as AppendJson(out, nlohmann::json(text)) writes it.
void AppendJsonString(std::string* out, std::string_view text);
std::string DumpJson(const nlohmann::json& value);

}  // namespace commitd
