#include "coordinator/client_body.h"

#include "common/json_text.h"

namespace commitd::coordinator {

nlohmann::json JsonOf(const ClientBody& body) {
  if (const auto* text = std::get_if<JsonText>(&body)) return nlohmann::json::parse(text->text);
  return std::get<nlohmann::json>(body);
}

std::string TextOf(ClientBody body) {
  if (auto* text = std::get_if<JsonText>(&body)) return std::move(text->text);
  return DumpJson(std::get<nlohmann::json>(body));
}

}  // namespace commitd::coordinator
