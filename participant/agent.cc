#include "participant/agent.h"

#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include "common/batch_writer.h"
#include "common/clock.h"
#include "common/failpoint.h"
#include "common/http_batch.h"
#include "common/http_client.h"
#include "common/http_options.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/sqlite_db.h"
#include "participant/engine.h"
#include "participant/resource_manager.h"

namespace commitd::participant {
namespace {

// Engine time: see common/clock.h.
int64_t NowMs() { return EngineClockMs(); }

// A peer's answer to a termination request, as a state name (Engine::StateOf)
// or why there is none.
Result<std::string> PeerStateOf(const Result<http::Response>& r, const std::string& url) {
  if (!r.ok()) return Status::Unavailable(url + ": " + r.status().message());
  auto body = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status == 200 && body.is_object() && body.contains("state") && body["state"].is_string()) {
    return body["state"].get<std::string>();
  }
  if (r->status == 404 && r->body.find("\"unknown_transaction\"") != std::string::npos) return std::string("unknown");
  if (r->status == 409 && r->body.find("\"already_aborted\"") != std::string::npos) return std::string("aborted");
  return Status::Unavailable(url + ": HTTP " + std::to_string(r->status) + ": " + http::ErrorMessageOf(*r));
}

}  // namespace

struct Agent::Impl {
  Impl(boost::asio::io_context& io, AgentOptions options)
      : io(io),
        options(std::move(options)),
        client(io, http::ClientOptionsFor(this->options.config)),
        tick_timer(io),
        register_timer(io) {}

  boost::asio::io_context& io;
  AgentOptions options;
  std::string self_url;
  std::unique_ptr<sqlite::Database> db;   // used only by the storage thread once writer exists
  std::unique_ptr<ResourceManager> rm;    // storage thread only, except const Validate()
  std::unique_ptr<BatchWriter> writer;
  std::unique_ptr<Engine> engine;
  http::Router own_router;  // routes of the agent's own server, when it listens
  std::unique_ptr<http::Server> server;
  http::Client client;
  boost::asio::steady_timer tick_timer;
  boost::asio::steady_timer register_timer;
  std::unordered_map<RequestToken, http::Responder> requests;
  RequestToken next_token = 1;
  std::vector<std::string> unregistered;  // coordinators not yet told our URL
  Procedures callables;                   // registered before Start(), then moved into the RM
  bool started = false;
  bool stopping = false;
  uint64_t prepares = 0, votes_yes = 0, votes_no = 0, commits = 0, aborts = 0;
  // 3PC.
  uint64_t precommits = 0;             // precommitted records made durable
  uint64_t termination_rounds = 0;     // times the peers were asked (the coordinator was silent)
  uint64_t termination_decisions = 0;  // commits and aborts decided by termination
  // Transactions whose changeset hit a conflict, each counted once however
  // often the coordinator retries the commit.
  std::unordered_set<std::string> conflicted;
  uint64_t conflicted_total = 0;

  Status Start();
  void RegisterRoutes(http::Router& router, bool with_health);
  // Wraps a handler of the agent API: 503 before Start() and after Shutdown(),
  // 401 without the token.
  http::Handler Guarded(http::Handler handler);
  bool Authorized(const http::Request& req, const http::Responder& respond);
  RequestToken Track(http::Responder respond);
  void Pump();
  void Execute(Action& a);
  void QueryDecision(std::string txid, std::vector<std::string> urls, std::size_t index, std::string errors);
  void CallPeers(action::CallPeers call);
  void ScheduleTick();
  void RegisterWithCoordinators();
  void HandleHeld(http::Request req, http::Responder respond);
  void HandleLocks(http::Responder respond);
  std::string MetricsText() const;
};

Agent::Agent(boost::asio::io_context& io, AgentOptions options)
    : impl_(std::make_unique<Impl>(io, std::move(options))) {}

