// The coordinator's HTTP adapter: routes, bearer check, request bodies parsed
// into typed values, coordinator::Node called, its answers rendered
// (api_render.h). A group member that is not the ready leader relays client
// requests to the leader.
#include "coordinator/service.h"

#include <chrono>
#include <filesystem>

#include "common/batching_client.h"
#include "common/http_client.h"
#include "common/http_options.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/peer_url.h"
#include "common/openapi_document.h"
#include "coordinator/api_render.h"
#include "coordinator/dashboard.h"
#include "common/asio_timers.h"
#include "coordinator/group_leadership.h"
#include "coordinator/http_agent_transport.h"
#include "coordinator/node.h"
#include "coordinator/replicated_decision_log.h"
#include "coordinator/service_metrics.h"
#include "coordinator/sqlite_decision_log.h"
#include "common/json_parse.h"

namespace commitd::coordinator {
namespace {

using auth::Permission;
using auth::PeerSelf;

// Every route but the open ones (/healthz, /readyz, /openapi.json, /ui/), and
// who may call it (docs/security.md).
constexpr auth::RouteRule kRoutes[] = {
    {"POST", "/v1/transactions", Permission::kSubmit},
    {"GET", "/v1/transactions", Permission::kReadTransactions},
    // An agent resolving an in-doubt transaction asks with ?participant=<its name>.
    {"GET", "/v1/transactions/{txid}", Permission::kReadTransactions, PeerSelf::kQueryParticipant},
    {"GET", "/v1/participants", Permission::kReadCluster},
    // An agent registers itself under its token's name.
    {"PUT", "/v1/participants/{name}", Permission::kAdminister, PeerSelf::kPathName},
    {"DELETE", "/v1/participants/{name}", Permission::kAdminister},
    {"POST", "/v1/admin/retry-now", Permission::kAdminister},
    {"POST", "/v1/admin/transactions/{txid}/force", Permission::kAdminister},
    {"POST", "/v1/admin/transactions/{txid}/close", Permission::kAdminister},
    // Agents read the members' URLs: prepares are taken from them.
    {"GET", "/v1/cluster", Permission::kReadCluster, PeerSelf::kAnyPeer},
    {"POST", "/v1/cluster/members", Permission::kAdminister},
    {"DELETE", "/v1/cluster/members/{id}", Permission::kAdminister},
    {"POST", "/v1/cluster/transfer-leader", Permission::kAdminister},
    {"GET", "/metrics", Permission::kReadCluster},
    {"POST", "/v1/raft", Permission::kProtocol},
};

}  // namespace

struct Service::Impl {
  Impl(boost::asio::io_context& io, ServiceOptions options)
      : io(io),
        options(std::move(options)),
        client(io, ClientOptions(this->options)),
        peers(client, io),
        agents(client, peers, this->options.peer_token),
        timers(io),
        metrics(this->options.version, this->options.commit) {
    agents.set_observer(&metrics);
  }

  static http::ClientOptions ClientOptions(const ServiceOptions& options) {
    http::ClientOptions co = http::ClientOptionsFor(options.config);
    co.tls = options.client_tls;
    return co;
  }

  boost::asio::io_context& io;
  ServiceOptions options;
  std::string self_url;
  http::Router router;
  std::unique_ptr<http::Server> server;
  http::Client client;
  http::BatchingClient peers;  // protocol messages to agents, coalesced per agent under load
  HttpAgentTransport agents;
  AsioTimers timers;
  ServiceMetrics metrics;  // GET /metrics; the transport reports to it, so it outlives nothing it is given
  SystemEntropy entropy;
  // Exactly one of single_log (no --peers) and group_log (a Raft group).
  std::unique_ptr<SqliteDecisionLog> single_log;
  std::unique_ptr<ReplicatedDecisionLog> group_log;
  std::unique_ptr<GroupLeadership> leadership;
  std::unique_ptr<Node> node;
  uint64_t forwarded = 0;

