// The body of an answer to a client: a JSON value, or JSON text written
// already (a transaction's answer, written as text on its way out so that no
// JSON value is built for it).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <variant>

namespace commitd::coordinator {

// One JSON value's compact text, as DumpJson writes it.
struct JsonText {
  std::string text;
};

using ClientBody = std::variant<nlohmann::json, JsonText>;

// The body as a JSON value (text is parsed; the simulator and tests read it so).
nlohmann::json JsonOf(const ClientBody& body);
// The body's text, as sent.
std::string TextOf(ClientBody body);

}  // namespace commitd::coordinator
