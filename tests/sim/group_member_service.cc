// GroupMemberNode, the service half: the engine while this member is the
// ready leader, the client API and the engine's actions (as service.cc),
// over the member's ReplicatedDecisionLog (the DecisionLog interface).
#include "coordinator/decision_store.h"
#include "tests/sim/coordinator_calls.h"
#include "tests/sim/group_member_node.h"

namespace commitd::sim {

using coordinator::DecisionRecord;
using coordinator::Outcome;
namespace action = coordinator::action;
namespace command = coordinator::command;

namespace {

Response Error(int status, const std::string& code, const std::string& message) {
  return {status, {{"error", {{"code", code}, {"message", message}}}}};
}

}  // namespace

// As Service::Impl::OnLeadership: a ready leader takes over every unfinished
// record (3PC precommit records included); stepping down drops the engine.
void GroupMemberNode::OnLeadership(bool ready) {
  const raft::Term term = log_->driver().node().term();
  if (!ready) {
    ctx_.Log(self_.name, "NOT LEADER (term " + std::to_string(term) + ")");
    DropEngine("this coordinator is no longer the leader");
    return;
  }
  DropEngine("a new leadership term started");
  auto recovered = log_->Recover();
  if (!recovered.ok()) {
    ctx_.checker.Fail("recovery", self_.name + " cannot read its state machine: " + recovered.status().ToString());
    return;
  }
  std::vector<DecisionRecord> unfinished = std::move(recovered->unfinished);
  if (ctx_.bug == Bug::kGroupNoResume) unfinished.clear();
  std::string resumed;
  for (auto& record : unfinished) {
    resumed += " " + record.txid;
    engine_->Resume(std::move(record), ctx_.now());
  }
  ctx_.Log(self_.name, "LEADER READY (term " + std::to_string(term) + ", applied " +
                           std::to_string(log_->driver().applied()) + "), resumed " + std::to_string(unfinished.size()) +
                           (ctx_.bug == Bug::kGroupNoResume ? " (BUG: resumes nothing)" : "") + resumed);
  PumpEngine();
}

void GroupMemberNode::DropEngine(const std::string& why) {
  ++epoch_;
  auto waiting = std::move(clients_);
  clients_.clear();
  for (auto& [token, respond] : waiting) {
    ctx_.Log(self_.name, "reply client #" + std::to_string(token) + ": 503 leadership_lost");
    respond(Error(503, "leadership_lost",
                  why + "; the outcome is unknown here: retry with the same Idempotency-Key, or GET the transaction"));
  }
  engine_.reset();
  if (!log_ || !log_->leader_ready()) return;
  // Still the ready leader (an append failed): a fresh engine, as service.cc.
  coordinator::EngineOptions eo;
  eo.self_url = UrlOf(self_.name);
  eo.retry_initial_ms = ctx_.config.retry_initial_ms;
  eo.retry_max_ms = ctx_.config.retry_max_ms;
  engine_ = std::make_unique<coordinator::Engine>(eo);
}

void GroupMemberNode::Handle(const Request& request, Responder respond) {
  const bool submit = request.method == "POST" && request.target == "/v1/transactions";
  const bool get = request.method == "GET" && request.target.rfind("/v1/transactions/", 0) == 0;
  if (!submit && !get) {
    respond(Error(404, "not_found", request.target));
    return;
  }
  if (!log_->leader_ready()) {
    if (get && ctx_.bug == Bug::kGroupStaleRead) {
      const std::string txid = request.target.substr(17, request.target.find('?') - 17);
      auto local = coordinator::DecisionStore(*db_).FindByTxid(txid);
      if (!local.ok() || !AnswerFromRecord(*local, "BUG: stale read, follower", respond)) {
        AnswerPresumedAbort(txid, "BUG: stale read, follower", respond);
      }
      return;
    }
    Forward(request, std::move(respond));
    return;
  }
  if (submit) {
    HandleSubmit(request, std::move(respond));
  } else {
    HandleGetTransaction(request.target.substr(17), std::move(respond));
  }
}

// One hop only: a forwarded request that finds no ready leader gets 503.
void GroupMemberNode::Forward(const Request& request, Responder respond) {
  const raft::NodeId leader = log_->driver().node().leader();
  if (leader == raft::kNoNode || leader == self_.id || request.headers.count("x-commitd-forwarded") != 0) {
    respond(Error(503, "no_leader", "no leader is ready yet; retry"));
    return;
  }
  const std::string to = NameOf(leader);
  Request forwarded = request;
  forwarded.headers["x-commitd-forwarded"] = self_.name;
  ctx_.network.Call(self_.name, to, std::move(forwarded), ctx_.config.request_timeout_ms,
                    [respond = std::move(respond), to](Result<Response> r) {
                      if (!r.ok()) {
                        respond(Error(503, "leader_unreachable", "the leader " + to + " did not answer: " +
                                                                     r.status().message()));
                        return;
                      }
                      respond(std::move(r).value());
                    });
}

// As Service::Impl::ValidateAndStart: an Idempotency-Key seen before gets the
// running transaction or the recorded answer.
void GroupMemberNode::HandleSubmit(const Request& request, Responder respond) {
  auto parsed = wire::ParseTxRequest(request.body);
  if (!parsed.ok()) {
    respond(Error(400, "invalid_request", parsed.status().message()));
    return;
  }
  auto tx = std::make_shared<wire::TxRequest>(std::move(parsed).value());
  auto header = request.headers.find("idempotency-key");
  const std::string key = header == request.headers.end() ? "" : header->second;
  if (key.empty()) {
    StartTransaction(tx, key, std::move(respond));
    return;
  }
  if (auto txid = engine_->TxidForIdempotencyKey(key)) {
    AttachClient(*txid, std::move(respond));
    return;
  }
  log_->FindByIdempotencyKey(key, [this, tx, key, respond,
                                   epoch = epoch_](Result<std::optional<DecisionRecord>> found) {
    if (!found.ok()) {
      respond(Error(503, "storage_error", found.status().message()));
      return;
    }
    if (found->has_value() && (*found)->outcome == Outcome::kPending) {
      respond(Error(503, "in_progress", "transaction " + (*found)->txid + " for this Idempotency-Key is still running"));
      return;
    }
    if (found->has_value()) {
      const DecisionRecord& r = **found;
      ctx_.Log(self_.name, "replay key " + key + ": " + r.txid + " " + std::string(coordinator::OutcomeName(r.outcome)));
      respond({r.outcome == Outcome::kCommitted ? 200 : 409, r.reply});
      return;
    }
    if (!engine_ || epoch != epoch_) {
      respond(Error(503, "leadership_lost", "this coordinator is no longer the leader"));
      return;
    }
    if (auto txid = engine_->TxidForIdempotencyKey(key)) {
      AttachClient(*txid, respond);
      return;
    }
    StartTransaction(tx, key, respond);
  });
}

void GroupMemberNode::AttachClient(const std::string& txid, Responder respond) {
  const coordinator::ClientToken token = next_client_++;
  clients_.emplace(token, std::move(respond));
  ctx_.Log(self_.name, "client #" + std::to_string(token) + " waits for " + txid + " (same key)");
  engine_->AttachClient(txid, token);
  PumpEngine();
}

void GroupMemberNode::StartTransaction(std::shared_ptr<wire::TxRequest> tx, const std::string& key,
                                       Responder respond) {
  coordinator::StartRequest sr;
  sr.txid = self_.name + "." + std::to_string(incarnation_) + "." + std::to_string(++txid_counter_);
  sr.protocol = tx->protocol;
  sr.timeout_ms = tx->timeout_ms.value_or(ctx_.config.default_tx_timeout_ms);
  for (auto& b : tx->branches) {
    sr.participants.push_back({b.participant, UrlOf(b.participant)});
    sr.ops.push_back(std::move(b.ops));
  }
  sr.idempotency_key = key;
  sr.client = next_client_++;
  sr.created_ms = ctx_.now();
  clients_.emplace(sr.client, std::move(respond));
  ctx_.Log(self_.name, "start " + sr.txid + " (client #" + std::to_string(sr.client) + ", key " + key + ")");
  if (!key.empty()) ctx_.checker.OnIdempotencyKey(sr.txid, key);
  engine_->Start(std::move(sr), ctx_.now());
  PumpEngine();
}

// As Service::Impl::HandleGetTransaction in a group: the engine, then a
// linearizable read of the state machine, else abort appended, then 404.
void GroupMemberNode::HandleGetTransaction(const std::string& target, Responder respond) {
  const std::size_t q = target.find('?');
  const std::string txid = target.substr(0, q);
  const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  const std::string asker = query.rfind("participant=", 0) == 0 ? query.substr(12) : "";
  if (auto view = engine_->Find(txid)) {
    ctx_.Log(self_.name, "answer " + txid + ": " + std::string(coordinator::OutcomeName(view->outcome)) + " (engine)");
    respond({200, {{"txid", txid}, {"state", view->state}, {"outcome", coordinator::OutcomeName(view->outcome)}}});
    return;
  }
  log_->FindDecision(txid, [this, txid, asker, respond](Result<std::optional<DecisionRecord>> found) {
    if (!found.ok()) {
      respond(Error(503, "storage_error", found.status().message()));
      return;
    }
    if (AnswerFromRecord(*found, "log", respond)) return;
    if (ctx_.bug == Bug::kGroupPresumeWithoutRecord) {
      AnswerPresumedAbort(txid, "BUG: not recorded", respond);
      return;
    }
    RecordPresumedAbort(txid, asker, respond);
  });
}

bool GroupMemberNode::AnswerFromRecord(const std::optional<DecisionRecord>& r, const std::string& how,
                                       const Responder& respond) {
  if (!r) return false;
  const std::string& txid = r->txid;
  ctx_.Log(self_.name, "answer " + txid + ": " + std::string(coordinator::OutcomeName(r->outcome)) + " (" + how + ")");
  respond({200, {{"txid", txid},
                 {"state", r->finished ? "finished" : "delivering"},
                 {"outcome", coordinator::OutcomeName(r->outcome)}}});
  return true;
}

// The 404 names the group: every member shares the log, so an agent whose
// record names another member accepts it.
void GroupMemberNode::AnswerPresumedAbort(const std::string& txid, const std::string& how, const Responder& respond) {
  nlohmann::json group = nlohmann::json::array();
  for (const auto& m : members_) group.push_back(UrlOf(m.name));
  ctx_.Log(self_.name, "answer " + txid + ": aborted (presumed, " + how + ")");
  respond({404, {{"error", {{"code", "not_found"}, {"message", "no transaction " + txid + " is known here"}}},
                 {"txid", txid},
                 {"outcome", "aborted"},
                 {"group", std::move(group)}}});
}

void GroupMemberNode::RecordPresumedAbort(const std::string& txid, const std::string& asker, Responder respond) {
  DecisionRecord abort;
  abort.txid = txid;
  abort.outcome = Outcome::kAborted;
  if (!asker.empty()) abort.participants.push_back({asker, UrlOf(asker)});
  abort.reason = "presumed abort: unknown to the coordinator when " + asker + " asked";
  abort.reply = {{"txid", txid}, {"outcome", "aborted"}, {"reason", abort.reason}};
  abort.created_ms = abort.decided_ms = abort.finished_ms = ctx_.now();
  abort.finished = true;
  ctx_.Log(self_.name, "presume abort " + txid + " (asked by " + asker + "): appending abort");
  log_->AppendDecision(std::move(abort), [this, txid, respond](Status s) {
    if (s.ok()) {
      AnswerPresumedAbort(txid, "recorded", respond);
      return;
    }
    // Conflict: another decision got there first; answer with it.
    log_->FindDecision(txid, [this, respond, s](Result<std::optional<DecisionRecord>> found) {
      if (!found.ok() || !AnswerFromRecord(*found, "log, after " + s.ToString(), respond)) {
        respond(Error(503, "storage_error", "cannot record the presumed abort: " + s.message()));
      }
    });
  });
}

void GroupMemberNode::PumpEngine() {
  while (engine_ && engine_->HasActions()) {
    auto actions = engine_->TakeActions();
    for (auto& a : actions) Execute(a);
  }
}

// As Service::Impl::Execute in a group. Callbacks of a dropped engine do nothing.
void GroupMemberNode::Execute(coordinator::Action& a) {
  const uint64_t epoch = epoch_;
  auto current = [this, epoch] { return up_ && epoch == epoch_ && engine_ != nullptr; };
  if (auto* p = std::get_if<action::SendPrepare>(&a)) {
    CallPrepare(ctx_, self_.name, *p, [this, current, txid = p->request.txid, to = p->to.name](Result<wire::Vote> vote) {
      if (!current()) return;
      engine_->OnVote(txid, to, std::move(vote), ctx_.now());
      PumpEngine();
    });
  } else if (auto* d = std::get_if<action::SendDecision>(&a)) {
    CallDecision(ctx_, self_.name, *d, [this, current, txid = d->txid, to = d->to.name](Status s) {
      if (!current()) return;
      engine_->OnDecisionAcked(txid, to, s, ctx_.now());
      PumpEngine();
    });
  } else if (auto* sp = std::get_if<action::SendPrecommit>(&a)) {
    CallPrecommit(ctx_, self_.name, *sp,
                  [this, current, txid = sp->txid, to = sp->to.name](Result<coordinator::PrecommitAnswer> answer) {
                    if (!current()) return;
                    engine_->OnPrecommitAcked(txid, to, std::move(answer), ctx_.now());
                    PumpEngine();
                  });
  } else if (auto* pd = std::get_if<action::PersistDecision>(&a)) {
    const std::string txid = pd->record.txid;
    log_->AppendDecision(std::move(pd->record), [this, current, txid](Status s) {
      if (!current()) return;
      if (!s.ok()) {
        // Leadership lost (the entry may still commit) or another decision won:
        // the next leader resumes what committed; this engine must not guess.
        ctx_.Log(self_.name, "decision " + txid + " not confirmed: " + s.ToString());
        DropEngine("the decision of " + txid + " could not be confirmed: " + s.message());
        return;
      }
      engine_->OnDecisionPersisted(txid, s, ctx_.now());
      PumpEngine();
    });
  } else if (auto* pp = std::get_if<action::PersistPrecommit>(&a)) {
    const std::string txid = pp->record.txid;
    log_->AppendDecision(std::move(pp->record), [this, current, txid](Status s) {
      if (!current()) return;
      if (!s.ok()) {
        // As service.cc: the precommit record may still commit; the next leader resumes it.
        ctx_.Log(self_.name, "precommit record " + txid + " not confirmed: " + s.ToString());
        DropEngine("the precommit of " + txid + " could not be confirmed: " + s.message());
        return;
      }
      engine_->OnPrecommitPersisted(txid, s, ctx_.now());
      PumpEngine();
    });
  } else if (auto* pf = std::get_if<action::PersistFinished>(&a)) {
    const std::string txid = pf->txid;
    log_->MarkFinished(txid, pf->finished_ms, [this, current, txid](Status s) {
      if (!current()) return;
      engine_->OnFinishedPersisted(txid, s);
      PumpEngine();
    });
  } else if (auto* rc = std::get_if<action::ReplyClient>(&a)) {
    auto it = clients_.find(rc->client);
    if (it == clients_.end()) return;
    Responder respond = std::move(it->second);
    clients_.erase(it);
    ctx_.Log(self_.name, "reply client #" + std::to_string(rc->client) + ": " + std::to_string(rc->status) + " " +
                             rc->body.value("txid", "") + " " + rc->body.value("outcome", ""));
    respond({rc->status, rc->body});
  }
}

}  // namespace commitd::sim
