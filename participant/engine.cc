#include "participant/engine.h"

#include <algorithm>

namespace commitd::participant {

nlohmann::json AgentError(std::string_view code, std::string_view message, const std::string& txid) {
  return {{"error", {{"code", code}, {"message", message}}}, {"txid", txid}};
}

Engine::Engine(EngineOptions options) : options_(std::move(options)) {}

nlohmann::json Engine::VoteBody(const std::string& txid, bool yes, const std::string& reason,
                                const nlohmann::json& results) const {
  wire::Vote v;
  v.txid = txid;
  v.yes = yes;
  v.reason = reason;
  v.results = results;
  return wire::ToJson(v);
}

void Engine::ReplyAll(std::vector<RequestToken>& waiters, int status, const nlohmann::json& body) {
  for (RequestToken t : waiters) actions_.push_back(action::Reply{t, status, body});
  waiters.clear();
}

void Engine::OnPrepare(wire::PrepareRequest request, RequestToken token, int64_t now_ms) {
  const std::string txid = request.txid;
  if (auto f = finished_.find(txid); f != finished_.end()) {
    bool yes = f->second.outcome == "committed";
    actions_.push_back(action::Reply{
        token, 200, VoteBody(txid, yes, yes ? "" : "transaction " + txid + " was already aborted here",
                             nlohmann::json::array())});
    return;
  }
  if (auto it = txs_.find(txid); it != txs_.end()) {
    Tx& tx = it->second;
    switch (tx.state) {
      case State::kExecuting:
      case State::kPersisting:
        tx.prepare_waiters.push_back(token);
        return;
      case State::kAborting:
        actions_.push_back(action::Reply{
            token, 200, VoteBody(txid, false, "transaction " + txid + " is being aborted here", nlohmann::json::array())});
        return;
      default:
        actions_.push_back(action::Reply{token, 200, VoteBody(txid, true, "", tx.results)});
        return;
    }
  }
  Tx tx;
  tx.protocol = request.protocol;
  tx.coordinator = request.coordinator;
  tx.participants = request.participants;
  tx.timeout_ms = request.timeout_ms;
  tx.created_ms = now_ms;
  tx.deadline_ms = now_ms + request.timeout_ms;
  tx.prepare_waiters.push_back(token);
  txs_.emplace(txid, std::move(tx));
  actions_.push_back(action::Execute{txid, std::move(request.ops)});
}

void Engine::VoteNo(const std::string& txid, Tx& tx, const std::string& reason, int64_t now_ms) {
  ReplyAll(tx.prepare_waiters, 200, VoteBody(txid, false, reason, nlohmann::json::array()));
  ReplyAll(tx.abort_waiters, 200, {{"txid", txid}, {"state", "aborted"}});
  ReplyAll(tx.commit_waiters, 409, AgentError("aborted", "transaction " + txid + " voted no here", txid));
  locks_.Release(txid);
  actions_.push_back(action::RememberOutcome{txid, "aborted"});
  Finish(txid, "aborted", now_ms);
}

void Engine::OnExecuted(const std::string& txid, ExecutionResult result, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.state != State::kExecuting) return;
  Tx& tx = it->second;
  if (tx.abort_requested) {
    VoteNo(txid, tx, "transaction " + txid + " was aborted by the coordinator during prepare", now_ms);
    return;
  }
  if (!result.ok) {
    VoteNo(txid, tx, result.reason, now_ms);
    return;
  }
  if (auto holder = locks_.TryAcquire(txid, result.lock_keys)) {
    VoteNo(txid, tx, "lock conflict with " + *holder, now_ms);
    return;
  }
  tx.state = State::kPersisting;
  tx.results = std::move(result.results);
  PreparedRecord record;
  record.txid = txid;
  record.protocol = std::string(wire::ProtocolName(tx.protocol));
  record.state = "prepared";
  record.changeset = std::move(result.changeset);
  record.lock_keys = std::move(result.lock_keys);
  record.coordinator = tx.coordinator;
  for (const auto& p : tx.participants) record.participants.push_back({{"name", p.name}, {"url", p.url}});
  record.created_ms = tx.created_ms;
  record.deadline_ms = tx.deadline_ms;
  actions_.push_back(action::PersistPrepared{std::move(record)});
}

void Engine::OnPreparedPersisted(const std::string& txid, const Status& status, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.state != State::kPersisting) return;
  Tx& tx = it->second;
  if (!status.ok()) {
    VoteNo(txid, tx, "could not persist the prepared record: " + status.message(), now_ms);
    return;
  }
  tx.state = State::kPrepared;
  tx.query_backoff_ms = options_.resolve_initial_ms;
  tx.next_query_ms = tx.deadline_ms;
  ReplyAll(tx.prepare_waiters, 200, VoteBody(txid, true, "", tx.results));
  if (tx.abort_requested) StartAbort(txid, tx, std::nullopt);
}

