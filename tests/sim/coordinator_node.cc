#include "tests/sim/coordinator_node.h"

#include "tests/sim/coordinator_calls.h"

namespace commitd::sim {

using coordinator::Outcome;
namespace action = coordinator::action;

CoordinatorNode::CoordinatorNode(std::string name, Context& ctx)
    : name_(std::move(name)),
      ctx_(ctx),
      log_(name_, ctx.scheduler, ctx.random, ctx.trace,
           [this](std::vector<SyncQueue::Job>& batch) { return RunBatch(batch); }) {
  ctx_.network.AddNode(name_, [this](const Request& r, Responder respond) { Handle(r, std::move(respond)); });
  ctx_.network.Crash(name_);  // unreachable until Start
}

void CoordinatorNode::Start() {
  ++incarnation_;
  txid_counter_ = 0;
  coordinator::EngineOptions eo;
  eo.self_url = UrlOf(name_);
  eo.retry_initial_ms = ctx_.config.retry_initial_ms;
  eo.retry_max_ms = ctx_.config.retry_max_ms;
  engine_ = std::make_unique<coordinator::Engine>(eo);
  std::size_t resumed = 0;
  for (const auto& [txid, record] : durable_) {
    if (record.finished) continue;
    engine_->Resume(record, ctx_.now());
    ++resumed;
  }
  up_ = true;
  ctx_.network.Restart(name_);
  ctx_.Log(name_, "START (incarnation " + std::to_string(incarnation_) + ", resumed " + std::to_string(resumed) + ")");
  Pump();
  ScheduleTick();
}

void CoordinatorNode::Crash() {
  ctx_.Log(name_, "CRASH");
  up_ = false;
  ctx_.network.Crash(name_);
  log_.Crash();
  clients_.clear();
  engine_.reset();
}

bool CoordinatorNode::Settled() const {
  if (!up_ || !log_.idle() || engine_->active() != 0) return false;
  for (const auto& [txid, record] : durable_) {
    if (!record.finished) return false;
  }
  return true;
}

std::string CoordinatorNode::Describe() const {
  std::string out = name_ + (up_ ? " up" : " down");
  if (engine_) {
    for (const auto& v : engine_->List()) {
      out += "\n    in engine: " + v.txid + " " + v.state + " " + std::string(coordinator::OutcomeName(v.outcome));
      for (const auto& b : v.branches) out += " [" + b.participant + " " + b.state + " " + b.last_error + "]";
    }
  }
  for (const auto& [txid, record] : durable_) {
    if (!record.finished) out += "\n    unfinished in log: " + txid;
  }
  return out;
}

void CoordinatorNode::ScheduleTick() {
  ctx_.scheduler.After(ctx_.config.tick_ms, name_, [this, inc = incarnation_] {
    if (!up_ || inc != incarnation_) return;
    engine_->Tick(ctx_.now());
    Pump();
    ScheduleTick();
  }, Scheduler::Kind::kTick);
}

void CoordinatorNode::Handle(const Request& request, Responder respond) {
  if (request.method == "POST" && request.target == "/v1/transactions") {
    HandleSubmit(request, std::move(respond));
  } else if (request.method == "GET" && request.target.rfind("/v1/transactions/", 0) == 0) {
    HandleGetTransaction(request.target.substr(17), std::move(respond));
  } else {
    respond({404, {{"error", {{"code", "not_found"}, {"message", request.target}}}}});
  }
}

void CoordinatorNode::HandleSubmit(const Request& request, Responder respond) {
  auto parsed = wire::ParseTxRequest(request.body);
  if (!parsed.ok()) {
    respond({400, {{"error", {{"code", "invalid_request"}, {"message", parsed.status().message()}}}}});
    return;
  }
  coordinator::StartRequest sr;
  sr.txid = name_ + "." + std::to_string(incarnation_) + "." + std::to_string(++txid_counter_);
  sr.protocol = parsed->protocol;
  sr.timeout_ms = parsed->timeout_ms.value_or(ctx_.config.default_tx_timeout_ms);
  for (auto& b : parsed->branches) {
    sr.participants.push_back({b.participant, UrlOf(b.participant)});
    sr.ops.push_back(std::move(b.ops));
  }
  sr.client = next_client_++;
  sr.created_ms = ctx_.now();
  clients_.emplace(sr.client, std::move(respond));
  ctx_.Log(name_, "start " + sr.txid + " (client #" + std::to_string(sr.client) + ")");
  engine_->Start(std::move(sr), ctx_.now());
  Pump();
}

// As service.cc HandleGetTransaction: the engine first, then the log, else
// presumed abort.
void CoordinatorNode::HandleGetTransaction(const std::string& txid, Responder respond) {
  if (auto view = engine_->Find(txid)) {
    ctx_.Log(name_, "answer " + txid + ": " + std::string(coordinator::OutcomeName(view->outcome)) + " (engine)");
    respond({200, {{"txid", txid}, {"state", view->state}, {"outcome", coordinator::OutcomeName(view->outcome)}}});
    return;
  }
  if (auto it = durable_.find(txid); it != durable_.end()) {
    const auto& r = it->second;
    ctx_.Log(name_, "answer " + txid + ": " + std::string(coordinator::OutcomeName(r.outcome)) + " (log)");
    respond({200, {{"txid", txid},
                   {"state", r.finished ? "finished" : "delivering"},
                   {"outcome", coordinator::OutcomeName(r.outcome)}}});
    return;
  }
  ctx_.Log(name_, "answer " + txid + ": aborted (presumed)");
  respond({404, {{"error", {{"code", "not_found"}, {"message", "no transaction " + txid + " is known here"}}},
                 {"txid", txid},
                 {"outcome", "aborted"}}});
}

void CoordinatorNode::Pump() {
  while (engine_->HasActions()) {
    auto actions = engine_->TakeActions();
    for (auto& a : actions) Execute(a);
  }
}

void CoordinatorNode::Execute(coordinator::Action& a) {
  if (auto* p = std::get_if<action::SendPrepare>(&a)) {
    CallPrepare(ctx_, name_, *p, [this, txid = p->request.txid, to = p->to.name](Result<wire::Vote> vote) {
      engine_->OnVote(txid, to, std::move(vote), ctx_.now());
      Pump();
    });
  } else if (auto* d = std::get_if<action::SendDecision>(&a)) {
    CallDecision(ctx_, name_, *d, [this, txid = d->txid, to = d->to.name](Status s) {
      engine_->OnDecisionAcked(txid, to, s, ctx_.now());
      Pump();
    });
  } else if (auto* pd = std::get_if<action::PersistDecision>(&a)) {
    const std::string txid = pd->record.txid;
    const bool commit = pd->record.outcome == Outcome::kCommitted;
    const bool forget = ctx_.bug == Bug::kForgetDecision;
    SyncQueue::Job job;
    job.label = std::string("decision ") + txid + (commit ? " commit" : " abort") + (forget ? " (BUG: not written)" : "");
    job.run = [this, record = std::move(pd->record), forget]() -> Status {
      if (forget) return Status::Ok();
      auto it = durable_.find(record.txid);
      // As DecisionStore: a decision replaces a 3PC precommit record (outcome pending).
      if (it != durable_.end() && it->second.outcome != Outcome::kPending) {
        return Status::Conflict("a decision for " + record.txid + " exists");
      }
      durable_[record.txid] = record;
      return Status::Ok();
    };
    job.on_synced = [this, txid, commit, forget](const Status& s) {
      if (s.ok() && !forget) ctx_.checker.OnDecisionDurable(txid, commit);
    };
    job.done = [this, txid](Status s) {
      engine_->OnDecisionPersisted(txid, s, ctx_.now());
      Pump();
    };
    log_.Submit(std::move(job));
  } else if (auto* pp = std::get_if<action::PersistPrecommit>(&a)) {
    const std::string txid = pp->record.txid;
    SyncQueue::Job job;
    job.label = "precommit record " + txid;
    job.run = [this, record = std::move(pp->record)]() -> Status {
      if (durable_.count(record.txid) != 0) return Status::Conflict("a record for " + record.txid + " exists");
      durable_.emplace(record.txid, record);
      return Status::Ok();
    };
    job.done = [this, txid](Status s) {
      engine_->OnPrecommitPersisted(txid, s, ctx_.now());
      Pump();
    };
    log_.Submit(std::move(job));
  } else if (auto* sp = std::get_if<action::SendPrecommit>(&a)) {
    CallPrecommit(ctx_, name_, *sp,
                  [this, txid = sp->txid, to = sp->to.name](Result<coordinator::PrecommitAnswer> answer) {
                    engine_->OnPrecommitAcked(txid, to, std::move(answer), ctx_.now());
                    Pump();
                  });
  } else if (auto* pf = std::get_if<action::PersistFinished>(&a)) {
    const std::string txid = pf->txid;
    SyncQueue::Job job;
    job.label = "finished " + txid;
    job.run = [this, txid, at = pf->finished_ms]() -> Status {
      auto it = durable_.find(txid);
      if (it != durable_.end()) {
        it->second.finished = true;
        it->second.finished_ms = at;
      }
      return Status::Ok();
    };
    job.done = [this, txid](Status s) {
      engine_->OnFinishedPersisted(txid, s);
      Pump();
    };
    log_.Submit(std::move(job));
  } else if (auto* rc = std::get_if<action::ReplyClient>(&a)) {
    auto it = clients_.find(rc->client);
    if (it == clients_.end()) return;
    Responder respond = std::move(it->second);
    clients_.erase(it);
    ctx_.Log(name_, "reply client #" + std::to_string(rc->client) + ": " + std::to_string(rc->status) + " " +
                        rc->body.value("txid", "") + " " + rc->body.value("outcome", ""));
    respond({rc->status, rc->body});
  }
}

std::vector<Status> CoordinatorNode::RunBatch(std::vector<SyncQueue::Job>& batch) {
  std::vector<Status> results;
  results.reserve(batch.size());
  for (auto& job : batch) results.push_back(job.run());
  const int64_t cutoff = ctx_.now() - kFinishedRetentionMs;
  for (auto it = durable_.begin(); it != durable_.end();) {
    it = it->second.finished && it->second.finished_ms <= cutoff ? durable_.erase(it) : std::next(it);
  }
  return results;
}

}  // namespace commitd::sim
