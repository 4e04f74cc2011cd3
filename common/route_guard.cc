#include "common/route_guard.h"

#include <stdexcept>

#include "common/hex.h"

namespace commitd::auth {

RouteGuard RouteGuard::SharedToken(const std::string& token) {
  const Digest digest = Sha256(token);
  const std::string hex = Hex(digest.data(), digest.size());
  nlohmann::json tokens = {
      {"tokens", {{{"name", "shared"}, {"sha256", hex}, {"roles", {"client", "reader", "admin", "peer"}}}}}};
  auto table = AuthTable::FromJson(tokens);
  if (!table.ok()) return RouteGuard(AuthTable());  // not reached: the entry is well formed
  return RouteGuard(std::move(table).value());
}

bool RouteGuard::Admit(const http::Request& request, const RouteRule& rule, const http::Responder& respond) const {
  if (!table_) return true;
  Principal who;
  const std::optional<std::string> header = request.Header("authorization");
  std::optional<std::string_view> authorization;
  if (header) authorization = *header;
  Verdict verdict = table_->Check(authorization, rule.permission, &who);
  if (verdict == Verdict::kForbidden && who.roles.Has(Role::kPeer)) {
    if (rule.peer_self == PeerSelf::kQueryParticipant) {
      auto it = request.query.find("participant");
      if (it != request.query.end() && it->second == who.name) verdict = Verdict::kAllowed;
    } else if (rule.peer_self == PeerSelf::kPathName) {
      auto it = request.path_params.find("name");
      if (it != request.path_params.end() && it->second == who.name) verdict = Verdict::kAllowed;
    } else if (rule.peer_self == PeerSelf::kAnyPeer) {
      verdict = Verdict::kAllowed;
    }
  }
  switch (verdict) {
    case Verdict::kAllowed:
      return true;
    case Verdict::kUnauthenticated:
      respond(http::ErrorResponse(401, "unauthorized", "missing or unknown bearer token"));
      return false;
    case Verdict::kForbidden:
      respond(http::ErrorResponse(403, "forbidden", "the token '" + who.name + "' may not call " + request.method +
                                                        " " + request.path));
      return false;
  }
  return false;
}

bool RouteGuard::Admit(const http::Request& request, Permission permission, const http::Responder& respond) const {
  return Admit(request, RouteRule{request.method, request.path, permission}, respond);
}

void AddGuarded(http::Router& router, const RouteGuard& guard, std::span<const RouteRule> table,
                const std::string& method, const std::string& pattern, http::Handler handler) {
  for (const RouteRule& rule : table) {
    if (rule.method != method || rule.pattern != pattern) continue;
    router.Add(method, pattern, [&guard, rule, handler = std::move(handler)](http::Request req, http::Responder r) {
      if (guard.Admit(req, rule, r)) handler(std::move(req), std::move(r));
    });
    return;
  }
  throw std::logic_error("route " + method + " " + pattern + " has no entry in the access table");
}

}  // namespace commitd::auth
