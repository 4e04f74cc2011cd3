// The --auth-file of both executables: AuthTable::Parse, the text
// AuthTable::Load reads. An accepted file lets in exactly the plain tokens it
// lists, under their names, and nobody with the empty or a foreign token.
#include <nlohmann/json.hpp>
#include <string>

#include "common/auth.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace commitd;
  using fuzz::Require;
  const std::string_view text = fuzz::Text(data, size);
  Result<auth::AuthTable> table = auth::AuthTable::Parse(text);
  if (!table.ok()) {
    Require(table.status().code() == StatusCode::kInvalidArgument, "a bad auth file is InvalidArgument");
    Require(!table.status().message().empty(), "a refusal says why");
    return 0;
  }
  Require(!table->Authenticate(std::nullopt).has_value(), "no header, no caller");
  Require(!table->Authenticate("Bearer ").has_value(), "an empty token is nobody");
  // Accepted, so the text is a JSON object of well-formed entries.
  const nlohmann::json value = nlohmann::json::parse(text);
  for (const nlohmann::json& entry : value["tokens"]) {
    if (!entry.contains("token")) continue;
    const std::string header = "Bearer " + entry["token"].get<std::string>();
    std::optional<auth::Principal> who = table->Authenticate(header);
    Require(who.has_value(), "a listed token authenticates");
    Require(who->name == entry["name"].get<std::string>(), "under its own name");
  }
  return 0;
}
