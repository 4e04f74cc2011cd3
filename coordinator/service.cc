#include "coordinator/service.h"

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include "common/batching_client.h"
#include "common/clock.h"
#include "common/failpoint.h"
#include "common/http_client.h"
#include "common/http_options.h"
#include "common/http_server.h"
#include "common/log.h"
#include "coordinator/engine.h"
#include "coordinator/replicated_decision_log.h"
#include "coordinator/sqlite_decision_log.h"

namespace commitd::coordinator {
namespace {

// Engine time: see common/clock.h.
int64_t NowMs() { return EngineClockMs(); }

nlohmann::json ViewToJson(const TxView& v, int64_t now_ms) {
  nlohmann::json branches = nlohmann::json::array();
  for (const auto& b : v.branches) {
    nlohmann::json jb = {{"participant", b.participant}, {"state", b.state}, {"attempts", b.attempts}};
    if (!b.last_error.empty()) jb["last_error"] = b.last_error;
    branches.push_back(std::move(jb));
  }
  nlohmann::json out = {{"txid", v.txid},
                        {"protocol", wire::ProtocolName(v.protocol)},
                        {"state", v.state},
                        {"outcome", OutcomeName(v.outcome)},
                        {"branches", std::move(branches)},
                        {"age_ms", now_ms - v.started_ms},
                        {"timeline", {{"started_ms", v.started_ms}}}};
  if (v.decided_ms != 0) out["timeline"]["decided_ms"] = v.decided_ms;
  if (!v.reason.empty()) out["reason"] = v.reason;
  if (v.heuristic) out["heuristic"] = true;
  return out;
}

nlohmann::json RecordToJson(const DecisionRecord& r, int64_t now_ms) {
  nlohmann::json branches = nlohmann::json::array();
  const bool precommit_only = r.outcome == Outcome::kPending;  // 3PC: precommit recorded, no decision yet
  for (const auto& p : r.participants) {
    std::string state = r.finished       ? std::string(OutcomeName(r.outcome))
                        : precommit_only ? "precommitted"
                                         : "delivering";
    branches.push_back({{"participant", p.name}, {"state", state}});
  }
  nlohmann::json timeline = {{"created_ms", r.created_ms}, {"decided_ms", r.decided_ms}};
  if (r.finished) timeline["finished_ms"] = r.finished_ms;
  nlohmann::json out = {{"txid", r.txid},
                        {"protocol", wire::ProtocolName(r.protocol)},
                        {"state", r.finished ? "finished" : precommit_only ? "precommitting" : "delivering"},
                        {"outcome", OutcomeName(r.outcome)},
                        {"branches", std::move(branches)},
                        {"age_ms", now_ms - r.created_ms},
                        {"timeline", std::move(timeline)}};
  if (!r.reason.empty()) out["reason"] = r.reason;
  if (r.heuristic) out["heuristic"] = true;
  return out;
}

struct Participant {
  RegistryEntry entry;
  bool catalog_known = false;
  std::set<std::string> procedures;
  bool allow_raw_sql = false;
  bool healthy = false;
  int64_t last_seen_ms = 0;
  std::string last_error;
};

}  // namespace

struct Service::Impl {
  Impl(boost::asio::io_context& io, ServiceOptions options)
      : io(io),
        options(std::move(options)),
        client(io, http::ClientOptionsFor(this->options.config)),
        peers(client),
        tick_timer(io),
        health_timer(io) {}

  boost::asio::io_context& io;
  ServiceOptions options;
  std::string self_url;
  http::Router router;
  std::unique_ptr<http::Server> server;
  http::Client client;
  http::BatchingClient peers;  // protocol messages to agents, coalesced per agent under load
  // Exactly one of single_log (no --peers) and group_log (a Raft group); log points at it.
  std::unique_ptr<SqliteDecisionLog> single_log;
  std::unique_ptr<ReplicatedDecisionLog> group_log;
  DecisionLog* log = nullptr;
  uint64_t leadership_epoch = 0;  // group: bumped on every leadership change; stale callbacks compare it
  uint64_t forwarded = 0;
  uint64_t swept = 0;  // undecided transactions presumed aborted by SweepUndecided
  std::unique_ptr<Engine> engine;
  boost::asio::steady_timer tick_timer;
  boost::asio::steady_timer health_timer;
  std::map<std::string, Participant> registry;
  std::unordered_map<ClientToken, http::Responder> clients;
  ClientToken next_client = 1;
  uint64_t txid_counter = 0;
  std::string txid_prefix;
  bool stopping = false;
  int64_t delivery_grace_until = 0;  // wall ms; shutdown waits this long for decision delivery
  std::function<void()> on_stopped;
  // Metrics.
  uint64_t started = 0, committed = 0, aborted = 0, rejected_overload = 0;
  uint64_t commits_unknown_at_participant = 0;  // commit deliveries answered unknown_transaction
  uint64_t precommits_sent = 0;
  uint64_t heuristic = 0;  // forced decisions in the log, counted from it at startup

  Status Start();
  void RegisterRoutes();
  bool Authorized(const http::Request& req, const http::Responder& respond);
  void Pump();
  void Execute(Action& a);
  void ScheduleTick();
  void ScheduleHealth();
  void Probe(const std::string& name);