Agent::~Agent() {
  // The writer's thread must end before the RM and the database go.
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
  s.tick_timer.cancel();
  s.register_timer.cancel();
  s.client.CloseIdle();
  if (s.writer) s.writer->Flush();
  // Flush posted the last completions; let them run before reporting done.
  boost::asio::post(s.io, [done = std::move(done)] { done(); });
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
  sqlite::OpenOptions oo;
  oo.create = false;
  oo.busy_timeout_ms = static_cast<int>(options.config.busy_timeout_ms);
  auto opened = sqlite::Database::Open(options.db_path, oo);
  if (!opened.ok()) return opened.status();
  db = std::move(opened).value();
  auto rm_opened = ResourceManager::Open(*db, std::move(procedures), {options.allow_raw_sql});
  if (!rm_opened.ok()) return rm_opened.status();
  rm = std::move(rm_opened).value();
  auto records = rm->LoadPrepared();
  if (!records.ok()) return records.status();
  auto outcomes = rm->LoadOutcomes();
  if (!outcomes.ok()) return outcomes.status();

  EngineOptions eo;
  eo.name = options.name;
  eo.termination_grace_ms = options.config.termination_grace_ms;
  eo.coordinators = options.coordinators;
  eo.resolve_initial_ms = options.config.resolve_initial_ms;
  eo.resolve_max_ms = options.config.resolve_max_ms;
  eo.outcome_retention_ms = options.config.outcome_retention_ms;
  engine = std::make_unique<Engine>(eo);
  const std::size_t recovered = records->size();
  for (const PreparedRecord& r : records.value()) {
    if (r.state == "conflict") conflicted.insert(r.txid);
  }
  engine->Recover(std::move(records).value(), outcomes.value(), NowMs());
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

  started = true;

  self_url = options.advertise_url;
  if (!options.listen.empty()) {
    http::ServerOptions so = http::ServerOptionsFor(options.config, addr.first, addr.second);
    RegisterRoutes(own_router, true);
    server = std::make_unique<http::Server>(io, so, own_router);
    if (Status s = server->Start(); !s.ok()) {
      started = false;
      return s;
    }
    if (self_url.empty()) self_url = "http://" + addr.first + ":" + std::to_string(server->port());
  }
  while (!self_url.empty() && self_url.back() == '/') self_url.pop_back();
  log::Info("agent_started", {{"name", options.name},
                              {"url", self_url},
                              {"listening", !options.listen.empty()},
                              {"db", options.db_path},
                              {"recovered_prepared", recovered},
                              {"locks", engine->locks().size()}});
  unregistered = options.coordinators;
  RegisterWithCoordinators();
  Pump();
  ScheduleTick();
  return Status::Ok();
}

bool Agent::Impl::Authorized(const http::Request& req, const http::Responder& respond) {
  return http::CheckBearer(req, options.token, respond);
}

RequestToken Agent::Impl::Track(http::Responder respond) {
  RequestToken t = next_token++;
  requests.emplace(t, std::move(respond));
  return t;
}

http::Handler Agent::Impl::Guarded(http::Handler handler) {
  return [this, handler = std::move(handler)](http::Request req, http::Responder r) {
    if (!started || stopping) {
      r(http::ErrorResponse(503, "not_ready", started ? "the agent is shutting down" : "the agent is not started"));
      return;
    }
    if (!Authorized(req, r)) return;
    handler(std::move(req), std::move(r));
  };
}