void Engine::StartCommit(const std::string& txid, Tx& tx, std::optional<RequestToken> token) {
  if (token) tx.commit_waiters.push_back(*token);
  if (tx.state == State::kCommitting) return;
  tx.state = State::kCommitting;
  actions_.push_back(action::ApplyCommit{txid});
}

void Engine::StartAbort(const std::string& txid, Tx& tx, std::optional<RequestToken> token) {
  if (token) tx.abort_waiters.push_back(*token);
  if (tx.state == State::kAborting) return;
  tx.state = State::kAborting;
  actions_.push_back(action::ApplyAbort{txid});
}

void Engine::OnCommit(const std::string& txid, RequestToken token, int64_t now_ms) {
  (void)now_ms;
  if (auto f = finished_.find(txid); f != finished_.end()) {
    if (f->second.outcome == "committed") {
      actions_.push_back(action::Reply{token, 200, {{"txid", txid}, {"state", "committed"}}});
    } else {
      actions_.push_back(action::Reply{
          token, 409, AgentError("already_aborted", "transaction " + txid + " was aborted here", txid)});
    }
    return;
  }
  auto it = txs_.find(txid);
  if (it == txs_.end()) {
    actions_.push_back(action::Reply{
        token, 404, AgentError("unknown_transaction", "transaction " + txid + " was never prepared here", txid)});
    return;
  }
  Tx& tx = it->second;
  switch (tx.state) {
    case State::kExecuting:
    case State::kPersisting:
      actions_.push_back(action::Reply{
          token, 409, AgentError("not_prepared", "transaction " + txid + " is still preparing here", txid)});
      return;
    case State::kAborting:
      actions_.push_back(action::Reply{
          token, 409, AgentError("already_aborted", "transaction " + txid + " is being aborted here", txid)});
      return;
    case State::kPrepared:
    case State::kCommitting:
    case State::kConflict:
      StartCommit(txid, tx, token);
      return;
  }
}

void Engine::OnAbort(const std::string& txid, RequestToken token, int64_t now_ms) {
  if (auto f = finished_.find(txid); f != finished_.end()) {
    if (f->second.outcome == "aborted") {
      actions_.push_back(action::Reply{token, 200, {{"txid", txid}, {"state", "aborted"}}});
    } else {
      actions_.push_back(action::Reply{
          token, 409, AgentError("already_committed", "transaction " + txid + " was committed here", txid)});
    }
    return;
  }
  auto it = txs_.find(txid);
  if (it == txs_.end()) {
    // Tombstone: a prepare arriving later must vote no.
    actions_.push_back(action::RememberOutcome{txid, "aborted"});
    Finish(txid, "aborted", now_ms);
    actions_.push_back(action::Reply{token, 200, {{"txid", txid}, {"state", "aborted"}}});
    return;
  }
  Tx& tx = it->second;
  switch (tx.state) {
    case State::kExecuting:
    case State::kPersisting:
      tx.abort_requested = true;
      tx.abort_waiters.push_back(token);
      return;
    case State::kCommitting:
      actions_.push_back(action::Reply{
          token, 409, AgentError("already_committing", "transaction " + txid + " is being committed here", txid)});
      return;
    case State::kConflict:
      // The coordinator decided commit (that is how a conflict arises); an abort contradicts it.
      actions_.push_back(action::Reply{
          token, 409, AgentError("already_committing", "transaction " + txid + " has a commit pending here", txid)});
      return;
    case State::kPrepared:
    case State::kAborting:
      StartAbort(txid, tx, token);
      return;
  }
}

void Engine::Finish(const std::string& txid, const std::string& outcome, int64_t now_ms) {
  txs_.erase(txid);
  finished_[txid] = Finished{outcome, now_ms};
}

void Engine::OnCommitApplied(const std::string& txid, const Status& status, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.state != State::kCommitting) return;
  Tx& tx = it->second;
  if (status.ok()) {
    locks_.Release(txid);
    ReplyAll(tx.commit_waiters, 200, {{"txid", txid}, {"state", "committed"}});
    Finish(txid, "committed", now_ms);
    return;
  }
  if (status.code() == StatusCode::kConflict) {
    if (!tx.conflict_counted) ++conflicts_;  // once per transaction, not per retry
    tx.conflict_counted = true;
    tx.state = State::kConflict;
    tx.last_error = status.message();
    ReplyAll(tx.commit_waiters, 409, AgentError("apply_conflict", status.message(), txid));
    return;
  }
  tx.state = State::kPrepared;
  tx.last_error = status.message();
  ReplyAll(tx.commit_waiters, 503, AgentError("storage_error", status.message(), txid));
}