  void HandleSubmit(http::Request req, http::Responder respond);
  void ValidateAndStart(std::shared_ptr<wire::TxRequest> tx, std::string key, http::Responder respond);
  void StartTransaction(std::shared_ptr<wire::TxRequest> tx, const std::string& key, http::Responder respond);
  void HandleGetTransaction(http::Request req, http::Responder respond);
  void HandleListTransactions(http::Request req, http::Responder respond);
  void HandleListParticipants(http::Responder respond);
  void HandlePutParticipant(http::Request req, http::Responder respond);
  void HandleForce(http::Request req, http::Responder respond);
  void RecordHeuristic(DecisionRecord record, http::Responder respond);
  void HandleMetrics(http::Responder respond);
  std::string NewTxid();
  std::optional<std::string> CheckOps(const wire::TxRequest& tx);
  void MaybeFinishShutdown();
  // Group mode.
  Status StartGroup();
  void OnLeadership(bool ready);
  void DropEngine(const std::string& why);
  void SweepUndecided();
  // Wraps a client-API handler: on a group member that is not the ready
  // leader, the request goes to the leader instead.
  http::Handler Leading(http::Handler handler);
  http::Handler GroupAdmin(http::Handler handler);
  void NewEngine();  // a fresh engine (start, and every change of leadership)
  void Forward(http::Request req, http::Responder respond);
};

Service::Service(boost::asio::io_context& io, ServiceOptions options)
    : impl_(std::make_unique<Impl>(io, std::move(options))) {}
Service::~Service() = default;
Status Service::Start() { return impl_->Start(); }
uint16_t Service::port() const { return impl_->server ? impl_->server->port() : 0; }

void Service::Shutdown(std::function<void()> done) {
  Impl& s = *impl_;
  s.stopping = true;
  s.on_stopped = std::move(done);
  s.delivery_grace_until = NowMs() + 2'000;
  log::Info("shutdown_started", {{"undecided", s.engine ? s.engine->undecided() : 0}});
  s.MaybeFinishShutdown();
}

void Service::Impl::MaybeFinishShutdown() {
  if (!stopping || !on_stopped) return;
  // Every client must get its answer: wait (the tick calls again) until no
  // transaction is undecided or waiting for its decision record, bounded by
  // the transactions' own deadlines. Then give delivery of the decisions a
  // short grace, so participants are not left holding locks until a restart.
  if (engine && (engine->undecided() > 0 || engine->awaiting_record() > 0 || !clients.empty())) return;
  if (engine && engine->active() > 0 && NowMs() < delivery_grace_until) return;
  if (server) server->Stop();
  if (group_log) group_log->Stop();
  tick_timer.cancel();
  health_timer.cancel();
  client.CloseIdle();
  auto done = std::move(on_stopped);
  on_stopped = nullptr;
  log::Info("shutdown_done");
  done();
}

Status Service::Impl::Start() {
  auto addr = http::ParseHostPort(options.listen);
  if (!addr.ok()) return addr.status();
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) return Status::IoError("cannot create data dir " + options.data_dir + ": " + ec.message());
  if (options.peers.size() > 1 || options.join) return StartGroup();
  auto opened = SqliteDecisionLog::Open(options.data_dir + "/decisions.db", io.get_executor(),
                                        static_cast<std::size_t>(options.config.max_batch));
  if (!opened.ok()) return opened.status();
  single_log = std::move(opened).value();
  log = single_log.get();
  auto recovered = log->Recover();
  if (!recovered.ok()) return recovered.status();

  RegisterRoutes();
  server = std::make_unique<http::Server>(io, http::ServerOptionsFor(options.config, addr->first, addr->second),
                                          router);
  if (Status s = server->Start(); !s.ok()) return s;
  self_url = "http://" + addr->first + ":" + std::to_string(server->port());

  NewEngine();
  txid_prefix = options.id + "-" + std::to_string(NowMs()) + "-";

  heuristic = recovered->heuristic_decisions;
  for (auto& e : recovered->registry) registry[e.name].entry = e;
  for (auto& e : options.participants) {
    e.updated_ms = NowMs();
    registry[e.name].entry = e;
    log->PutParticipant(e, [](Status s) {
      if (!s.ok()) log::Error("registry_write_failed", {{"error", s.ToString()}});
    });
  }
  single_log->AddOwnUrl(self_url, [](Status s) {
    if (!s.ok()) log::Error("own_url_write_failed", {{"error", s.ToString()}});
  });
  const int64_t now = NowMs();
  for (auto& record : recovered->unfinished) {
    log::Info("resume_transaction", {{"txid", record.txid}, {"outcome", OutcomeName(record.outcome)}});
    engine->Resume(std::move(record), now);
  }
  log::Info("coordinator_started", {{"id", options.id},
                                    {"url", self_url},
                                    {"resumed", recovered->unfinished.size()},
                                    {"participants", registry.size()}});
  Pump();
  ScheduleTick();
  for (auto& [name, p] : registry) Probe(name);
  ScheduleHealth();
  SweepUndecided();
  return Status::Ok();
}

bool Service::Impl::Authorized(const http::Request& req, const http::Responder& respond) {
  return http::CheckBearer(req, options.token, respond);
}

