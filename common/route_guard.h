// Who may call which route of a server: each route's Permission comes from
// one table per server (RouteRule), checked against the caller's bearer token
// before the route's handler runs. Sub-requests of a batch reach handlers the
// same way, so they are checked against the same table.
//
// Thread: immutable after construction; any thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/auth.h"
#include "common/http_server.h"

namespace commitd::auth {

// A peer allowed on a route only for itself, besides the route's Permission.
enum class PeerSelf {
  kNo,
  kQueryParticipant,  // ?participant=NAME equals the token's name (a decision query)
  kPathName,          // the {name} path parameter equals the token's name (registration)
  kAnyPeer,           // any peer (an agent learning its coordinators' group members)
};

struct RouteRule {
  std::string_view method;
  std::string_view pattern;  // as given to http::Router::Add
  Permission permission;
  PeerSelf peer_self = PeerSelf::kNo;
};

class RouteGuard {
 public:
  // No checks at all (no --auth-file, no --token).
  RouteGuard() = default;
  // Tokens and roles from an --auth-file.
  explicit RouteGuard(AuthTable table) : table_(std::move(table)) {}
  // One shared secret that grants every role (--token, a test convenience).
  static RouteGuard SharedToken(const std::string& token);

  bool open() const { return !table_; }

  // True when the request may run the route; otherwise answers 401
  // ("unauthorized") or 403 ("forbidden") and returns false.
  bool Admit(const http::Request& request, const RouteRule& rule, const http::Responder& respond) const;
  // Admit for the roles of one permission.
  bool Admit(const http::Request& request, Permission permission, const http::Responder& respond) const;

 private:
  std::optional<AuthTable> table_;
};

// Adds a route whose rule is table's entry for (method, pattern), with the
// guard in front of handler. A route missing from the table is a programming
// error: std::logic_error, at startup.
void AddGuarded(http::Router& router, const RouteGuard& guard, std::span<const RouteRule> table,
                const std::string& method, const std::string& pattern, http::Handler handler);

}  // namespace commitd::auth
