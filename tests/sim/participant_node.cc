#include "tests/sim/participant_node.h"

#include <filesystem>

namespace commitd::sim {

namespace action = participant::action;
using participant::Decision;

namespace {

// WAL as in the agent, but with the WAL index in heap memory (exclusive
// locking) and no fsync: a simulated crash does not kill the process, so a
// committed SQLite transaction is what "synced" means here.
Result<std::unique_ptr<sqlite::Database>> OpenDatabase(const std::string& path, bool create) {
  sqlite::OpenOptions oo;
  oo.create = create;
  oo.wal = false;
  auto db = sqlite::Database::Open(path, oo);
  if (!db.ok()) return db;
  if (Status s = (*db)->Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF");
      !s.ok()) {
    return s;
  }
  return db;
}

}  // namespace

ParticipantNode::ParticipantNode(std::string name, Context& ctx, std::string db_path,
                                 participant::Procedures procedures, std::vector<std::string> coordinator_urls)
    : name_(std::move(name)),
      ctx_(ctx),
      db_path_(std::move(db_path)),
      procedures_(std::move(procedures)),
      coordinator_urls_(std::move(coordinator_urls)),
      storage_(name_, ctx.scheduler, ctx.random, ctx.trace,
               [this](std::vector<SyncQueue::Job>& batch) { return RunBatch(batch); }) {
  ctx_.network.AddNode(name_, [this](const Request& r, Responder respond) { Handle(r, std::move(respond)); });
  ctx_.network.Crash(name_);
}

ParticipantNode::~ParticipantNode() {
  rm_.reset();
  db_.reset();
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    std::filesystem::remove(db_path_ + suffix, ec);
  }
}

Status ParticipantNode::Create(const std::string& schema_sql, const std::string& seed_sql) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    std::filesystem::remove(db_path_ + suffix, ec);
  }
  auto opened = OpenDatabase(db_path_, true);
  if (!opened.ok()) return opened.status();
  auto db = std::move(opened).value();
  if (Status s = db->Exec(schema_sql); !s.ok()) return s;
  if (Status s = db->Exec(seed_sql); !s.ok()) return s;
  Status error;
  sqlite::Statement* stmt = db->Prepare("SELECT id, balance FROM accounts ORDER BY id", &error);
  if (stmt == nullptr) return error;
  while (stmt->Step()) seed_[stmt->Text(0)] = stmt->Int(1);
  return stmt->status();
}

int64_t ParticipantNode::seed_total() const {
  int64_t total = 0;
  for (const auto& [account, balance] : seed_) total += balance;
  return total;
}

// As Agent::Impl::Start: open, load the prepared records and outcomes, Recover.
Status ParticipantNode::Start() {
  ++incarnation_;
  auto opened = OpenDatabase(db_path_, false);
  if (!opened.ok()) return opened.status();
  db_ = std::move(opened).value();
  auto rm = participant::ResourceManager::Open(*db_, procedures_, {});
  if (!rm.ok()) return rm.status();
  rm_ = std::move(rm).value();
  auto records = rm_->LoadPrepared();
  if (!records.ok()) return records.status();
  auto outcomes = rm_->LoadOutcomes();
  if (!outcomes.ok()) return outcomes.status();
  participant::EngineOptions eo;
  eo.resolve_initial_ms = ctx_.config.resolve_initial_ms;
  eo.resolve_max_ms = ctx_.config.resolve_max_ms;
  eo.outcome_retention_ms = ctx_.config.outcome_retention_ms;
  eo.termination_grace_ms = ctx_.config.termination_grace_ms;
  eo.name = name_;
  if (coordinator_urls_.size() > 1) eo.coordinators = coordinator_urls_;
  engine_ = std::make_unique<participant::Engine>(eo);
  const std::size_t recovered = records->size();
  engine_->Recover(std::move(records).value(), outcomes.value(), ctx_.now());
  up_ = true;
  ctx_.network.Restart(name_);
  ctx_.Log(name_, "START (incarnation " + std::to_string(incarnation_) + ", " + std::to_string(recovered) +
                      " prepared, " + std::to_string(engine_->locks().size()) + " locks)");
  Pump();
  ScheduleTick();
  return Status::Ok();
}

