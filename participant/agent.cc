#include "participant/agent.h"

#include <algorithm>
#include <cstdlib>

#include "common/batch_writer.h"
#include "common/failpoint.h"
#include "common/http_batch.h"
#include "common/http_client.h"
#include "common/http_options.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/openapi_document.h"
#include "common/sqlite_db.h"
#include "common/asio_timers.h"
#include "participant/http_transports.h"
#include "participant/node.h"
#include "participant/postgres_store.h"
#include "participant/request_traces.h"
#include "participant/resource_manager.h"
#include "participant/sqlite_store.h"
#include "participant/timed_store.h"

namespace commitd::participant {

struct Agent::Impl {
  Impl(boost::asio::io_context& io, AgentOptions options)
      : io(io),
        options(std::move(options)),
        client(io, ClientOptions(this->options)),
        coordinator_transport(client, this->options.peer_token),
        peer_transport(client, this->options.peer_token, this->options.config.request_timeout_ms),
        timers(io),
        storage_batch_size(registry.AddHistogram("commitd_agent_storage_batch_size",
                                                 "Jobs per group commit of the agent database.",
                                                 metrics::SizeBuckets())),
        fsync_seconds(registry.AddHistogram(
            "commitd_agent_fsync_seconds",
            "Duration of the COMMIT (with its fsync) of a storage batch that synced, or of an fsync of the WAL alone.",
            metrics::LatencyBuckets())),
        apply_commit_seconds(registry.AddHistogram(
            "commitd_agent_apply_seconds",
            "A decision applied durably: from reaching storage to synced (queue wait included).",
            metrics::LatencyBuckets(), {{"outcome", "commit"}})),
        apply_abort_seconds(registry.AddHistogram("commitd_agent_apply_seconds", "", metrics::LatencyBuckets(),
                                                  {{"outcome", "abort"}})) {
    metrics::AddProcessMetrics(registry);
    metrics::AddBuildInfo(registry, "commitd_agent", this->options.version, this->options.commit);
  }

  static http::ClientOptions ClientOptions(const AgentOptions& options) {
    http::ClientOptions co = http::ClientOptionsFor(options.config);
    co.tls = options.client_tls;
    return co;
  }

  boost::asio::io_context& io;
  AgentOptions options;
  std::string self_url;
  std::unique_ptr<sqlite::Database> db;   // used only by the storage thread once writer exists
  std::unique_ptr<ResourceManager> rm;    // storage thread only, except const Validate()
  std::unique_ptr<BatchWriter> writer;
  http::Router own_router;  // routes of the agent's own server, when it listens
  std::unique_ptr<http::Server> server;
  http::Client client;
  HttpCoordinatorTransport coordinator_transport;
  HttpPeerTransport peer_transport;
  AsioTimers timers;
  // GET /metrics. The storage thread records batch sizes and fsync latencies
  // (lock-free); everything else is read or recorded on the io thread.
  metrics::Registry registry;
  metrics::Histogram& storage_batch_size;
  metrics::Histogram& fsync_seconds;
  metrics::Histogram& apply_commit_seconds;
  metrics::Histogram& apply_abort_seconds;
  std::unique_ptr<Store> backend_store;  // a SqliteStore or a PostgresStore
  PostgresStore* pg_store = nullptr;     // backend_store, when the backend is PostgreSQL
  std::unique_ptr<TimedStore> store;
  RequestTraces traces;  // outlives the node: its replies and events use it
  std::unique_ptr<Node> node;  // declared last: it goes first
  Procedures callables;        // registered before Start(), then moved into the RM
  bool started = false;
  bool stopping = false;

