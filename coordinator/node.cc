// Node: lifecycle, leadership, the engine's actions, the registry and the
// takeover sweep. The client-facing requests are in node_requests.cc.
#include "coordinator/node.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "common/failpoint.h"
#include "common/log.h"

namespace commitd::coordinator {

EngineOptions EngineOptionsFor(const Config& config, std::string self_url) {
  EngineOptions eo;
  eo.self_url = std::move(self_url);
  eo.retry_initial_ms = config.retry_initial_ms;
  eo.retry_max_ms = config.retry_max_ms;
  eo.deliveries_per_participant = config.deliveries_per_participant;
  eo.max_unmarked = config.max_in_flight;
  eo.outcome_retention_ms = config.outcome_retention_ms;
  return eo;
}

NodeOptions NodeOptionsFor(const Config& config, std::string id, std::string self_url) {
  NodeOptions o;
  o.id = std::move(id);
  o.self_url = self_url;
  o.default_tx_timeout_ms = config.default_tx_timeout_ms;
  o.max_in_flight = config.max_in_flight;
  o.max_participants = config.max_participants;
  o.tick_ms = config.tick_ms;
  o.health_interval_ms = config.health_interval_ms;
  o.health_stale_probes = config.health_stale_probes;
  o.health_backoff_max_ms = config.health_backoff_max_ms;
  o.catalog_timeout_ms = config.connect_timeout_ms;
  o.decision_retention_ms = config.decision_retention_ms;
  o.forgotten_key_retention_ms = config.forgotten_key_retention_ms;
  o.retake_delay_ms = config.raft_election_timeout_ms;
  // Retry settings come from a config file: a huge one must not overflow.
  o.let_go_retake_max_ms = config.retry_max_ms > std::numeric_limits<int64_t>::max() / kLetGoRetakeMaxFactor
                               ? std::numeric_limits<int64_t>::max()
                               : kLetGoRetakeMaxFactor * config.retry_max_ms;
  o.shutdown_grace_ms = config.shutdown_grace_ms;
  o.engine = EngineOptionsFor(config, std::move(self_url));
  return o;
}

Node::Node(NodeOptions options, DecisionLog& log, AgentTransport& agents, Timers& timers, Entropy& entropy,
           Leadership* leadership)
    : options_(std::move(options)),
      log_(log),
      agents_(agents),
      timers_(timers),
      leadership_(leadership),
      entropy_(entropy),
      alive_(std::make_shared<bool>(true)) {
  NewEngine();
}

Node::~Node() { *alive_ = false; }

void Node::NewEngine() { engine_ = std::make_unique<Engine>(options_.engine); }

std::size_t Node::undecided() const { return engine_->undecided(); }
std::size_t Node::active() const { return engine_->active(); }
std::vector<TxView> Node::Transactions() const { return engine_->List(); }

Node::InDoubt Node::in_doubt() const {
  InDoubt counts;
  for (const TxView& v : engine_->List()) {
    if (v.outcome == Outcome::kPending) {
      // Fencing shows as preparing; a precommit answered unknown as precommitting.
      if (v.in_doubt) ++(v.state == TxState::kPreparing ? counts.staging_unknown : counts.precommit_unknown);
      continue;
    }
    if (!v.undelivered()) continue;
    if (v.state == TxState::kContradicted) {
      ++counts.contradicted;
    } else if (v.heuristic) {
      ++counts.held;
    } else {
      ++counts.undelivered;
    }
  }
  counts.foreign_log = foreign_.size();
  return counts;
}

Status Node::Start() {
  const int64_t now = timers_.NowMs();
  for (auto& e : options_.participants) e.updated_ms = now;
  if (group()) {
    for (const auto& e : options_.participants) registry_[e.name].entry = e;
    leadership_->set_on_leadership([this](bool ready) { OnLeadership(ready); });
    log::Info("coordinator_started", {{"id", options_.id}, {"url", options_.self_url}, {"group", true}});
  } else {
    auto recovered = log_.Recover();
    if (!recovered.ok()) return recovered.status();
    if (recovered->incarnation == 0) {
      return Status::Internal("the decision log has no incarnation: txids could repeat");
    }
    txids_.emplace(options_.id, recovered->incarnation, entropy_);
    log_id_ = recovered->log_id;
    keys_.SetSecret(recovered->abort_secret);
    options_.engine.log_id = log_id_;
    NewEngine();
    for (const auto& e : options_.participants) {
      log_.PutParticipant(e, [](Status s) {
        if (!s.ok()) log::Error("registry_write_failed", {{"error", s.ToString()}});
      });
    }
    const std::size_t resumed = recovered->unfinished.size();
    Resume(std::move(recovered).value());
    log::Info("coordinator_started", {{"id", options_.id},
                                      {"url", options_.self_url},
                                      {"incarnation", txids_->incarnation()},
                                      {"log_id", log_id_},
                                      {"resumed", resumed},
                                      {"participants", registry_.size()}});
  }
  ScheduleTick();
  for (const auto& [name, p] : registry_) Probe(name);
  ScheduleHealth();
  ScheduleForget(ForgetIntervalMs(options_.decision_retention_ms));
  if (!group()) SweepUndecided();
  return Status::Ok();
}

// The log's registry (configured participants win), its heuristic count and
// every unfinished transaction, into a fresh engine.
void Node::Resume(RecoveredLog recovered) {
  metrics_.heuristic = recovered.heuristic_decisions;
  // Entries removed since this member last read the log (another leader's DELETE) go.
  std::erase_if(registry_, [&](const auto& kv) {
    for (const auto& e : recovered.registry) {
      if (e.name == kv.first) return false;
    }
    for (const auto& c : options_.participants) {
      if (c.name == kv.first) return false;
    }
    return true;
  });
  for (auto& e : recovered.registry) {
    bool configured = false;
    for (const auto& c : options_.participants) configured = configured || c.name == e.name;
    if (!configured) registry_[e.name].entry = e;
  }
  for (const auto& e : options_.participants) registry_[e.name].entry = e;
  ResumeRecords(std::move(recovered.unfinished));
}

void Node::ResumeRecords(std::vector<DecisionRecord> records) {
  const int64_t now = timers_.NowMs();
  for (auto& record : records) {
    // Debug: a restart with thousands to resume would spend its start writing them.
    log::Debug("resume_transaction", {{"txid", record.txid}, {"outcome", OutcomeName(record.outcome)}});
    engine_->Resume(std::move(record), now);
  }
  Pump();
}

// Leader of a term with everything committed applied: take over every
// decided-but-unfinished transaction and the registry from the state machine.
// Stepping down: drop the engine; the next leader resumes from the log.
void Node::OnLeadership(bool ready) {
  if (!ready) {
    txids_.reset();
    DropEngine("this coordinator is no longer the leader");
    return;
  }
  DropEngine("a new leadership term started");
  // Terms only grow and a term has one leader: (member id, term) is never reused.
  txids_.emplace(options_.id, leadership_->term(), entropy_);
  auto recovered = log_.Recover();
  if (!recovered.ok()) {
    // Leading without what the log holds would leave its unfinished records
    // to no one: not ready (nothing issued yet) until it is read.
    log::Error("leader_recover_failed", {{"error", recovered.status().ToString()}});
    txids_.reset();
    LeadAgainLater();
    return;
  }
  if (recovered->log_id.empty() || recovered->abort_secret.empty()) {
    // The group's first leader gives its log an identity (replicated, so
    // every later leader sends the same one) before it issues anything.
    txids_.reset();
    log_.CreateIdentity(entropy_.Hex(16), entropy_.Hex(32), [this, alive = alive_, epoch = epoch_](Status s) {
      if (!*alive || epoch != epoch_) return;
      if (!s.ok() && s.code() != StatusCode::kConflict) {
        log::Error("log_identity_failed", {{"error", s.ToString()}});
        LeadAgainLater();
        return;
      }
      OnLeadership(true);
    });
    return;
  }
  log_id_ = recovered->log_id;
  keys_.SetSecret(recovered->abort_secret);
  options_.engine.log_id = log_id_;
  NewEngine();  // empty still: its prepares carry the identity
  for (const auto& e : options_.participants) {
    bool known = false;
    for (const auto& r : recovered->registry) known = known || (r.name == e.name && r.url == e.url);
    if (!known) {
      log_.PutParticipant(e, [](Status s) {
        if (!s.ok()) log::Warn("registry_write_failed", {{"error", s.ToString()}});
      });
    }
  }
  const std::size_t resumed = recovered->unfinished.size();
  Resume(std::move(recovered).value());
  log::Info("leading", {{"resumed", resumed}, {"participants", registry_.size()}});
  for (const auto& [name, p] : registry_) Probe(name);
  SweepUndecided();
}

// Not ready yet, and nothing issued: OnLeadership(true) again a health
// interval later, if this engine still leads then.
void Node::LeadAgainLater() {
  timers_.After(options_.health_interval_ms, [this, alive = alive_, epoch = epoch_] {
    if (*alive && epoch == epoch_ && leadership_->leader_ready()) OnLeadership(true);
  });
}

// A group append failed: lost with the leadership (the entry may still
// commit), or refused while a leadership transfer runs (it never entered the
// log). The engine must not guess, nor write it again: it lets go of
// everything, and whoever leads next resumes from the log. A member that still
// leads the same term gets no OnLeadership; it takes over again itself.
void Node::DropUnconfirmed(const std::string& why) {
  DropEngine(why);
  if (leadership_->leader_ready() && !options_.unsafe_no_retake) {
    ScheduleRetake(leadership_->term(), options_.retake_delay_ms, true);
  }
}

bool Node::StillLeads(uint64_t term, uint64_t epoch) const {
  if (epoch != epoch_ || stopping_) return false;
  return !group() || (leadership_->leader_ready() && leadership_->term() == term);
}

// A group member does it only while it leads; the next leader resumes
// everything anyway.
void Node::RetakeLetGo() {
  if (options_.unsafe_no_retake || (group() && !leadership_->leader_ready())) return;
  if (retake_epoch_ == epoch_) return;  // the one that waits takes this record over too
  const int64_t now = timers_.NowMs();
  // Let go again soon after the last retake: the log still refuses marks.
  const bool recurring = let_go_retake_ms_ != std::numeric_limits<int64_t>::min() &&
                         now - let_go_retake_ms_ <= options_.let_go_retake_max_ms;
  if (!recurring || let_go_delay_ms_ == 0) let_go_delay_ms_ = options_.engine.retry_max_ms;
  ScheduleRetake(group() ? leadership_->term() : 0, let_go_delay_ms_, false);
  const int64_t cap = options_.let_go_retake_max_ms;
  let_go_delay_ms_ = let_go_delay_ms_ > cap / 2 ? cap : 2 * let_go_delay_ms_;
}

// Not at once: appends keep failing while a transfer runs (and marks while
// the disk refuses them). Then a barrier, retried while it fails as the append did.
void Node::ScheduleRetake(uint64_t term, int64_t delay_ms, bool sweep) {
  if (retake_epoch_ == epoch_) {
    retake_sweep_ = retake_sweep_ || sweep;
    return;
  }
  retake_epoch_ = epoch_;
  retake_sweep_ = sweep;
  timers_.After(delay_ms, [this, alive = alive_, term, delay_ms, epoch = epoch_] {
    if (!*alive || !StillLeads(term, epoch)) return;
    log_.Barrier([this, alive, term, delay_ms, epoch](Status s) {
      if (!*alive || !StillLeads(term, epoch)) return;
      if (!s.ok()) {
        RetakeLater(term, delay_ms, log::Level::kWarn,
                    retake_sweep_ ? "leader_retake_deferred" : "let_go_retake_deferred", s);
        return;
      }
      Retake(term, delay_ms);
    });
  });
}

// Every entry the dropped engine proposed is in the log before the barrier
// (one refused never entered it), so Recover now holds every record it got
// recorded; none of them is driven by anyone else (its callbacks are ignored:
// epoch). Whatever else appends for such a txid meanwhile (a presumed abort
// answered to an agent, the sweep) conflicts with the record and follows it:
// the first decision recorded wins. The txid issuer of the term stays: a
// (member, term) never issues a sequence twice. A record the engine let go of
// after its finished mark failed is resumed the same way: every participant
// gets the decision again and the mark is written again.
void Node::Retake(uint64_t term, int64_t delay_ms) {
  auto recovered = log_.Recover();
  if (!recovered.ok()) {
    RetakeLater(term, delay_ms, log::Level::kError, retake_sweep_ ? "leader_recover_failed" : "let_go_retake_deferred",
                recovered.status());
    return;
  }
  const bool sweep = retake_sweep_;
  retake_epoch_.reset();
  retake_sweep_ = false;
  // What this engine took on since the drop stays as it is.
  std::erase_if(recovered->unfinished, [this](const DecisionRecord& r) { return engine_->Find(r.txid).has_value(); });
  const std::size_t resumed = recovered->unfinished.size();
  if (!sweep) {
    // The engine was not dropped: what it counted and registered stands.
    let_go_retake_ms_ = timers_.NowMs();
    ResumeRecords(std::move(recovered->unfinished));
    log::Info("let_go_retake", {{"resumed", resumed}});
    return;
  }
  Resume(std::move(recovered).value());
  log::Info("leader_retake", {{"term", term}, {"resumed", resumed}});
  SweepUndecided();
}

// The barrier or the read failed: logged as `event` (with the term when it
// sweeps, a group's retake), and tried again after the same delay, keeping
// the sweep it was asked for.
void Node::RetakeLater(uint64_t term, int64_t delay_ms, log::Level level, const char* event, const Status& why) {
  nlohmann::json fields = {{"error", why.ToString()}};
  if (retake_sweep_) fields["term"] = term;
  log::Write(level, event, fields);
  retake_epoch_.reset();
  ScheduleRetake(term, delay_ms, retake_sweep_);
}

void Node::AnswerForce(const std::string& txid, const Status& written) {
  auto it = forcing_.find(txid);
  if (it == forcing_.end()) return;
  auto done = std::move(it->second);
  forcing_.erase(it);
  if (!written.ok()) {
    const bool conflict = written.code() == StatusCode::kConflict;
    std::string message = "the forced decision of " + txid + " was not recorded: " + written.message();
    const auto view = conflict ? std::nullopt : engine_->Find(txid);
    if (view && view->state == TxState::kDeciding) {
      // Only an abort gets here (a commit's failed write stops the process):
      // the engine writes its record again, and sends it once that is durable.
      message += "; its record is written again until it is durable, and the abort is sent to the participants "
                 "then (the transaction is deciding meanwhile)";
    }
    done(NodeError{conflict ? NodeErrorKind::kDecisionConflict : NodeErrorKind::kStorage, std::move(message)});
    return;
  }
  auto view = engine_->Find(txid);  // held until PersistFinished, a later step
  if (!view) {
    done(NodeError{NodeErrorKind::kStorage, "the forced decision of " + txid + " was recorded; look it up"});
    return;
  }
  ForceResult result;
  result.kind = ForceResult::Kind::kForced;
  result.outcome = view->outcome;
  result.transaction = *view;
  done(std::move(result));
}

void Node::ForgetEnded(const std::string& txid) {
  traces_.erase(txid);
  precommit_unknown_logged_.erase(txid);
}

void Node::AnswerClose(const std::string& txid, const Status& marked) {
  auto it = closing_.find(txid);
  if (it == closing_.end()) return;
  Closing closing = std::move(it->second);
  closing_.erase(it);
  if (!marked.ok() && marked.code() != StatusCode::kNotFound) {
    closing.done(NodeError{NodeErrorKind::kStorage, "the finished mark of " + txid + " could not be written (" +
                                                        marked.message() + "); it is written again later"});
    return;
  }
  log::Warn("contradiction_closed", Traced(txid, {{"txid", txid}, {"outcome", OutcomeName(closing.view.outcome)}}));
  closing.done(std::move(closing.view));
}

void Node::DropEngine(const std::string& why) {
  auto forcing = std::move(forcing_);
  forcing_.clear();
  for (auto& [txid, done] : forcing) {
    done(NodeError{NodeErrorKind::kLeadershipLost,
                   why + "; whether the forced decision of " + txid + " was recorded is unknown here: look it up"});
  }
  auto closing = std::move(closing_);
  closing_.clear();
  for (auto& [txid, c] : closing) {
    c.done(NodeError{NodeErrorKind::kLeadershipLost,
                     why + "; whether " + txid + " was closed is unknown here: look it up"});
  }
  ++epoch_;
  let_go_delay_ms_ = 0;
  let_go_retake_ms_ = std::numeric_limits<int64_t>::min();
  failing_deliveries_.clear();
  precommit_unknown_logged_.clear();
  auto waiting = std::move(clients_);
  clients_.clear();
  for (auto& [token, done] : waiting) {
    done(NodeError{NodeErrorKind::kLeadershipLost, why + "; the outcome is unknown here: retry with the same "
                                                         "Idempotency-Key, or GET the transaction"});
  }
  traces_.clear();
  NewEngine();
  MaybeFinishShutdown();
}

// After a restart, or when this member starts to lead, a transaction an agent
// holds prepared for this coordinator (or group) with no record in the log
// can never be decided by anyone else: the engine that ran it is gone, and
// in a group every entry the old leader got committed is in this state
// machine by now. Presume abort at once — recorded first, then delivered —
// instead of leaving its locks held until the agent's deadline.
void Node::SweepUndecided() {
  if (registry_.empty()) return;
  std::set<std::string> ours = {options_.self_url};
  if (group()) {
    for (const auto& url : leadership_->member_urls()) ours.insert(url);
  }
  struct Sweep {
    std::map<std::string, std::vector<ParticipantRef>> holders;  // txid -> agents holding it prepared
    std::size_t pending = 0;
  };
  auto sweep = std::make_shared<Sweep>();
  sweep->pending = registry_.size();
  const uint64_t epoch = epoch_;
  for (const auto& [name, p] : registry_) {
    ParticipantRef to{name, p.entry.url};
    agents_.ListPrepared(to, [this, sweep, ours, epoch, to](Result<std::vector<PreparedAtAgent>> listed) {
      if (listed.ok()) {
        for (const auto& t : *listed) {
          if (ours.count(t.coordinator) == 0) continue;
          if (!t.log_id.empty() && t.log_id != log_id_) {
            // Prepared under another decision log (this one was lost or
            // replaced): what it decided is unknowable here, and it may have
            // been commit. Never presume abort; report it in doubt.
            ForeignRecord& f = foreign_[t.txid];
            if (f.holders.empty()) {
              log::Error("transaction_in_doubt", {{"txid", t.txid},
                                                  {"log_id", t.log_id},
                                                  {"own_log_id", log_id_},
                                                  {"participant", to.name}});
            }
            f.log_id = t.log_id;
            f.holders.push_back(to);
            f.seen_ms = timers_.NowMs();
            continue;
          }
          // Running here when the listing arrives: not undecided. Checked now,
          // not once every agent answered: by then it may have finished and
          // been forgotten, and this listing is stale.
          if (epoch == epoch_ && engine_->Find(t.txid)) continue;
          sweep->holders[t.txid].push_back(to);
        }
      }
      if (--sweep->pending != 0 || epoch != epoch_ || stopping_) return;
      for (auto& [txid, holders] : sweep->holders) {
        if (txid.empty() || engine_->Find(txid)) continue;
        // A listing is as old as the slowest agent's answer: the txid may
        // have finished and been forgotten meanwhile, its record deleted, and
        // an abort written now would stand beside the commit it was.
        log_.TxidForgotten(txid, [this, txid, holders, epoch](Result<bool> forgotten) {
          if (epoch != epoch_ || stopping_) return;
          if (!forgotten.ok() || *forgotten) {
            log::Warn("sweep_skipped_forgotten", {{"txid", txid}});
            return;
          }
          PresumeAbortSwept(txid, holders, epoch);
        });
      }
    });
  }
}

void Node::PresumeAbortSwept(const std::string& txid, const std::vector<ParticipantRef>& holders, uint64_t epoch) {
  if (engine_->Find(txid)) return;  // started or resumed meanwhile
  DecisionRecord abort;
  abort.txid = txid;
  abort.outcome = Outcome::kAborted;
  abort.participants = holders;
  abort.reason = "presumed abort: undecided when coordinator " + options_.id + " took over";
  abort.reply = {{"txid", txid}, {"outcome", "aborted"}, {"reason", abort.reason}};
  abort.created_ms = abort.decided_ms = timers_.NowMs();
  ++metrics_.swept;
  log_.AppendDecision(abort, [this, abort, epoch](Status s) {
    // Conflict: it was decided meanwhile (or finished just now); nothing to do.
    if (!s.ok() || epoch != epoch_) return;
    log::Info("presumed_abort_swept", {{"txid", abort.txid}, {"participants", abort.participants.size()}});
    engine_->Resume(abort, timers_.NowMs());
    Pump();
  });
}

TxView Node::ForeignView(const std::string& txid, const ForeignRecord& r) const {
  TxView v;
  v.txid = txid;
  v.state = TxState::kInDoubt;
  v.outcome = Outcome::kPending;
  v.reason = "prepared under decision log " + r.log_id + "; this coordinator's log is " +
             (log_id_.empty() ? std::string("without identity") : log_id_) +
             ": the outcome is unknown here; settle it with a forced decision";
  for (const auto& h : r.holders) v.branches.push_back({h.name, "prepared", 0, ""});
  v.started_ms = r.seen_ms;
  return v;
}

// The log refused a decision because another was recorded first (a presumed
// abort answered to a participant's question, say): the recorded one stands,
// and the engine ends with it.
void Node::FollowRecordedDecision(const std::string& txid, const Status& conflict) {
  log_.FindDecision(txid, [this, txid, conflict, epoch = epoch_](Result<std::optional<DecisionRecord>> found) {
    if (epoch != epoch_) return;
    if (!found.ok()) {
      // Neither the write nor the read works: the log is failing.
      log::Error("decision_write_failed", {{"txid", txid}, {"error", found.status().ToString()}});
      FailStop(txid);
    }
    const int64_t now = timers_.NowMs();
    if (!found.value()) {
      // The conflict was not on the txid (its Idempotency-Key is taken):
      // nothing durable says commit for this txid, so presumed abort holds
      // (its staging record would have met the same key first).
      log::Warn("decision_not_recorded", {{"txid", txid}, {"error", conflict.ToString()}});
      engine_->OnDecisionPersisted(txid, conflict, now);
      Pump();
      return;
    }
    const DecisionRecord& recorded = **found;
    log::Warn("decision_recorded_first", {{"txid", txid}, {"recorded", OutcomeName(recorded.outcome)}});
    if (!engine_->OnDecisionConflict(txid, recorded.outcome, recorded.reason, now)) {
      log::Error("transaction_in_doubt", {{"txid", txid},
                                          {"recorded", OutcomeName(recorded.outcome)},
                                          {"reason", "the log recorded a different decision than the one delivered"}});
    }
    Pump();
  });
}

[[noreturn]] void Node::FailStop(const std::string& txid) {
  log::Error("fatal_decision_log_failure", {{"txid", txid}, {"action", "stopping; restart to recover"}});
  std::abort();
}

void Node::Shutdown(std::function<void()> done) {
  stopping_ = true;
  on_stopped_ = std::move(done);
  delivery_grace_until_ = timers_.NowMs() + options_.shutdown_grace_ms;
  log::Info("shutdown_started", {{"undecided", engine_->undecided()}});
  MaybeFinishShutdown();
}

void Node::MaybeFinishShutdown() {
  if (!stopping_ || !on_stopped_) return;
  // Every client must get its answer: wait (the tick calls again) until no
  // transaction is undecided or waiting for its decision record, bounded by
  // the transactions' own deadlines. Then give delivery of the decisions a
  // short grace, so participants are not left holding locks until a restart.
  // Not waited for: a 3PC transaction past its precommit deadline or resumed,
  // which waits on its participants however long, or whose decision waits to
  // be written again; its clients are told the outcome is not recorded yet,
  // and a restart resumes it from its staging record.
  if (engine_->undecided_due_by_deadline(timers_.NowMs()) > 0 || engine_->awaiting_record() > 0) return;
  if ((engine_->active() > 0 || !clients_.empty()) && timers_.NowMs() < delivery_grace_until_) return;
  engine_->AnswerClientsAtShutdown();
  ExecuteActions();  // only client answers; not Pump, which would come back here
  ++epoch_;  // answers arriving from now on (a late precommit ack) change nothing
  *alive_ = false;  // no more ticks or probes
  alive_ = std::make_shared<bool>(false);
  auto done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  log::Info("shutdown_done");
  done();
}

void Node::ScheduleTick() {
  timers_.After(options_.tick_ms, [this, alive = std::weak_ptr<bool>(alive_)] {
    auto a = alive.lock();
    if (!a || !*a) return;
    engine_->Tick(timers_.NowMs());
    Pump();
    ScheduleTick();
  });
}

int64_t ForgetIntervalMs(int64_t retention_ms) { return std::clamp<int64_t>(retention_ms / 10, 10, 1'000); }

// Only a node that may write (a single coordinator, a group's leader) deletes;
// a group's followers delete when they apply the leader's command.
void Node::ScheduleForget(int64_t delay_ms) {
  timers_.After(delay_ms, [this, alive = std::weak_ptr<bool>(alive_)] {
    auto a = alive.lock();
    if (!a || !*a) return;
    const int64_t interval = ForgetIntervalMs(options_.decision_retention_ms);
    if (!txids_ || stopping_) {
      ScheduleForget(interval);
      return;
    }
    // Retentions come from a config file: a huge one must not wrap around.
    auto minus = [](int64_t a, int64_t b) {
      int64_t out;
      return __builtin_sub_overflow(a, b, &out) ? std::numeric_limits<int64_t>::min() : out;
    };
    const int64_t cutoff = minus(timers_.NowMs(), options_.decision_retention_ms);
    const int64_t keys_cutoff = minus(cutoff, options_.forgotten_key_retention_ms);
    log_.ForgetFinished(cutoff, keys_cutoff, kForgetBatch, [this, interval, alive = std::weak_ptr<bool>(alive_)](
                                                   Result<std::size_t> forgotten) {
      auto a = alive.lock();
      if (!a || !*a) return;
      if (!forgotten.ok()) {
        if (forgotten.status().code() != StatusCode::kUnavailable) {
          log::Warn("forget_failed", {{"error", forgotten.status().ToString()}});
        }
        ScheduleForget(interval);
        return;
      }
      metrics_.forgotten += *forgotten;
      ScheduleForget(*forgotten == kForgetBatch ? 0 : interval);
    });
  });
}

// Every interval: a participant whose last answer is older than
// health_stale_probes intervals is unhealthy (a stopped process answers
// nothing, not even an error), and every probe that is due goes out.
void Node::ScheduleHealth() {
  timers_.After(options_.health_interval_ms, [this, alive = std::weak_ptr<bool>(alive_)] {
    auto a = alive.lock();
    if (!a || !*a) return;
    const int64_t now = timers_.NowMs();
    const int64_t stale_ms = options_.health_stale_probes * options_.health_interval_ms;
    for (auto& [name, p] : registry_) {
      if (p.healthy && now - p.last_seen_ms > stale_ms) {
        SetHealthy(name, p, false, "no answer to a health probe for " + std::to_string(now - p.last_seen_ms) + " ms");
      }
      const ProbeSchedule& schedule = probes_[name];
      if (!schedule.in_flight && now >= schedule.next_ms) Probe(name);
    }
    ScheduleHealth();
  });
}

void Node::SetHealthy(const std::string& name, ParticipantStatus& p, bool healthy, const std::string& why) {
  if (!healthy) p.last_error = why;
  if (p.healthy == healthy) return;
  p.healthy = healthy;
  if (healthy) {
    log::Info("participant_healthy", {{"participant", name}, {"url", p.entry.url}});
  } else {
    log::Warn("participant_unhealthy", {{"participant", name}, {"url", p.entry.url}, {"error", why}});
  }
}

void Node::NoteDelivery(const std::string& participant, const std::string& txid, const Status& status) {
  auto it = failing_deliveries_.find(participant);
  if (status.ok()) {
    if (it == failing_deliveries_.end()) return;
    log::Info("decision_delivery_recovered", {{"participant", participant}, {"failures", it->second.failures}});
    failing_deliveries_.erase(it);
    return;
  }
  if (log::Enabled(log::Level::kDebug)) {
    log::Debug("decision_delivery_failed",
               Traced(txid, {{"txid", txid}, {"participant", participant}, {"error", status.ToString()}}));
  }
  if (it != failing_deliveries_.end()) {
    ++it->second.failures;
    return;
  }
  failing_deliveries_[participant] = DeliveryTrouble{1, status.ToString()};
  log::Warn("decision_delivery_failing",
            Traced(txid, {{"participant", participant}, {"txid", txid}, {"error", status.ToString()},
                          {"message", "decisions to this participant are retried with backoff; logged again once it "
                                      "answers"}}));
}

void Node::LearnCatalog(const std::string& name, const AgentCatalog& catalog) {
  auto it = registry_.find(name);
  if (it == registry_.end()) return;
  ParticipantStatus& p = it->second;
  p.procedures = catalog.procedures;
  p.allow_raw_sql = catalog.allow_raw_sql;
  p.catalog_known = true;
  const int64_t assumed_ms = options_.engine.outcome_retention_ms;
  if (catalog.outcome_retention_ms && *catalog.outcome_retention_ms < assumed_ms &&
      p.outcome_retention_ms != catalog.outcome_retention_ms) {
    // Once per value: the probe asks every health_interval_ms.
    log::Warn("participant_outcome_retention_short",
              {{"participant", name},
               {"agent_outcome_retention_ms", *catalog.outcome_retention_ms},
               {"outcome_retention_ms", assumed_ms},
               {"error", "the agent forgets finished transactions sooner than this coordinator assumes: a staging "
                         "record resumed after that long could be fenced where the agent committed and forgot; "
                         "give every process the same outcome_retention_ms"}});
  }
  p.outcome_retention_ms = catalog.outcome_retention_ms;
}

void Node::Probe(const std::string& name, bool force) {
  auto it = registry_.find(name);
  if (it == registry_.end()) return;
  ProbeSchedule& schedule = probes_[name];
  if (schedule.in_flight && !force) return;
  if (force) {
    ++schedule.generation;
    schedule.backoff_ms = 0;
  }
  schedule.in_flight = true;
  agents_.FetchCatalog({name, it->second.entry.url}, options_.health_interval_ms,
                       [this, name, generation = schedule.generation,
                        alive = std::weak_ptr<bool>(alive_)](Result<AgentCatalog> catalog) {
                         if (alive.expired()) return;
                         auto it = registry_.find(name);
                         auto sit = probes_.find(name);
                         if (it == registry_.end() || sit == probes_.end()) return;
                         ProbeSchedule& schedule = sit->second;
                         if (schedule.generation != generation) return;  // a forced probe replaced it
                         schedule.in_flight = false;
                         ParticipantStatus& p = it->second;
                         const int64_t now = timers_.NowMs();
                         if (!catalog.ok()) {
                           // Unreachable: probe again after 1, 2, 4, ... intervals, capped.
                           schedule.backoff_ms =
                               schedule.backoff_ms == 0
                                   ? options_.health_interval_ms
                                   : std::min(schedule.backoff_ms * 2, options_.health_backoff_max_ms);
                           schedule.next_ms = now + schedule.backoff_ms;
                           SetHealthy(name, p, false, catalog.status().message());
                           return;
                         }
                         schedule.backoff_ms = 0;
                         schedule.next_ms = now + options_.health_interval_ms;
                         p.last_seen_ms = now;
                         p.last_error.clear();
                         SetHealthy(name, p, true, "");
                         LearnCatalog(name, *catalog);
                       });
}

// The registry's URL wins over the one recorded with the decision: an agent
// that moved and re-registered still gets its decisions.
std::string Node::DeliveryUrl(const ParticipantRef& to) const {
  auto registered = registry_.find(to.name);
  return registered != registry_.end() ? registered->second.entry.url : to.url;
}

void Node::Pump() {
  ExecuteActions();
  MaybeFinishShutdown();
}

void Node::ExecuteActions() {
  while (engine_->HasActions()) {
    auto actions = engine_->TakeActions();
    for (auto& a : actions) Execute(a);
  }
}

void Node::Execute(Action& a) {
  if (auto* p = std::get_if<action::SendPrepare>(&a)) {
    if (keys_.enabled()) {
      p->request.abort_key = keys_.AbortKeyOf(p->request.txid);
      p->request.commit_check = keys_.CommitCheckOf(p->request.txid);
    }
    agents_.Prepare(p->to, p->request, p->timeout_ms,
                    [this, txid = p->request.txid, name = p->to.name, epoch = epoch_](Result<wire::Vote> vote) {
                      if (epoch != epoch_) return;
                      engine_->OnVote(txid, name, std::move(vote), timers_.NowMs());
                      Pump();
                    });
  } else if (auto* d = std::get_if<action::SendDecision>(&a)) {
    const bool commit = d->outcome == Outcome::kCommitted;
    if (commit && failpoint::Active("coordinator.skip_commit_delivery")) return;
    ParticipantRef to{d->to.name, DeliveryUrl(d->to)};
    const std::string key = !keys_.enabled() ? std::string()
                            : commit         ? keys_.CommitKeyOf(d->txid)
                                             : keys_.AbortKeyOf(d->txid);
    agents_.Deliver(to, d->txid, d->outcome, key,
                    [this, txid = d->txid, name = d->to.name, commit, epoch = epoch_](Result<DecisionAck> ack) {
                      if (epoch != epoch_) return;
                      Status s = ack.status();
                      if (ack.ok() && (*ack == DecisionAck::kFoundCommitted || *ack == DecisionAck::kFoundAborted)) {
                        const Outcome done = *ack == DecisionAck::kFoundCommitted ? Outcome::kCommitted
                                                                                  : Outcome::kAborted;
                        NoteDelivery(name, txid, Status::Ok());
                        if (engine_->OnDecisionFoundDone(txid, name, done, timers_.NowMs())) {
                          ++metrics_.decisions_contradicted;
                          log::Error("decision_contradicted",
                                     Traced(txid, {{"txid", txid},
                                                   {"participant", name},
                                                   {"decision", commit ? "committed" : "aborted"},
                                                   {"participant_outcome", OutcomeName(done)},
                                                   {"message", "the participant finished the transaction the other "
                                                               "way; the decision is not sent there again. Reconcile "
                                                               "the data, then close the transaction"}}));
                        }
                        Pump();
                        return;
                      }
                      if (ack.ok() && *ack == DecisionAck::kUnknownTransaction) {
                        if (commit) {
                          // Every participant of a commit voted yes, so one that no longer
                          // knows the txid applied it and forgot it after its retention
                          // window (or lost its database: then no redelivery can help).
                          // Counted as acked.
                          ++metrics_.commits_unknown_at_participant;
                          log::Error("commit_unknown_at_participant",
                                     Traced(txid, {{"txid", txid}, {"participant", name}}));
                        } else {
                          s = Status::Unavailable("abort answered unknown_transaction");
                        }
                      }
                      NoteDelivery(name, txid, s);
                      engine_->OnDecisionAcked(txid, name, s, timers_.NowMs());
                      Pump();
                    });
  } else if (auto* decided = std::get_if<action::Decided>(&a)) {
    if (decided->outcome == Outcome::kCommitted) {
      ++metrics_.committed;
    } else {
      ++metrics_.aborted;
      ++metrics_.aborts_by_reason[static_cast<std::size_t>(decided->abort_reason)];
    }
  } else if (auto* pd = std::get_if<action::PersistDecision>(&a)) {
    const bool commit = pd->record.outcome == Outcome::kCommitted;
    std::string txid = pd->record.txid;
    const bool again = pd->again;
    const bool heuristic = pd->record.heuristic;
    const bool finishes = pd->record.finished;
    // 3PC: every participant acked precommit (or the deadline passed); nothing says commit yet.
    if (commit && pd->record.protocol == wire::Protocol::k3pc)
      failpoint::CrashIf("coordinator.crash_before_3pc_commit_record");
    auto written = [this, txid, commit, again, heuristic, finishes, epoch = epoch_](Status s) {
      if (epoch != epoch_) return;  // a group leader that has stepped down since
      if (s.code() == StatusCode::kConflict) {
        AnswerForce(txid, s);
        FollowRecordedDecision(txid, s);
        return;
      }
      if (!s.ok()) {
        // A decision written again after a failure was logged the first time.
        log::Write(again ? log::Level::kDebug : log::Level::kError, "decision_write_failed",
                   Traced(txid, {{"txid", txid}, {"error", s.ToString()}}));
      } else if (again) {
        log::Info("decision_written", Traced(txid, {{"txid", txid}}));
      }
      if (!s.ok() && group()) {
        DropUnconfirmed("the decision of " + txid + " could not be confirmed: " + s.message());
        return;
      }
      if (!s.ok() && commit) {
        // A failed COMMIT write may still have left the record in the WAL, to
        // reappear after a restart: guessing "abort" now could contradict it.
        // Stop instead; on restart the log says what was decided.
        FailStop(txid);
      }
      failpoint::CrashIf("coordinator.crash_after_decision_durable");
      if (s.ok() && heuristic) ++metrics_.heuristic;  // an operator's, for a transaction in doubt
      engine_->OnDecisionPersisted(txid, s, timers_.NowMs());
      AnswerForce(txid, s);
      if (s.ok() && finishes && !engine_->Find(txid)) ForgetEnded(txid);  // written with its finished mark
      Pump();
    };
    if (pd->rides_next_write) {
      // The client may have been answered already (the staging record and
      // the votes make the commit certain); with this failpoint the record is
      // never written, as if the process died before its write.
      if (failpoint::Active("coordinator.skip_early_commit_record")) return;
      log_.AppendDecisionWithNextWrite(std::move(pd->record), std::move(written));
    } else {
      log_.AppendDecision(std::move(pd->record), std::move(written));
    }
  } else if (auto* sf = std::get_if<action::SendFence>(&a)) {
    ParticipantRef to{sf->to.name, DeliveryUrl(sf->to)};
    agents_.Fence(to, sf->txid, [this, txid = sf->txid, name = sf->to.name, epoch = epoch_](Result<FenceAnswer> answer) {
      if (epoch != epoch_) return;
      if (!answer.ok()) {
        log::Warn("fence_failed",
                  Traced(txid, {{"txid", txid}, {"participant", name}, {"error", answer.status().ToString()}}));
      }
      engine_->OnFenceAnswer(txid, name, std::move(answer), timers_.NowMs());
      Pump();
    });
  } else if (auto* sq = std::get_if<action::SendStateQuery>(&a)) {
    ParticipantRef to{sq->to.name, DeliveryUrl(sq->to)};
    agents_.QueryState(to, sq->txid,
                       [this, txid = sq->txid, name = sq->to.name, epoch = epoch_](Result<StateAnswer> answer) {
                         if (epoch != epoch_) return;
                         if (!answer.ok()) {
                           log::Warn("state_query_failed", Traced(txid, {{"txid", txid},
                                                                         {"participant", name},
                                                                         {"error", answer.status().ToString()}}));
                         }
                         engine_->OnStateAnswer(txid, name, std::move(answer), timers_.NowMs());
                         Pump();
                       });
  } else if (auto* pp = std::get_if<action::PersistStaging>(&a)) {
    std::string txid = pp->record.txid;
    log_.AppendDecision(std::move(pp->record), [this, txid, epoch = epoch_](Status s) {
      if (epoch != epoch_) return;
      if (!s.ok()) log::Error("precommit_write_failed", Traced(txid, {{"txid", txid}, {"error", s.ToString()}}));
      if (!s.ok() && group()) {
        // As for a decision: the staging record may still commit, and
        // acting on its failure here could contradict it.
        DropUnconfirmed("the staging record of " + txid + " could not be confirmed: " + s.message());
        return;
      }
      if (!s.ok() && s.code() != StatusCode::kConflict) {
        // As for a commit: a failed write may still have left the record in
        // the WAL, and a restart would resume it into a commit, against an
        // abort told to the client now. Stop; the log says on restart. (A
        // conflict wrote nothing: the engine aborts.)
        FailStop(txid);
      }
      failpoint::CrashIf("coordinator.crash_after_precommit_durable");
      engine_->OnStagingPersisted(txid, s, timers_.NowMs());
      Pump();
    });
  } else if (auto* sp = std::get_if<action::SendPrecommit>(&a)) {
    failpoint::CrashIf("coordinator.crash_before_precommits");
    ++metrics_.precommits_sent;
    ParticipantRef to{sp->to.name, DeliveryUrl(sp->to)};
    agents_.Precommit(to, sp->txid, keys_.enabled() ? keys_.CommitKeyOf(sp->txid) : std::string(),
                      [this, txid = sp->txid, name = sp->to.name, epoch = epoch_](Result<PrecommitAnswer> answer) {
                        if (epoch != epoch_) return;
                        if (!answer.ok()) {
                          log::Warn("precommit_delivery_failed",
                                    Traced(txid, {{"txid", txid}, {"participant", name},
                                                  {"error", answer.status().ToString()}}));
                        } else if (*answer == PrecommitAnswer::kUnknownTransaction) {
                          ++metrics_.precommits_unknown_at_participant;
                          if (precommit_unknown_logged_[txid].insert(name).second) {
                            log::Error("precommit_outcome_unknown",
                                       Traced(txid, {{"txid", txid}, {"participant", name}}));
                          }
                        }
                        engine_->OnPrecommitAcked(txid, name, std::move(answer), timers_.NowMs());
                        Pump();
                      });
  } else if (auto* pf = std::get_if<action::PersistFinished>(&a)) {
    std::string txid = pf->txid;
    log_.MarkFinished(txid, pf->finished_ms, [this, txid, epoch = epoch_](Status s) {
      if (epoch != epoch_) return;
      const bool failed = !s.ok() && s.code() != StatusCode::kNotFound;
      if (failed) ++metrics_.finished_mark_failures;
      const bool was_waiting = engine_->awaiting_mark(txid);
      engine_->OnFinishedPersisted(txid, s, timers_.NowMs());
      AnswerClose(txid, s);
      const bool waiting = engine_->awaiting_mark(txid);
      if (failed && !was_waiting) {  // logged once per transaction, and once more when written
        log::Warn("finished_mark_failed",
                  Traced(txid, {{"txid", txid},
                                {"error", s.ToString()},
                                {"then", waiting ? "written again with backoff"
                                                 : "let go: taken over again from the log later"}}));
      } else if (s.ok() && was_waiting) {
        log::Info("finished_mark_written", Traced(txid, {{"txid", txid}}));
      }
      if (!waiting) ForgetEnded(txid);
      if (failed && !waiting) RetakeLetGo();
      Pump();
    });
  } else if (auto* rc = std::get_if<action::ReplyClient>(&a)) {
    auto it = clients_.find(rc->client);
    if (it == clients_.end()) return;
    auto done = std::move(it->second);
    clients_.erase(it);
    done(TxReply{rc->status, std::move(rc->body), rc->outcome});
  }
}

}  // namespace commitd::coordinator