void ParticipantNode::Crash() {
  ctx_.Log(name_, "CRASH");
  up_ = false;
  ctx_.network.Crash(name_);
  storage_.Crash();
  requests_.clear();
  engine_.reset();
  rm_.reset();
  db_.reset();
}

bool ParticipantNode::Settled() {
  if (!up_ || !storage_.idle() || !engine_->Held(ctx_.now()).empty() || engine_->locks().size() != 0 ||
      rm_->locks().size() != 0) {
    return false;
  }
  auto records = rm_->LoadPrepared();
  return records.ok() && records->empty();
}

std::string ParticipantNode::Describe() {
  if (!up_) return name_ + " down";
  std::string out = name_ + " up, " + std::to_string(engine_->locks().size()) + " lock key(s) held" +
                    (storage_.idle() ? "" : ", storage busy");
  for (const auto& v : engine_->Held(ctx_.now())) {
    out += "\n    held: " + v.txid + " " + v.state + " deadline +" + std::to_string(v.deadline_ms - ctx_.now()) +
           " ms, last error: " + v.last_error;
  }
  if (auto records = rm_->LoadPrepared(); records.ok()) {
    for (const auto& r : *records) out += "\n    prepared record: " + r.txid + " " + r.state;
  }
  return out;
}

std::size_t ParticipantNode::InDoubt() {
  if (!up_) return 0;
  std::size_t n = 0;
  for (const auto& v : engine_->Held(ctx_.now())) {
    if (v.state == "prepared" || v.state == "precommitted" || v.state == "precommitting") ++n;
  }
  return n;
}

std::optional<std::string> ParticipantNode::CheckBalances(int64_t* total) {
  Status error;
  sqlite::Statement* stmt = db_->Prepare(
      "SELECT a.id, a.balance, (SELECT COALESCE(SUM(j.delta), 0) FROM journal j WHERE j.account = a.id) "
      "FROM accounts a ORDER BY a.id",
      &error);
  if (stmt == nullptr) return name_ + ": " + error.message();
  int64_t sum = 0;
  std::optional<std::string> problem;
  while (stmt->Step()) {
    const std::string account = stmt->Text(0);
    const int64_t balance = stmt->Int(1);
    const int64_t journal = stmt->Int(2);
    sum += balance;
    auto seed = seed_.find(account);
    if (!problem && (seed == seed_.end() || seed->second + journal != balance)) {
      problem = name_ + " account " + account + " has balance " + std::to_string(balance) + " but seed " +
                std::to_string(seed == seed_.end() ? 0 : seed->second) + " + journal " + std::to_string(journal);
    }
  }
  if (!stmt->status().ok()) return name_ + ": " + stmt->status().message();
  if (total != nullptr) *total = sum;
  return problem;
}

void ParticipantNode::ScheduleTick() {
  ctx_.scheduler.After(ctx_.config.tick_ms, name_, [this, inc = incarnation_] {
    if (!up_ || inc != incarnation_) return;
    engine_->Tick(ctx_.now());
    if (ctx_.bug == Bug::kCommitOnTimeout) CommitOnTimeout();
    Pump();
    ScheduleTick();
  }, Scheduler::Kind::kTick);
}

// The deliberate bug: a prepared transaction past its deadline commits alone.
void ParticipantNode::CommitOnTimeout() {
  for (const auto& v : engine_->Held(ctx_.now())) {
    if (v.state != "prepared" || v.deadline_ms > ctx_.now()) continue;
    ctx_.Log(name_, "BUG commit-on-timeout: committing " + v.txid + " alone");
    engine_->OnDecisionAnswer(v.txid, Decision::kCommit, ctx_.now());
  }
}

participant::RequestToken ParticipantNode::Track(Responder respond) {
  participant::RequestToken t = next_token_++;
  requests_.emplace(t, std::move(respond));
  return t;
}