  Status Start();
  Status OpenGroupLog();
  void AttachMetrics();
  void RegisterRoutes();
  // router.Add with the route's access rule (kRoutes) checked first.
  void Add(const std::string& method, const std::string& pattern, http::Handler handler);
  void Respond(const http::Responder& respond, api::Rendered rendered);
  // The coordinator's span for a client request: a child of the request's
  // valid traceparent, else a new trace; every answer carries it back.
  TraceContext TraceOf(const http::Request& req);
  static http::Responder Traced(http::Responder respond, const TraceContext& trace, boost::asio::io_context& io);

  void HandleSubmit(http::Request req, http::Responder respond);
  void HandleGetTransaction(http::Request req, http::Responder respond);
  void HandleListTransactions(http::Request req, http::Responder respond);
  void HandleListParticipants(http::Responder respond);
  void HandlePutParticipant(http::Request req, http::Responder respond);
  void HandleForce(http::Request req, http::Responder respond);
  void HandleMetrics(http::Responder respond);
  // Wraps a client-API handler: on a group member that is not the ready
  // leader, the request goes to the leader instead.
  http::Handler Leading(http::Handler handler);
  http::Handler GroupAdmin(http::Handler handler);
  void Forward(http::Request req, http::Responder respond);
};

Service::Service(boost::asio::io_context& io, ServiceOptions options)
    : impl_(std::make_unique<Impl>(io, std::move(options))) {}
Service::~Service() = default;
Status Service::Start() { return impl_->Start(); }
uint16_t Service::port() const { return impl_->server ? impl_->server->port() : 0; }

void Service::Shutdown(std::function<void()> done) {
  Impl& s = *impl_;
  s.node->Shutdown([&s, done = std::move(done)] {
    if (s.server) s.server->Stop();
    if (s.group_log) s.group_log->Stop();
    s.timers.Cancel();
    s.client.CloseIdle();
    done();
  });
}

TraceContext Service::Impl::TraceOf(const http::Request& req) {
  auto header = req.Header(TraceContext::kHeader);
  std::optional<TraceContext> given = header ? TraceContext::Parse(*header) : std::nullopt;
  return given ? given->Child(entropy) : TraceContext::Generate(entropy);
}

http::Responder Service::Impl::Traced(http::Responder respond, const TraceContext& trace,
                                      boost::asio::io_context& io) {
  return http::Responder::FromCallback(io, [respond = std::move(respond), header = trace.Format()](http::Response r) {
    r.headers.emplace_back(TraceContext::kHeader, header);
    respond(std::move(r));
  });
}

void Service::Impl::Respond(const http::Responder& respond, api::Rendered rendered) {
  http::Response r;
  r.status = rendered.status;
  r.body = TextOf(std::move(rendered.body));
  if (rendered.retry_after) r.headers.emplace_back("Retry-After", std::to_string(options.config.retry_after_s));
  respond(std::move(r));
}

Status Service::Impl::OpenGroupLog() {
  ReplicatedLogOptions ro;
  ro.self_id = options.id;
  ro.members = options.peers;
  ro.join = options.join;
  ro.token = options.peer_token;
  ro.client_tls = options.client_tls;
  ro.election_timeout_ms = options.config.raft_election_timeout_ms;
  ro.heartbeat_ms = options.config.raft_heartbeat_ms;
  ro.tick_ms = std::min<int64_t>(options.config.tick_ms, options.config.raft_heartbeat_ms);
  ro.max_batch = static_cast<std::size_t>(options.config.max_batch);
  ro.snapshot_entries = static_cast<raft::Index>(std::max<int64_t>(1, options.config.raft_snapshot_entries));
  ro.log_keep_entries = static_cast<raft::Index>(std::max<int64_t>(0, options.config.raft_log_keep_entries));
  auto opened = ReplicatedDecisionLog::Open(options.data_dir + "/raft.db", io, ro);
  if (!opened.ok()) return opened.status();
  group_log = std::move(opened).value();
  leadership = std::make_unique<GroupLeadership>(*group_log, options.peers);
  for (const auto& m : options.peers) {
    if (m.id == options.id) self_url = m.url;
  }
  return Status::Ok();
}

Status Service::Impl::Start() {
  auto addr = http::ParseHostPort(options.listen);
  if (!addr.ok()) return addr.status();
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) return Status::IoError("cannot create data dir " + options.data_dir + ": " + ec.message());
  const bool in_group = options.peers.size() > 1 || options.join;
  if (in_group) {
    if (Status s = OpenGroupLog(); !s.ok()) return s;
  } else {
    auto opened = SqliteDecisionLog::Open(options.data_dir + "/decisions.db", io.get_executor(), entropy,
                                          static_cast<std::size_t>(options.config.max_batch));
    if (!opened.ok()) return opened.status();
    single_log = std::move(opened).value();
  }
  RegisterRoutes();
  if (group_log) {
    Add("POST", "/v1/raft", [this](http::Request req, http::Responder r) {
      group_log->OnRaftMessages(req.body, std::move(r));
    });
  }
  http::ServerOptions so = http::ServerOptionsFor(options.config, addr->first, addr->second);
  so.tls = options.server_tls;
  server = std::make_unique<http::Server>(io, so, router);
  if (Status s = server->Start(); !s.ok()) return s;
  if (self_url.empty()) {
    self_url = std::string(options.server_tls ? "https://" : "http://") + addr->first + ":" +
               std::to_string(server->port());
  }

