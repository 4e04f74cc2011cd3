#include "common/json_parse.h"

namespace commitd {

nlohmann::json ParseJson(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text, nullptr, false);
}

}  // namespace commitd