void Service::Impl::RegisterRoutes() {
  router.Add("POST", "/v1/transactions", Leading([this](http::Request req, http::Responder r) {
    if (Authorized(req, r)) HandleSubmit(std::move(req), std::move(r));
  }));
  router.Add("GET", "/v1/transactions", Leading([this](http::Request req, http::Responder r) {
    if (Authorized(req, r)) HandleListTransactions(std::move(req), std::move(r));
  }));
  router.Add("GET", "/v1/transactions/{txid}", Leading([this](http::Request req, http::Responder r) {
    if (Authorized(req, r)) HandleGetTransaction(std::move(req), std::move(r));
  }));
  router.Add("GET", "/v1/participants", Leading([this](http::Request req, http::Responder r) {
    if (Authorized(req, r)) HandleListParticipants(std::move(r));
  }));
  router.Add("PUT", "/v1/participants/{name}", Leading([this](http::Request req, http::Responder r) {
    if (Authorized(req, r)) HandlePutParticipant(std::move(req), std::move(r));
  }));
  router.Add("POST", "/v1/admin/retry-now", Leading([this](http::Request req, http::Responder r) {
    if (!Authorized(req, r)) return;
    engine->RetryNow(NowMs());
    Pump();
    r(http::JsonResponse(200, {{"active", engine->active()}}));
  }));
  router.Add("POST", "/v1/admin/transactions/{txid}/force", Leading([this](http::Request req, http::Responder r) {
    if (Authorized(req, r)) HandleForce(std::move(req), std::move(r));
  }));
  // {"id": "c4", "url": "http://..."}: a new member (started with --join) joins as a
  // learner and becomes a voter once it has caught up.
  router.Add("POST", "/v1/cluster/members", GroupAdmin([this](http::Request req, http::Responder r) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("id") || !body["id"].is_string() || body["id"].get<std::string>().empty() ||
        !body.contains("url") || !body["url"].is_string() ||
        body["url"].get<std::string>().rfind("http://", 0) != 0) {
      r(http::ErrorResponse(400, "invalid_request", "body: must be {\"id\":\"c4\",\"url\":\"http://HOST:PORT\"}"));
      return;
    }
    const std::string id = body["id"].get<std::string>();
    group_log->AddMember(id, body["url"].get<std::string>(), [r, id](Status s) {
      if (!s.ok()) {
        r(http::ErrorResponse(s.code() == StatusCode::kConflict ? 409 : 503, "membership", s.message()));
        return;
      }
      r(http::JsonResponse(202, {{"added", id}, {"membership", "learner"}}));
    });
  }));
  router.Add("DELETE", "/v1/cluster/members/{id}", GroupAdmin([this](http::Request req, http::Responder r) {
    Status s = group_log->RemoveMember(req.path_params["id"]);
    if (!s.ok()) {
      const bool bad = s.code() == StatusCode::kInvalidArgument;
      r(http::ErrorResponse(bad ? 400 : 409, bad ? "invalid_request" : "membership", s.message()));
      return;
    }
    r(http::JsonResponse(202, {{"removed", req.path_params["id"]}}));
  }));
  // {"to": "c2"}: leadership to member c2 (the group's leader acts; others forward).
  router.Add("POST", "/v1/cluster/transfer-leader", GroupAdmin([this](http::Request req, http::Responder r) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
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
  router.Add("GET", "/v1/cluster", [this](http::Request req, http::Responder r) {
    if (!Authorized(req, r)) return;
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
    if (stopping) {
      r(http::ErrorResponse(503, "stopping", "coordinator is shutting down"));
    } else if (group_log && group_log->leader_url().empty()) {
      r(http::ErrorResponse(503, "no_leader", "the group has no leader yet"));
    } else if (group_log) {
      r(http::JsonResponse(200, {{"status", "ready"}, {"leader_url", group_log->leader_url()}}));
    } else {
      r(http::JsonResponse(200, {{"status", "ready"}, {"leader", options.id}}));
    }
  });
  router.Add("GET", "/metrics", [this](http::Request, http::Responder r) { HandleMetrics(std::move(r)); });
}

void Service::Impl::NewEngine() {
  EngineOptions eo;
  eo.self_url = self_url;
  eo.retry_initial_ms = options.config.retry_initial_ms;
  eo.retry_max_ms = options.config.retry_max_ms;
  engine = std::make_unique<Engine>(eo);
}

// The group's admin endpoints: authorized, refused without a group, run on the leader.
http::Handler Service::Impl::GroupAdmin(http::Handler handler) {
  return Leading([this, handler = std::move(handler)](http::Request req, http::Responder r) {
    if (!Authorized(req, r)) return;
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
    if (!Authorized(req, r)) return;
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
  for (const char* name : {"authorization", "idempotency-key", "content-type"}) {
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

Status Service::Impl::StartGroup() {
  ReplicatedLogOptions ro;
  ro.self_id = options.id;
  ro.members = options.peers;
  ro.join = options.join;
  ro.token = options.token;
  ro.election_timeout_ms = options.config.raft_election_timeout_ms;
  ro.heartbeat_ms = options.config.raft_heartbeat_ms;
  ro.tick_ms = std::min<int64_t>(options.config.tick_ms, options.config.raft_heartbeat_ms);
  ro.max_batch = static_cast<std::size_t>(options.config.max_batch);
  ro.snapshot_entries = static_cast<raft::Index>(std::max<int64_t>(1, options.config.raft_snapshot_entries));
  auto opened = ReplicatedDecisionLog::Open(options.data_dir + "/raft.db", io, ro);
  if (!opened.ok()) return opened.status();
  group_log = std::move(opened).value();
  log = group_log.get();
  for (const auto& m : options.peers) {
    if (m.id == options.id) self_url = m.url;
  }
  auto addr = http::ParseHostPort(options.listen);
  RegisterRoutes();
  router.Add("POST", "/v1/raft", [this](http::Request req, http::Responder r) {
    if (!Authorized(req, r)) return;
    group_log->OnRaftMessages(req.body, std::move(r));
  });
  server = std::make_unique<http::Server>(io, http::ServerOptionsFor(options.config, addr->first, addr->second),
                                          router);
  if (Status s = server->Start(); !s.ok()) return s;
  if (self_url.empty()) self_url = "http://" + addr->first + ":" + std::to_string(server->port());
  NewEngine();
  txid_prefix = options.id + "-" + std::to_string(NowMs()) + "-";
  for (auto& e : options.participants) {
    e.updated_ms = NowMs();
    registry[e.name].entry = e;
  }
  group_log->set_on_leadership([this](bool ready) { OnLeadership(ready); });
  group_log->Start();
  log::Info("coordinator_started", {{"id", options.id}, {"url", self_url}, {"group", options.peers.size()}});
  ScheduleTick();
  for (auto& [name, p] : registry) Probe(name);
  ScheduleHealth();
  return Status::Ok();
}

// Leader of a term with everything committed applied: take over every
// decided-but-unfinished transaction and the registry from the state machine.
// Stepping down: drop the engine; the next leader resumes from the log.
void Service::Impl::OnLeadership(bool ready) {
  if (!ready) {
    DropEngine("this coordinator is no longer the leader");
    return;
  }
  DropEngine("a new leadership term started");
  auto recovered = group_log->Recover();
  if (!recovered.ok()) {
    log::Error("leader_recover_failed", {{"error", recovered.status().ToString()}});
    return;
  }
  heuristic = recovered->heuristic_decisions;
  for (auto& e : recovered->registry) {
    if (options.participants.end() == std::find_if(options.participants.begin(), options.participants.end(),
                                                   [&](const RegistryEntry& p) { return p.name == e.name; })) {
      registry[e.name].entry = e;
    }
  }
  for (const auto& e : options.participants) {
    bool known = false;
    for (const auto& r : recovered->registry) known = known || (r.name == e.name && r.url == e.url);
    if (!known) {
      log->PutParticipant(e, [](Status s) {
        if (!s.ok()) log::Warn("registry_write_failed", {{"error", s.ToString()}});
      });
    }
  }
  const int64_t now = NowMs();
  for (auto& record : recovered->unfinished) engine->Resume(std::move(record), now);
  log::Info("leading", {{"resumed", recovered->unfinished.size()}, {"participants", registry.size()}});
  Pump();
  for (auto& [name, p] : registry) Probe(name);
  SweepUndecided();
}

// After a restart, or when this member starts to lead, a transaction an agent
// holds prepared for this coordinator (or group) with no record in the log
// can never be decided by anyone else: the engine that ran it is gone, and
// in a group every entry the old leader got committed is in this state
// machine by now. Presume abort at once — recorded first, then delivered —
// instead of leaving its locks held until the agent's deadline.
void Service::Impl::SweepUndecided() {
  if (registry.empty()) return;
  std::set<std::string> ours = {self_url};
  for (const auto& m : options.peers) ours.insert(m.url);
  struct Sweep {
    std::map<std::string, std::vector<ParticipantRef>> holders;  // txid -> agents holding it prepared
    std::size_t pending = 0;
  };
  auto sweep = std::make_shared<Sweep>();
  sweep->pending = registry.size();
  const uint64_t epoch = leadership_epoch;
  for (const auto& [name, p] : registry) {
    http::ClientRequest cr;
    cr.base_url = p.entry.url;
    cr.target = "/v1/transactions?state=prepared";
    cr.timeout = std::chrono::milliseconds(options.config.request_timeout_ms);
    if (!options.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options.token);
    client.Send(std::move(cr), [this, sweep, ours, epoch, name = name, url = p.entry.url](Result<http::Response> r) {
      if (r.ok() && r->status == 200) {
        auto body = nlohmann::json::parse(r->body, nullptr, false);
        const auto list = body.is_object() ? body.value("transactions", nlohmann::json::array()) : nlohmann::json();
        for (const auto& t : list) {
          if (!t.is_object() || t.value("state", "") != "prepared" || !ours.count(t.value("coordinator", ""))) continue;
          sweep->holders[t.value("txid", "")].push_back({name, url});
        }
      }
      if (--sweep->pending != 0 || epoch != leadership_epoch || stopping) return;
      for (auto& [txid, holders] : sweep->holders) {
        if (txid.empty() || engine->Find(txid)) continue;
        const int64_t now = NowMs();
        DecisionRecord abort;
        abort.txid = txid;
        abort.outcome = Outcome::kAborted;
        abort.participants = holders;
        abort.reason = "presumed abort: undecided when coordinator " + options.id + " took over";
        abort.reply = {{"txid", txid}, {"outcome", "aborted"}, {"reason", abort.reason}};
        abort.created_ms = abort.decided_ms = now;
        ++swept;
        log->AppendDecision(abort, [this, abort, epoch](Status s) {
          // Conflict: it was decided meanwhile (or finished just now); nothing to do.
          if (!s.ok() || epoch != leadership_epoch) return;
          log::Info("presumed_abort_swept", {{"txid", abort.txid}, {"participants", abort.participants.size()}});
          engine->Resume(abort, NowMs());
          Pump();
        });
      }
    });
  }
}

void Service::Impl::DropEngine(const std::string& why) {
  ++leadership_epoch;
  http::Response r = http::ErrorResponse(503, "leadership_lost", why + "; the outcome is unknown here: retry with the "
                                                                    "same Idempotency-Key, or GET the transaction");
  r.headers.emplace_back("Retry-After", std::to_string(options.config.retry_after_s));
  auto waiting = std::move(clients);
  clients.clear();
  for (auto& [token, respond] : waiting) respond(r);
  NewEngine();
  MaybeFinishShutdown();
}

std::string Service::Impl::NewTxid() { return txid_prefix + std::to_string(++txid_counter); }

std::optional<std::string> Service::Impl::CheckOps(const wire::TxRequest& tx) {
  for (std::size_t i = 0; i < tx.branches.size(); ++i) {
    const auto& b = tx.branches[i];
    auto it = registry.find(b.participant);
    if (it == registry.end()) {
      return "branches[" + std::to_string(i) + "].participant: unknown participant '" + b.participant + "'";
    }
    const Participant& p = it->second;
    if (!p.catalog_known) continue;  // unreachable so far: the prepare will say so
    for (std::size_t j = 0; j < b.ops.size(); ++j) {
      const auto& op = b.ops[j];
      std::string where = "branches[" + std::to_string(i) + "].ops[" + std::to_string(j) + "]";
      if (op.is_raw() && !p.allow_raw_sql) {
        return where + ": raw SQL is not allowed on participant '" + b.participant +
               "' (start its agent with --allow-raw-sql)";
      }
      if (op.procedure && p.procedures.count(*op.procedure) == 0) {
        return where + ".procedure: participant '" + b.participant + "' has no procedure '" + *op.procedure + "'";
      }
    }
  }
  return std::nullopt;
}

void Service::Impl::HandleSubmit(http::Request req, http::Responder respond) {
  if (stopping) {
    http::Response r = http::ErrorResponse(503, "stopping", "coordinator is shutting down");
    r.headers.emplace_back("Retry-After", std::to_string(options.config.retry_after_s));
    respond(std::move(r));
    return;
  }
  auto parsed = wire::ParseTxRequest(std::string_view(req.body));
  if (!parsed.ok()) {
    respond(http::ErrorResponse(400, "invalid_request", parsed.status().message()));
    return;
  }
  auto tx = std::make_shared<wire::TxRequest>(std::move(parsed).value());
  std::string key = req.Header("idempotency-key").value_or("");
  if (key.size() > 256) {
    respond(http::ErrorResponse(400, "invalid_request", "Idempotency-Key: must be at most 256 characters"));
    return;
  }
  // Fetch the catalog of participants never reached yet, then validate.
  std::vector<std::string> unknown;
  for (const auto& b : tx->branches) {
    auto it = registry.find(b.participant);
    if (it != registry.end() && !it->second.catalog_known) unknown.push_back(b.participant);
  }
  if (unknown.empty()) {
    ValidateAndStart(tx, std::move(key), std::move(respond));
    return;
  }
  auto remaining = std::make_shared<std::size_t>(unknown.size());
  for (const auto& name : unknown) {
    http::ClientRequest cr;
    cr.base_url = registry[name].entry.url;
    cr.target = "/v1/procedures";
    cr.timeout = std::chrono::milliseconds(options.config.connect_timeout_ms);
    if (!options.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options.token);
    client.Send(std::move(cr), [this, name, tx, key, respond, remaining](Result<http::Response> r) {
      auto it = registry.find(name);
      if (it != registry.end() && r.ok() && r->status == 200) {
        auto body = nlohmann::json::parse(r->body, nullptr, false);
        if (body.is_object() && body.contains("procedures") && body["procedures"].is_array()) {
          it->second.procedures.clear();
          for (const auto& n : body["procedures"]) {
            if (n.is_string()) it->second.procedures.insert(n.get<std::string>());
          }
          it->second.allow_raw_sql = body.value("allow_raw_sql", false);
          it->second.catalog_known = true;
        }
      }
      if (--*remaining == 0) ValidateAndStart(tx, key, respond);
    });
  }
}

void Service::Impl::ValidateAndStart(std::shared_ptr<wire::TxRequest> tx, std::string key,
                                     http::Responder respond) {
  if (auto error = CheckOps(*tx)) {
    respond(http::ErrorResponse(400, "invalid_request", *error));
    return;
  }
  if (key.empty()) {
    StartTransaction(tx, key, std::move(respond));
    return;
  }
  if (auto txid = engine->TxidForIdempotencyKey(key)) {
    ClientToken token = next_client++;
    clients.emplace(token, respond);
    engine->AttachClient(*txid, token);
    Pump();
    return;
  }
  log->FindByIdempotencyKey(key, [this, tx, key, respond](Result<std::optional<DecisionRecord>> found) {
    if (!found.ok()) {
      respond(http::ErrorResponse(503, "storage_error", found.status().message()));
      return;
    }
    if (found.value() && (*found)->outcome == Outcome::kPending) {
      // A resumed 3PC transaction the engine has not registered the key for: it is still running.
      http::Response busy = http::ErrorResponse(503, "in_progress", "transaction " + (*found)->txid +
                                                                        " for this Idempotency-Key is still running");
      busy.headers.emplace_back("Retry-After", "1");
      respond(std::move(busy));
      return;
    }
    if (found.value()) {
      const DecisionRecord& r = **found;
      respond(http::JsonResponse(r.outcome == Outcome::kCommitted ? 200 : 409, r.reply));
      return;
    }
    if (auto txid = engine->TxidForIdempotencyKey(key)) {  // started while we looked
      ClientToken token = next_client++;
      clients.emplace(token, respond);
      engine->AttachClient(*txid, token);
      Pump();
      return;
    }
    StartTransaction(tx, key, respond);
  });
}

void Service::Impl::StartTransaction(std::shared_ptr<wire::TxRequest> tx, const std::string& key,
                                     http::Responder respond) {
  if (engine->undecided() >= static_cast<std::size_t>(options.config.max_in_flight)) {
    ++rejected_overload;
    http::Response r = http::ErrorResponse(429, "overloaded", "too many transactions in flight; retry later");
    r.headers.emplace_back("Retry-After", std::to_string(options.config.retry_after_s));
    respond(std::move(r));
    return;
  }
  StartRequest sr;
  sr.txid = NewTxid();
  sr.protocol = tx->protocol;
  sr.timeout_ms = tx->timeout_ms.value_or(options.config.default_tx_timeout_ms);
  for (auto& b : tx->branches) {
    sr.participants.push_back({b.participant, registry[b.participant].entry.url});
    sr.ops.push_back(std::move(b.ops));
  }
  sr.idempotency_key = key;
  sr.client = next_client++;
  sr.created_ms = NowMs();
  clients.emplace(sr.client, std::move(respond));
  ++started;
  engine->Start(std::move(sr), NowMs());
  Pump();
}

void Service::Impl::Pump() {
  while (engine->HasActions()) {
    auto actions = engine->TakeActions();
    for (auto& a : actions) Execute(a);
  }
  MaybeFinishShutdown();
}

void Service::Impl::Execute(Action& a) {
  if (auto* p = std::get_if<action::SendPrepare>(&a)) {
    http::ClientRequest cr;
    cr.base_url = p->to.url;
    cr.method = "POST";
    cr.target = "/v1/prepare";
    cr.body = wire::ToJson(p->request).dump();
    cr.timeout = std::chrono::milliseconds(p->timeout_ms);
    if (!options.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options.token);
    peers.Send(std::move(cr), [this, txid = p->request.txid, name = p->to.name](Result<http::Response> r) {
      Result<wire::Vote> vote = Status::Internal("unset");
      if (!r.ok()) {
        vote = r.status();
      } else if (r->status != 200) {
        vote = Status::InvalidArgument("HTTP " + std::to_string(r->status) + ": " + http::ErrorMessageOf(*r));
      } else {
        vote = wire::ParseVote(r->body);
      }
      engine->OnVote(txid, name, std::move(vote), NowMs());
      Pump();
    });
  } else if (auto* d = std::get_if<action::SendDecision>(&a)) {
    if (d->outcome == Outcome::kCommitted && failpoint::Active("coordinator.skip_commit_delivery")) return;
    http::ClientRequest cr;
    // The registry's URL wins over the one recorded with the decision: an
    // agent that moved and re-registered still gets its decisions.
    auto registered = registry.find(d->to.name);
    cr.base_url = registered != registry.end() ? registered->second.entry.url : d->to.url;
    cr.method = "POST";
    cr.target = d->outcome == Outcome::kCommitted ? "/v1/commit" : "/v1/abort";
    cr.body = nlohmann::json{{"txid", d->txid}}.dump();
    if (!options.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options.token);
    const bool commit = d->outcome == Outcome::kCommitted;
    peers.Send(std::move(cr), [this, txid = d->txid, name = d->to.name, commit](Result<http::Response> r) {
      Status s;
      if (!r.ok()) {
        s = r.status();
      } else if (commit && r->status == 404 && r->body.find("\"unknown_transaction\"") != std::string::npos) {
        // Every participant of a commit voted yes, so one that no longer knows
        // the txid applied it and forgot it after its retention window (or
        // lost its database: then no redelivery can help). Counted as acked.
        ++commits_unknown_at_participant;
        log::Error("commit_unknown_at_participant",
                   {{"txid", txid}, {"participant", name}, {"error", http::ErrorMessageOf(*r)}});
      } else if (r->status != 200) {
        s = Status::Unavailable("HTTP " + std::to_string(r->status) + ": " + http::ErrorMessageOf(*r));
      }
      if (!s.ok())
        log::Warn("decision_delivery_failed", {{"txid", txid}, {"participant", name}, {"error", s.ToString()}});
      engine->OnDecisionAcked(txid, name, s, NowMs());
      Pump();
    });
  } else if (auto* pd = std::get_if<action::PersistDecision>(&a)) {
    if (pd->record.outcome == Outcome::kCommitted) ++committed; else ++aborted;
    std::string txid = pd->record.txid;
    const bool commit = pd->record.outcome == Outcome::kCommitted;
    // 3PC: every participant acked precommit (or the deadline passed); nothing says commit yet.
    if (commit && pd->record.protocol == wire::Protocol::k3pc)
      failpoint::CrashIf("coordinator.crash_before_3pc_commit_record");
    log->AppendDecision(std::move(pd->record), [this, txid, commit, epoch = leadership_epoch](Status s) {
      if (epoch != leadership_epoch) return;  // a group leader that has stepped down since
      if (!s.ok()) log::Error("decision_write_failed", {{"txid", txid}, {"error", s.ToString()}});
      if (!s.ok() && group_log) {
        // Only a lost leadership fails a group append, and the entry may still
        // commit: the next leader resumes it. This engine must not guess.
        DropEngine("the decision of " + txid + " could not be confirmed: " + s.message());
        return;
      }
      if (!s.ok() && commit) {
        // A failed COMMIT may still have left the record in the WAL, to
        // reappear after a restart: guessing "abort" now could contradict it.
        // Stop instead; on restart the log says what was decided.
        log::Error("fatal_decision_log_failure", {{"txid", txid}, {"action", "stopping; restart to recover"}});
        std::abort();
      }
      failpoint::CrashIf("coordinator.crash_after_decision_durable");
      engine->OnDecisionPersisted(txid, s, NowMs());
      Pump();
    });
  } else if (auto* pp = std::get_if<action::PersistPrecommit>(&a)) {
    std::string txid = pp->record.txid;
    log->AppendDecision(std::move(pp->record), [this, txid, epoch = leadership_epoch](Status s) {
      if (epoch != leadership_epoch) return;
      if (!s.ok()) log::Error("precommit_write_failed", {{"txid", txid}, {"error", s.ToString()}});
      if (!s.ok() && group_log) {
        // As for a decision: the precommit record may still commit, and the
        // next leader then resumes it; aborting here could contradict it.
        DropEngine("the precommit of " + txid + " could not be confirmed: " + s.message());
        return;
      }
      failpoint::CrashIf("coordinator.crash_after_precommit_durable");
      engine->OnPrecommitPersisted(txid, s, NowMs());
      Pump();
    });
  } else if (auto* sp = std::get_if<action::SendPrecommit>(&a)) {
    http::ClientRequest cr;
    auto registered = registry.find(sp->to.name);
    cr.base_url = registered != registry.end() ? registered->second.entry.url : sp->to.url;
    cr.method = "POST";
    cr.target = "/v1/precommit";
    cr.body = nlohmann::json{{"txid", sp->txid}}.dump();
    if (!options.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options.token);
    ++precommits_sent;
    peers.Send(std::move(cr), [this, txid = sp->txid, name = sp->to.name](Result<http::Response> r) {
      Result<PrecommitAnswer> answer = Status::Internal("unset");
      if (!r.ok()) {
        answer = r.status();
      } else if (r->status == 200) {
        answer = PrecommitAnswer::kAcked;
      } else if ((r->status == 409 && r->body.find("\"already_aborted\"") != std::string::npos) ||
                 (r->status == 404 && r->body.find("\"unknown_transaction\"") != std::string::npos)) {
        answer = PrecommitAnswer::kAborted;
      } else {
        answer = Status::Unavailable("HTTP " + std::to_string(r->status) + ": " + http::ErrorMessageOf(*r));
      }
      if (!answer.ok()) {
        log::Warn("precommit_delivery_failed",
                  {{"txid", txid}, {"participant", name}, {"error", answer.status().ToString()}});
      }
      engine->OnPrecommitAcked(txid, name, std::move(answer), NowMs());
      Pump();
    });
  } else if (auto* pf = std::get_if<action::PersistFinished>(&a)) {
    std::string txid = pf->txid;
    log->MarkFinished(txid, pf->finished_ms, [this, txid, epoch = leadership_epoch](Status s) {
      if (epoch != leadership_epoch) return;
      engine->OnFinishedPersisted(txid, s);
      Pump();
    });
  } else if (auto* rc = std::get_if<action::ReplyClient>(&a)) {
    auto it = clients.find(rc->client);
    if (it == clients.end()) return;
    http::Responder respond = std::move(it->second);
    clients.erase(it);
    respond(http::JsonResponse(rc->status, rc->body));
  }
}

void Service::Impl::ScheduleTick() {
  tick_timer.expires_after(std::chrono::milliseconds(options.config.tick_ms));
  tick_timer.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    engine->Tick(NowMs());
    Pump();
    ScheduleTick();
  });
}

void Service::Impl::ScheduleHealth() {
  health_timer.expires_after(std::chrono::milliseconds(options.config.health_interval_ms));
  health_timer.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    for (auto& [name, p] : registry) Probe(name);
    ScheduleHealth();
  });
}

void Service::Impl::Probe(const std::string& name) {
  auto it = registry.find(name);
  if (it == registry.end()) return;
  http::ClientRequest cr;
  cr.base_url = it->second.entry.url;
  cr.target = "/v1/procedures";
  cr.timeout = std::chrono::milliseconds(options.config.request_timeout_ms);
  if (!options.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options.token);
  client.Send(std::move(cr), [this, name](Result<http::Response> r) {
    auto it = registry.find(name);
    if (it == registry.end()) return;
    Participant& p = it->second;
    if (!r.ok() || r->status != 200) {
      p.healthy = false;
      p.last_error = r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message();
      return;
    }
    auto body = nlohmann::json::parse(r->body, nullptr, false);
    p.healthy = true;
    p.last_seen_ms = NowMs();
    p.last_error.clear();
    if (body.is_object() && body.contains("procedures") && body["procedures"].is_array()) {
      p.procedures.clear();
      for (const auto& n : body["procedures"]) {
        if (n.is_string()) p.procedures.insert(n.get<std::string>());
      }
      p.allow_raw_sql = body.value("allow_raw_sql", false);
      p.catalog_known = true;
    }
  });
}

void Service::Impl::HandleGetTransaction(http::Request req, http::Responder respond) {
  const std::string txid = req.path_params["txid"];
  if (!wire::IsValidTxid(txid)) {
    respond(http::ErrorResponse(400, "invalid_request", "txid: must be 1-128 characters of [A-Za-z0-9._:-]"));
    return;
  }
  if (auto view = engine->Find(txid)) {
    respond(http::JsonResponse(200, ViewToJson(*view, NowMs())));
    return;
  }
  // A participant resolving an in-doubt record says who it is (?participant=NAME).
  const std::string asker = req.query.count("participant") ? req.query["participant"] : "";
  log->FindDecision(txid, [this, txid, asker, respond](Result<std::optional<DecisionRecord>> found) {
    if (!found.ok()) {
      respond(http::ErrorResponse(503, "storage_error", found.status().message()));
      return;
    }
    if (found.value()) {
      respond(http::JsonResponse(200, RecordToJson(**found, NowMs())));
      return;
    }
    nlohmann::json body = {{"error", {{"code", "not_found"},
                                      {"message", "no transaction " + txid +
                                                      " is known here; under presumed abort it did not commit"}}},
                           {"txid", txid},
                           {"outcome", "aborted"}};
    if (group_log) {
      // Every member shares this log: the abort recorded here binds whichever
      // member ran the transaction (agents check their record's URL against this).
      nlohmann::json group = nlohmann::json::array();
      for (const auto& m : options.peers) group.push_back(m.url);
      body["group"] = std::move(group);
    }
    if (asker.empty() && !group_log) {
      respond(http::JsonResponse(404, body));
      return;
    }
    // Presumed abort told to a participant is a decision it will act on: record
    // it first (first decision wins), so that nothing — a later forced commit,
    // say — can decide the other way for the participants that did not ask.
    const int64_t now = NowMs();
    DecisionRecord abort;
    abort.txid = txid;
    abort.outcome = Outcome::kAborted;
    auto registered = registry.find(asker);
    if (!asker.empty()) {
      abort.participants.push_back({asker, registered != registry.end() ? registered->second.entry.url : ""});
    }
    abort.reason = "presumed abort: unknown to the coordinator when " + asker + " asked";
    abort.reply = {{"txid", txid}, {"outcome", "aborted"}, {"reason", abort.reason}};
    abort.created_ms = abort.decided_ms = abort.finished_ms = now;
    abort.finished = true;
    log->AppendDecision(std::move(abort), [this, txid, body, respond](Status s) {
      if (s.ok()) {
        respond(http::JsonResponse(404, body));
        return;
      }
      // Conflict: another decision got there first; answer with it.
      log->FindDecision(txid, [respond, s](Result<std::optional<DecisionRecord>> again) {
        if (again.ok() && again.value()) {
          respond(http::JsonResponse(200, RecordToJson(**again, NowMs())));
        } else {
          respond(http::ErrorResponse(503, "storage_error", "cannot record the presumed abort: " + s.message()));
        }
      });
    });
  });
}

void Service::Impl::HandleListTransactions(http::Request req, http::Responder respond) {
  std::string state = req.query.count("state") ? req.query["state"] : "";
  std::size_t limit = 100;
  if (req.query.count("limit")) {
    try {
      long long n = std::stoll(req.query["limit"]);
      if (n < 1 || n > 10000) throw std::out_of_range("limit");
      limit = static_cast<std::size_t>(n);
    } catch (const std::exception&) {
      respond(http::ErrorResponse(400, "invalid_request", "limit: must be an integer between 1 and 10000"));
      return;
    }
  }
  const int64_t now = NowMs();
  if (state == "pending" || state == "in_doubt") {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& v : engine->List()) {
      bool pending = v.outcome == Outcome::kPending;
      if ((state == "pending") != pending) continue;
      nlohmann::json j = ViewToJson(v, now);
      list.push_back({{"txid", j["txid"]}, {"protocol", j["protocol"]}, {"state", j["state"]},
                      {"outcome", j["outcome"]}, {"age_ms", j["age_ms"]}});
      if (list.size() >= limit) break;
    }
    respond(http::JsonResponse(200, {{"transactions", std::move(list)}}));
    return;
  }
  ListFilter filter;
  filter.limit = limit;
  if (state == "committed") {
    filter.outcome = Outcome::kCommitted;
  } else if (state == "aborted") {
    filter.outcome = Outcome::kAborted;
  } else if (!state.empty()) {
    respond(http::ErrorResponse(400, "invalid_request",
                                "state: must be one of pending, in_doubt, committed, aborted"));
    return;
  }
  log->ListDecisions(filter, [respond, now](Result<std::vector<DecisionRecord>> records) {
    if (!records.ok()) {
      respond(http::ErrorResponse(503, "storage_error", records.status().message()));
      return;
    }
    nlohmann::json list = nlohmann::json::array();
    for (const auto& r : *records) {
      nlohmann::json j = {{"txid", r.txid},
                          {"protocol", wire::ProtocolName(r.protocol)},
                          {"state", r.finished                          ? "finished"
                                    : r.outcome == Outcome::kPending ? "precommitting"
                                                                     : "delivering"},
                          {"outcome", OutcomeName(r.outcome)},
                          {"age_ms", now - r.created_ms}};
      if (r.heuristic) j["heuristic"] = true;
      list.push_back(std::move(j));
    }
    respond(http::JsonResponse(200, {{"transactions", std::move(list)}}));
  });
}