  NodeOptions no = NodeOptionsFor(options.config, options.id, self_url);
  no.participants = options.participants;
  DecisionLog& log = group_log ? static_cast<DecisionLog&>(*group_log) : *single_log;
  node = std::make_unique<Node>(std::move(no), log, agents, timers, entropy, leadership.get());
  agents.set_trace_source([this](const std::string& txid) { return node->TraceFor(txid, entropy); });
  if (single_log) {
    single_log->AddOwnUrl(self_url, [](Status s) {
      if (!s.ok()) log::Error("own_url_write_failed", {{"error", s.ToString()}});
    });
  }
  AttachMetrics();
  if (Status s = node->Start(); !s.ok()) return s;
  if (group_log) group_log->Start();
  return Status::Ok();
}

void Service::Impl::AttachMetrics() {
  MetricSources sources;
  sources.node = node.get();
  auto writer_stats = [this] { return group_log ? group_log->writer_stats() : single_log->writer_stats(); };
  sources.log_batches = [writer_stats] { return writer_stats().batches; };
  sources.log_records = [writer_stats] { return writer_stats().jobs; };
  sources.peer_messages = [this] { return peers.stats().requests; };
  sources.peer_exchanges = [this] { return peers.stats().exchanges; };
  sources.forwarded = [this] { return forwarded; };
  if (group_log) {
    sources.raft = &group_log->driver();
    group_log->set_batch_metrics(metrics.decision_log_batch_metrics());
  } else {
    single_log->set_batch_metrics(metrics.decision_log_batch_metrics());
  }
  metrics.Attach(std::move(sources));
}

void Service::Impl::Add(const std::string& method, const std::string& pattern, http::Handler handler) {
  auth::AddGuarded(router, options.guard, kRoutes, method, pattern, std::move(handler));
}

