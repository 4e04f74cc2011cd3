// Who may call what: bearer tokens with roles, from an --auth-file.
//
//   {"tokens": [{"name": "orders-service", "sha256": "<hex of SHA-256 of the token>", "roles": ["client"]},
//               {"name": "bank-a", "token": "<the token itself, for tests>", "roles": ["peer"]}]}
//
// Roles (docs/security.md has the route matrix):
//   client  submit transactions, read transactions
//   reader  read-only: transactions, participants, cluster, metrics
//   admin   what reader may, plus forced decisions, the participant registry,
//           cluster membership and leadership transfer
//   peer    protocol traffic between coordinators, members and agents, and an
//           agent's registration under its own name (the token's name)
//
// Tokens are kept as SHA-256 digests only and compared in constant time. One
// name may have several entries (a token being rotated: old and new).
// Thread: immutable after Load; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"

namespace commitd::auth {

enum class Role : uint8_t { kClient = 1, kReader = 2, kAdmin = 4, kPeer = 8 };

std::optional<Role> ParseRole(std::string_view name);
std::string_view RoleName(Role role);

class RoleSet {
 public:
  RoleSet() = default;
  RoleSet(std::initializer_list<Role> roles) {
    for (Role r : roles) Add(r);
  }
  void Add(Role role) { bits_ |= static_cast<uint8_t>(role); }
  bool Has(Role role) const { return (bits_ & static_cast<uint8_t>(role)) != 0; }
  bool Intersects(RoleSet other) const { return (bits_ & other.bits_) != 0; }
  bool empty() const { return bits_ == 0; }

 private:
  uint8_t bits_ = 0;
};

// What a route asks of its caller.
enum class Permission {
  kSubmit,        // POST /v1/transactions
  kReadTransactions,
  kReadCluster,   // participants, cluster status, metrics
  kAdminister,    // forced decisions, registry changes, membership, leadership transfer
  kProtocol,      // prepare/precommit/commit/abort/batch, decision queries of agents, Raft
};
// The roles that grant a permission.
RoleSet RolesFor(Permission permission);

using Digest = Sha256Digest;
using ::commitd::Sha256;

struct Principal {
  std::string name;
  RoleSet roles;
};

enum class Verdict { kAllowed, kUnauthenticated, kForbidden };

class AuthTable {
 public:
  static Result<AuthTable> FromJson(const nlohmann::json& value);
  // The text of an auth file.
  static Result<AuthTable> Parse(std::string_view text);
  // Errors name the file.
  static Result<AuthTable> Load(const std::string& path);

  // The caller behind an Authorization header value ("Bearer <token>");
  // nullopt if absent, malformed or unknown. Every entry is compared, in
  // constant time each, whatever matches.
  std::optional<Principal> Authenticate(std::optional<std::string_view> authorization) const;
  // 401 / 403 / allowed, and who it is when known.
  Verdict Check(std::optional<std::string_view> authorization, Permission needed,
                Principal* who = nullptr) const;
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Principal principal;
    Digest digest;
  };
  std::vector<Entry> entries_;
};

// A secret kept in a file (--peer-token-file, --token-file): its content
// without surrounding whitespace. Errors name the file; an empty secret is one.
Result<std::string> ReadSecretFile(const std::string& path);

}  // namespace commitd::auth
