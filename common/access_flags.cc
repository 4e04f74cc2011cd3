#include "common/access_flags.h"

#include "common/http_server.h"
#include "common/log.h"

namespace commitd {

const std::set<std::string>& AccessValuedFlags() {
  static const std::set<std::string> flags = {"auth-file", "peer-token-file", "token",          "tls-cert",
                                              "tls-key",   "tls-ca",          "tls-client-cert", "tls-client-key"};
  return flags;
}

const std::set<std::string>& AccessSwitches() {
  static const std::set<std::string> switches = {"insecure", "tls-require-client-cert"};
  return switches;
}

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

Result<AccessSetup> AccessSetupFromFlags(const Flags& flags, const std::string& listen) {
  AccessSetup setup;
  const std::string token = flags.Get("token").value_or("");
  if (auto path = flags.Get("auth-file")) {
    auto table = auth::AuthTable::Load(*path);
    if (!table.ok()) return Status::InvalidArgument("--auth-file " + table.status().message());
    setup.guard = auth::RouteGuard(std::move(table).value());
  } else if (!token.empty()) {
    setup.guard = auth::RouteGuard::SharedToken(token);
  }
  setup.peer_token = token;
  if (auto path = flags.Get("peer-token-file")) {
    auto secret = auth::ReadSecretFile(*path);
    if (!secret.ok()) return Status::InvalidArgument("--peer-token-file " + secret.status().message());
    setup.peer_token = std::move(secret).value();
  }
  if (!flags.Has("auth-file")) {
    auto addr = http::ParseHostPort(listen);
    const bool loopback = addr.ok() && IsLoopbackHost(addr->first);
    if (!loopback && !flags.Has("insecure")) {
      return Status::InvalidArgument("--listen " + listen +
                                     " is not a loopback address: give --auth-file (or --insecure to allow anyone)");
    }
  }
  const bool has_cert = flags.Has("tls-cert"), has_key = flags.Has("tls-key");
  if (has_cert != has_key) return Status::InvalidArgument("--tls-cert and --tls-key go together");
  if (flags.Has("tls-require-client-cert") && (!has_cert || !flags.Has("tls-ca"))) {
    return Status::InvalidArgument("--tls-require-client-cert needs --tls-cert, --tls-key and --tls-ca");
  }
  if (has_cert) {
    tls::ServerFiles files;
    files.cert = *flags.Get("tls-cert");
    files.key = *flags.Get("tls-key");
    files.require_client_cert = flags.Has("tls-require-client-cert");
    if (files.require_client_cert) files.client_ca = *flags.Get("tls-ca");
    auto context = tls::ServerContext(files);
    if (!context.ok()) return context.status();
    setup.server_tls = std::move(context).value();
  }
  if (flags.Has("tls-client-cert") != flags.Has("tls-client-key")) {
    return Status::InvalidArgument("--tls-client-cert and --tls-client-key go together");
  }
  tls::ClientFiles client_files;
  client_files.ca = flags.Get("tls-ca").value_or("");
  client_files.client_cert = flags.Get("tls-client-cert").value_or("");
  client_files.client_key = flags.Get("tls-client-key").value_or("");
  auto client_context = tls::ClientContext(client_files);
  if (!client_context.ok()) return client_context.status();
  setup.client_tls = std::move(client_context).value();
  if (!token.empty()) {
    log::Warn("token_on_command_line",
              {{"message", "--token is visible to every local user (ps, /proc); use --auth-file and --peer-token-file"}});
  }
  if (!flags.Has("auth-file")) {
    const bool loopback = !flags.Has("insecure") || IsLoopbackHost(http::ParseHostPort(listen).ok()
                                                                        ? http::ParseHostPort(listen)->first
                                                                        : std::string());
    log::Warn("no_auth_file", {{"message", loopback ? "no --auth-file: any local process may call every route"
                                                    : "--insecure: anyone who reaches the port may call every route"},
                               {"listen", listen}});
  }
  return setup;
}

}  // namespace commitd