void Service::Impl::RegisterRoutes() {
  Add("POST", "/v1/transactions", Leading([this](http::Request req, http::Responder r) {
    HandleSubmit(std::move(req), std::move(r));
  }));
  Add("GET", "/v1/transactions", Leading([this](http::Request req, http::Responder r) {
    HandleListTransactions(std::move(req), std::move(r));
  }));
  Add("GET", "/v1/transactions/{txid}", Leading([this](http::Request req, http::Responder r) {
    HandleGetTransaction(std::move(req), std::move(r));
  }));
  Add("GET", "/v1/participants", Leading([this](http::Request, http::Responder r) {
    HandleListParticipants(std::move(r));
  }));
  Add("PUT", "/v1/participants/{name}", Leading([this](http::Request req, http::Responder r) {
    HandlePutParticipant(std::move(req), std::move(r));
  }));
  Add("DELETE", "/v1/participants/{name}", Leading([this](http::Request req, http::Responder r) {
    const std::string name = req.path_params["name"];
    node->RemoveParticipant(name, [this, name, r = std::move(r)](std::optional<NodeError> error) {
      if (error) {
        Respond(r, api::Error(*error));
        return;
      }
      r(http::JsonResponse(200, {{"removed", name}}));
    });
  }));
  Add("POST", "/v1/admin/retry-now", Leading([this](http::Request, http::Responder r) {
    r(http::JsonResponse(200, {{"active", node->RetryNow()}}));
  }));
  Add("POST", "/v1/admin/transactions/{txid}/force", Leading([this](http::Request req, http::Responder r) {
    HandleForce(std::move(req), std::move(r));
  }));
  // A contradicted transaction whose data an operator reconciled: marked finished.
  Add("POST", "/v1/admin/transactions/{txid}/close", Leading([this](http::Request req, http::Responder r) {
    const std::string txid = req.path_params["txid"];
    if (!wire::IsValidTxid(txid)) {
      r(http::ErrorResponse(400, "invalid_request", wire::kInvalidTxidMessage));
      return;
    }
    node->CloseContradicted(txid, [this, r](std::variant<TxView, NodeError> closed) {
      if (const auto* e = std::get_if<NodeError>(&closed)) {
        Respond(r, api::Error(*e));
        return;
      }
      Respond(r, {200, api::ViewJson(std::get<TxView>(closed), timers.NowMs())});
    });
  }));
  // {"id": "c4", "url": "http://..."}: a new member (started with --join) joins as a
  // learner and becomes a voter once it has caught up.
  Add("POST", "/v1/cluster/members", GroupAdmin([this](http::Request req, http::Responder r) {
    auto body = ParseJson(req.body);
    if (!body.is_object() || !body.contains("id") || !body["id"].is_string() || body["id"].get<std::string>().empty() ||
        !body.contains("url") || !body["url"].is_string() || !ValidatePeerUrl(body["url"].get<std::string>()).ok()) {
      r(http::ErrorResponse(400, "invalid_request", "body: must be {\"id\":\"c4\",\"url\":\"http(s)://HOST:PORT\"}"));
      return;
    }
    const std::string id = body["id"].get<std::string>();
    group_log->AddMember(id, *ValidatePeerUrl(body["url"].get<std::string>()), [r, id](Status s) {
      if (!s.ok()) {
        r(http::ErrorResponse(s.code() == StatusCode::kConflict ? 409 : 503, "membership", s.message()));
        return;
      }
      r(http::JsonResponse(202, {{"added", id}, {"membership", "learner"}}));
    });
  }));
  Add("DELETE", "/v1/cluster/members/{id}", GroupAdmin([this](http::Request req, http::Responder r) {
    Status s = group_log->RemoveMember(req.path_params["id"]);
    if (!s.ok()) {
      const bool bad = s.code() == StatusCode::kInvalidArgument;
      r(http::ErrorResponse(bad ? 400 : 409, bad ? "invalid_request" : "membership", s.message()));
      return;
    }
    r(http::JsonResponse(202, {{"removed", req.path_params["id"]}}));
  }));
  // {"to": "c2"}: leadership to member c2 (the group's leader acts; others forward).
  Add("POST", "/v1/cluster/transfer-leader", GroupAdmin([this](http::Request req, http::Responder r) {
    auto body = ParseJson(req.body);
    if (!body.is_object() || !body.contains("to") || !body["to"].is_string()) {
      r(http::ErrorResponse(400, "invalid_request", "body: must be {\"to\":\"<member id>\"}"));
      return;
    }
    Status s = group_log->TransferLeadership(body["to"].get<std::string>());
    if (!s.ok()) {
      r(http::ErrorResponse(s.code() == StatusCode::kInvalidArgument ? 400 : 409,
                            s.code() == StatusCode::kInvalidArgument ? "invalid_request" : "conflict", s.message()));
      return;
    }
    r(http::JsonResponse(202, {{"transferring_to", body["to"]}}));
  }));
  Add("GET", "/v1/cluster", [this](http::Request, http::Responder r) {
    if (group_log) {
      r(http::JsonResponse(200, group_log->ClusterStatus()));
      return;
    }
    r(http::JsonResponse(200, {{"id", options.id},
                               {"role", "leader"},
                               {"term", 0},
                               {"leader", options.id},
                               {"leader_url", self_url},
                               {"commit_index", 0},
                               {"members", {{{"id", options.id}, {"url", self_url}, {"role", "leader"}}}}}));
  });
  router.Add("GET", "/healthz", [](http::Request, http::Responder r) {
    r(http::JsonResponse(200, {{"status", "ok"}}));
  });
  router.Add("GET", "/readyz", [this](http::Request, http::Responder r) {
    if (node->stopping()) {
      r(http::ErrorResponse(503, "stopping", "coordinator is shutting down"));
    } else if (group_log && group_log->leader_url().empty()) {
      r(http::ErrorResponse(503, "no_leader", "the group has no leader yet"));
    } else if (group_log) {
      r(http::JsonResponse(200, {{"status", "ready"}, {"leader_url", group_log->leader_url()}}));
    } else {
      r(http::JsonResponse(200, {{"status", "ready"}, {"leader", options.id}}));
    }
  });
  Add("GET", "/metrics", [this](http::Request, http::Responder r) { HandleMetrics(std::move(r)); });
  openapi::AddRoute(router, openapi::CoordinatorDocument());
  AddDashboardRoutes(router);
}


