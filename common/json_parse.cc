#include "common/json_parse.h"

namespace commitd {

nlohmann::json ParseJson(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text, nullptr, false);
}

Result<nlohmann::json> ParseJsonExplained(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return Status::InvalidArgument("it holds a NUL byte");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    std::string_view what = e.what();
    if (!what.empty() && what.front() == '[') {
      std::size_t end = what.find("] ");
      if (end != std::string_view::npos) what.remove_prefix(end + 2);
    }
    return Status::InvalidArgument(std::string(what));
  }
}

}  // namespace commitd
