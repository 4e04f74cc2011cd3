#include "common/auth.h"
#include "common/hex.h"
#include "common/json_parse.h"

#include <openssl/crypto.h>

#include <fstream>
#include <sstream>

namespace commitd::auth {
namespace {

constexpr std::string_view kBearer = "Bearer ";

Result<Digest> DigestFromHex(std::string_view hex, const std::string& where) {
  Digest out{};
  if (hex.size() != 2 * out.size()) return Status::InvalidArgument(where + ": must be 64 hex digits");
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = HexDigitValue(hex[2 * i]), lo = HexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument(where + ": must be 64 hex digits");
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

std::string Trim(std::string s) {
  const char* space = " \t\r\n";
  std::size_t begin = s.find_first_not_of(space);
  if (begin == std::string::npos) return std::string();
  std::size_t end = s.find_last_not_of(space);
  return s.substr(begin, end - begin + 1);
}

}  // namespace

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "client") return Role::kClient;
  if (name == "reader") return Role::kReader;
  if (name == "admin") return Role::kAdmin;
  if (name == "peer") return Role::kPeer;
  return std::nullopt;
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kClient: return "client";
    case Role::kReader: return "reader";
    case Role::kAdmin: return "admin";
    case Role::kPeer: return "peer";
  }
  return "unknown";
}

RoleSet RolesFor(Permission permission) {
  switch (permission) {
    case Permission::kSubmit: return {Role::kClient};
    case Permission::kReadTransactions: return {Role::kClient, Role::kReader, Role::kAdmin};
    case Permission::kReadCluster: return {Role::kReader, Role::kAdmin};
    case Permission::kAdminister: return {Role::kAdmin};
    case Permission::kProtocol: return {Role::kPeer};
  }
  return {};
}

Result<AuthTable> AuthTable::FromJson(const nlohmann::json& value) {
  if (!value.is_object() || !value.contains("tokens") || !value["tokens"].is_array()) {
    return Status::InvalidArgument("must be an object {\"tokens\": [{\"name\", \"sha256\", \"roles\"}, ...]}");
  }
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (it.key() != "tokens") return Status::InvalidArgument("unknown field \"" + it.key() + "\"");
  }
  AuthTable table;
  const nlohmann::json& tokens = value["tokens"];
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const nlohmann::json& t = tokens[i];
    const std::string where = "tokens[" + std::to_string(i) + "]";
    if (!t.is_object()) return Status::InvalidArgument(where + ": must be an object");
    for (auto it = t.begin(); it != t.end(); ++it) {
      if (it.key() != "name" && it.key() != "sha256" && it.key() != "token" && it.key() != "roles") {
        return Status::InvalidArgument(where + ": unknown field \"" + it.key() + "\"");
      }
    }
    if (!t.contains("name") || !t["name"].is_string() || t["name"].get<std::string>().empty()) {
      return Status::InvalidArgument(where + ".name: required, a non-empty string");
    }
    Entry entry;
    entry.principal.name = t["name"].get<std::string>();
    const bool has_hash = t.contains("sha256"), has_token = t.contains("token");
    if (has_hash == has_token) return Status::InvalidArgument(where + ": give exactly one of sha256 and token");
    if (has_hash) {
      if (!t["sha256"].is_string()) return Status::InvalidArgument(where + ".sha256: must be 64 hex digits");
      auto digest = DigestFromHex(t["sha256"].get<std::string>(), where + ".sha256");
      if (!digest.ok()) return digest.status();
      entry.digest = *digest;
    } else {
      if (!t["token"].is_string() || t["token"].get<std::string>().size() < 16) {
        return Status::InvalidArgument(where + ".token: must be a string of at least 16 characters");
      }
      entry.digest = Sha256(t["token"].get<std::string>());
    }
    if (!t.contains("roles") || !t["roles"].is_array() || t["roles"].empty()) {
      return Status::InvalidArgument(where + ".roles: required, a non-empty array");
    }
    for (const auto& r : t["roles"]) {
      std::optional<Role> role = r.is_string() ? ParseRole(r.get<std::string>()) : std::nullopt;
      if (!role) return Status::InvalidArgument(where + ".roles: each must be client, reader, admin or peer");
      entry.principal.roles.Add(*role);
    }
    for (const Entry& other : table.entries_) {
      if (CRYPTO_memcmp(other.digest.data(), entry.digest.data(), entry.digest.size()) == 0) {
        return Status::InvalidArgument(where + ": the same token as '" + other.principal.name + "'");
      }
    }
    table.entries_.push_back(std::move(entry));
  }
  return table;
}

Result<AuthTable> AuthTable::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(path + ": cannot read");
  std::stringstream text;
  text << in.rdbuf();
  auto table = Parse(text.str());
  if (!table.ok()) return Status::InvalidArgument(path + ": " + table.status().message());
  return table;
}

Result<AuthTable> AuthTable::Parse(std::string_view text) {
  nlohmann::json value = ParseJson(text);
  if (value.is_discarded()) return Status::InvalidArgument("not valid JSON");
  return FromJson(value);
}

std::optional<Principal> AuthTable::Authenticate(std::optional<std::string_view> authorization) const {
  if (!authorization || authorization->size() <= kBearer.size() ||
      authorization->substr(0, kBearer.size()) != kBearer) {
    return std::nullopt;
  }
  const Digest presented = Sha256(authorization->substr(kBearer.size()));
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {
    if (CRYPTO_memcmp(e.digest.data(), presented.data(), presented.size()) == 0) found = &e;
  }
  if (found == nullptr) return std::nullopt;
  return found->principal;
}

Verdict AuthTable::Check(std::optional<std::string_view> authorization, Permission needed, Principal* who) const {
  std::optional<Principal> principal = Authenticate(authorization);
  if (!principal) return Verdict::kUnauthenticated;
  const bool allowed = principal->roles.Intersects(RolesFor(needed));
  if (who != nullptr) *who = std::move(*principal);
  return allowed ? Verdict::kAllowed : Verdict::kForbidden;
}

Result<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(path + ": cannot read");
  std::stringstream text;
  text << in.rdbuf();
  std::string secret = Trim(text.str());
  if (secret.empty()) return Status::InvalidArgument(path + ": empty");
  if (secret.find_first_of(" \t\r\n") != std::string::npos) {
    return Status::InvalidArgument(path + ": a token is one line without spaces");
  }
  return secret;
}

}  // namespace commitd::auth