// The group's admin endpoints: authorized, refused without a group, run on the leader.
http::Handler Service::Impl::GroupAdmin(http::Handler handler) {
  return Leading([this, handler = std::move(handler)](http::Request req, http::Responder r) {
    if (!group_log) {
      r(http::ErrorResponse(400, "invalid_request", "this coordinator is not part of a group (no --peers)"));
      return;
    }
    handler(std::move(req), std::move(r));
  });
}

http::Handler Service::Impl::Leading(http::Handler handler) {
  return [this, handler = std::move(handler)](http::Request req, http::Responder r) {
    if (!group_log || group_log->leader_ready()) {
      handler(std::move(req), std::move(r));
      return;
    }
    Forward(std::move(req), std::move(r));
  };
}

// A follower passes a client request to the leader and relays the answer.
// One hop only: a forwarded request that finds no ready leader gets 503.
void Service::Impl::Forward(http::Request req, http::Responder respond) {
  const std::string leader = group_log->leader_url();
  if (leader.empty() || leader == self_url || req.Header("x-commitd-forwarded")) {
    http::Response r = http::ErrorResponse(503, "no_leader", "no leader is ready yet; retry");
    r.headers.emplace_back("Retry-After", std::to_string(options.config.retry_after_s));
    respond(std::move(r));
    return;
  }
  ++forwarded;
  http::ClientRequest cr;
  cr.base_url = leader;
  cr.method = req.method;
  cr.target = req.target;
  cr.body = std::move(req.body);
  cr.timeout = std::chrono::milliseconds(options.config.handler_timeout_ms);
  for (const char* name : {"authorization", "idempotency-key", "content-type", "traceparent"}) {
    if (auto v = req.Header(name)) cr.headers.emplace_back(name, *v);
  }
  cr.headers.emplace_back("X-Commitd-Forwarded", options.id);
  client.Send(std::move(cr), [respond = std::move(respond), leader](Result<http::Response> r) {
    if (!r.ok()) {
      respond(http::ErrorResponse(503, "leader_unreachable", "the leader " + leader + " did not answer: " +
                                                                 r.status().message() + "; retry"));
      return;
    }
    respond(std::move(r).value());
  });
}

