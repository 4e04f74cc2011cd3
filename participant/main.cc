// commit-agent: a standalone participant agent over one SQLite file.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cctype>
#include <fstream>
#include <iostream>
#include <sstream>
#include <set>

#include "common/access_flags.h"
#include "common/config_file.h"
#include "common/peer_url.h"
#include "common/failpoint.h"
#include "common/flags.h"
#include "common/graceful_stop.h"
#include "common/log.h"
#include "common/program.h"
#include "common/version.h"
#include "participant/agent.h"

namespace {

constexpr const char* kUsage = R"(usage: commit-agent --name NAME --listen HOST:PORT --db FILE.db
                    --procedures FILE.json [--allow-raw-sql]
       commit-agent --backend postgres (--dsn DSN | --dsn-file FILE) ...
                    [--coordinator URL[,URL...]] [--advertise-url URL]
                    [--auth-file FILE] [--peer-token-file FILE] [--insecure]
                    [--token SECRET] [--tls-cert FILE --tls-key FILE] [--tls-ca FILE]
                    [--tls-require-client-cert] [--tls-client-cert FILE --tls-client-key FILE]
                    [--config FILE] [--log-level LEVEL]
                    [--failpoint NAME]...
       commit-agent --version | --help

Runs a commitd participant agent over the SQLite database FILE.db (--backend
sqlite, the default) or over a PostgreSQL database (--backend postgres: --dsn
is a libpq connection string, --dsn-file a file holding one, for a DSN with a
password; the server needs max_prepared_transactions > 0), serving the
agent API of docs/protocol.md on --listen. Transactions may call the named
procedures of --procedures (docs/procedures.md); raw SQL ops are refused
unless --allow-raw-sql. --advertise-url is the URL coordinators reach it at
(default: http://--listen). --config is a JSON file of any of these flags
(db, procedures, allow_raw_sql: true, ...) and the timeouts and limits of
docs/configuration.md; flags given here win. --log-level: debug, info
(default), warn or error; logs are JSON lines on stderr.
--auth-file: the tokens and roles every route but /healthz needs; without it,
a non-loopback --listen needs --insecure. --peer-token-file: the token
presented to coordinators and agents. --token: one shared secret, sent and
required (tests only: other local users can read it). --tls-*: HTTPS, see
docs/security.md. URLs are http(s)://HOST:PORT.

exit: 0 stopped by SIGTERM/SIGINT or --help/--version, 1 could not start,
      2 bad flag or configuration
)";

std::set<std::string> Join(std::set<std::string> a, const std::set<std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

const std::set<std::string> kValued =
    Join({"name", "listen", "db", "backend", "dsn", "dsn-file", "procedures", "coordinator", "advertise-url", "config", "failpoint", "log-level"},
         commitd::AccessValuedFlags());
const std::set<std::string> kSwitches = Join({"allow-raw-sql"}, commitd::AccessSwitches());
const commitd::Program kProgram("commit-agent", kUsage);

int UsageError(const std::string& message) { return kProgram.UsageError(message); }

}  // namespace

namespace commitd {
namespace {

// --backend, --db, --dsn and --dsn-file into options: one data source, the one its backend reads.
Status ParseBackend(const Flags& flags, participant::AgentOptions* options) {
  const std::string backend = flags.Get("backend").value_or("sqlite");
  auto db = flags.Get("db");
  auto dsn = flags.Get("dsn");
  auto dsn_file = flags.Get("dsn-file");
  if (db && (dsn || dsn_file)) return Status::InvalidArgument("--db and --dsn/--dsn-file are exclusive");
  if (backend == "sqlite") {
    if (dsn || dsn_file) return Status::InvalidArgument("--dsn and --dsn-file need --backend postgres");
    if (!db) return Status::InvalidArgument("--db is required");
    options->backend = participant::Backend::kSqlite;
    options->db_path = *db;
    return Status::Ok();
  }
  if (backend != "postgres") {
    return Status::InvalidArgument("--backend must be sqlite or postgres, not '" + backend + "'");
  }
  if (dsn && dsn_file) return Status::InvalidArgument("--dsn and --dsn-file are exclusive");
  if (!dsn && !dsn_file) return Status::InvalidArgument("--backend postgres needs --dsn or --dsn-file");
  options->backend = participant::Backend::kPostgres;
  if (dsn) {
    options->dsn = *dsn;
  } else {
    std::ifstream in(*dsn_file);
    if (!in) return Status::InvalidArgument("--dsn-file: cannot read " + *dsn_file);
    std::stringstream text;
    text << in.rdbuf();
    options->dsn = text.str();
    while (!options->dsn.empty() && std::isspace(static_cast<unsigned char>(options->dsn.back()))) {
      options->dsn.pop_back();
    }
  }
  if (options->dsn.empty()) return Status::InvalidArgument("--dsn: must not be empty");
  return Status::Ok();
}

}  // namespace
}  // namespace commitd

int main(int argc, char** argv) {
  using namespace commitd;
  Flags parsed;
  if (auto exit_code = kProgram.Parse(argc, argv, kValued, kSwitches, &parsed)) return *exit_code;
  auto config = ApplyConfigFile(&parsed, kValued, kSwitches);
  if (!config.ok()) return UsageError(config.status().message());
  if (Status s = SetLogLevel(parsed); !s.ok()) return UsageError(s.message());
  const Flags* flags = &parsed;
  if (!flags->positional().empty()) return UsageError("unexpected argument " + flags->positional().front());
  participant::AgentOptions options;
  auto name = flags->Get("name");
  auto procedures = flags->Get("procedures");
  if (!name) return UsageError("--name is required");
  auto backend = commitd::ParseBackend(*flags, &options);
  if (!backend.ok()) return UsageError(backend.message());
  if (!procedures) return UsageError("--procedures is required");
  options.name = *name;
  options.procedures_path = *procedures;
  options.listen = flags->Get("listen").value_or("127.0.0.1:7101");
  options.allow_raw_sql = flags->Has("allow-raw-sql");
  options.advertise_url = flags->Get("advertise-url").value_or("");
  if (options.listen.empty()) return UsageError("--listen must not be empty");
  for (const auto& list : flags->GetAll("coordinator")) {
    for (const std::string& url : SplitCommas(list)) {
      auto valid = ValidatePeerUrl(url);
      if (!valid.ok()) return UsageError("--coordinator " + valid.status().message());
      options.coordinators.push_back(*valid);
    }
  }
  auto access = AccessSetupFromFlags(*flags, options.listen);
  if (!access.ok()) return UsageError(access.status().message());
  options.guard = std::move(access->guard);
  options.peer_token = std::move(access->peer_token);
  options.server_tls = std::move(access->server_tls);
  options.client_tls = std::move(access->client_tls);
  options.config = config.value();
  options.version = kVersion;
  options.commit = kGitCommit;
  log::SetComponent("agent/" + options.name);
  failpoint::InitFromEnvironment();
  for (const auto& f : flags->GetAll("failpoint")) failpoint::Enable(f);

  boost::asio::io_context io(1);
  participant::Agent agent(io, options);
  if (Status s = agent.Start(); !s.ok()) {
    log::Error("start_failed", {{"error", s.ToString()}});
    std::cerr << "commit-agent: " << s.ToString() << "\n";
    return 1;
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    log::Info("signal", {{"signal", sig}});
    agent.Shutdown([&io] { StopAfterFlush(io); });
  });
  io.run();
  return 0;
}
