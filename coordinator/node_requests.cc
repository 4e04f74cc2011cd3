// Node: what clients and operators ask (submit, look up, list, register,
// force).
#include <memory>
#include <set>

#include "common/log.h"
#include "common/peer_url.h"
#include "coordinator/adoption_verdict.h"
#include "coordinator/agent_answers.h"
#include "coordinator/node.h"

namespace commitd::coordinator {

std::optional<std::string> Node::CheckOps(const wire::TxRequest& tx) const {
  for (std::size_t i = 0; i < tx.branches.size(); ++i) {
    const auto& b = tx.branches[i];
    auto it = registry_.find(b.participant);
    if (it == registry_.end()) {
      return "branches[" + std::to_string(i) + "].participant: unknown participant '" + b.participant + "'";
    }
    const ParticipantStatus& p = it->second;
    if (!p.catalog_known) continue;  // unreachable so far: the prepare will say so
    for (std::size_t j = 0; j < b.ops.size(); ++j) {
      const auto& op = b.ops[j];
      const auto where = [&] { return "branches[" + std::to_string(i) + "].ops[" + std::to_string(j) + "]"; };
      if (op.is_raw() && !p.allow_raw_sql) {
        return where() + ": raw SQL is not allowed on participant '" + b.participant +
               "' (start its agent with --allow-raw-sql)";
      }
      if (op.procedure && p.procedures.count(*op.procedure) == 0) {
        return where() + ".procedure: participant '" + b.participant + "' has no procedure '" + *op.procedure + "'";
      }
    }
  }
  return std::nullopt;
}

void Node::Submit(SubmitRequest request, std::function<void(SubmitResult)> done) {
  if (stopping_) {
    done(NodeError{NodeErrorKind::kStopping, "coordinator is shutting down"});
    return;
  }
  auto shared = std::make_shared<SubmitRequest>(std::move(request));
  // Fetch the catalog of participants never reached yet, then validate.
  std::vector<std::string> unknown;
  for (const auto& b : shared->tx.branches) {
    auto it = registry_.find(b.participant);
    if (it != registry_.end() && !it->second.catalog_known) unknown.push_back(b.participant);
  }
  if (unknown.empty()) {
    ValidateAndStart(shared, std::move(done));
    return;
  }
  auto remaining = std::make_shared<std::size_t>(unknown.size());
  auto shared_done = std::make_shared<std::function<void(SubmitResult)>>(std::move(done));
  for (const auto& name : unknown) {
    agents_.FetchCatalog({name, registry_[name].entry.url}, options_.catalog_timeout_ms,
                         [this, name, shared, shared_done, remaining](Result<AgentCatalog> catalog) {
                           if (catalog.ok()) LearnCatalog(name, *catalog);
                           if (--*remaining == 0) ValidateAndStart(shared, std::move(*shared_done));
                         });
  }
}

void Node::AttachClient(const std::string& txid, std::function<void(SubmitResult)> done) {
  ClientToken token = next_client_++;
  clients_.emplace(token, std::move(done));
  engine_->AttachClient(txid, token);
  Pump();
}

void Node::ValidateAndStart(std::shared_ptr<SubmitRequest> request, std::function<void(SubmitResult)> done) {
  if (auto error = CheckOps(request->tx)) {
    done(NodeError{NodeErrorKind::kInvalidRequest, *error});
    return;
  }
  const std::string key = request->idempotency_key;
  if (key.empty()) {
    StartTransaction(request, std::move(done));
    return;
  }
  if (auto txid = engine_->TxidForIdempotencyKey(key)) {
    AttachClient(*txid, std::move(done));
    return;
  }
  log_.FindByIdempotencyKey(key, [this, request, key, done = std::move(done),
                                  epoch = epoch_](Result<std::optional<DecisionRecord>> found) mutable {
    if (!found.ok()) {
      done(NodeError{NodeErrorKind::kStorage, found.status().message()});
      return;
    }
    if (found.value() && (*found)->outcome == Outcome::kPending) {
      // A staging record the engine has not registered the key for: it is still running.
      done(NodeError{NodeErrorKind::kInProgress,
                     "transaction " + (*found)->txid + " for this Idempotency-Key is still running"});
      return;
    }
    if (found.value()) {
      const DecisionRecord& r = **found;
      const bool committed = r.outcome == Outcome::kCommitted && !options_.unsafe_replay_as_abort;
      done(TxReply{committed ? 200 : 409, r.reply, r.outcome});
      return;
    }
    log_.KeyForgotten(key, [this, request, key, done = std::move(done), epoch](Result<bool> forgotten) mutable {
      if (!forgotten.ok()) {
        done(NodeError{NodeErrorKind::kStorage, forgotten.status().message()});
        return;
      }
      if (*forgotten) {
        done(NodeError{NodeErrorKind::kKeyForgotten,
                       "Idempotency-Key '" + key + "' was used by a transaction that finished more than "
                       "decision_retention_ms (" + std::to_string(options_.decision_retention_ms) +
                       " ms) ago; its record was deleted, and it is not run again: use a new key"});
        return;
      }
      if (epoch != epoch_) {
        done(NodeError{NodeErrorKind::kLeadershipLost, "leadership changed while the request was checked; the "
                                                       "outcome is unknown here: retry with the same Idempotency-Key"});
        return;
      }
      if (auto txid = engine_->TxidForIdempotencyKey(key)) {  // started while we looked
        AttachClient(*txid, std::move(done));
        return;
      }
      StartTransaction(request, std::move(done));
    });
  });
}

void Node::StartTransaction(std::shared_ptr<SubmitRequest> request, std::function<void(SubmitResult)> done) {
  if (engine_->undecided() >= static_cast<std::size_t>(options_.max_in_flight)) {
    ++metrics_.rejected_overload;
    ++metrics_.aborts_by_reason[static_cast<std::size_t>(AbortReason::kOverload)];
    done(NodeError{NodeErrorKind::kOverloaded, "too many transactions in flight; retry later"});
    return;
  }
  if (!txids_) {
    done(NodeError{NodeErrorKind::kLeadershipLost, "this coordinator does not lead a term: retry"});
    return;
  }
  const int64_t now = timers_.NowMs();
  StartRequest sr;
  sr.txid = txids_->Next();
  sr.protocol = request->tx.protocol;
  sr.timeout_ms = request->tx.timeout_ms.value_or(options_.default_tx_timeout_ms);
  for (auto& b : request->tx.branches) {
    sr.participants.push_back({b.participant, registry_[b.participant].entry.url});
    sr.ops.push_back(std::move(b.ops));
  }
  sr.idempotency_key = request->idempotency_key;
  sr.client = next_client_++;
  sr.created_ms = now;
  if (request->trace) {
    // A transaction that ends without being marked finished here leaves its
    // entry behind: drop those of transactions the engine no longer holds.
    if (traces_.size() >= traces_prune_at_) {
      std::erase_if(traces_, [this](const auto& entry) { return !engine_->Find(entry.first); });
      traces_prune_at_ = std::max<std::size_t>(kTracesPruneAt, 2 * traces_.size());
    }
    traces_.insert_or_assign(sr.txid, *request->trace);
  }
  if (log::Enabled(log::Level::kDebug)) {
    log::Debug("transaction_started", Traced(sr.txid, {{"txid", sr.txid},
                                                       {"protocol", wire::ProtocolName(sr.protocol)},
                                                       {"participants", sr.participants.size()}}));
  }
  clients_.emplace(sr.client, std::move(done));
  ++metrics_.started;
  engine_->Start(std::move(sr), now);
  Pump();
}

void Node::GetTransaction(const std::string& txid, const std::string& asker, const std::string& asker_log_id,
                          std::function<void(TxLookup)> done) {
  if (auto view = engine_->Find(txid)) {
    if (!asker.empty() && view->participants_may_terminate) {
      // Answered like a coordinator that is down: "pending" would keep every
      // participant waiting while one of them cannot be reached.
      done(NodeError{NodeErrorKind::kRecovering,
                     txid + " (3PC) was resumed after a restart and is not decided yet: this coordinator waits for "
                            "every participant's answer, and its participants may decide it among themselves"});
      return;
    }
    done(*view);
    return;
  }
  if (auto f = foreign_.find(txid); f != foreign_.end()) {
    done(ForeignView(txid, f->second));
    return;
  }
  if (group() && !asker_log_id.empty() && asker_log_id != log_id_) {
    done(NodeError{NodeErrorKind::kUnknownLog,
                   txid + " was prepared under decision log " + asker_log_id + "; this group's log is " +
                       (log_id_.empty() ? std::string("without identity") : log_id_) +
                       ": it knows nothing about it (no presumed abort)"});
    return;
  }
  if (!group() && asker_log_id != log_id_ && (!asker_log_id.empty() || !asker.empty())) {
    CheckRecordAtAgent(txid, asker, asker_log_id, std::move(done));
    return;
  }
  LookUpOrPresume(txid, asker, std::move(done));
}

// A question naming a log other than this one (or none, from a participant):
// the asker's word is not enough, because recording a presumed abort for
// another log's transaction (decisions.db replaced while the coordinator was
// down) could contradict what that log decided, and would make an operator's
// forced commit of it conflict. The agent's own listing says what it holds:
// a record of this coordinator without a log id keeps the presumed-abort rule
// (as in the sweep); one under another log is reported in doubt; anything
// else is answered unknown_log, and nothing is recorded.
void Node::CheckRecordAtAgent(const std::string& txid, const std::string& asker, const std::string& asker_log_id,
                              std::function<void(TxLookup)> done) {
  auto unknown_log = [this, txid](const std::string& named) {
    return NodeError{NodeErrorKind::kUnknownLog,
                     txid + " was prepared under decision log " + (named.empty() ? std::string("(none named)") : named) +
                         "; this coordinator's log is " +
                         (log_id_.empty() ? std::string("without identity") : log_id_) +
                         ": it knows nothing about it (no presumed abort)"};
  };
  auto registered = registry_.find(asker);
  if (asker.empty() || registered == registry_.end()) {
    done(unknown_log(asker_log_id));
    return;
  }
  const ParticipantRef at{asker, registered->second.entry.url};
  agents_.ListPrepared(at, [this, txid, asker, asker_log_id, at, unknown_log, done = std::move(done),
                            alive = std::weak_ptr<bool>(alive_)](Result<std::vector<PreparedAtAgent>> listed) mutable {
    auto a = alive.lock();
    if (!a || !*a) return;
    std::optional<std::string> held_under;
    if (listed.ok()) {
      for (const auto& t : *listed) {
        if (t.txid == txid && t.coordinator == options_.self_url) held_under = t.log_id;
      }
    }
    if (held_under && (held_under->empty() || *held_under == log_id_)) {
      LookUpOrPresume(txid, asker, std::move(done));
      return;
    }
    if (!held_under) {
      done(unknown_log(asker_log_id));
      return;
    }
    // Held under another log: an operator's forced decision answers it;
    // otherwise it is in doubt.
    log_.FindDecision(txid, [this, txid, asker, at, log_id = *held_under, unknown_log, done = std::move(done),
                             alive](Result<std::optional<DecisionRecord>> found) {
      auto a = alive.lock();
      if (!a || !*a) return;
      if (found.ok() && found.value() && (*found)->heuristic) {
        foreign_.erase(txid);
        done(std::move(**found));
        return;
      }
      if (!engine_->Find(txid)) {
        ForeignRecord& f = foreign_[txid];
        if (f.holders.empty()) {
          log::Error("transaction_in_doubt",
                     {{"txid", txid}, {"log_id", log_id}, {"own_log_id", log_id_}, {"participant", asker}});
        }
        f.log_id = log_id;
        bool known = false;
        for (const auto& h : f.holders) known = known || h.name == at.name;
        if (!known) f.holders.push_back(at);
        f.seen_ms = timers_.NowMs();
      }
      done(unknown_log(log_id));
    });
  });
}

void Node::LookUpOrPresume(const std::string& txid, const std::string& asker, std::function<void(TxLookup)> done) {
  log_.FindDecision(txid, [this, txid, asker, done = std::move(done)](Result<std::optional<DecisionRecord>> found) {
    if (!found.ok()) {
      done(NodeError{NodeErrorKind::kStorage, found.status().message()});
      return;
    }
    if (found.value()) {
      done(std::move(**found));
      return;
    }
    // A record retention deleted was finished: every participant had
    // acknowledged it, so none holds it prepared and none asks. Whatever asks
    // now (a client, an agent restored from a backup) gets "forgotten", never
    // an abort the record may contradict (docs/protocol.md, Retention).
    log_.TxidForgotten(txid, [this, txid, asker, done](Result<bool> forgotten) {
      if (!forgotten.ok()) {
        done(NodeError{NodeErrorKind::kStorage, forgotten.status().message()});
        return;
      }
      if (*forgotten) {
        done(NodeError{NodeErrorKind::kForgotten,
                       txid + " was decided and finished more than decision_retention_ms (" +
                           std::to_string(options_.decision_retention_ms) +
                           " ms) ago and its record was deleted: its outcome is no longer known here"});
        return;
      }
      PresumeAbort(txid, asker, done);
    });
  });
}

void Node::PresumeAbort(const std::string& txid, const std::string& asker, std::function<void(TxLookup)> done) {
  {
    PresumedAbort presumed{txid, false, {}};
    // Every member shares this log: the abort recorded here binds whichever
    // member ran the transaction (agents check their record's URL against this).
    if (group()) presumed.group = leadership_->member_urls();
    if ((asker.empty() && !group()) || options_.unsafe_presume_without_record) {
      done(std::move(presumed));
      return;
    }
    // Presumed abort told to a participant is a decision it will act on: record
    // it first (first decision wins), so that nothing — a later forced commit,
    // say — can decide the other way for the participants that did not ask.
    const int64_t now = timers_.NowMs();
    DecisionRecord abort;
    abort.txid = txid;
    abort.outcome = Outcome::kAborted;
    if (!asker.empty()) {
      auto registered = registry_.find(asker);
      abort.participants.push_back({asker, registered != registry_.end() ? registered->second.entry.url : ""});
    }
    abort.reason = "presumed abort: unknown to the coordinator when " + asker + " asked";
    abort.reply = {{"txid", txid}, {"outcome", "aborted"}, {"reason", abort.reason}};
    abort.created_ms = abort.decided_ms = abort.finished_ms = now;
    abort.finished = true;
    log_.AppendDecision(std::move(abort), [this, txid, presumed, done](Status s) mutable {
      if (s.ok()) {
        presumed.recorded = true;
        done(std::move(presumed));
        return;
      }
      // Conflict: another decision got there first; answer with it.
      log_.FindDecision(txid, [done, s](Result<std::optional<DecisionRecord>> again) {
        if (again.ok() && again.value()) {
          done(std::move(**again));
        } else {
          done(NodeError{NodeErrorKind::kStorage, "cannot record the presumed abort: " + s.message()});
        }
      });
    });
  }
}

void Node::ListTransactions(TxListQuery query, std::function<void(TxList)> done) {
  if (query.state == TxListState::kPending || query.state == TxListState::kInDoubt) {
    std::vector<TxView> list;
    if (query.state == TxListState::kInDoubt) {
      for (const auto& [txid, f] : foreign_) {
        if (list.size() >= query.limit) break;
        list.push_back(ForeignView(txid, f));
      }
    }
    for (auto& v : engine_->List()) {
      const bool pending = v.outcome == Outcome::kPending;
      // In doubt: decided and not delivered yet, or (3PC) undecided until an operator settles it.
      const bool wanted = query.state == TxListState::kPending ? pending : v.undelivered() || v.in_doubt;
      if (!wanted) continue;
      list.push_back(std::move(v));
      if (list.size() >= query.limit) break;
    }
    done(std::move(list));
    return;
  }
  ListFilter filter;
  filter.limit = query.limit;
  if (query.state == TxListState::kCommitted) filter.outcome = Outcome::kCommitted;
  if (query.state == TxListState::kAborted) filter.outcome = Outcome::kAborted;
  log_.ListDecisions(filter, [done = std::move(done)](Result<std::vector<DecisionRecord>> records) {
    if (!records.ok()) {
      done(NodeError{NodeErrorKind::kStorage, records.status().message()});
      return;
    }
    done(std::move(records).value());
  });
}

std::vector<ParticipantStatus> Node::Participants() const {
  std::vector<ParticipantStatus> out;
  for (const auto& [name, p] : registry_) out.push_back(p);
  return out;
}

void Node::PutParticipant(std::string name, std::string url, std::function<void(std::optional<NodeError>)> done) {
  auto valid_url = ValidatePeerUrl(url);
  if (!valid_url.ok()) {
    done(NodeError{NodeErrorKind::kInvalidRequest, "url: " + valid_url.status().message()});
    return;
  }
  if (!registry_.count(name) && registry_.size() >= static_cast<std::size_t>(options_.max_participants)) {
    done(NodeError{NodeErrorKind::kInvalidRequest, "the registry holds max_participants (" +
                                                       std::to_string(options_.max_participants) +
                                                       ") participants already"});
    return;
  }
  RegistryEntry entry{std::move(name), std::move(valid_url).value(), timers_.NowMs()};
  log_.PutParticipant(entry, [this, entry, done = std::move(done)](Status s) {
    if (!s.ok()) {
      done(NodeError{NodeErrorKind::kStorage, s.message()});
      return;
    }
    ParticipantStatus& p = registry_[entry.name];
    const bool changed = p.entry.url != entry.url;
    p.entry = entry;
    if (changed) p.catalog_known = false;
    Probe(entry.name, /*force=*/changed);
    done(std::nullopt);
  });
}

void Node::RemoveParticipant(const std::string& name, std::function<void(std::optional<NodeError>)> done) {
  if (registry_.count(name) == 0) {
    done(NodeError{NodeErrorKind::kNotFound, "participant " + name + " is not registered"});
    return;
  }
  for (const auto& c : options_.participants) {
    if (c.name == name) {
      done(NodeError{NodeErrorKind::kParticipantInUse,
                     "participant " + name + " is configured with --participant; remove the flag instead"});
      return;
    }
  }
  std::size_t holding = 0;
  std::string example;
  for (const TxView& v : engine_->List()) {
    for (const auto& b : v.branches) {
      if (b.participant != name) continue;
      if (holding++ == 0) example = v.txid;
      break;
    }
  }
  for (const auto& [txid, f] : foreign_) {
    for (const auto& h : f.holders) {
      if (h.name != name) continue;
      if (holding++ == 0) example = txid;
      break;
    }
  }
  if (holding > 0) {
    done(NodeError{NodeErrorKind::kParticipantInUse,
                   "participant " + name + " holds " + std::to_string(holding) +
                       " undecided or undelivered transaction(s) (" + example +
                       "...); remove it once they are finished or forced"});
    return;
  }
  log_.RemoveParticipant(name, [this, name, alive = std::weak_ptr<bool>(alive_),
                                done = std::move(done)](Status s) {
    if (alive.expired()) return;
    if (!s.ok()) {
      done(NodeError{NodeErrorKind::kStorage, s.message()});
      return;
    }
    registry_.erase(name);
    probes_.erase(name);
    log::Info("participant_removed", {{"participant", name}});
    done(std::nullopt);
  });
}

std::size_t Node::RetryNow() {
  engine_->RetryNow(timers_.NowMs());
  Pump();
  return engine_->active();
}

void Node::CloseContradicted(const std::string& txid, std::function<void(std::variant<TxView, NodeError>)> done) {
  if (stopping_) {
    done(NodeError{NodeErrorKind::kStopping, "coordinator is shutting down"});
    return;
  }
  std::optional<TxView> view = engine_->Find(txid);
  using R = Engine::CloseResult;
  switch (engine_->CloseContradicted(txid, timers_.NowMs())) {
    case R::kClosing:
      closing_.insert_or_assign(txid, Closing{std::move(*view), std::move(done)});
      Pump();
      return;
    case R::kNotHeld:
      done(NodeError{NodeErrorKind::kNotFound,
                     "this coordinator delivers no transaction " + txid + ": unknown here, or finished already"});
      return;
    case R::kNotContradicted:
      done(NodeError{NodeErrorKind::kNotContradicted,
                     "no participant contradicted the decision of " + txid + ": the protocol finishes it"});
      return;
    case R::kFinishing:
      done(NodeError{NodeErrorKind::kNotContradicted, txid + " is being marked finished already: look it up"});
      return;
    case R::kStillDelivering:
      done(NodeError{NodeErrorKind::kStillDelivering,
                     "a participant of " + txid + " has not answered its decision yet: it is still delivered "
                     "(commitctl retry-now), and can be closed once every participant answered"});
      return;
    case R::kNotRecorded:
      done(NodeError{NodeErrorKind::kUndecided, "the decision record of " + txid + " is being written: ask again"});
      return;
  }
}

namespace {

// A force for a transaction already decided: the same outcome is a no-op, a
// different one is refused.
ForceResult AnswerDecided(Outcome existing, Outcome wanted, std::variant<TxView, DecisionRecord> tx) {
  ForceResult r;
  r.kind = existing == wanted ? ForceResult::Kind::kAlreadyDecided : ForceResult::Kind::kConflict;
  r.outcome = existing;
  r.transaction = std::move(tx);
  return r;
}

}  // namespace

void Node::Force(ForceRequest request, std::function<void(ForceAnswer)> done) {
  if (stopping_) {
    done(NodeError{NodeErrorKind::kStopping, "coordinator is shutting down"});
    return;
  }
  if (group() && !txids_) {
    // Not leading, or leading before the log has its identity: a decision
    // recorded now could be applied after the leader resumed from the state
    // machine, and no engine would ever deliver it.
    done(NodeError{NodeErrorKind::kLeadershipLost, "this coordinator does not lead a ready term: retry"});
    return;
  }
  if (request.outcome == Outcome::kPending) {
    done(NodeError{NodeErrorKind::kInvalidRequest, "outcome: must be commit or abort"});
    return;
  }
  std::vector<ParticipantRef> participants;
  for (std::size_t i = 0; i < request.participants.size(); ++i) {
    const ForcedParticipant& p = request.participants[i];
    ParticipantRef ref{p.name, p.url.value_or("")};
    if (!p.url) {
      auto it = registry_.find(p.name);
      if (it == registry_.end()) {
        done(NodeError{NodeErrorKind::kInvalidRequest, "participants[" + std::to_string(i) + "].url: required, '" +
                                                           p.name + "' is not registered here"});
        return;
      }
      ref.url = it->second.entry.url;
    }
    participants.push_back(std::move(ref));
  }
  const std::string txid = request.txid;
  const Outcome wanted = request.outcome;
  std::string reason = request.reason.empty() ? "heuristic decision forced by an operator" : request.reason;
  if (auto view = engine_->Find(txid)) {
    if (view->outcome != Outcome::kPending) {
      done(AnswerDecided(view->outcome, wanted, *view));
      return;
    }
    if (!view->in_doubt) {
      done(NodeError{NodeErrorKind::kUndecided,
                     view->state == TxState::kDeciding
                         ? txid + " is being decided (its record is being written): ask again"
                     : view->state == TxState::kPrecommitting
                         ? txid + " is past its votes and waits for its participants' precommits; the protocol decides "
                                  "it, not an operator (an operator may only once a participant no longer knows it)"
                         : txid + " is still collecting votes here, or, resumed from its staging record, asking or "
                                  "fencing its participants; the protocol decides it, not an operator"});
      return;
    }
    // 3PC, in doubt: a participant no longer knows it, so no answer can settle it.
    if (!engine_->ForceInDoubt(txid, wanted, reason, timers_.NowMs())) {
      done(NodeError{NodeErrorKind::kUndecided, txid + " was decided meanwhile; ask again"});
      return;
    }
    if (request.trace) traces_.emplace(txid, *request.trace);  // the client's, if known, stays
    log::Warn("heuristic_decision", Traced(txid, {{"txid", txid},
                                                  {"outcome", OutcomeName(wanted)},
                                                  {"participants", view->branches.size()},
                                                  {"in_doubt", true}}));
    // Answered once the record is written (AnswerForce); a second force is
    // refused above meanwhile (the transaction is deciding).
    forcing_.insert_or_assign(txid, std::move(done));
    Pump();
    return;
  }
  std::set<std::string> skip(request.skip_participants.begin(), request.skip_participants.end());
  log_.FindDecision(txid, [this, txid, wanted, reason, participants = std::move(participants),
                           trace = std::move(request.trace), skip = std::move(skip),
                           done = std::move(done)](Result<std::optional<DecisionRecord>> found) mutable {
    if (!found.ok()) {
      done(NodeError{NodeErrorKind::kStorage, found.status().message()});
      return;
    }
    if (found.value()) {
      const Outcome existing = (*found)->outcome;
      if ((*found)->heuristic) foreign_.erase(txid);  // settled by an earlier force
      done(AnswerDecided(existing, wanted, std::move(**found)));
      return;
    }
    if (participants.empty()) {
      done(NodeError{NodeErrorKind::kInvalidRequest, "participants: name the participants that hold " + txid +
                                                         " prepared; this coordinator has no record of it"});
      return;
    }
    DecisionRecord record;
    record.txid = txid;
    record.outcome = wanted;
    record.participants = std::move(participants);
    record.reason = wanted == Outcome::kCommitted ? "" : reason;
    record.created_ms = record.decided_ms = timers_.NowMs();
    record.heuristic = true;
    record.reply = {{"txid", txid}, {"outcome", OutcomeName(wanted)}, {"heuristic", true}, {"reason", reason}};
    AdoptThenRecord(std::move(record), std::move(trace), std::move(skip), std::move(done));
  });
}

namespace {

// An adoption's answer as the log line and a refused force's branches show it.
std::string_view AnswerName(const Result<AdoptAnswer>& answer) {
  return answer.ok() ? AdoptAnswerName(*answer) : "no_answer";
}

}  // namespace

// One force's adoptions: every participant asked, and what each answered.
struct Node::AdoptionRound {
  DecisionRecord record;  // its participants: every one asked so far
  std::optional<TraceContext> trace;
  std::function<void(ForceAnswer)> done;
  std::set<std::string> skip;  // named gone for good by the operator: never asked
  wire::AdoptRequest request;
  AdoptionAnswers answers;  // by record.participants' order
  std::size_t pending = 0;
  uint64_t epoch = 0;
};

void Node::AdoptThenRecord(DecisionRecord record, std::optional<TraceContext> trace, std::set<std::string> skip,
                           std::function<void(ForceAnswer)> done) {
  if (options_.unsafe_force_without_adoption) {
    RecordHeuristic(std::move(record), std::move(trace), std::move(done));
    return;
  }
  if (!keys_.enabled()) {
    done(NodeError{NodeErrorKind::kStorage,
                   "this coordinator's decision log has no secret, so its participants cannot adopt " + record.txid});
    return;
  }
  auto round = std::make_shared<AdoptionRound>();
  round->request = {record.txid, log_id_, keys_.AbortKeyOf(record.txid), keys_.CommitCheckOf(record.txid)};
  round->skip = std::move(skip);
  round->epoch = epoch_;
  const std::vector<ParticipantRef> named = std::move(record.participants);
  round->record = std::move(record);
  round->trace = std::move(trace);
  round->done = std::move(done);
  round->pending = 1;  // judged once every adoption answered, however they come back
  for (const auto& p : named) Adopt(round, p);
  if (--round->pending == 0) JudgeAdoptionRound(*round);
}

void Node::Adopt(const std::shared_ptr<AdoptionRound>& round, ParticipantRef to) {
  const std::size_t i = round->answers.size();
  round->answers.emplace_back(to.name, Status::Unavailable("no answer"));
  round->record.participants.push_back(to);
  ++round->pending;
  agents_.Adopt(to, round->request, [this, round, i, alive = std::weak_ptr<bool>(alive_)](Result<AdoptReply> reply) {
    auto a = alive.lock();
    if (!a || !*a) return;
    if (reply.ok()) {
      round->answers[i].second = reply->answer;
      // The record names every participant of the transaction: one the
      // operator left out is asked too, or the lost log's commit could still
      // land there after the force.
      for (const auto& p : reply->participants) AdoptIfNew(round, p);
    } else {
      round->answers[i].second = reply.status();
    }
    if (--round->pending == 0) JudgeAdoptionRound(*round);
  });
}

void Node::AdoptIfNew(const std::shared_ptr<AdoptionRound>& round, const ParticipantRef& named) {
  if (round->skip.count(named.name) != 0) return;
  for (const auto& p : round->record.participants) {
    if (p.name == named.name) return;
  }
  auto registered = registry_.find(named.name);
  if (registered == registry_.end()) {
    // The URL in a record is the record's word: this coordinator's token is
    // sent only to participants an operator registered.
    round->answers.emplace_back(named.name, Status::Unavailable("named by a record of the transaction, and not "
                                                                "registered here: register it, or skip it"));
    round->record.participants.push_back(named);
    return;
  }
  Adopt(round, ParticipantRef{named.name, registered->second.entry.url});
}

void Node::JudgeAdoptionRound(AdoptionRound& round) {
  const std::string& txid = round.record.txid;
  nlohmann::json answers = nlohmann::json::object();
  for (const auto& [name, got] : round.answers) answers[name] = AnswerName(got);
  log::Warn("force_adoptions", Traced(txid, {{"txid", txid}, {"answers", answers}}));
  if (round.epoch != epoch_) {
    round.done(NodeError{NodeErrorKind::kLeadershipLost,
                         "this coordinator stopped leading while " + txid + " was adopted: retry"});
    return;
  }
  const AdoptionVerdict verdict = JudgeAdoptions(round.record.outcome, round.answers);
  switch (verdict.kind) {
    case AdoptionVerdict::Kind::kRecord:
      RecordHeuristic(std::move(round.record), std::move(round.trace), std::move(round.done));
      return;
    case AdoptionVerdict::Kind::kUnavailable:
      round.done(NodeError{NodeErrorKind::kParticipantUnavailable,
                           verdict.participant + " did not answer the adoption of " + txid + " (" + verdict.reason +
                               "); nothing was recorded: force again once it answers, or name it in "
                               "skip_participants if it is gone for good"});
      return;
    case AdoptionVerdict::Kind::kImpossible:
      round.done(NodeError{NodeErrorKind::kDecisionConflict, txid + ": " + verdict.reason});
      return;
    case AdoptionVerdict::Kind::kContradicted: {
      TxView view;
      view.txid = txid;
      view.protocol = round.record.protocol;
      view.state = TxState::kInDoubt;
      view.started_ms = round.record.created_ms;
      for (const auto& [name, got] : round.answers) {
        view.branches.push_back(TxView::Branch{name, std::string(AnswerName(got)), 0, ""});
      }
      ForceResult r;
      r.kind = ForceResult::Kind::kParticipantDecided;
      r.outcome = verdict.done;
      r.participant = verdict.participant;
      r.transaction = std::move(view);
      round.done(std::move(r));
      return;
    }
  }
}

void Node::RecordHeuristic(DecisionRecord record, std::optional<TraceContext> trace,
                           std::function<void(ForceAnswer)> done) {
  log_.AppendDecision(record, [this, record, trace = std::move(trace), done = std::move(done),
                               epoch = epoch_](Status s) mutable {
    if (s.code() == StatusCode::kConflict) {
      // Decided meanwhile (a concurrent force): answer as if it had been found.
      log_.FindDecision(record.txid, [record, done, s](Result<std::optional<DecisionRecord>> found) {
        if (found.ok() && found.value()) {
          const Outcome existing = (*found)->outcome;
          done(AnswerDecided(existing, record.outcome, std::move(**found)));
        } else {
          done(NodeError{NodeErrorKind::kDecisionConflict, s.message()});
        }
      });
      return;
    }
    if (!s.ok()) {
      done(NodeError{NodeErrorKind::kStorage, s.message()});
      return;
    }
    ++metrics_.heuristic;
    foreign_.erase(record.txid);
    if (trace && epoch == epoch_) traces_.insert_or_assign(record.txid, *trace);
    log::Warn("heuristic_decision", Traced(record.txid, {{"txid", record.txid},
                                                         {"outcome", OutcomeName(record.outcome)},
                                                         {"participants", record.participants.size()}}));
    ForceResult result;
    result.kind = ForceResult::Kind::kForced;
    result.outcome = record.outcome;
    result.transaction = record;
    // A leader that stepped down meanwhile leaves delivery to the next one (it resumes the record).
    if (epoch == epoch_) {
      engine_->Resume(std::move(record), timers_.NowMs());
      Pump();
    }
    done(std::move(result));
  });
}

TraceContext Node::TraceFor(const std::string& txid, Entropy& fresh) {
  auto it = traces_.find(txid);
  if (it != traces_.end()) return it->second;
  TraceContext trace = TraceContext::Generate(fresh);
  if (engine_->Find(txid)) {  // kept only while the transaction runs here (finishing forgets it)
    traces_.emplace(txid, trace);
    log::Info("trace_started", {{"txid", txid}, {"trace_id", trace.trace_id()}, {"span_id", trace.span_id()}});
  }
  return trace;
}

nlohmann::json Node::Traced(const std::string& txid, nlohmann::json fields) const {
  auto it = traces_.find(txid);
  if (it != traces_.end()) fields["trace_id"] = it->second.trace_id();
  return fields;
}

}  // namespace commitd::coordinator