void Engine::OnAbortApplied(const std::string& txid, const Status& status, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.state != State::kAborting) return;
  Tx& tx = it->second;
  if (!status.ok()) {
    tx.state = State::kPrepared;
    tx.last_error = status.message();
    ReplyAll(tx.abort_waiters, 503, AgentError("storage_error", status.message(), txid));
    return;
  }
  locks_.Release(txid);
  ReplyAll(tx.abort_waiters, 200, {{"txid", txid}, {"state", "aborted"}});
  Finish(txid, "aborted", now_ms);
}

void Engine::OnDecisionAnswer(const std::string& txid, Result<Decision> answer, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return;
  Tx& tx = it->second;
  tx.querying = false;
  if (tx.state != State::kPrepared) return;
  if (answer.ok() && *answer == Decision::kCommit) {
    StartCommit(txid, tx, std::nullopt);
    return;
  }
  if (answer.ok() && *answer == Decision::kAbort) {
    StartAbort(txid, tx, std::nullopt);
    return;
  }
  tx.last_error = answer.ok() ? "coordinator has not decided yet" : answer.status().message();
  tx.next_query_ms = now_ms + tx.query_backoff_ms;
  tx.query_backoff_ms = std::min(tx.query_backoff_ms * 2, options_.resolve_max_ms);
}

void Engine::Recover(std::vector<PreparedRecord> records, const std::map<std::string, std::string>& outcomes,
                     int64_t now_ms) {
  for (const auto& [txid, outcome] : outcomes) finished_[txid] = Finished{outcome, now_ms};
  for (auto& r : records) {
    Tx tx;
    tx.state = r.state == "conflict" ? State::kConflict : State::kPrepared;
    tx.protocol = r.protocol == "3pc" ? wire::Protocol::k3pc : wire::Protocol::k2pc;
    tx.coordinator = r.coordinator;
    for (const auto& p : r.participants) {
      tx.participants.push_back({p.value("name", ""), p.value("url", "")});
    }
    tx.created_ms = r.created_ms;
    tx.deadline_ms = r.deadline_ms;
    tx.last_error = r.last_error;
    tx.query_backoff_ms = options_.resolve_initial_ms;
    tx.next_query_ms = now_ms;  // ask at once after a restart
    // Records were prepared together, so their keys cannot overlap.
    locks_.TryAcquire(r.txid, r.lock_keys);
    txs_.emplace(r.txid, std::move(tx));
  }
}

void Engine::Tick(int64_t now_ms) {
  for (auto& [txid, tx] : txs_) {
    if (tx.state != State::kPrepared || tx.querying || now_ms < tx.next_query_ms) continue;
    tx.querying = true;
    std::vector<std::string> urls;
    if (!tx.coordinator.empty()) urls.push_back(tx.coordinator);
    for (const auto& u : options_.coordinators) {
      if (std::find(urls.begin(), urls.end(), u) == urls.end()) urls.push_back(u);
    }
    actions_.push_back(action::QueryDecision{txid, std::move(urls)});
  }
  if (now_ms >= next_forget_ms_) {
    const int64_t cutoff = now_ms - options_.outcome_retention_ms;
    for (auto it = finished_.begin(); it != finished_.end();) {
      it = it->second.at_ms < cutoff ? finished_.erase(it) : std::next(it);
    }
    if (next_forget_ms_ != 0) actions_.push_back(action::ForgetOutcomesBefore{cutoff});
    next_forget_ms_ = now_ms + std::max<int64_t>(1000, options_.outcome_retention_ms / 10);
  }
}

std::vector<Action> Engine::TakeActions() {
  std::vector<Action> out;
  out.swap(actions_);
  return out;
}

std::vector<HeldView> Engine::Held(int64_t now_ms) const {
  std::vector<HeldView> out;
  for (const auto& [txid, tx] : txs_) {
    HeldView v;
    v.txid = txid;
    switch (tx.state) {
      case State::kExecuting: v.state = "executing"; break;
      case State::kPersisting: v.state = "persisting"; break;
      case State::kPrepared: v.state = "prepared"; break;
      case State::kCommitting: v.state = "committing"; break;
      case State::kAborting: v.state = "aborting"; break;
      case State::kConflict: v.state = "conflict"; break;
    }
    v.age_ms = now_ms - tx.created_ms;
    v.deadline_ms = tx.deadline_ms;
    v.coordinator = tx.coordinator;
    v.last_error = tx.last_error;
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const HeldView& a, const HeldView& b) { return a.txid < b.txid; });
  return out;
}

std::optional<std::string> Engine::OutcomeOf(const std::string& txid) const {
  auto it = finished_.find(txid);
  if (it == finished_.end()) return std::nullopt;
  return it->second.outcome;
}

}  // namespace commitd::participant
