// Public: the participant agent as a library.
//
// An Agent is a participant::Node (participant/node.h: the engine and every
// rule of the agent) on the SQLite ResourceManager with its own storage
// thread, served through the agent HTTP API of docs/protocol.md, all on an
// io_context the caller owns. commit-agent is one user; a C++ service that
// embeds it is another (examples/inventory):
//
//   boost::asio::io_context io(1);
//   participant::AgentOptions options;
//   options.name = "inventory";
//   options.db_path = "inventory.db";            // the service's own file
//   options.listen = "";                         // served by the service's router
//   options.advertise_url = "http://127.0.0.1:7201";
//   options.coordinators = {"http://127.0.0.1:7000"};
//   participant::Agent agent(io, options);
//   agent.RegisterProcedure("reserve", Reserve); // Status(ProcedureContext&)
//   agent.Mount(router);                         // before the service's server starts
//   if (Status s = agent.Start(); !s.ok()) ...
//   io.run();
//
// Thread: every method, route handler and callback runs on the io_context's
// thread (the io_context must be run by exactly one thread). Procedures run
// on the agent's storage thread. The service may read its tables through its
// own connections at any time and sees committed data only; it must not write
// rows that transactions may lock (see docs/participant.md).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/route_guard.h"
#include "common/tls.h"
#include "common/status.h"
#include "participant/procedure_context.h"

namespace commitd::http {
class Router;
}

namespace commitd::participant {

// Where the agent's data lives: a SQLite file (db_path) or a PostgreSQL
// database (dsn, docs/participant.md).
enum class Backend { kSqlite, kPostgres };

struct AgentOptions {
  std::string name;  // the participant name coordinators use
  // Address the agent serves its API on. Empty: it does not listen; the
  // service serves the routes Mount() added to its own router.
  std::string listen = "127.0.0.1:7101";
  // The URL coordinators reach the agent at (registration, prepare replies).
  // Empty: http://<listen host>:<bound port>. Required when listen is empty
  // and coordinators are given.
  std::string advertise_url;
  Backend backend = Backend::kSqlite;
  std::string db_path;  // kSqlite: must exist; the agent adds its _commitd_* tables
  std::string dsn;      // kPostgres: libpq conninfo; the agent adds its _commitd_pg_* tables
  // The procedures file (docs/participant.md). Empty: only procedures registered with
  // RegisterProcedure (and raw SQL, if allowed).
  std::string procedures_path;
  bool allow_raw_sql = false;
  std::vector<std::string> coordinators;  // URLs to register with and ask for decisions
  // Incoming: who may call which route (the table in agent.cc). Outgoing:
  // peer_token, presented to coordinators and other agents.
  auth::RouteGuard guard;
  std::string peer_token;
  tls::Context server_tls;  // set: serve HTTPS only
  tls::Context client_tls;  // set: https:// coordinators and peers, verified
  std::string version = "unknown";  // of this build: commitd_agent_build_info on /metrics
  std::string commit = "unknown";
  Config config;
};

class Agent {
 public:
  Agent(boost::asio::io_context& io, AgentOptions options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Adds a C++ procedure that ops call by name, like one from the procedures
  // file (see procedure_context.h). Before Start() only; InvalidArgument if
  // the name is empty or already taken.
  Status RegisterProcedure(std::string name, ProcedureFn fn);

  // Adds the agent API routes (/v1/prepare, /v1/commit, /v1/abort,
  // /v1/transactions, /v1/procedures, /v1/locks) to a service's router. The
  // service keeps its own /healthz and /metrics (MetricsText() gives the
  // agent's part). Before or after Start(); until Start() succeeds the routes
  // answer 503. The Agent must outlive every server using the router.
  void Mount(http::Router& router);

  // Opens the database, rebuilds locks from prepared records, starts serving
  // (when listening) and registering with the coordinators.
  Status Start();
  // Stops accepting; in-flight storage work completes; then `done` runs.
  void Shutdown(std::function<void()> done);

  uint16_t port() const;           // 0 when not listening
  const std::string& url() const;  // the advertised URL, once started
  // Prometheus text of the agent's metrics (what its own /metrics serves).
  std::string MetricsText() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace commitd::participant