void Service::Impl::HandleListParticipants(http::Responder respond) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, p] : registry) {
    nlohmann::json j = {{"name", name}, {"url", p.entry.url}, {"healthy", p.healthy},
                        {"last_seen_ms", p.last_seen_ms}, {"allow_raw_sql", p.allow_raw_sql},
                        {"procedures", p.procedures}};
    if (!p.last_error.empty()) j["last_error"] = p.last_error;
    list.push_back(std::move(j));
  }
  respond(http::JsonResponse(200, {{"participants", std::move(list)}}));
}

void Service::Impl::HandlePutParticipant(http::Request req, http::Responder respond) {
  const std::string name = req.path_params["name"];
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    respond(http::ErrorResponse(400, "invalid_request", "body: must be a JSON object {\"url\": \"http://...\"}"));
    return;
  }
  if (!body.contains("url") || !body["url"].is_string() || body["url"].get<std::string>().rfind("http://", 0) != 0) {
    respond(http::ErrorResponse(400, "invalid_request", "url: must be a string starting with http://"));
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
  RegistryEntry entry{name, body["url"].get<std::string>(), NowMs()};
  log->PutParticipant(entry, [this, entry, respond](Status s) {
    if (!s.ok()) {
      respond(http::ErrorResponse(503, "storage_error", s.message()));
      return;
    }
    Participant& p = registry[entry.name];
    bool changed = p.entry.url != entry.url;
    p.entry = entry;
    if (changed) p.catalog_known = false;
    Probe(entry.name);
    respond(http::JsonResponse(200, {{"name", entry.name}, {"url", entry.url}}));
  });
}