void ParticipantNode::Handle(const Request& request, Responder respond) {
  if (request.method == "POST" && request.target == "/v1/prepare") {
    auto parsed = wire::ParsePrepareRequest(request.body.dump());
    if (!parsed.ok()) {
      respond({400, {{"error", {{"code", "invalid_request"}, {"message", parsed.status().message()}}}}});
      return;
    }
    if (!parsed->participant.empty() && parsed->participant != name_) {
      respond({400, {{"error", {{"code", "wrong_participant"}, {"message", "this agent is " + name_}}}}});
      return;
    }
    ctx_.Log(name_, "recv prepare " + parsed->txid);
    if (Status v = rm_->Validate(parsed->ops); !v.ok()) {
      wire::Vote no;
      no.txid = parsed->txid;
      no.reason = v.message();
      respond({200, wire::ToJson(no)});
      return;
    }
    engine_->OnPrepare(std::move(parsed).value(), Track(std::move(respond)), ctx_.now());
    Pump();
    return;
  }
  const bool commit = request.target == "/v1/commit";
  if (request.method == "POST" && (commit || request.target == "/v1/abort")) {
    auto txid = wire::ParseTxidBody(request.body.dump());
    if (!txid.ok()) {
      respond({400, {{"error", {{"code", "invalid_request"}, {"message", txid.status().message()}}}}});
      return;
    }
    ctx_.Log(name_, std::string("recv ") + (commit ? "commit " : "abort ") + *txid);
    const participant::RequestToken token = Track(std::move(respond));
    if (commit) {
      engine_->OnCommit(*txid, token, ctx_.now());
    } else {
      engine_->OnAbort(*txid, token, ctx_.now());
    }
    Pump();
    if (commit && ctx_.bug == Bug::kAckBeforeDurable && requests_.count(token) != 0) {
      for (const auto& v : engine_->Held(ctx_.now())) {
        if (v.txid != *txid || v.state != "committing") continue;
        ctx_.Log(name_, "BUG ack-before-durable: acking commit " + *txid + " before it is synced");
        Responder early = std::move(requests_[token]);
        requests_.erase(token);
        early({200, {{"txid", *txid}, {"state", "committed"}}});
      }
    }
    return;
  }
  if (request.method == "POST" && request.target == "/v1/precommit") {
    auto txid = wire::ParseTxidBody(request.body.dump());
    if (!txid.ok()) {
      respond({400, {{"error", {{"code", "invalid_request"}, {"message", txid.status().message()}}}}});
      return;
    }
    ctx_.Log(name_, "recv precommit " + *txid);
    engine_->OnPrecommit(*txid, Track(std::move(respond)), ctx_.now());
    Pump();
    return;
  }
  if (request.method == "GET" && request.target.rfind("/v1/transactions/", 0) == 0) {
    const std::string txid = request.target.substr(17);
    const std::string state = engine_->StateOf(txid);
    ctx_.Log(name_, "state of " + txid + " asked: " + state);
    respond({200, {{"txid", txid}, {"state", state}}});
    return;
  }
  respond({404, {{"error", {{"code", "not_found"}, {"message", request.target}}}}});
}

namespace {
// As PeerStateOf in participant/agent.cc.
Result<std::string> PeerState(const Result<Response>& r, const std::string& peer) {
  if (!r.ok()) return Status::Unavailable(peer + ": " + r.status().message());
  const auto& body = r->body;
  if (r->status == 200 && body.is_object() && body.contains("state") && body["state"].is_string()) {
    return body["state"].get<std::string>();
  }
  const std::string code = body.is_object() && body.contains("error") ? body["error"].value("code", "") : "";
  if (r->status == 404 && code == "unknown_transaction") return std::string("unknown");
  if (r->status == 409 && code == "already_aborted") return std::string("aborted");
  return Status::Unavailable(peer + ": HTTP " + std::to_string(r->status) + " " + body.dump());
}
}  // namespace

// As Agent::Impl::CallPeers.
void ParticipantNode::CallPeers(participant::action::CallPeers call) {
  static const char* const kTargets[] = {"state", "/v1/precommit", "/v1/commit", "/v1/abort"};
  struct Round {
    std::vector<participant::PeerAnswer> answers;
    std::size_t pending = 0;
  };
  auto round = std::make_shared<Round>();
  round->pending = call.peers.size();
  round->answers.resize(call.peers.size());
  const bool wait = call.call == action::PeerCall::kState || call.call == action::PeerCall::kPrecommit;
  const int kind = static_cast<int>(call.call);
  ctx_.Log(name_, std::string("termination ") + kTargets[kind] + " " + call.txid + " to " +
                      std::to_string(call.peers.size()) + " peer(s)");
  for (std::size_t i = 0; i < call.peers.size(); ++i) {
    const std::string peer = NodeOf(call.peers[i].url);
    round->answers[i].name = call.peers[i].name;
    Request request = call.call == action::PeerCall::kState
                          ? Request{"GET", "/v1/transactions/" + call.txid, nullptr}
                          : Request{"POST", kTargets[kind], {{"txid", call.txid}}};
    ctx_.network.Call(name_, peer, std::move(request), ctx_.config.request_timeout_ms,
                      [this, round, i, wait, peer, txid = call.txid, kind = call.call](Result<Response> r) {
                        if (!wait) return;
                        round->answers[i].state = PeerState(r, peer);
                        if (--round->pending != 0) return;
                        engine_->OnPeerAnswers(txid, kind, std::move(round->answers), ctx_.now());
                        Pump();
                      });
  }
}