void Service::Impl::HandleSubmit(http::Request req, http::Responder respond) {
  const TraceContext trace = TraceOf(req);
  respond = Traced(std::move(respond), trace, io);
  if (node->stopping()) {
    Respond(respond, api::Error({NodeErrorKind::kStopping, "coordinator is shutting down"}));
    return;
  }
  auto parsed = wire::ParseTxRequest(std::string_view(req.body));
  if (!parsed.ok()) {
    respond(http::ErrorResponse(400, "invalid_request", parsed.status().message()));
    return;
  }
  std::string key = req.Header("idempotency-key").value_or("");
  if (key.size() > 256) {
    respond(http::ErrorResponse(400, "invalid_request", "Idempotency-Key: must be at most 256 characters"));
    return;
  }
  const wire::Protocol protocol = parsed->protocol;
  node->Submit({std::move(parsed).value(), std::move(key), trace},
               [this, protocol, start = std::chrono::steady_clock::now(),
                respond = std::move(respond)](SubmitResult result) {
                 if (const auto* reply = std::get_if<TxReply>(&result); reply != nullptr && reply->outcome) {
                   metrics.ObserveTransaction(
                       protocol, *reply->outcome,
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
                 }
                 Respond(respond, api::Submit(std::move(result)));
               });
}

void Service::Impl::HandleGetTransaction(http::Request req, http::Responder respond) {
  const std::string txid = req.path_params["txid"];
  if (!wire::IsValidTxid(txid)) {
    respond(http::ErrorResponse(400, "invalid_request", wire::kInvalidTxidMessage));
    return;
  }
  // A participant resolving an in-doubt record says who it is (?participant=NAME).
  const std::string asker = req.query.count("participant") ? req.query["participant"] : "";
  // ... and the decision log its record was prepared under (?log_id=ID).
  const std::string asker_log_id = req.query.count("log_id") ? req.query["log_id"] : "";
  node->GetTransaction(txid, asker, asker_log_id, [this, respond = std::move(respond)](TxLookup lookup) {
    Respond(respond, api::Lookup(lookup, timers.NowMs()));
  });
}

void Service::Impl::HandleListTransactions(http::Request req, http::Responder respond) {
  TxListQuery query;
  if (req.query.count("limit")) {
    try {
      long long n = std::stoll(req.query["limit"]);
      if (n < 1 || n > 10000) throw std::out_of_range("limit");
      query.limit = static_cast<std::size_t>(n);
    } catch (const std::exception&) {
      respond(http::ErrorResponse(400, "invalid_request", "limit: must be an integer between 1 and 10000"));
      return;
    }
  }
  const std::string state = req.query.count("state") ? req.query["state"] : "";
  if (state == "pending") {
    query.state = TxListState::kPending;
  } else if (state == "in_doubt") {
    query.state = TxListState::kInDoubt;
  } else if (state == "committed") {
    query.state = TxListState::kCommitted;
  } else if (state == "aborted") {
    query.state = TxListState::kAborted;
  } else if (!state.empty()) {
    respond(http::ErrorResponse(400, "invalid_request",
                                "state: must be one of pending, in_doubt, committed, aborted"));
    return;
  }
  node->ListTransactions(query, [this, respond = std::move(respond)](TxList list) {
    Respond(respond, api::List(list, timers.NowMs()));
  });
}

void Service::Impl::HandleListParticipants(http::Responder respond) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : node->Participants()) {
    nlohmann::json j = {{"name", p.entry.name}, {"url", p.entry.url}, {"healthy", p.healthy},
                        {"last_seen_ms", p.last_seen_ms}, {"allow_raw_sql", p.allow_raw_sql},
                        {"procedures", p.procedures}};
    if (p.outcome_retention_ms) j["outcome_retention_ms"] = *p.outcome_retention_ms;
    if (!p.last_error.empty()) j["last_error"] = p.last_error;
    list.push_back(std::move(j));
  }
  respond(http::JsonResponse(200, {{"participants", std::move(list)}}));
}

void Service::Impl::HandlePutParticipant(http::Request req, http::Responder respond) {
  const std::string name = req.path_params["name"];
  auto body = ParseJson(req.body);
  if (body.is_discarded() || !body.is_object()) {
    respond(http::ErrorResponse(400, "invalid_request", "body: must be a JSON object {\"url\": \"http://...\"}"));
    return;
  }
  if (!body.contains("url") || !body["url"].is_string()) {
    respond(http::ErrorResponse(400, "invalid_request", "url: must be a string http(s)://HOST:PORT"));
    return;
  }
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "url") {
      respond(http::ErrorResponse(400, "invalid_request", "unknown field \"" + it.key() + "\""));
      return;
    }
  }
  if (name.empty() || name.size() > 128) {
    respond(http::ErrorResponse(400, "invalid_request", "name: must be 1-128 characters"));
    return;
  }
  const std::string url = body["url"].get<std::string>();
  node->PutParticipant(name, url, [this, name, url, respond = std::move(respond)](std::optional<NodeError> error) {
    if (error) {
      Respond(respond, api::Error(*error));
      return;
    }
    respond(http::JsonResponse(200, {{"name", name}, {"url", url}}));
  });
}