namespace {

// The answer to a force for a transaction the coordinator already decided:
// the same outcome is a no-op, a different one is refused.
http::Response AnswerDecided(const std::string& txid, Outcome existing, Outcome wanted, nlohmann::json tx) {
  if (existing == wanted) {
    return http::JsonResponse(
        200, {{"txid", txid}, {"outcome", OutcomeName(existing)}, {"forced", false}, {"transaction", std::move(tx)}});
  }
  nlohmann::json body = {
      {"error",
       {{"code", "decision_conflict"},
        {"message", txid + " is already decided " + std::string(OutcomeName(existing)) +
                        "; a heuristic decision may only stand in for a decision that was lost"}}},
      {"txid", txid},
      {"outcome", OutcomeName(existing)}};
  return http::JsonResponse(409, body);
}

}  // namespace

// POST /v1/admin/transactions/{txid}/force
//   {"outcome": "commit"|"abort", "participants": [{"name", "url"?}], "reason"?}
void Service::Impl::HandleForce(http::Request req, http::Responder respond) {
  const std::string txid = req.path_params["txid"];
  auto bad = [&respond](const std::string& message) {
    respond(http::ErrorResponse(400, "invalid_request", message));
  };
  if (!wire::IsValidTxid(txid)) return bad("txid: must be 1-128 characters of [A-Za-z0-9._:-]");
  if (stopping) {
    respond(http::ErrorResponse(503, "stopping", "coordinator is shutting down"));
    return;
  }
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return bad("body: must be a JSON object {\"outcome\":\"commit\"|\"abort\",\"participants\":[{\"name\":...}]}");
  }
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "outcome" && it.key() != "participants" && it.key() != "reason") {
      return bad("unknown field \"" + it.key() + "\"");
    }
  }
  const std::string outcome_text =
      body.contains("outcome") && body["outcome"].is_string() ? body["outcome"].get<std::string>() : "";
  Outcome wanted;
  if (outcome_text == "commit" || outcome_text == "committed") {
    wanted = Outcome::kCommitted;
  } else if (outcome_text == "abort" || outcome_text == "aborted") {
    wanted = Outcome::kAborted;
  } else {
    return bad("outcome: must be \"commit\" or \"abort\"");
  }
  std::string reason = "heuristic decision forced by an operator";
  if (body.contains("reason")) {
    if (!body["reason"].is_string()) return bad("reason: must be a string");
    reason = body["reason"].get<std::string>();
  }
  std::vector<ParticipantRef> participants;
  const nlohmann::json list = body.value("participants", nlohmann::json::array());
  if (!list.is_array()) return bad("participants: must be an array of {\"name\",\"url\"}");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& p = list[i];
    const std::string where = "participants[" + std::to_string(i) + "]";
    if (!p.is_object() || !p.contains("name") || !p["name"].is_string() || p["name"].get<std::string>().empty()) {
      return bad(where + ".name: required");
    }
    ParticipantRef ref{p["name"].get<std::string>(), ""};
    if (p.contains("url")) {
      if (!p["url"].is_string() || p["url"].get<std::string>().rfind("http://", 0) != 0) {
        return bad(where + ".url: must be a string starting with http://");
      }
      ref.url = p["url"].get<std::string>();
    } else if (auto it = registry.find(ref.name); it != registry.end()) {
      ref.url = it->second.entry.url;
    } else {
      return bad(where + ".url: required, '" + ref.name + "' is not registered here");
    }
    participants.push_back(std::move(ref));
  }

  if (auto view = engine->Find(txid)) {
    if (view->outcome == Outcome::kPending) {
      respond(http::ErrorResponse(409, "undecided",
                                  txid + " is still collecting votes here; the protocol decides it (abort at its "
                                         "deadline at the latest), not an operator"));
      return;
    }
    respond(AnswerDecided(txid, view->outcome, wanted, ViewToJson(*view, NowMs())));
    return;
  }
  log->FindDecision(txid, [this, txid, wanted, reason, participants = std::move(participants),
                           respond](Result<std::optional<DecisionRecord>> found) mutable {
    if (!found.ok()) {
      respond(http::ErrorResponse(503, "storage_error", found.status().message()));
      return;
    }
    if (found.value()) {
      const DecisionRecord& r = **found;
      respond(AnswerDecided(txid, r.outcome, wanted, RecordToJson(r, NowMs())));
      return;
    }
    if (participants.empty()) {
      respond(http::ErrorResponse(400, "invalid_request",
                                  "participants: name the participants that hold " + txid +
                                      " prepared; this coordinator has no record of it"));
      return;
    }
    DecisionRecord record;
    record.txid = txid;
    record.outcome = wanted;
    record.participants = std::move(participants);
    record.reason = wanted == Outcome::kCommitted ? "" : reason;
    record.created_ms = record.decided_ms = NowMs();
    record.heuristic = true;
    record.reply = {{"txid", txid}, {"outcome", OutcomeName(wanted)}, {"heuristic", true}, {"reason", reason}};
    RecordHeuristic(std::move(record), std::move(respond));
  });
}