void Agent::Impl::RegisterRoutes(http::Router& router, bool with_health) {
  // The coordinator coalesces messages to this agent into POST /v1/batch under load.
  http::AddBatchRoute(router, io, "/v1/batch");
  router.Add("POST", "/v1/prepare", Guarded([this](http::Request req, http::Responder r) {
    auto parsed = wire::ParsePrepareRequest(req.body);
    if (!parsed.ok()) {
      r(http::ErrorResponse(400, "invalid_request", parsed.status().message()));
      return;
    }
    if (!parsed->participant.empty() && parsed->participant != options.name) {
      r(http::ErrorResponse(400, "wrong_participant",
                            "this agent is '" + options.name + "', not '" + parsed->participant + "'"));
      return;
    }
    ++prepares;
    if (Status v = rm->Validate(parsed->ops); !v.ok()) {
      wire::Vote no;
      no.txid = parsed->txid;
      no.reason = v.message();
      ++votes_no;
      r(http::JsonResponse(200, wire::ToJson(no)));
      return;
    }
    engine->OnPrepare(std::move(parsed).value(), Track(std::move(r)), NowMs());
    Pump();
  }));
  auto decision_route = [this](bool commit) {
    return Guarded([this, commit](http::Request req, http::Responder r) {
      auto txid = wire::ParseTxidBody(req.body);
      if (!txid.ok()) {
        r(http::ErrorResponse(400, "invalid_request", txid.status().message()));
        return;
      }
      if (failpoint::Active("agent.ignore_decisions")) {
        r(http::ErrorResponse(503, "failpoint", "agent.ignore_decisions is set"));
        return;
      }
      if (commit) {
        engine->OnCommit(*txid, Track(std::move(r)), NowMs());
      } else {
        engine->OnAbort(*txid, Track(std::move(r)), NowMs());
      }
      Pump();
    });
  };
  router.Add("POST", "/v1/precommit", Guarded([this](http::Request req, http::Responder r) {
    auto txid = wire::ParseTxidBody(req.body);
    if (!txid.ok()) {
      r(http::ErrorResponse(400, "invalid_request", txid.status().message()));
      return;
    }
    if (failpoint::Active("agent.ignore_decisions")) {
      r(http::ErrorResponse(503, "failpoint", "agent.ignore_decisions is set"));
      return;
    }
    engine->OnPrecommit(*txid, Track(std::move(r)), NowMs());
    Pump();
  }));
  // One transaction's state here: what a peer running 3PC termination asks.
  router.Add("GET", "/v1/transactions/{txid}", Guarded([this](http::Request req, http::Responder r) {
    const std::string txid = req.path_params["txid"];
    if (!wire::IsValidTxid(txid)) {
      r(http::ErrorResponse(400, "invalid_request", "txid: must be 1-128 characters of [A-Za-z0-9._:-]"));
      return;
    }
    r(http::JsonResponse(200, {{"txid", txid}, {"state", engine->StateOf(txid)}}));
  }));
  router.Add("POST", "/v1/commit", decision_route(true));
  router.Add("POST", "/v1/abort", decision_route(false));
  router.Add("GET", "/v1/transactions", Guarded([this](http::Request req, http::Responder r) {
    HandleHeld(std::move(req), std::move(r));
  }));
  router.Add("GET", "/v1/procedures", Guarded([this](http::Request, http::Responder r) {
    r(http::JsonResponse(200, {{"name", options.name}, {"procedures", rm->procedures().Names()},
                               {"allow_raw_sql", options.allow_raw_sql}}));
  }));
  router.Add("GET", "/v1/locks", Guarded([this](http::Request, http::Responder r) { HandleLocks(std::move(r)); }));
  if (!with_health) return;
  router.Add("GET", "/healthz", [this](http::Request, http::Responder r) {
    r(http::JsonResponse(200, {{"status", "ok"}, {"name", options.name}}));
  });
  router.Add("GET", "/metrics", [this](http::Request, http::Responder r) {
    http::Response response;
    response.content_type = "text/plain; version=0.0.4";
    response.body = started ? MetricsText() : std::string();
    r(std::move(response));
  });
}

void Agent::Impl::Pump() {
  for (auto actions = engine->TakeActions(); !actions.empty(); actions = engine->TakeActions()) {
    for (auto& a : actions) Execute(a);
  }
}