void ParticipantNode::Pump() {
  for (auto actions = engine_->TakeActions(); !actions.empty(); actions = engine_->TakeActions()) {
    for (auto& a : actions) Execute(a);
  }
}

void ParticipantNode::Execute(participant::Action& a) {
  SyncQueue::Job job;
  if (auto* pr = std::get_if<action::Prepare>(&a)) {
    auto prepare =
        std::make_shared<participant::PrepareJob>(participant::PrepareJob{std::move(pr->ops), std::move(pr->record), {}, {}});
    job.label = "prepare " + prepare->record.txid;
    job.scratch = [this, prepare] { prepare->Scratch(*rm_); };
    job.run = [this, prepare] {
      prepare->Durable(*rm_);
      return Status::Ok();
    };
    job.done = [this, prepare](Status s) {
      const participant::PrepareResult& r = prepare->result;
      ctx_.Log(name_, "prepared " + prepare->record.txid + (!s.ok() ? ": " + s.message() : r.yes ? ": yes" : ": " + r.reason));
      engine_->OnPrepared(prepare->record.txid, std::move(prepare->result), s, ctx_.now());
      Pump();
    };
  } else if (auto* ac = std::get_if<action::ApplyCommit>(&a)) {
    job.label = "commit " + ac->txid;
    job.run = [this, txid = ac->txid] { return rm_->Commit(txid, ctx_.now()); };
    job.done = [this, txid = ac->txid](Status s) {
      engine_->OnCommitApplied(txid, s, ctx_.now());
      Pump();
    };
  } else if (auto* ab = std::get_if<action::ApplyAbort>(&a)) {
    job.label = "abort " + ab->txid;
    job.run = [this, txid = ab->txid] { return rm_->Abort(txid, ctx_.now()); };
    job.on_synced = [this, txid = ab->txid](const Status& s) {
      if (s.ok()) ctx_.checker.OnAborted(name_, txid);
    };
    job.done = [this, txid = ab->txid](Status s) {
      engine_->OnAbortApplied(txid, s, ctx_.now());
      Pump();
    };
  } else if (auto* ro = std::get_if<action::RememberOutcome>(&a)) {
    job.label = "remember " + ro->txid + " " + ro->outcome;
    job.run = [this, txid = ro->txid, outcome = ro->outcome] { return rm_->RememberOutcome(txid, outcome, ctx_.now()); };
    if (ro->outcome == "aborted") {
      job.on_synced = [this, txid = ro->txid](const Status& s) {
        if (s.ok()) ctx_.checker.OnAborted(name_, txid);
      };
    }
  } else if (auto* fo = std::get_if<action::ForgetOutcomesBefore>(&a)) {
    job.label = "forget outcomes";
    job.run = [this, cutoff = fo->cutoff_ms] { return rm_->ForgetOutcomesBefore(cutoff); };
  } else if (auto* reply = std::get_if<action::Reply>(&a)) {
    auto it = requests_.find(reply->to);
    if (it == requests_.end()) return;
    Responder respond = std::move(it->second);
    requests_.erase(it);
    ctx_.Log(name_, "reply " + std::to_string(reply->status) + " " + reply->body.dump());
    respond({reply->status, reply->body});
    return;
  } else if (auto* pc = std::get_if<action::PersistPrecommitted>(&a)) {
    job.label = "precommitted " + pc->txid;
    job.run = [this, txid = pc->txid] { return rm_->UpdatePrepared(txid, "precommitted", ""); };
    job.done = [this, txid = pc->txid](Status s) {
      engine_->OnPrecommitPersisted(txid, s, ctx_.now());
      Pump();
    };
  } else if (auto* cp = std::get_if<action::CallPeers>(&a)) {
    CallPeers(std::move(*cp));
    return;
  } else if (auto* q = std::get_if<action::QueryDecision>(&a)) {
    ctx_.Log(name_, "query decision " + q->txid);
    QueryDecision(q->txid, std::move(q->coordinators), 0, "");
    return;
  }
  storage_.Submit(std::move(job));
}