void Service::Impl::RecordHeuristic(DecisionRecord record, http::Responder respond) {
  log->AppendDecision(record, [this, record, respond](Status s) mutable {
    if (s.code() == StatusCode::kConflict) {
      // Decided meanwhile (a concurrent force): answer as if it had been found.
      log->FindDecision(record.txid, [record, respond, s](Result<std::optional<DecisionRecord>> found) {
        if (found.ok() && found.value()) {
          respond(AnswerDecided(record.txid, (*found)->outcome, record.outcome, RecordToJson(**found, NowMs())));
        } else {
          respond(http::ErrorResponse(409, "decision_conflict", s.message()));
        }
      });
      return;
    }
    if (!s.ok()) {
      respond(http::ErrorResponse(503, "storage_error", s.message()));
      return;
    }
    ++heuristic;
    log::Warn("heuristic_decision", {{"txid", record.txid},
                                     {"outcome", OutcomeName(record.outcome)},
                                     {"participants", record.participants.size()}});
    const int64_t now = NowMs();
    nlohmann::json tx = RecordToJson(record, now);
    engine->Resume(std::move(record), now);
    Pump();
    respond(http::JsonResponse(200, {{"txid", tx["txid"]},
                                     {"outcome", tx["outcome"]},
                                     {"forced", true},
                                     {"heuristic", true},
                                     {"transaction", std::move(tx)}}));
  });
}