void Agent::Impl::Execute(Action& a) {
  if (auto* pr = std::get_if<action::Prepare>(&a)) {
    auto prepare = std::make_shared<PrepareJob>(PrepareJob{std::move(pr->ops), std::move(pr->record), {}, {}});
    BatchWriter::Job job;
    job.scratch = [this, prepare](sqlite::Database&) { prepare->Scratch(*rm); };
    job.run = [this, prepare](sqlite::Database&) {
      failpoint::CrashIf("agent.crash_before_prepare_durable");
      prepare->Durable(*rm);
      return Status::Ok();
    };
    job.done = [this, prepare](Status s) {
      const bool yes = s.ok() && prepare->result.yes;
      if (yes) failpoint::CrashIf("agent.crash_after_prepare_durable");
      if (yes) ++votes_yes;
      engine->OnPrepared(prepare->record.txid, std::move(prepare->result), s, NowMs());
      Pump();
    };
    writer->Submit(std::move(job));
  } else if (auto* ac = std::get_if<action::ApplyCommit>(&a)) {
    writer->Submit({[this, txid = ac->txid](sqlite::Database&) { return rm->Commit(txid, NowMs()); },
                    [this, txid = ac->txid](Status s) {
                      if (s.ok()) {
                        ++commits;
                        conflicted.erase(txid);
                        failpoint::CrashIf("agent.crash_after_commit_applied");
                      } else if (s.code() == StatusCode::kConflict) {
                        if (conflicted.insert(txid).second) ++conflicted_total;
                        log::Warn("commit_apply_conflict", {{"txid", txid}, {"error", s.message()}});
                      } else {
                        log::Error("commit_apply_failed", {{"txid", txid}, {"error", s.ToString()}});
                      }
                      engine->OnCommitApplied(txid, s, NowMs());
                      Pump();
                    }});
  } else if (auto* ab = std::get_if<action::ApplyAbort>(&a)) {
    writer->Submit({[this, txid = ab->txid](sqlite::Database&) { return rm->Abort(txid, NowMs()); },
                    [this, txid = ab->txid](Status s) {
                      if (s.ok()) {
                        ++aborts;
                        failpoint::CrashIf("agent.crash_during_abort");
                      }
                      engine->OnAbortApplied(txid, s, NowMs());
                      Pump();
                    }});
  } else if (auto* ro = std::get_if<action::RememberOutcome>(&a)) {
    if (ro->outcome == "aborted") ++votes_no;
    writer->Submit({[this, txid = ro->txid, outcome = ro->outcome](sqlite::Database&) {
                      return rm->RememberOutcome(txid, outcome, NowMs());
                    },
                    nullptr});
  } else if (auto* fo = std::get_if<action::ForgetOutcomesBefore>(&a)) {
    writer->Submit({[this, cutoff = fo->cutoff_ms](sqlite::Database&) { return rm->ForgetOutcomesBefore(cutoff); },
                    nullptr});
  } else if (auto* reply = std::get_if<action::Reply>(&a)) {
    auto it = requests.find(reply->to);
    if (it == requests.end()) return;
    http::Responder respond = std::move(it->second);
    requests.erase(it);
    respond(http::JsonResponse(reply->status, reply->body));
  } else if (auto* pc = std::get_if<action::PersistPrecommitted>(&a)) {
    writer->Submit({[this, txid = pc->txid](sqlite::Database&) { return rm->UpdatePrepared(txid, "precommitted", ""); },
                    [this, txid = pc->txid](Status s) {
                      if (s.ok()) {
                        ++precommits;
                        failpoint::CrashIf("agent.crash_after_precommit_durable");
                      }
                      engine->OnPrecommitPersisted(txid, s, NowMs());
                      Pump();
                    }});
  } else if (auto* cp = std::get_if<action::CallPeers>(&a)) {
    CallPeers(std::move(*cp));
  } else if (auto* q = std::get_if<action::QueryDecision>(&a)) {
    if (failpoint::Active("agent.ignore_decisions")) {
      engine->OnDecisionAnswer(q->txid, Status::Unavailable("agent.ignore_decisions is set"), NowMs());
      return;
    }
    QueryDecision(q->txid, std::move(q->coordinators), 0, "");
  }
}

