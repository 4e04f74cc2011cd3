#include "participant/node.h"

#include <algorithm>
#include <memory>

#include "common/failpoint.h"
#include "common/peer_url.h"

namespace commitd::participant {

NodeOptions NodeOptions::From(const Config& config, std::string name, std::string self_url,
                              std::vector<std::string> coordinators) {
  NodeOptions o;
  o.name = std::move(name);
  o.self_url = std::move(self_url);
  o.coordinators = std::move(coordinators);
  o.tick_ms = config.tick_ms;
  o.register_interval_ms = config.register_interval_ms;
  o.resolve_initial_ms = config.resolve_initial_ms;
  o.resolve_max_ms = config.resolve_max_ms;
  o.outcome_retention_ms = config.outcome_retention_ms;
  o.outcome_memory_ms = config.outcome_memory_ms;
  o.termination_grace_ms = config.termination_grace_ms;
  return o;
}

Result<std::string> PeerStateOf(const PeerReply& reply, const std::string& peer_url) {
  switch (reply.kind) {
    case PeerReply::Kind::kState:
      return reply.state;
    case PeerReply::Kind::kUnknownTransaction:
      return std::string("unknown");
    case PeerReply::Kind::kAlreadyAborted:
      return std::string("aborted");
    case PeerReply::Kind::kError:
      break;
  }
  return Status::Unavailable(peer_url + ": " + reply.error);
}

Node::Node(NodeOptions options, Store& store, CoordinatorTransport& coordinators, PeerTransport& peers,
           Timers& timers)
    : options_(std::move(options)), store_(store), coordinators_(coordinators), peers_(peers), timers_(timers) {
  EngineOptions eo;
  eo.name = options_.name;
  eo.coordinators = options_.coordinators;
  eo.resolve_initial_ms = options_.resolve_initial_ms;
  eo.resolve_max_ms = options_.resolve_max_ms;
  eo.outcome_retention_ms = options_.outcome_retention_ms;
  eo.outcome_memory_ms = options_.outcome_memory_ms;
  eo.termination_grace_ms = options_.termination_grace_ms;
  engine_ = std::make_unique<Engine>(eo);
  for (const std::string& url : options_.coordinators) {
    if (std::string known = NormalizedPeerUrl(url); !known.empty()) known_coordinators_.insert(std::move(known));
  }
}

Node::~Node() { *alive_ = false; }

void Node::Event(log::Level level, std::string_view event, const nlohmann::json& fields) const {
  if (event_log_) {
    event_log_(level, event, fields);
  } else {
    log::Write(level, event, fields);
  }
}

Status Node::Start() {
  if (started_) return Status::InvalidArgument("the node is already started");
  auto contents = store_.Load();
  if (!contents.ok()) return contents.status();
  recovered_ = contents->records.size();
  for (const PreparedRecord& r : contents->records) {
    if (r.state == "conflict") conflicted_.insert(r.txid);
  }
  engine_->Recover(std::move(contents->records), timers_.NowMs());
  started_ = true;
  if (options_.coordinators.empty()) {
    Event(log::Level::kWarn, "no_coordinator",
          {{"message", "no coordinator is configured (--coordinator): every prepare is refused"}});
  }
  if (options_.register_with_coordinators) unregistered_ = options_.coordinators;
  RegisterWithCoordinators();
  Pump();
  ScheduleTick();
  return Status::Ok();
}

void Node::Stop() { stopped_ = true; }

RequestToken Node::Track(ReplyFn reply) {
  RequestToken t = next_token_++;
  requests_.emplace(t, std::move(reply));
  return t;
}

void Node::Prepare(wire::PrepareRequest request, ReplyFn reply) {
  if (!request.participant.empty() && request.participant != options_.name) {
    reply({400, AgentError("wrong_participant",
                           "this agent is '" + options_.name + "', not '" + request.participant + "'", request.txid)});
    return;
  }
  ++counters_.prepares;
  if (KnownCoordinator(request.coordinator)) {
    AcceptPrepare(std::move(request), std::move(reply));
    return;
  }
  LearnMembersThenPrepare(std::move(request), std::move(reply), 0);
}

bool Node::KnownCoordinator(const std::string& url) const {
  const std::string normalized = NormalizedPeerUrl(url);
  return !normalized.empty() && known_coordinators_.count(normalized) != 0;
}

void Node::LearnMembersThenPrepare(wire::PrepareRequest request, ReplyFn reply, std::size_t index) {
  if (index >= options_.coordinators.size()) {
    const std::string why = options_.coordinators.empty()
                                ? "this agent has no coordinator configured (--coordinator): it takes no prepare"
                                : "coordinator '" + request.coordinator +
                                      "' is not one this agent knows (--coordinator, or a member of their groups)";
    Event(log::Level::kWarn, "prepare_refused",
          {{"txid", request.txid}, {"coordinator", request.coordinator}, {"reason", why}});
    reply({403, AgentError("unknown_coordinator", why, request.txid)});
    return;
  }
  coordinators_.GroupMembers(
      options_.coordinators[index],
      [this, alive = alive_, request = std::move(request), reply = std::move(reply),
       index](Result<std::vector<std::string>> members) mutable {
        if (!*alive || stopped_) return;
        if (members.ok()) {
          for (const std::string& url : *members) {
            std::string normalized = NormalizedPeerUrl(url);
            if (normalized.empty() || !known_coordinators_.insert(normalized).second) continue;
            Event(log::Level::kInfo, "coordinator_learned", {{"url", normalized}, {"from", options_.coordinators[index]}});
          }
        }
        if (KnownCoordinator(request.coordinator)) {
          AcceptPrepare(std::move(request), std::move(reply));
          return;
        }
        LearnMembersThenPrepare(std::move(request), std::move(reply), index + 1);
      });
}

void Node::AcceptPrepare(wire::PrepareRequest request, ReplyFn reply) {
  if (Status v = store_.Validate(request.ops); !v.ok()) {
    wire::Vote no;
    no.txid = request.txid;
    no.reason = v.message();
    ++counters_.votes_no;
    reply({200, std::move(no)});
    return;
  }
  // No lookup first: the prepare's own storage job reads the txid's remembered outcome.
  engine_->OnPrepare(std::move(request), Track(std::move(reply)), timers_.NowMs());
  Pump();
}

void Node::Commit(const wire::CommitRequest& request, ReplyFn reply) {
  WithStoredOutcome(request.txid, reply, [this, request, reply] {
    engine_->OnCommit(request.txid, request.commit_key, Track(reply), timers_.NowMs());
    Pump();
  });
}

void Node::Abort(const wire::AbortRequest& request, ReplyFn reply) {
  WithStoredOutcome(request.txid, reply, [this, request, reply] {
    engine_->OnAbort(request.txid, request.abort_key, Track(reply), timers_.NowMs());
    Pump();
  });
}

void Node::Precommit(const wire::CommitRequest& request, ReplyFn reply) {
  WithStoredOutcome(request.txid, reply, [this, request, reply] {
    engine_->OnPrecommit(request.txid, request.commit_key, Track(reply), timers_.NowMs());
    Pump();
  });
}

void Node::Adopt(const wire::AdoptRequest& request, ReplyFn reply) {
  WithStoredOutcome(request.txid, reply, [this, request, reply] {
    engine_->OnAdopt(request, Track(reply), timers_.NowMs());
    Pump();
  });
}

void Node::LookUpState(const std::string& txid, std::function<void(Result<std::string>)> done) {
  WithStoredOutcome(
      txid, [this, txid, done] { done(engine_->StateOf(txid)); }, [done](const Status& s) { done(s); });
}

void Node::WithStoredOutcome(const std::string& txid, std::function<void()> then,
                             std::function<void(const Status&)> failed) {
  if (engine_->Knows(txid)) {
    then();
    return;
  }
  store_.FindOutcome(txid, [this, alive = alive_, txid, then = std::move(then), failed = std::move(failed)](
                               Result<std::optional<StoredOutcome>> found) {
    if (!*alive) return;
    if (!found.ok()) {
      Event(log::Level::kError, "outcome_lookup_failed", {{"txid", txid}, {"error", found.status().ToString()}});
      failed(found.status());
      return;
    }
    if (found->has_value()) engine_->LearnOutcome(txid, (*found)->outcome, timers_.NowMs());
    then();
  });
}

void Node::WithStoredOutcome(const std::string& txid, const ReplyFn& reply, std::function<void()> then) {
  WithStoredOutcome(txid, std::move(then), [reply, txid](const Status& s) {
    reply({503, AgentError("storage_error", "the outcomes this agent remembers cannot be read: " + s.message(), txid)});
  });
}

void Node::Pump() {
  for (auto actions = engine_->TakeActions(); !actions.empty(); actions = engine_->TakeActions()) {
    for (auto& a : actions) Execute(a);
  }
}

// Every callback handed out checks alive_: a late completion after the Node
// is gone does nothing.
void Node::Execute(Action& a) {
  if (auto* pr = std::get_if<action::Prepare>(&a)) {
    store_.Prepare(std::move(*pr), [this, alive = alive_](const std::string& txid, PrepareResult result, Status s) {
      if (!*alive) return;
      const bool yes = s.ok() && result.yes;
      if (yes) failpoint::CrashIf("agent.crash_after_prepare_durable");
      if (yes) ++counters_.votes_yes;
      engine_->OnPrepared(txid, std::move(result), s, timers_.NowMs());
      Pump();
    });
  } else if (auto* ac = std::get_if<action::ApplyCommit>(&a)) {
    store_.Commit(ac->txid, [this, alive = alive_, txid = ac->txid](Status s) {
      if (!*alive) return;
      if (s.ok()) {
        ++counters_.commits;
        conflicted_.erase(txid);
        failpoint::CrashIf("agent.crash_after_commit_applied");
      } else if (s.code() == StatusCode::kConflict) {
        if (conflicted_.insert(txid).second) ++counters_.apply_conflicts;
        Event(log::Level::kWarn, "commit_apply_conflict", {{"txid", txid}, {"error", s.message()}});
      } else {
        Event(log::Level::kError, "commit_apply_failed", {{"txid", txid}, {"error", s.ToString()}});
      }
      engine_->OnCommitApplied(txid, s, timers_.NowMs());
      Pump();
    });
  } else if (auto* ab = std::get_if<action::ApplyAbort>(&a)) {
    store_.Abort(ab->txid, [this, alive = alive_, txid = ab->txid](Status s) {
      if (!*alive) return;
      if (s.ok()) {
        ++counters_.aborts;
        failpoint::CrashIf("agent.crash_during_abort");
      }
      engine_->OnAbortApplied(txid, s, timers_.NowMs());
      Pump();
    });
  } else if (auto* wt = std::get_if<action::WriteTombstone>(&a)) {
    if (!wt->again) ++counters_.votes_no;
    store_.WriteTombstone(wt->txid, [this, alive = alive_, txid = wt->txid](Result<Outcome> held) {
      if (!*alive) return;
      if (!held.ok()) {
        Event(log::Level::kError, "tombstone_write_failed", {{"txid", txid}, {"error", held.status().ToString()}});
      }
      engine_->OnTombstoneWritten(txid, held);
      Pump();
    });
  } else if (auto* fo = std::get_if<action::ForgetOutcomesBefore>(&a)) {
    store_.ForgetOutcomesBefore(fo->cutoff_ms);
  } else if (auto* reply = std::get_if<action::Reply>(&a)) {
    auto it = requests_.find(reply->to);
    if (it == requests_.end()) return;
    ReplyFn respond = std::move(it->second);
    requests_.erase(it);
    respond({reply->status, std::move(reply->body)});
  } else if (auto* pc = std::get_if<action::PersistPrecommitted>(&a)) {
    store_.Precommit(pc->txid, [this, alive = alive_, txid = pc->txid](Status s) {
      if (!*alive) return;
      if (s.ok()) {
        ++counters_.precommits;
        failpoint::CrashIf("agent.crash_after_precommit_durable");
      }
      engine_->OnPrecommitPersisted(txid, s, timers_.NowMs());
      Pump();
    });
  } else if (auto* pa = std::get_if<action::PersistAdoption>(&a)) {
    store_.Adopt(pa->txid, pa->adoption,
                 [this, alive = alive_, txid = pa->txid, log_id = pa->adoption.log_id](Status s) {
                   if (!*alive) return;
                   if (s.ok()) {
                     Event(log::Level::kWarn, "transaction_adopted", {{"txid", txid}, {"adopted_by", log_id}});
                   } else {
                     Event(log::Level::kError, "adoption_write_failed", {{"txid", txid}, {"error", s.ToString()}});
                   }
                   engine_->OnAdoptionPersisted(txid, s, timers_.NowMs());
                   Pump();
                 });
  } else if (auto* cp = std::get_if<action::CallPeers>(&a)) {
    CallPeers(std::move(*cp));
  } else if (auto* q = std::get_if<action::QueryDecision>(&a)) {
    QueryDecision(q->txid, std::move(q->log_id), std::move(q->coordinators), 0, "");
  }
}

// Asks urls[index..] in turn; the first definite answer wins. urls[0] is the
// transaction's own coordinator (from its prepare).
void Node::QueryDecision(std::string txid, std::string log_id, std::vector<std::string> urls, std::size_t index,
                         std::string errors) {
  if (index >= urls.size()) {
    if (urls.empty()) errors = "no coordinator URL known for this transaction";
    engine_->OnDecisionAnswer(txid, Status::Unavailable(errors), timers_.NowMs());
    Pump();
    return;
  }
  DecisionQuery query;
  query.coordinator_url = urls[index];
  query.txid = txid;
  query.log_id = log_id;
  // Naming ourselves makes the coordinator record its presumed abort before
  // answering; only the transaction's own coordinator may do that. Another
  // one records nothing, so it cannot later answer "aborted" from it.
  if (index == 0) query.asking_participant = options_.name;
  coordinators_.QueryDecision(
      std::move(query), [this, alive = alive_, txid = std::move(txid), log_id = std::move(log_id),
                         urls = std::move(urls), index, errors = std::move(errors)](DecisionAnswer answer) mutable {
        if (!*alive || stopped_) return;
        OnDecisionAnswer(txid, log_id, urls, index, std::move(errors), std::move(answer));
      });
}

void Node::OnDecisionAnswer(const std::string& txid, const std::string& log_id,
                            const std::vector<std::string>& urls, std::size_t index, std::string errors,
                            DecisionAnswer answer) {
  using Kind = DecisionAnswer::Kind;
  // "No record here" is proof of abort only from the coordinator that ran
  // the transaction, or from a group that lists it (its members share one
  // log); another coordinator that never saw it proves nothing.
  const bool owner = options_.unsafe_accept_not_known_from_any || index == 0 || std::find(answer.group.begin(), answer.group.end(), urls[0]) != answer.group.end();
  std::string error;
  std::optional<Decision> decision;
  switch (answer.kind) {
    case Kind::kCommitted:
      decision = Decision::kCommit;
      break;
    case Kind::kAborted:
      decision = Decision::kAbort;
      break;
    case Kind::kPending:
      decision = Decision::kPending;
      break;
    case Kind::kNotKnown:
      if (owner) {
        decision = Decision::kAbort;
      } else {
        error = urls[index] + ": does not know the transaction (only its own coordinator may presume abort)";
      }
      break;
    case Kind::kUnknownLog:
      // Its log is not the one this record was prepared under (lost or
      // replaced): it cannot know the outcome. Keep the record, keep asking.
      error = urls[index] + ": its decision log is not " + log_id + ", which this record was prepared under";
      if (index == 0) Event(log::Level::kError, "decision_log_unknown", {{"txid", txid}, {"log_id", log_id},
                                                                         {"coordinator", urls[index]}});
      break;
    case Kind::kForgotten:
      // Its log deleted the finished decision, so it believed every
      // participant had acknowledged it: this record contradicts that. Keep
      // it in doubt for an operator (commitctl resolve), never presume;
      // reported once, the questions go on quietly with their backoff.
      error = urls[index] + ": it forgot this transaction's decision after its retention window; the outcome is "
                            "not known here: an operator must resolve it";
      if (forgotten_reported_.insert(txid).second) {
        Event(log::Level::kError, "decision_forgotten",
              {{"txid", txid}, {"coordinator", urls[index]},
               {"message", "a record prepared here outlived its coordinator's decision: in doubt until an operator "
                           "resolves it"}});
      }
      break;
    case Kind::kRecovering:
      error = urls[index] + ": it resumed the transaction after a restart and has not decided it (no answer: "
                            "the participants may decide it among themselves)";
      break;
    case Kind::kError:
      error = urls[index] + ": " + answer.error;
      break;
  }
  if (decision) {
    const char* outcome = *decision == Decision::kCommit  ? "committed"
                          : *decision == Decision::kAbort ? "aborted"
                                                          : "pending";
    Event(log::Level::kInfo, "decision_answer",
          {{"txid", txid}, {"coordinator", urls[index]}, {"outcome", outcome},
           {"presumed", answer.kind == Kind::kNotKnown}});
    engine_->OnDecisionAnswer(txid, *decision, timers_.NowMs());
    Pump();
    return;
  }
  if (!errors.empty()) errors += "; ";
  errors += error;
  QueryDecision(txid, log_id, urls, index + 1, std::move(errors));
}

// 3PC termination: one call per peer, all at once; kState and kPrecommit
// answers go back to the engine together.
void Node::CallPeers(action::CallPeers call) {
  struct Round {
    std::vector<PeerAnswer> answers;
    std::size_t pending = 0;
  };
  auto round = std::make_shared<Round>();
  round->pending = call.peers.size();
  round->answers.resize(call.peers.size());
  const bool wait = call.call == action::PeerCall::kState || call.call == action::PeerCall::kPrecommit;
  if (call.call == action::PeerCall::kState) ++counters_.termination_rounds;
  if (call.call == action::PeerCall::kCommit || call.call == action::PeerCall::kAbort) {
    ++counters_.termination_decisions;
  }
  Event(log::Level::kInfo, "termination_call",
        {{"txid", call.txid},
         {"call", call.call == action::PeerCall::kState       ? "state"
                  : call.call == action::PeerCall::kPrecommit ? "precommit"
                  : call.call == action::PeerCall::kCommit    ? "commit"
                                                              : "abort"},
         {"peers", call.peers.size()}});
  for (std::size_t i = 0; i < call.peers.size(); ++i) {
    const wire::ParticipantRef& peer = call.peers[i];
    round->answers[i].name = peer.name;
    peers_.Call(peer, call.call, call.txid, call.call == action::PeerCall::kAbort ? call.abort_key : call.commit_key,
                [this, alive = alive_, round, i, wait, txid = call.txid, kind = call.call,
                 url = peer.url](PeerReply reply) {
                  if (!wait || !*alive || stopped_) return;
                  round->answers[i].state = PeerStateOf(reply, url);
                  if (--round->pending != 0) return;
                  engine_->OnPeerAnswers(txid, kind, std::move(round->answers), timers_.NowMs());
                  Pump();
                });
  }
}

void Node::ScheduleTick() {
  timers_.After(options_.tick_ms, [this, alive = alive_] {
    if (!*alive || stopped_) return;
    engine_->Tick(timers_.NowMs());
    Pump();
    ScheduleTick();
  });
}

void Node::RegisterWithCoordinators() {
  if (unregistered_.empty() || stopped_) return;
  const std::vector<std::string> urls = unregistered_;  // a callback may erase from unregistered_
  for (const auto& url : urls) {
    coordinators_.Register(url, options_.name, options_.self_url, [this, alive = alive_, url](Status s) {
      if (!*alive) return;
      if (!s.ok()) {
        // Logged when it starts failing and when the reason changes, not at every retry.
        const std::string reason = s.code() == StatusCode::kInvalidArgument ? "wrong_token" : "unreachable";
        std::string& last = registration_errors_[url];
        if (last != reason) {
          last = reason;
          Event(log::Level::kWarn, "registration_failed",
                {{"coordinator", url}, {"reason", reason}, {"error", s.ToString()}});
        }
        return;
      }
      registration_errors_.erase(url);
      if (std::erase(unregistered_, url) != 0) {
        ++registered_;
        Event(log::Level::kInfo, "registered", {{"coordinator", url}, {"url", options_.self_url}});
      }
    });
  }
  timers_.After(options_.register_interval_ms, [this, alive = alive_] {
    if (*alive) RegisterWithCoordinators();
  });
}

}  // namespace commitd::participant