void Service::Impl::HandleMetrics(http::Responder respond) {
  auto ws = group_log ? group_log->writer_stats() : single_log->writer_stats();
  std::string text;
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t value) {
    text += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
            std::to_string(value) + "\n";
  };
  metric("commitd_transactions_started_total", "counter", "Transactions started.", started);
  metric("commitd_transactions_committed_total", "counter", "Transactions decided commit.", committed);
  metric("commitd_transactions_aborted_total", "counter", "Transactions decided abort.", aborted);
  metric("commitd_transactions_heuristic_total", "counter",
         "Decisions forced by an operator (commitctl resolve --force), in the log.", heuristic);
  metric("commitd_transactions_rejected_overload_total", "counter", "Requests refused with 429.", rejected_overload);
  metric("commitd_commits_unknown_at_participant_total", "counter",
         "Commit deliveries a participant answered unknown_transaction (forgotten after retention, or a lost disk).",
         commits_unknown_at_participant);
  metric("commitd_precommits_sent_total", "counter", "3PC precommit messages sent (retries included).",
         precommits_sent);
  metric("commitd_presumed_aborts_swept_total", "counter",
         "Prepared transactions of a previous incarnation or leader with no decision, aborted at takeover.", swept);
  metric("commitd_requests_forwarded_total", "counter", "Client requests a follower passed to the leader.",
         forwarded);
  metric("commitd_transactions_undecided", "gauge", "Transactions waiting for votes.", engine->undecided());
  metric("commitd_transactions_active", "gauge", "Transactions not yet finished.", engine->active());
  metric("commitd_log_batches_total", "counter", "Group commits of the decision log.", ws.batches);
  metric("commitd_peer_messages_total", "counter", "Protocol messages sent to agents.", peers.stats().requests);
  metric("commitd_peer_exchanges_total", "counter", "HTTP exchanges that carried them (batched).",
         peers.stats().exchanges);
  metric("commitd_log_records_total", "counter", "Records written to the decision log.", ws.jobs);
  http::Response r;
  r.status = 200;
  r.content_type = "text/plain; version=0.0.4";
  r.body = std::move(text);
  respond(std::move(r));
}

}  // namespace commitd::coordinator
