// commitd: the coordinator process.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <charconv>
#include <iostream>
#include <set>

#include "common/access_flags.h"
#include "common/config_file.h"
#include "common/failpoint.h"
#include "common/flags.h"
#include "common/graceful_stop.h"
#include "common/log.h"
#include "common/peer_url.h"
#include "common/program.h"
#include "common/version.h"
#include "coordinator/service.h"

namespace {

constexpr const char* kUsage = R"(usage: commitd --id ID --listen HOST:PORT --data-dir DIR
               [--participant NAME=URL]... [--config FILE]
               [--auth-file FILE] [--peer-token-file FILE] [--insecure] [--token SECRET]
               [--tls-cert FILE --tls-key FILE] [--tls-ca FILE] [--tls-require-client-cert]
               [--tls-client-cert FILE --tls-client-key FILE]
               [--peers ID=URL,... [--join]] [--decision-retention-ms MS]
               [--log-level LEVEL] [--failpoint NAME]...
       commitd --version | --help

Runs a commitd coordinator: the HTTP API of docs/api.md on --listen, the
decision log in DIR/decisions.db. --participant registers an agent by name.
--config is a JSON file of any of these flags (data_dir for --data-dir, ...)
and the timeouts and limits of docs/configuration.md; flags given here win.
--peers (3, 5 or 7 members, this one included) makes it a member of a Raft
group, with everything in DIR/raft.db (docs/coordinator_group.md); with --join
it is a new member of a running group and waits until `commitctl cluster add`.
--decision-retention-ms: finished decisions are deleted this long after every
participant acknowledged them (default 7 days; config decision_retention_ms).
--log-level: debug, info (default), warn or error; logs are JSON lines on stderr.
--auth-file: the tokens and roles every route but /healthz and /readyz needs;
without it, a non-loopback --listen needs --insecure. --peer-token-file: the
token presented to agents and members. --token: one shared secret, sent and
required (tests only: other local users can read it). --tls-*: HTTPS, see
docs/security.md. URLs are http(s)://HOST:PORT.

exit: 0 stopped by SIGTERM/SIGINT or --help/--version, 1 could not start,
      2 bad flag or configuration
)";

std::set<std::string> Join(std::set<std::string> a, const std::set<std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

const std::set<std::string> kValued = Join(
    {"id", "listen", "data-dir", "participant", "config", "peers", "failpoint", "log-level", "decision-retention-ms"}, commitd::AccessValuedFlags());
const std::set<std::string> kSwitches = Join({"join"}, commitd::AccessSwitches());
const commitd::Program kProgram("commitd", kUsage);

int UsageError(const std::string& message) { return kProgram.UsageError(message); }

}  // namespace

int main(int argc, char** argv) {
  using namespace commitd;
  Flags parsed;
  if (auto exit_code = kProgram.Parse(argc, argv, kValued, kSwitches, &parsed)) return *exit_code;
  auto config = ApplyConfigFile(&parsed, kValued, kSwitches);
  if (!config.ok()) return UsageError(config.status().message());
  if (Status s = SetLogLevel(parsed); !s.ok()) return UsageError(s.message());
  const Flags* flags = &parsed;
  if (!flags->positional().empty()) return UsageError("unexpected argument " + flags->positional().front());
  coordinator::ServiceOptions options;
  options.id = flags->Get("id").value_or("c1");
  options.listen = flags->Get("listen").value_or("127.0.0.1:7000");
  auto data_dir = flags->Get("data-dir");
  if (!data_dir) return UsageError("--data-dir is required");
  options.data_dir = *data_dir;
  if (auto peers = flags->Get("peers")) {
    std::set<std::string> ids;
    bool self_listed = false;
    for (const std::string& item : CommaItems(*peers)) {
      auto eq = item.find('=');
      auto url = eq == std::string::npos ? Result<std::string>(Status::InvalidArgument("no '='"))
                                         : ValidatePeerUrl(item.substr(eq + 1));
      if (eq == 0 || !url.ok()) {
        return UsageError("--peers must be ID=http(s)://HOST:PORT,..., got '" + item + "'");
      }
      std::string id = item.substr(0, eq);
      if (!ids.insert(id).second) return UsageError("--peers names " + id + " twice");
      self_listed = self_listed || id == options.id;
      options.peers.push_back({id, *url});
    }
    if (!self_listed) return UsageError("--peers must include this node (--id " + options.id + ")");
    options.join = flags->Has("join");
    if (!options.join && (options.peers.size() % 2 == 0 || options.peers.size() > 7)) {
      return UsageError("--peers: a group has 3, 5 or 7 members (or 1), not " + std::to_string(options.peers.size()));
    }
  }
  for (const auto& p : flags->GetAll("participant")) {
    auto eq = p.find('=');
    auto url = eq == std::string::npos ? Result<std::string>(Status::InvalidArgument("no '='"))
                                       : ValidatePeerUrl(p.substr(eq + 1));
    if (eq == 0 || !url.ok()) {
      return UsageError("--participant must be NAME=http(s)://HOST:PORT, got '" + p + "'");
    }
    options.participants.push_back({p.substr(0, eq), *url, 0});
  }
  auto access = AccessSetupFromFlags(*flags, options.listen);
  if (!access.ok()) return UsageError(access.status().message());
  options.guard = std::move(access->guard);
  options.peer_token = std::move(access->peer_token);
  options.server_tls = std::move(access->server_tls);
  options.client_tls = std::move(access->client_tls);
  options.config = config.value();
  if (auto retention = flags->Get("decision-retention-ms")) {
    int64_t ms = 0;
    auto [end, ec] = std::from_chars(retention->data(), retention->data() + retention->size(), ms);
    if (ec != std::errc() || end != retention->data() + retention->size() || ms <= 0) {
      return UsageError("--decision-retention-ms must be a positive number of milliseconds, got '" + *retention + "'");
    }
    options.config.decision_retention_ms = ms;
  }
  options.version = kVersion;
  options.commit = kGitCommit;
  log::SetComponent("commitd/" + options.id);
  failpoint::InitFromEnvironment();
  for (const auto& f : flags->GetAll("failpoint")) failpoint::Enable(f);

  boost::asio::io_context io(1);
  coordinator::Service service(io, options);
  if (Status s = service.Start(); !s.ok()) {
    log::Error("start_failed", {{"error", s.ToString()}});
    std::cerr << "commitd: " << s.ToString() << "\n";
    return 1;
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    log::Info("signal", {{"signal", sig}});
    service.Shutdown([&io] { StopAfterFlush(io); });
  });
  io.run();
  return 0;
}