// As Agent::Impl::QueryDecision: asks urls[index..] in turn; the first definite answer wins.
void ParticipantNode::QueryDecision(std::string txid, std::vector<std::string> urls, std::size_t index,
                                    std::string errors) {
  if (index >= urls.size()) {
    if (urls.empty()) errors = "no coordinator URL known for this transaction";
    engine_->OnDecisionAnswer(txid, Status::Unavailable(errors), ctx_.now());
    Pump();
    return;
  }
  // As the agent: naming ourselves lets the transaction's own coordinator
  // (urls[0]) record its presumed abort before answering (group only).
  std::string target = "/v1/transactions/" + txid;
  if (index == 0 && coordinator_urls_.size() > 1) target += "?participant=" + name_;
  Request request{"GET", std::move(target), nullptr};
  const std::string to = NodeOf(urls[index]);
  ctx_.network.Call(
      name_, to, std::move(request), ctx_.config.request_timeout_ms,
      [this, txid, urls = std::move(urls), index, errors = std::move(errors)](Result<Response> r) mutable {
        std::string error;
        // A 404 is proof of abort only from the transaction's own coordinator,
        // or from a group that lists it (its members share one log).
        bool same_group = false;
        if (r.ok() && r->body.is_object() && r->body.contains("group") && r->body["group"].is_array()) {
          for (const auto& u : r->body["group"]) same_group = same_group || (u.is_string() && u.get<std::string>() == urls[0]);
        }
        const bool owner = index == 0 || same_group;
        if (r.ok() && (r->status == 200 || (r->status == 404 && owner))) {
          std::string outcome = r->body.is_object() ? r->body.value("outcome", "") : "";
          if (outcome == "committed" || outcome == "aborted" || outcome == "pending") {
            Decision d = outcome == "committed" ? Decision::kCommit
                         : outcome == "aborted" ? Decision::kAbort
                                                : Decision::kPending;
            ctx_.Log(name_, "decision answer " + txid + ": " + outcome);
            engine_->OnDecisionAnswer(txid, d, ctx_.now());
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

// One batch, one SQLite transaction, as BatchWriter::RunBatch.
std::vector<Status> ParticipantNode::RunBatch(std::vector<SyncQueue::Job>& batch) {
  std::vector<Status> results(batch.size());
  if (db_->Begin().ok()) {
    for (auto& job : batch) {
      if (job.scratch) job.scratch();
    }
    db_->Rollback();
  }
  Status begin = db_->Begin();
  if (!begin.ok()) {
    for (auto& r : results) r = begin;
    return results;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) results[i] = batch[i].run();
  Status commit = db_->Commit();
  if (!commit.ok()) {
    db_->Rollback();
    for (auto& r : results) r = commit;
    if (Status s = rm_->RebuildLocks(); !s.ok()) ctx_.checker.Fail("locks", name_ + ": " + s.message());
    return results;
  }
  ReadNewJournalRows();
  return results;
}

void ParticipantNode::ReadNewJournalRows() {
  Status error;
  sqlite::Statement* stmt = db_->Prepare("SELECT rowid, txid FROM journal WHERE rowid > ?1 ORDER BY rowid", &error);
  if (stmt == nullptr) {
    ctx_.checker.Fail("conservation", name_ + ": cannot read the journal: " + error.message());
    return;
  }
  stmt->Bind(1, journal_rowid_);
  bool any = false;
  while (stmt->Step()) {
    journal_rowid_ = stmt->Int(0);
    ctx_.checker.OnCommitted(name_, stmt->Text(1));
    any = true;
  }
  if (!any) return;
  if (auto problem = CheckBalances(nullptr)) ctx_.checker.Fail("conservation", *problem);
}

}  // namespace commitd::sim
