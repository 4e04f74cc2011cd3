// Who may reach a server and how it talks to its peers, from the flags
// commitd and commit-agent share (docs/security.md):
//   --auth-file FILE          tokens and roles required on every route but /healthz, /readyz
//   --peer-token-file FILE    the bearer token this process presents to agents, coordinators, members
//   --token SECRET            one shared secret, sent and required (tests only: visible in ps)
//   --insecure                listen on a non-loopback address without --auth-file
//   --tls-cert FILE --tls-key FILE   serve HTTPS
//   --tls-ca FILE             verify https:// peers (and client certificates with
//                             --tls-require-client-cert)
//   --tls-client-cert FILE --tls-client-key FILE   presented to https:// peers
#pragma once

#include <set>
#include <string>

#include "common/flags.h"
#include "common/route_guard.h"
#include "common/status.h"
#include "common/tls.h"

namespace commitd {

// The flags above that take a value, and the switches (functions: other
// translation units' static initializers use them).
const std::set<std::string>& AccessValuedFlags();
const std::set<std::string>& AccessSwitches();

struct AccessSetup {
  auth::RouteGuard guard;     // incoming requests
  std::string peer_token;     // outgoing bearer token ("" for none)
  tls::Context server_tls;    // set: serve HTTPS only
  tls::Context client_tls;    // set: https:// peers allowed, verified against --tls-ca
};

// Reads the access flags and their files. listen: the --listen address (the
// loopback rule). Errors name the flag or file; nothing is started.
Result<AccessSetup> AccessSetupFromFlags(const Flags& flags, const std::string& listen);

// True for 127.0.0.0/8, ::1 and localhost.
bool IsLoopbackHost(const std::string& host);

}  // namespace commitd