// Asks urls[index..] in turn; the first definite answer wins.
void Agent::Impl::QueryDecision(std::string txid, std::vector<std::string> urls, std::size_t index,
                                std::string errors) {
  if (index >= urls.size()) {
    if (urls.empty()) errors = "no coordinator URL known for this transaction";
    engine->OnDecisionAnswer(txid, Status::Unavailable(errors), NowMs());
    Pump();
    return;
  }
  http::ClientRequest cr;
  cr.base_url = urls[index];
  // Naming ourselves makes the coordinator record its presumed abort before
  // answering; only the transaction's own coordinator (urls[0]) may do that.
  // Another one records nothing, so it cannot later answer "aborted" from it.
  cr.target = "/v1/transactions/" + txid;
  if (index == 0) cr.target += "?participant=" + http::PercentEncode(options.name);
  if (!options.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options.token);
  client.Send(std::move(cr), [this, txid, urls = std::move(urls), index, errors = std::move(errors)](
                                 Result<http::Response> r) mutable {
    std::string error;
    // "No record here, so aborted" (404) is proof only from the coordinator
    // that ran the transaction (urls[0], from the prepare); another one that
    // never saw it proves nothing.
    auto body = r.ok() ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
    // A coordinator group answers for all its members (they share one log).
    bool same_group = false;
    if (body.is_object() && body.contains("group") && body["group"].is_array()) {
      for (const auto& u : body["group"]) same_group = same_group || (u.is_string() && u.get<std::string>() == urls[0]);
    }
    const bool owner = index == 0 || same_group;
    if (r.ok() && (r->status == 200 || (r->status == 404 && owner))) {
      std::string outcome;
      if (body.is_object() && body.contains("outcome") && body["outcome"].is_string()) {
        outcome = body["outcome"].get<std::string>();
      }
      if (outcome == "committed" || outcome == "aborted" || outcome == "pending") {
        Decision d = outcome == "committed" ? Decision::kCommit
                     : outcome == "aborted" ? Decision::kAbort
                                            : Decision::kPending;
        log::Info("decision_answer", {{"txid", txid}, {"coordinator", urls[index]}, {"outcome", outcome}});
        engine->OnDecisionAnswer(txid, d, NowMs());
        Pump();
        return;
      }
      error = urls[index] + ": unexpected answer HTTP " + std::to_string(r->status);
    } else if (r.ok() && r->status == 404) {
      error = urls[index] + ": does not know the transaction (only its own coordinator may presume abort)";
    } else {
      error = urls[index] + ": " + (r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message());
    }
    if (!errors.empty()) errors += "; ";
    errors += error;
    QueryDecision(std::move(txid), std::move(urls), index + 1, std::move(errors));
  });
}

// 3PC termination: one request per peer, all at once; kState and kPrecommit
// answers go back to the engine together.
void Agent::Impl::CallPeers(action::CallPeers call) {
  struct Round {
    std::vector<PeerAnswer> answers;
    std::size_t pending = 0;
  };
  auto round = std::make_shared<Round>();
  round->pending = call.peers.size();
  round->answers.resize(call.peers.size());
  const bool wait = call.call == action::PeerCall::kState || call.call == action::PeerCall::kPrecommit;
  if (call.call == action::PeerCall::kState) ++termination_rounds;
  if (call.call == action::PeerCall::kCommit || call.call == action::PeerCall::kAbort) ++termination_decisions;
  log::Info("termination_call", {{"txid", call.txid},
                                 {"call", call.call == action::PeerCall::kState       ? "state"
                                          : call.call == action::PeerCall::kPrecommit ? "precommit"
                                          : call.call == action::PeerCall::kCommit    ? "commit"
                                                                                      : "abort"},
                                 {"peers", call.peers.size()}});
  for (std::size_t i = 0; i < call.peers.size(); ++i) {
    const wire::ParticipantRef& peer = call.peers[i];
    round->answers[i].name = peer.name;
    http::ClientRequest cr;
    cr.base_url = peer.url;
    cr.timeout = std::chrono::milliseconds(options.config.request_timeout_ms);
    if (call.call == action::PeerCall::kState) {
      cr.target = "/v1/transactions/" + call.txid;
    } else {
      cr.method = "POST";
      cr.target = call.call == action::PeerCall::kPrecommit ? "/v1/precommit"
                  : call.call == action::PeerCall::kCommit  ? "/v1/commit"
                                                            : "/v1/abort";
      cr.body = nlohmann::json{{"txid", call.txid}}.dump();
    }
    if (!options.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options.token);
    client.Send(std::move(cr), [this, round, i, wait, txid = call.txid, kind = call.call,
                                url = peer.url](Result<http::Response> r) {
      if (!wait) return;
      round->answers[i].state = PeerStateOf(r, url);
      if (--round->pending != 0 || stopping) return;
      engine->OnPeerAnswers(txid, kind, std::move(round->answers), NowMs());
      Pump();
    });
  }
}

void Agent::Impl::ScheduleTick() {
  tick_timer.expires_after(std::chrono::milliseconds(options.config.tick_ms));
  tick_timer.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping) return;
    engine->Tick(NowMs());
    Pump();
    ScheduleTick();
  });
}

