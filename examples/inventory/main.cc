// inventory-service: a small C++ service that embeds the commitd participant
// agent over its own SQLite file. One io thread serves the service's own API
// (GET /stock/{sku}, GET /stock, /healthz, /metrics) and the agent's routes
// (/v1/...) from one HTTP server; the agent's storage thread writes the file.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "common/access_flags.h"
#include "common/failpoint.h"
#include "common/flags.h"
#include "common/graceful_stop.h"
#include "common/http_options.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/sqlite_db.h"
#include "examples/inventory/stock_procedures.h"
#include "examples/inventory/stock_reader.h"
#include "participant/agent.h"

namespace {

using namespace commitd;

constexpr const char* kUsage = R"(usage: inventory-service --listen HOST:PORT --db FILE.db
                         [--name NAME] [--coordinator URL[,URL...]]
                         [--schema FILE.sql] [--config FILE] [--failpoint NAME]...
                         [--auth-file FILE] [--peer-token-file FILE] [--insecure]
                         [--tls-cert FILE --tls-key FILE] [--tls-ca FILE]
                         [--tls-client-cert FILE --tls-client-key FILE]
                         [--tls-require-client-cert]

Serves stock levels (GET /stock/{sku}) from FILE.db and takes part in commitd
transactions as participant NAME (default "inventory") with the procedures
"reserve" and "restock". FILE.db is created with the stock tables if missing
(--schema: the CREATE statements to run, default: built in).
)";

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS stock (
  sku      TEXT PRIMARY KEY,
  quantity INTEGER NOT NULL CHECK (quantity >= 0));
CREATE TABLE IF NOT EXISTS stock_journal (
  txid  TEXT NOT NULL,
  sku   TEXT NOT NULL,
  delta INTEGER NOT NULL,
  PRIMARY KEY (txid, sku));
)sql";

int UsageError(const std::string& message) {
  std::cerr << "inventory-service: " << message << "\n\n" << kUsage;
  return 2;
}

Status CreateSchema(const std::string& db_path, const std::string& schema_path) {
  std::string schema = kSchema;
  if (!schema_path.empty()) {
    std::ifstream in(schema_path);
    if (!in) return Status::IoError("cannot read " + schema_path);
    std::ostringstream text;
    text << in.rdbuf();
    schema = text.str();
  }
  auto db = sqlite::Database::Open(db_path);
  if (!db.ok()) return db.status();
  return (*db)->Exec(schema);
}

std::vector<std::string> SplitUrls(const std::vector<std::string>& lists) {
  std::vector<std::string> urls;
  for (const auto& list : lists) {
    std::stringstream in(list);
    for (std::string url; std::getline(in, url, ',');) {
      while (!url.empty() && url.back() == '/') url.pop_back();
      if (!url.empty()) urls.push_back(url);
    }
  }
  return urls;
}

}  // namespace

int main(int argc, char** argv) {
  std::set<std::string> valued = {"name", "listen", "db", "coordinator", "schema", "config", "failpoint"};
  valued.insert(AccessValuedFlags().begin(), AccessValuedFlags().end());
  std::set<std::string> switches = {"help"};
  switches.insert(AccessSwitches().begin(), AccessSwitches().end());
  auto flags = Flags::Parse(argc, argv, valued, switches);
  if (!flags.ok()) return UsageError(flags.status().message());
  if (flags->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  auto listen = flags->Get("listen");
  auto db_path = flags->Get("db");
  if (!listen) return UsageError("--listen is required");
  if (!db_path) return UsageError("--db is required");
  auto address = http::ParseHostPort(*listen);
  if (!address.ok()) return UsageError(address.status().message());

  participant::AgentOptions options;
  options.name = flags->Get("name").value_or("inventory");
  options.db_path = *db_path;
  options.listen = "";  // the service's server below serves the agent's routes
  options.coordinators = SplitUrls(flags->GetAll("coordinator"));
  auto access = AccessSetupFromFlags(*flags, *listen);
  if (!access.ok()) return UsageError(access.status().message());
  options.guard = std::move(access->guard);
  options.peer_token = std::move(access->peer_token);
  options.client_tls = std::move(access->client_tls);
  if (auto path = flags->Get("config")) {
    auto config = Config::Load(*path);
    if (!config.ok()) return UsageError(config.status().message());
    options.config = config.value();
  }
  log::SetComponent("inventory/" + options.name);
  failpoint::InitFromEnvironment();
  for (const auto& f : flags->GetAll("failpoint")) failpoint::Enable(f);

  auto fail = [](const Status& s) {
    log::Error("start_failed", {{"error", s.ToString()}});
    std::cerr << "inventory-service: " << s.ToString() << "\n";
    return 1;
  };
  if (Status s = CreateSchema(*db_path, flags->Get("schema").value_or("")); !s.ok()) return fail(s);

  boost::asio::io_context io(1);
  http::Router router;
  // Declared before the server so that it outlives it (its routes are in router).
  std::unique_ptr<participant::Agent> agent;
  http::ServerOptions so = http::ServerOptionsFor(options.config, address->first, address->second);
  so.tls = access->server_tls;
  http::Server server(io, so, router);
  if (Status s = server.Start(); !s.ok()) return fail(s);
  // Requests are served only once io runs, after everything below is set up.
  options.advertise_url = std::string(so.tls ? "https://" : "http://") + address->first + ":" + std::to_string(server.port());

  agent = std::make_unique<participant::Agent>(io, options);
  if (Status s = inventory::RegisterStockProcedures(*agent); !s.ok()) return fail(s);
  agent->Mount(router);
  auto reader = inventory::StockReader::Open(*db_path);
  if (!reader.ok()) return fail(reader.status());
  (*reader)->Mount(router);
  router.Add("GET", "/healthz", [&](http::Request, http::Responder r) {
    r(http::JsonResponse(200, {{"status", "ok"}, {"name", options.name}}));
  });
  router.Add("GET", "/metrics", [&](http::Request, http::Responder r) {
    http::Response response;
    response.content_type = "text/plain; version=0.0.4";
    response.body = agent->MetricsText();
    r(std::move(response));
  });
  if (Status s = agent->Start(); !s.ok()) return fail(s);
  log::Info("inventory_started", {{"url", agent->url()}, {"db", *db_path}});

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    log::Info("signal", {{"signal", sig}});
    server.Stop();
    agent->Shutdown([&io] { StopAfterFlush(io); });
  });
  io.run();
  return 0;
}