  Status Start();
  void AddNodeMetrics();
  void RegisterRoutes(http::Router& router, bool with_health);
  // Wraps a handler of the agent API: 503 before Start() and after Shutdown().
  http::Handler Guarded(http::Handler handler);
  // router.Add with the route's access rule (kRoutes) checked first.
  void Add(http::Router& router, const std::string& method, const std::string& pattern, http::Handler handler);
  void HandleHeld(http::Request req, http::Responder respond);
  void HandleLocks(http::Responder respond);
  std::string MetricsText() const;
};

namespace {

using auth::Permission;

wire::BodySyntax SyntaxOf(const http::Request& req) {
  return req.body_checked_json ? wire::BodySyntax::kChecked : wire::BodySyntax::kUnchecked;
}

// Every route but /healthz and /readyz, and who may call it (docs/security.md).
// POST /v1/batch needs Permission::kProtocol, and each of its sub-requests its own.
constexpr auth::RouteRule kRoutes[] = {
    {"POST", "/v1/prepare", Permission::kProtocol},
    {"POST", "/v1/precommit", Permission::kProtocol},
    {"POST", "/v1/commit", Permission::kProtocol},
    {"POST", "/v1/abort", Permission::kProtocol},
    {"POST", "/v1/adopt", Permission::kProtocol},
    {"GET", "/v1/transactions/{txid}", Permission::kProtocol},
    {"GET", "/v1/transactions", Permission::kProtocol},
    {"GET", "/v1/procedures", Permission::kProtocol},
    {"GET", "/v1/locks", Permission::kReadCluster},
    {"GET", "/metrics", Permission::kReadCluster},
};

ReplyFn Render(http::Responder respond) {
  return [respond = std::move(respond)](NodeReply reply) {
    if (const auto* vote = std::get_if<wire::Vote>(&reply.body)) {
      http::Response response;
      response.status = reply.status;
      response.body = wire::VoteText(*vote);
      respond(std::move(response));
      return;
    }
    respond(http::JsonResponse(reply.status, std::get<nlohmann::json>(reply.body)));
  };
}
}  // namespace

Agent::Agent(boost::asio::io_context& io, AgentOptions options)
    : impl_(std::make_unique<Impl>(io, std::move(options))) {}

Agent::~Agent() {
  // The node goes first; the writer's thread must end before the RM and the database go.
  impl_->node.reset();
  impl_->writer.reset();
}

Status Agent::RegisterProcedure(std::string name, ProcedureFn fn) {
  if (impl_->started) return Status::InvalidArgument("procedure '" + name + "': register procedures before Start()");
  return impl_->callables.Add(std::move(name), std::move(fn));
}

void Agent::Mount(http::Router& router) { impl_->RegisterRoutes(router, false); }
Status Agent::Start() { return impl_->Start(); }
uint16_t Agent::port() const { return impl_->server ? impl_->server->port() : 0; }
const std::string& Agent::url() const { return impl_->self_url; }
std::string Agent::MetricsText() const { return impl_->started ? impl_->MetricsText() : std::string(); }

void Agent::Shutdown(std::function<void()> done) {
  Impl& s = *impl_;
  s.stopping = true;
  if (s.server) s.server->Stop();
  if (s.node) s.node->Stop();
  s.timers.Cancel();
  s.client.CloseIdle();
  if (s.writer) s.writer->Flush();
  // Flush posted the last completions; let them run before reporting done.
  auto finished = [&s, done = std::move(done)]() mutable { boost::asio::post(s.io, std::move(done)); };
  if (s.pg_store) {
    s.pg_store->WhenIdle(std::move(finished));
  } else {
    finished();
  }
}

Status Agent::Impl::Start() {
  if (started) return Status::InvalidArgument("the agent is already started");
  std::pair<std::string, uint16_t> addr;
  if (!options.listen.empty()) {
    auto parsed = http::ParseHostPort(options.listen);
    if (!parsed.ok()) return parsed.status();
    addr = parsed.value();
  } else if (options.advertise_url.empty() && !options.coordinators.empty()) {
    return Status::InvalidArgument("advertise_url is required when the agent does not listen itself");
  }
  Procedures procedures;
  if (!options.procedures_path.empty()) {
    auto loaded = Procedures::Load(options.procedures_path);
    if (!loaded.ok()) return loaded.status();
    procedures = std::move(loaded).value();
  } else if (callables.Names().empty() && !options.allow_raw_sql) {
    return Status::InvalidArgument("no procedures: give a procedures file or register procedures");
  }
  for (const std::string& name : callables.Names()) {
    const Procedure* callable = callables.Find(name);
    if (Status s = procedures.Add(name, callable->callable); !s.ok()) {
      return Status::InvalidArgument("procedure '" + name + "' is both registered and in " + options.procedures_path);
    }
  }
  if (options.backend == Backend::kPostgres) {
    PostgresStoreOptions po{options.name, options.dsn, options.allow_raw_sql, options.config.pg_connections,
                            options.config.pg_lock_timeout_ms, options.config.sql_statement_timeout_ms};
    auto opened = PostgresStore::Open(
        std::move(po), std::move(procedures), [this] { return timers.NowMs(); },
        io.get_executor());
    if (!opened.ok()) return opened.status();
    pg_store = opened->get();
    backend_store = std::move(opened).value();
  } else {
    sqlite::OpenOptions oo;
    oo.create = false;
    oo.busy_timeout_ms = static_cast<int>(options.config.busy_timeout_ms);
    auto opened = sqlite::Database::Open(options.db_path, oo);
    if (!opened.ok()) return opened.status();
    db = std::move(opened).value();
    auto rm_opened =
        ResourceManager::Open(*db, std::move(procedures), {options.allow_raw_sql, options.config.sql_statement_timeout_ms});
    if (!rm_opened.ok()) return rm_opened.status();
    rm = std::move(rm_opened).value();
    // A batch rolled back took back the records its prepares wrote and kept
    // the ones its commits deleted: the lock table follows the records.
    writer = std::make_unique<BatchWriter>(*db, io.get_executor(), static_cast<std::size_t>(options.config.max_batch),
                                           [this](sqlite::Database&) {
                                             if (Status s = rm->RebuildLocks(); !s.ok()) {
                                               // Serving on would risk a key nobody holds: a restart rebuilds it.
                                               log::Error("lock_table_rebuild_failed", {{"error", s.ToString()}});
                                               std::abort();
                                             }
                                           });
    writer->set_metrics({&storage_batch_size, &fsync_seconds});
    backend_store = std::make_unique<SqliteStore>(*rm, *writer, timers);
  }
  store = std::make_unique<TimedStore>(*backend_store, apply_commit_seconds, apply_abort_seconds);

  self_url = options.advertise_url;
  if (!options.listen.empty()) {
    http::ServerOptions so = http::ServerOptionsFor(options.config, addr.first, addr.second);
    so.tls = options.server_tls;
    RegisterRoutes(own_router, true);
    server = std::make_unique<http::Server>(io, so, own_router);
    if (Status s = server->Start(); !s.ok()) return s;
    if (self_url.empty()) {
      self_url = std::string(options.server_tls ? "https://" : "http://") + addr.first + ":" +
                 std::to_string(server->port());
    }
  }
  while (!self_url.empty() && self_url.back() == '/') self_url.pop_back();
  node = std::make_unique<Node>(NodeOptions::From(options.config, options.name, self_url, options.coordinators),
                                *store, coordinator_transport, peer_transport, timers);
  node->set_event_log([this](log::Level level, std::string_view event, const nlohmann::json& fields) {
    traces.Write(level, event, fields);
  });
  if (Status s = node->Start(); !s.ok()) {
    if (server) server->Stop();
    return s;
  }
  AddNodeMetrics();
  started = true;
  log::Info("agent_started", {{"name", options.name},
                              {"url", self_url},
                              {"listening", !options.listen.empty()},
                              {"backend", options.backend == Backend::kPostgres ? "postgres" : "sqlite"},
                              {"db", options.backend == Backend::kPostgres ? "" : options.db_path},
                              {"recovered_prepared", node->recovered()},
                              {"locks", node->locks().size()}});
  return Status::Ok();
}

http::Handler Agent::Impl::Guarded(http::Handler handler) {
  return [this, handler = std::move(handler)](http::Request req, http::Responder r) {
    if (!started || stopping) {
      r(http::ErrorResponse(503, "not_ready", started ? "the agent is shutting down" : "the agent is not started"));
      return;
    }
    handler(std::move(req), std::move(r));
  };
}

void Agent::Impl::Add(http::Router& router, const std::string& method, const std::string& pattern,
                      http::Handler handler) {
  auth::AddGuarded(router, options.guard, kRoutes, method, pattern, std::move(handler));
}

void Agent::Impl::RegisterRoutes(http::Router& router, bool with_health) {
  // The coordinator coalesces messages to this agent into POST /v1/batch under load.
  http::AddBatchRoute(router, io, "/v1/batch", 4096, [this](const http::Request& req, const http::Responder& r) {
    return options.guard.Admit(req, Permission::kProtocol, r);
  });
  Add(router, "POST", "/v1/prepare", Guarded([this](http::Request req, http::Responder r) {
    auto parsed = wire::ParsePrepareRequest(req.body, SyntaxOf(req));
    if (!parsed.ok()) {
      r(http::ErrorResponse(400, "invalid_request", parsed.status().message()));
      return;
    }
    const std::string txid = parsed->txid;
    node->Prepare(std::move(parsed).value(), traces.Track("prepare", txid, req, Render(std::move(r))));
  }));
  // POST /v1/commit, /v1/precommit: {"txid": ..., "commit_key": ...}.
  auto txid_route = [this](void (Node::*call)(const wire::CommitRequest&, ReplyFn), std::string_view name) {
    return Guarded([this, call, name](http::Request req, http::Responder r) {
      auto txid = wire::ParseCommitRequest(req.body, SyntaxOf(req));
      if (!txid.ok()) {
        r(http::ErrorResponse(400, "invalid_request", txid.status().message()));
        return;
      }
      if (failpoint::Active("agent.ignore_decisions")) {
        r(http::ErrorResponse(503, "failpoint", "agent.ignore_decisions is set"));
        return;
      }
      ((*node).*call)(*txid, traces.Track(name, txid->txid, req, Render(std::move(r))));
    });
  };
  Add(router, "POST", "/v1/precommit", txid_route(&Node::Precommit, "precommit"));
  // One transaction's state here: what a peer running 3PC termination asks.
  Add(router, "GET", "/v1/transactions/{txid}", Guarded([this](http::Request req, http::Responder r) {
    const std::string txid = req.path_params["txid"];
    if (!wire::IsValidTxid(txid)) {
      r(http::ErrorResponse(400, "invalid_request", wire::kInvalidTxidMessage));
      return;
    }
    node->LookUpState(txid, [txid, r = std::move(r)](Result<std::string> state) {
      if (!state.ok()) {
        r(http::ErrorResponse(503, "storage_error", state.status().message()));
        return;
      }
      r(http::JsonResponse(200, {{"txid", txid}, {"state", *state}}));
    });
  }));
  Add(router, "POST", "/v1/commit", txid_route(&Node::Commit, "commit"));
  Add(router, "POST", "/v1/abort", Guarded([this](http::Request req, http::Responder r) {
    auto parsed = wire::ParseAbortRequest(req.body);
    if (!parsed.ok()) {
      r(http::ErrorResponse(400, "invalid_request", parsed.status().message()));
      return;
    }
    if (failpoint::Active("agent.ignore_decisions")) {
      r(http::ErrorResponse(503, "failpoint", "agent.ignore_decisions is set"));
      return;
    }
    node->Abort(*parsed, traces.Track("abort", parsed->txid, req, Render(std::move(r))));
  }));
  // A coordinator whose decision log replaced the record's takes it over (Engine::OnAdopt).
  Add(router, "POST", "/v1/adopt", Guarded([this](http::Request req, http::Responder r) {
    auto parsed = wire::ParseAdoptRequest(req.body);
    if (!parsed.ok()) {
      r(http::ErrorResponse(400, "invalid_request", parsed.status().message()));
      return;
    }
    node->Adopt(*parsed, traces.Track("adopt", parsed->txid, req, Render(std::move(r))));
  }));
  Add(router, "GET", "/v1/transactions", Guarded([this](http::Request req, http::Responder r) {
    HandleHeld(std::move(req), std::move(r));
  }));
  Add(router, "GET", "/v1/procedures", Guarded([this](http::Request, http::Responder r) {
    r(http::JsonResponse(200, {{"name", options.name},
                               {"procedures", node->ProcedureNames()},
                               {"allow_raw_sql", options.allow_raw_sql},
                               {"outcome_retention_ms", options.config.outcome_retention_ms}}));
  }));
  Add(router, "GET", "/v1/locks", Guarded([this](http::Request, http::Responder r) { HandleLocks(std::move(r)); }));
  if (!with_health) return;
  router.Add("GET", "/healthz", [this](http::Request, http::Responder r) {
    r(http::JsonResponse(200, {{"status", "ok"}, {"name", options.name}}));
  });
  openapi::AddRoute(router, openapi::AgentDocument());  // open, like /healthz
  // Ready: storage open, recovery done (both by Start()), registered with a coordinator.
  router.Add("GET", "/readyz", [this](http::Request, http::Responder r) {
    if (stopping) {
      r(http::ErrorResponse(503, "stopping", "the agent is shutting down"));
    } else if (!started) {
      r(http::ErrorResponse(503, "starting", "storage is not open or recovery is not done yet"));
    } else if (!node->registered()) {
      r(http::ErrorResponse(503, "not_registered", "no coordinator has accepted this agent's registration yet"));
    } else {
      r(http::JsonResponse(200, {{"status", "ready"}, {"name", options.name}}));
    }
  });
  Add(router, "GET", "/metrics", [this](http::Request, http::Responder r) {
    http::Response response;
    response.content_type = "text/plain; version=0.0.4";
    response.body = started ? MetricsText() : std::string();
    r(std::move(response));
  });
}

void Agent::Impl::HandleHeld(http::Request req, http::Responder respond) {
  std::string state = req.query.count("state") ? req.query["state"] : "";
  if (!state.empty() && state != "prepared" && state != "conflict") {
    respond(http::ErrorResponse(400, "invalid_request", "state: must be prepared or conflict"));
    return;
  }
  nlohmann::json list = nlohmann::json::array();
  // "prepared": everything whose prepared record is durable and not yet resolved.
  for (const auto& v : node->HeldRecords()) {
    if (state == "conflict" && v.state != HeldState::kConflict) continue;
    list.push_back(HeldJson(v));
  }
  respond(http::JsonResponse(200, {{"transactions", std::move(list)}}));
}

void Agent::Impl::HandleLocks(http::Responder respond) {
  std::vector<std::pair<std::string, std::string>> held;
  for (auto& entry : node->locks().Snapshot()) held.push_back(std::move(entry));
  std::sort(held.begin(), held.end());
  nlohmann::json list = nlohmann::json::array();
  for (auto& [key, txid] : held) list.push_back({{"key", std::move(key)}, {"txid", std::move(txid)}});
  http::Response r;
  r.body = nlohmann::json{{"count", held.size()}, {"locks", std::move(list)}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  respond(std::move(r));
}

void Agent::Impl::AddNodeMetrics() {
  const Node* n = node.get();
  const NodeCounters* c = &n->counters();
  auto counter = [this](const char* name, const char* help, metrics::Labels labels, const uint64_t* value) {
    registry.AddCounterFn(name, help, std::move(labels), [value] { return static_cast<double>(*value); });
  };
  counter("commitd_agent_prepares_total", "Prepare requests received.", {}, &c->prepares);
  counter("commitd_agent_votes_total", "Votes by result (no: no votes and tombstones).", {{"result", "yes"}},
          &c->votes_yes);
  counter("commitd_agent_votes_total", "", {{"result", "no"}}, &c->votes_no);
  counter("commitd_agent_commits_total", "Commits applied.", {}, &c->commits);
  counter("commitd_agent_aborts_total", "Prepared records discarded by abort.", {}, &c->aborts);
  counter("commitd_agent_precommits_total", "3PC precommits made durable.", {}, &c->precommits);
  counter("commitd_agent_termination_rounds_total",
          "3PC termination rounds: the coordinator was silent, so the other participants were asked.", {},
          &c->termination_rounds);
  counter("commitd_agent_termination_decisions_total",
          "3PC transactions this agent decided by termination (and told the other participants).", {},
          &c->termination_decisions);
  counter("commitd_agent_apply_conflicts_total",
          "Transactions whose changeset did not apply cleanly, each counted once.", {}, &c->apply_conflicts);
  registry.AddCounterFn("commitd_agent_apply_conflict_attempts_total",
                        "Commit attempts that found a changeset conflict (retries included).", {},
                        [n] { return static_cast<double>(n->conflict_attempts()); });
  auto held = [n](bool (*keep)(const HeldView&)) {
    std::size_t count = 0;
    for (const auto& v : n->Held()) count += keep(v) ? 1 : 0;
    return static_cast<double>(count);
  };
  registry.AddGaugeFn("commitd_agent_conflicts_held", "Prepared records in state conflict now.", {},
                      [held] { return held([](const HeldView& v) { return v.state == HeldState::kConflict; }); });
  registry.AddGaugeFn("commitd_agent_transactions_held", "Transactions held on this agent, in any state.", {},
                      [held] { return held([](const HeldView&) { return true; }); });
  registry.AddGaugeFn("commitd_agent_prepared_records",
                      "Durable prepared records (prepared, precommitted or conflict) waiting for a decision.", {},
                      [held] {
                        return held([](const HeldView& v) { return v.record_durable; });
                      });
  registry.AddGaugeFn("commitd_agent_locks_held", "Lock keys held by prepared transactions.", {},
                      [n] { return static_cast<double>(n->locks().size()); });
  const BatchWriter* w = writer.get();
  if (w == nullptr) return;  // PostgreSQL: its own server batches and syncs
  registry.AddGaugeFn("commitd_agent_storage_queue_depth", "Storage jobs waiting for the next batch.", {},
                      [w] { return static_cast<double>(w->queue_depth()); });
  registry.AddCounterFn("commitd_agent_storage_batches_total", "Group commits of the agent database.", {},
                        [w] { return static_cast<double>(w->stats().batches); });
  registry.AddCounterFn("commitd_agent_storage_jobs_total", "Jobs run by the storage thread.", {},
                        [w] { return static_cast<double>(w->stats().jobs); });
}

std::string Agent::Impl::MetricsText() const { return registry.Render(); }

}  // namespace commitd::participant