void Agent::Impl::RegisterWithCoordinators() {
  if (unregistered.empty() || stopping) return;
  for (const auto& url : unregistered) {
    http::ClientRequest cr;
    cr.base_url = url;
    cr.method = "PUT";
    cr.target = "/v1/participants/" + options.name;
    cr.body = nlohmann::json{{"url", self_url}}.dump();
    if (!options.token.empty()) cr.headers.emplace_back("Authorization", "Bearer " + options.token);
    client.Send(std::move(cr), [this, url](Result<http::Response> r) {
      if (r.ok() && r->status == 200) {
        std::erase(unregistered, url);
        log::Info("registered", {{"coordinator", url}, {"url", self_url}});
      }
    });
  }
  register_timer.expires_after(std::chrono::milliseconds(options.config.register_interval_ms));
  register_timer.async_wait([this](boost::system::error_code ec) {
    if (!ec) RegisterWithCoordinators();
  });
}

void Agent::Impl::HandleHeld(http::Request req, http::Responder respond) {
  std::string state = req.query.count("state") ? req.query["state"] : "";
  if (!state.empty() && state != "prepared" && state != "conflict") {
    respond(http::ErrorResponse(400, "invalid_request", "state: must be prepared or conflict"));
    return;
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& v : engine->Held(NowMs())) {
    // "prepared": everything whose prepared record is durable and not yet resolved.
    if (v.state == "executing" || v.state == "persisting") continue;
    if (state == "conflict" && v.state != "conflict") continue;
    nlohmann::json j = {{"txid", v.txid},
                        {"state", v.state},
                        {"protocol", v.protocol},
                        {"age_ms", v.age_ms},
                        {"deadline_ms", v.deadline_ms},
                        {"coordinator", v.coordinator},
                        {"last_error", v.last_error}};
    list.push_back(std::move(j));
  }
  respond(http::JsonResponse(200, {{"transactions", std::move(list)}}));
}

void Agent::Impl::HandleLocks(http::Responder respond) {
  std::vector<std::pair<std::string, std::string>> held;
  for (auto& entry : engine->locks().Snapshot()) held.push_back(std::move(entry));
  std::sort(held.begin(), held.end());
  nlohmann::json list = nlohmann::json::array();
  for (auto& [key, txid] : held) list.push_back({{"key", std::move(key)}, {"txid", std::move(txid)}});
  http::Response r;
  r.body = nlohmann::json{{"count", held.size()}, {"locks", std::move(list)}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  respond(std::move(r));
}

std::string Agent::Impl::MetricsText() const {
  auto ws = writer->stats();
  std::string text;
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t value) {
    text += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
            std::to_string(value) + "\n";
  };
  std::size_t held_conflicts = 0;
  for (const auto& v : engine->Held(NowMs())) held_conflicts += v.state == "conflict" ? 1 : 0;
  metric("commitd_agent_prepares_total", "counter", "Prepare requests received.", prepares);
  metric("commitd_agent_votes_yes_total", "counter", "Yes votes (prepared records made durable).", votes_yes);
  metric("commitd_agent_votes_no_total", "counter", "No votes and tombstones.", votes_no);
  metric("commitd_agent_commits_total", "counter", "Commits applied.", commits);
  metric("commitd_agent_aborts_total", "counter", "Prepared records discarded by abort.", aborts);
  metric("commitd_agent_precommits_total", "counter", "3PC precommits made durable.", precommits);
  metric("commitd_agent_termination_rounds_total", "counter",
         "3PC termination rounds: the coordinator was silent, so the other participants were asked.",
         termination_rounds);
  metric("commitd_agent_termination_decisions_total", "counter",
         "3PC transactions this agent decided by termination (and told the other participants).",
         termination_decisions);
  metric("commitd_agent_apply_conflicts_total", "counter",
         "Transactions whose changeset did not apply cleanly, each counted once.", conflicted_total);
  metric("commitd_agent_apply_conflict_attempts_total", "counter",
         "Commit attempts that found a changeset conflict (retries included).", engine->conflicts());
  metric("commitd_agent_conflicts_held", "gauge", "Prepared records in state conflict now.", held_conflicts);
  metric("commitd_agent_transactions_held", "gauge", "Transactions held on this agent, in any state.",
         engine->Held(NowMs()).size());
  metric("commitd_agent_locks_held", "gauge", "Lock keys held by prepared transactions.", engine->locks().size());
  metric("commitd_agent_storage_batches_total", "counter", "Group commits of the agent database.", ws.batches);
  metric("commitd_agent_storage_jobs_total", "counter", "Jobs run by the storage thread.", ws.jobs);
  return text;
}

}  // namespace commitd::participant