// POST /v1/admin/transactions/{txid}/force
//   {"outcome": "commit"|"abort", "participants": [{"name", "url"?}], "reason"?, "skip_participants"?: [name]}
void Service::Impl::HandleForce(http::Request req, http::Responder respond) {
  const TraceContext trace = TraceOf(req);
  respond = Traced(std::move(respond), trace, io);
  const std::string txid = req.path_params["txid"];
  auto bad = [&respond](const std::string& message) {
    respond(http::ErrorResponse(400, "invalid_request", message));
  };
  if (!wire::IsValidTxid(txid)) return bad(std::string(wire::kInvalidTxidMessage));
  if (node->stopping()) {
    respond(http::ErrorResponse(503, "stopping", "coordinator is shutting down"));
    return;
  }
  auto body = ParseJson(req.body);
  if (body.is_discarded() || !body.is_object()) {
    return bad("body: must be a JSON object {\"outcome\":\"commit\"|\"abort\",\"participants\":[{\"name\":...}]}");
  }
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "outcome" && it.key() != "participants" && it.key() != "reason" &&
        it.key() != "skip_participants") {
      return bad("unknown field \"" + it.key() + "\"");
    }
  }
  ForceRequest force;
  force.txid = txid;
  force.trace = trace;
  const std::string outcome_text =
      body.contains("outcome") && body["outcome"].is_string() ? body["outcome"].get<std::string>() : "";
  if (outcome_text == "commit" || outcome_text == "committed") {
    force.outcome = Outcome::kCommitted;
  } else if (outcome_text == "abort" || outcome_text == "aborted") {
    force.outcome = Outcome::kAborted;
  } else {
    return bad("outcome: must be \"commit\" or \"abort\"");
  }
  if (body.contains("reason")) {
    if (!body["reason"].is_string()) return bad("reason: must be a string");
    force.reason = body["reason"].get<std::string>();
  }
  const nlohmann::json list = body.value("participants", nlohmann::json::array());
  if (!list.is_array()) return bad("participants: must be an array of {\"name\",\"url\"}");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& p = list[i];
    const std::string where = "participants[" + std::to_string(i) + "]";
    if (!p.is_object() || !p.contains("name") || !p["name"].is_string() || p["name"].get<std::string>().empty()) {
      return bad(where + ".name: required");
    }
    ForcedParticipant fp{p["name"].get<std::string>(), std::nullopt};
    if (p.contains("url")) {
      auto url = p["url"].is_string() ? ValidatePeerUrl(p["url"].get<std::string>())
                                      : Result<std::string>(Status::InvalidArgument("must be a string"));
      if (!url.ok()) return bad(where + ".url: " + url.status().message());
      fp.url = std::move(url).value();
    }
    force.participants.push_back(std::move(fp));
  }
  const nlohmann::json skip = body.value("skip_participants", nlohmann::json::array());
  if (!skip.is_array()) return bad("skip_participants: must be an array of participant names");
  for (std::size_t i = 0; i < skip.size(); ++i) {
    if (!skip[i].is_string() || skip[i].get<std::string>().empty()) {
      return bad("skip_participants[" + std::to_string(i) + "]: must be a participant's name");
    }
    const std::string name = skip[i].get<std::string>();
    for (const auto& p : force.participants) {
      if (p.name == name) return bad("skip_participants[" + std::to_string(i) + "]: " + name + " is in participants too");
    }
    force.skip_participants.push_back(name);
  }
  node->Force(std::move(force), [this, txid, respond = std::move(respond)](ForceAnswer answer) {
    Respond(respond, api::Force(txid, answer, timers.NowMs()));
  });
}

void Service::Impl::HandleMetrics(http::Responder respond) {
  http::Response r;
  r.status = 200;
  r.content_type = "text/plain; version=0.0.4";
  r.body = metrics.Render();
  respond(std::move(r));
}

}  // namespace commitd::coordinator
