#include "participant/engine.h"

#include <algorithm>

#include "common/abort_key.h"

namespace commitd::participant {

nlohmann::json AgentError(std::string_view code, std::string_view message, const std::string& txid) {
  return {{"error", {{"code", code}, {"message", message}}}, {"txid", txid}};
}

namespace {
// How long a prepare waits for a transaction that voted yes here and holds a
// key it needs (Engine::WaitForHolder) before it runs again regardless.
constexpr int64_t kHolderWaitMs = 20;

std::string UnknownHere(const std::string& txid) {
  return "transaction " + txid + " is not known here: never prepared, or finished and forgotten after "
                                 "outcome_retention_ms";
}
}  // namespace

Engine::Engine(EngineOptions options) : options_(std::move(options)) {}

namespace {

// {"txid": ..., "state": ...}: a commit, precommit or abort acknowledged.
nlohmann::json StateBody(const std::string& txid, const char* state) { return {{"txid", txid}, {"state", state}}; }

}  // namespace

nlohmann::json JsonOf(const ReplyBody& body) {
  if (const auto* vote = std::get_if<wire::Vote>(&body)) return wire::ToJson(*vote);
  return std::get<nlohmann::json>(body);
}

wire::Vote Engine::VoteBody(const std::string& txid, bool yes, const std::string& reason,
                            const nlohmann::json& results, wire::VoteNoCode code) const {
  wire::Vote v;
  v.txid = txid;
  v.yes = yes;
  v.reason = reason;
  v.no_code = code;
  v.results = results;
  return v;
}

void Engine::ReplyAll(std::vector<RequestToken>& waiters, int status, ReplyBody body) {
  for (std::size_t i = 0; i + 1 < waiters.size(); ++i) actions_.push_back(action::Reply{waiters[i], status, body});
  if (!waiters.empty()) actions_.push_back(action::Reply{waiters.back(), status, std::move(body)});
  waiters.clear();
}

void Engine::OnPrepare(wire::PrepareRequest request, RequestToken token, int64_t now_ms) {
  const std::string txid = request.txid;
  if (const Outcome* f = finished_.Find(txid)) {
    AnswerFinishedPrepare(txid, *f, token);
    return;
  }
  if (auto it = txs_.find(txid); it != txs_.end()) {
    Tx& tx = it->second;
    switch (tx.state) {
      case State::kPreparing:
        tx.prepare_waiters.push_back(token);
        return;
      case State::kAborting:
        actions_.push_back(action::Reply{
            token, 200,
            VoteBody(txid, false, "transaction " + txid + " is being aborted here", nlohmann::json::array())});
        return;
      default:
        actions_.push_back(action::Reply{token, 200, VoteBody(txid, true, "", tx.results)});
        return;
    }
  }
  Tx tx;
  tx.protocol = request.protocol;
  tx.coordinator = request.coordinator;
  tx.log_id = request.log_id;
  tx.abort_key = request.abort_key;
  tx.commit_check = request.commit_check;
  tx.participants = request.participants;
  tx.timeout_ms = request.timeout_ms;
  tx.created_ms = now_ms;
  tx.deadline_ms = now_ms + request.timeout_ms;
  tx.prepare_waiters.push_back(token);
  PreparedRecord record;
  record.txid = txid;
  record.protocol = std::string(wire::ProtocolName(tx.protocol));
  record.state = "prepared";
  record.coordinator = tx.coordinator;
  record.log_id = tx.log_id;
  record.abort_key = tx.abort_key;
  record.commit_check = tx.commit_check;
  record.participants = tx.participants;
  record.created_ms = tx.created_ms;
  record.deadline_ms = tx.deadline_ms;
  txs_.emplace(txid, std::move(tx));
  actions_.push_back(action::Prepare{std::move(request.ops), std::move(record)});
}

void Engine::AnswerFinishedPrepare(const std::string& txid, Outcome outcome, RequestToken token) {
  const bool yes = outcome == Outcome::kCommitted;
  // A finished transaction's results are no longer kept: unknown (null).
  actions_.push_back(action::Reply{
      token, 200, VoteBody(txid, yes, yes ? "" : "transaction " + txid + " was already aborted here",
                           yes ? nlohmann::json(nullptr) : nlohmann::json::array())});
}

void Engine::AnswerFinishedAbort(const std::string& txid, Outcome outcome, RequestToken token) {
  if (outcome == Outcome::kAborted) {
    actions_.push_back(action::Reply{token, 200, StateBody(txid, "aborted")});
  } else {
    actions_.push_back(action::Reply{
        token, 409, AgentError("already_committed", "transaction " + txid + " was committed here", txid)});
  }
}

void Engine::WriteTombstone(const std::string& txid, std::vector<RequestToken> aborts, bool again) {
  std::vector<RequestToken>& waiting = tombstones_writing_[txid];
  waiting.insert(waiting.end(), aborts.begin(), aborts.end());
  actions_.push_back(action::WriteTombstone{txid, again});
}

void Engine::OnTombstoneWritten(const std::string& txid, const Result<Outcome>& held) {
  auto writing = tombstones_writing_.find(txid);
  if (writing == tombstones_writing_.end()) return;
  std::vector<RequestToken> aborts = std::move(writing->second);
  tombstones_writing_.erase(writing);
  if (held.ok()) {
    // The store's outcome is the one that lasts: "committed" if the txid
    // committed here after all.
    if (Outcome* f = finished_.Find(txid)) *f = *held;
    for (RequestToken t : aborts) AnswerFinishedAbort(txid, *held, t);
    return;
  }
  // Still "aborted" in memory, so prepares keep voting no; the next abort writes again.
  if (const Outcome* f = finished_.Find(txid); f != nullptr && *f == Outcome::kAborted) {
    tombstones_unwritten_.insert(txid);
  }
  ReplyAll(aborts, 503,
           AgentError("storage_error",
                      "the abort of " + txid + " could not be made durable: " + held.status().message(), txid));
}

void Engine::OnPreparedFinishedBefore(const std::string& txid, Tx& tx, Outcome outcome, int64_t now_ms) {
  // Only prepare and abort requests wait on a preparing transaction.
  std::vector<RequestToken> prepares = std::move(tx.prepare_waiters);
  std::vector<RequestToken> aborts = std::move(tx.abort_waiters);
  txs_.erase(txid);
  Remember(txid, outcome, now_ms);
  for (RequestToken t : prepares) AnswerFinishedPrepare(txid, outcome, t);
  for (RequestToken t : aborts) AnswerFinishedAbort(txid, outcome, t);
}

void Engine::AbandonPrepare(const std::string& txid, Tx& tx, const std::string& why) {
  const nlohmann::json error = AgentError("storage_error", why, txid);
  ReplyAll(tx.prepare_waiters, 503, error);
  ReplyAll(tx.abort_waiters, 503, error);
  txs_.erase(txid);
}

void Engine::VoteNo(const std::string& txid, Tx& tx, const std::string& reason, int64_t now_ms,
                    wire::VoteNoCode code) {
  ReplyAll(tx.prepare_waiters, 200, VoteBody(txid, false, reason, nlohmann::json::array(), code));
  ReplyAll(tx.commit_waiters, 409, AgentError("aborted", "transaction " + txid + " voted no here", txid));
  locks_.Release(txid);
  std::vector<RequestToken> aborts = std::move(tx.abort_waiters);
  Finish(txid, Outcome::kAborted, now_ms);
  // Aborts, waiting now or coming while it is written, are acknowledged once it is durable.
  WriteTombstone(txid, std::move(aborts));
}

void Engine::OnPrepared(const std::string& txid, PrepareResult result, const Status& status, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.state != State::kPreparing) return;
  Tx& tx = it->second;
  switch (result.earlier.kind) {
    case EarlierOutcome::Kind::kFound:
      OnPreparedFinishedBefore(txid, tx, result.earlier.outcome, now_ms);
      return;
    case EarlierOutcome::Kind::kUnreadable:
      AbandonPrepare(txid, tx, "the outcomes this agent remembers cannot be read: " + result.earlier.error.message());
      return;
    case EarlierOutcome::Kind::kNotRead:
      AbandonPrepare(txid, tx,
                     "storage error before the prepare ran: " + (status.ok() ? std::string("no answer") : status.message()));
      return;
    case EarlierOutcome::Kind::kNone:
      break;
  }
  if (!status.ok()) {
    // Not finished here before, so a no is safe (and so is its tombstone).
    VoteNo(txid, tx, "storage error: " + status.message(), now_ms);
    return;
  }
  if (!result.yes) {
    if (WaitForHolder(txid, tx, result, now_ms)) return;
    VoteNo(txid, tx, result.reason, now_ms,
           result.lock_conflict ? wire::VoteNoCode::kLockConflict : wire::VoteNoCode::kOther);
    return;
  }
  // The resource manager took the keys: this copy cannot conflict.
  locks_.TryAcquire(txid, result.lock_keys);
  tx.state = State::kPrepared;
  tx.results = std::move(result.results);
  tx.query_backoff_ms = options_.resolve_initial_ms;
  tx.next_query_ms = tx.deadline_ms;
  tx.terminate_after_ms = tx.deadline_ms + options_.termination_grace_ms;
  if (tx.abort_requested) {
    // The abort came while the record was being written: undo it, and vote no.
    ReplyAll(tx.prepare_waiters, 200,
             VoteBody(txid, false, "transaction " + txid + " was aborted by the coordinator during prepare",
                      nlohmann::json::array()));
    StartAbort(txid, tx, std::nullopt);
    return;
  }
  ReplyAll(tx.prepare_waiters, 200, VoteBody(txid, true, "", tx.results));
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
  tx.abort_decided = true;
  actions_.push_back(action::ApplyAbort{txid});
}

bool Engine::CommitKeyAccepted(const std::string& txid, Tx& tx, const std::string& commit_key, RequestToken token,
                               int64_t now_ms) {
  const bool voted_yes = tx.state != State::kPreparing && tx.state != State::kAborting;
  if (!voted_yes || tx.commit_check.empty()) return true;  // an older coordinator's record: as before
  if (CommitKeyMatches(tx.commit_check, commit_key)) {
    tx.commit_key = commit_key;  // for the commits and precommits termination may send
    return true;
  }
  actions_.push_back(action::Reply{
      token, 409,
      AgentError("commit_not_from_coordinator",
                 "transaction " + txid + ": the message does not carry the commit key of its coordinator", txid)});
  // Ask the coordinator instead, now (its answer is the proof).
  if (Resolvable(tx) && !tx.querying && !tx.terminating) tx.next_query_ms = std::min(tx.next_query_ms, now_ms);
  return false;
}

void Engine::OnCommit(const std::string& txid, const std::string& commit_key, RequestToken token, int64_t now_ms) {
  if (const Outcome* f = finished_.Find(txid)) {
    if (*f == Outcome::kCommitted) {
      actions_.push_back(action::Reply{token, 200, StateBody(txid, "committed")});
    } else {
      actions_.push_back(action::Reply{
          token, 409, AgentError("already_aborted", "transaction " + txid + " was aborted here", txid)});
    }
    return;
  }
  auto it = txs_.find(txid);
  if (it == txs_.end()) {
    actions_.push_back(action::Reply{
        token, 404, AgentError("unknown_transaction", UnknownHere(txid), txid)});
    return;
  }
  Tx& tx = it->second;
  if (!CommitKeyAccepted(txid, tx, commit_key, token, now_ms)) return;
  switch (AnsweredAs(tx)) {
    case State::kPreparing:
      actions_.push_back(action::Reply{
          token, 409, AgentError("not_prepared", "transaction " + txid + " is still preparing here", txid)});
      return;
    case State::kAborting:
      actions_.push_back(action::Reply{
          token, 409, AgentError("already_aborted", "transaction " + txid + " is being aborted here", txid)});
      return;
    case State::kPrecommitting:
      actions_.push_back(action::Reply{
          token, 409, AgentError("not_prepared", "transaction " + txid + " is still precommitting here", txid)});
      return;
    case State::kPrepared:
    case State::kPrecommitted:
    case State::kCommitting:
    case State::kConflict:
      StartCommit(txid, tx, token);
      return;
  }
}

void Engine::OnAbort(const std::string& txid, const std::string& abort_key, RequestToken token, int64_t now_ms) {
  if (const Outcome* f = finished_.Find(txid)) {
    if (*f == Outcome::kAborted) {
      if (auto writing = tombstones_writing_.find(txid); writing != tombstones_writing_.end()) {
        writing->second.push_back(token);
        return;
      }
      if (tombstones_unwritten_.erase(txid) != 0) {
        WriteTombstone(txid, {token}, /*again=*/true);
        return;
      }
    }
    AnswerFinishedAbort(txid, *f, token);
    return;
  }
  auto it = txs_.find(txid);
  if (it == txs_.end()) {
    // Tombstone: a prepare arriving later must vote no, after a restart too.
    Finish(txid, Outcome::kAborted, now_ms);
    WriteTombstone(txid, {token});
    return;
  }
  Tx& tx = it->second;
  // Before its yes vote the coordinator cannot have decided commit: anyone's
  // abort is safe. Once the record voted yes, only the key proves the abort
  // comes from the coordinator (or a peer of the transaction).
  const bool voted_yes = tx.state != State::kPreparing && tx.state != State::kAborting;
  if (voted_yes && !AbortKeyMatches(tx.abort_key, abort_key)) {
    const std::string why =
        tx.abort_key.empty()
            ? "transaction " + txid + " was prepared without an abort key: only its coordinator's answer aborts it"
            : "transaction " + txid + ": the abort does not carry the key of its coordinator";
    actions_.push_back(action::Reply{token, 409, AgentError("abort_not_from_coordinator", why, txid)});
    // Ask the coordinator instead, now (its answer is the proof).
    if (Resolvable(tx) && !tx.querying && !tx.terminating) tx.next_query_ms = std::min(tx.next_query_ms, now_ms);
    return;
  }
  switch (tx.state) {
    case State::kPreparing:
    case State::kPrecommitting:
      tx.abort_requested = true;
      tx.abort_waiters.push_back(token);
      RunWaitingPrepare(txid, tx);
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
    case State::kPrecommitted:  // 3PC: termination or a restarted coordinator decided abort
    case State::kAborting:
      StartAbort(txid, tx, token);
      return;
  }
}

void Engine::Finish(const std::string& txid, Outcome outcome, int64_t now_ms) {
  txs_.erase(txid);
  Remember(txid, outcome, now_ms);
  RunWaitingPrepares(txid);
}

bool Engine::WaitForHolder(const std::string& txid, Tx& tx, PrepareResult& result, int64_t now_ms) {
  if (!result.lock_conflict || tx.waited || tx.abort_requested || result.record.txid != txid) return false;
  auto holder = txs_.find(result.lock_holder);
  // Only one that voted yes is sure to be decided and applied soon; one
  // still preparing may be the other side of a conflict that waits for us.
  if (holder == txs_.end() || holder->second.state == State::kPreparing) return false;
  tx.waited = true;
  tx.waiting_prepare = action::Prepare{std::move(result.ops), std::move(result.record)};
  tx.wait_until_ms = now_ms + kHolderWaitMs;
  tx.waiting_for = result.lock_holder;
  waiting_for_[result.lock_holder].push_back(txid);
  return true;
}

void Engine::RunWaitingPrepares(const std::string& holder) {
  auto waiting = waiting_for_.find(holder);
  if (waiting == waiting_for_.end()) return;
  std::vector<std::string> txids = std::move(waiting->second);
  waiting_for_.erase(waiting);
  for (const std::string& txid : txids) {
    if (auto it = txs_.find(txid); it != txs_.end()) RunWaitingPrepare(txid, it->second);
  }
}

void Engine::RunWaitingPrepare(const std::string& txid, Tx& tx) {
  if (!tx.waiting_prepare) return;
  actions_.push_back(std::move(*tx.waiting_prepare));
  tx.waiting_prepare.reset();
  if (auto waiting = waiting_for_.find(tx.waiting_for); waiting != waiting_for_.end()) {
    auto& txids = waiting->second;
    txids.erase(std::remove(txids.begin(), txids.end(), txid), txids.end());
    if (txids.empty()) waiting_for_.erase(waiting);
  }
  tx.waiting_for.clear();
}

void Engine::Remember(const std::string& txid, Outcome outcome, int64_t now_ms) {
  finished_.Add(txid, outcome, now_ms);
}

void Engine::ForgetBefore(int64_t cutoff_ms) {
  while (!finished_.empty() && finished_.oldest_at_ms() < cutoff_ms) {
    if (!tombstones_writing_.empty() && tombstones_writing_.count(finished_.oldest_txid()) != 0) {
      // Its "aborted" is still being written: kept for another window.
      finished_.RequeueOldest(cutoff_ms);
      continue;
    }
    if (!tombstones_unwritten_.empty()) tombstones_unwritten_.erase(finished_.oldest_txid());
    finished_.ForgetOldest();
  }
}

void Engine::OnCommitApplied(const std::string& txid, const Status& status, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.state != State::kCommitting) return;
  Tx& tx = it->second;
  if (status.ok()) {
    locks_.Release(txid);
    ReplyAll(tx.commit_waiters, 200, StateBody(txid, "committed"));
    Finish(txid, Outcome::kCommitted, now_ms);
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
  tx.state = tx.precommitted ? State::kPrecommitted : State::kPrepared;
  tx.last_error = status.message();
  ReplyAll(tx.commit_waiters, 503, AgentError("storage_error", status.message(), txid));
}

void Engine::OnAbortApplied(const std::string& txid, const Status& status, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.state != State::kAborting) return;
  Tx& tx = it->second;
  if (!status.ok()) {
    tx.state = tx.precommitted ? State::kPrecommitted : State::kPrepared;
    WaitLonger(tx, status.message(), now_ms);  // then Tick applies the abort again
    ReplyAll(tx.abort_waiters, 503, AgentError("storage_error", status.message(), txid));
    return;
  }
  locks_.Release(txid);
  ReplyAll(tx.abort_waiters, 200, StateBody(txid, "aborted"));
  Finish(txid, Outcome::kAborted, now_ms);
}

void Engine::OnDecisionAnswer(const std::string& txid, Result<Decision> answer, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return;
  Tx& tx = it->second;
  tx.querying = false;
  if (!Resolvable(tx) || tx.abort_decided) return;  // a decided abort is applied again by Tick
  if (answer.ok() && *answer == Decision::kCommit) {
    StartCommit(txid, tx, std::nullopt);
    return;
  }
  if (answer.ok() && *answer == Decision::kAbort) {
    StartAbort(txid, tx, std::nullopt);
    return;
  }
  if (!answer.ok() && tx.protocol == wire::Protocol::k3pc && now_ms >= tx.terminate_after_ms) {
    // No coordinator answers: the participants decide among themselves.
    tx.last_error = answer.status().message();
    StartTermination(txid, tx, now_ms);
    return;
  }
  WaitLonger(tx, answer.ok() ? "coordinator has not decided yet" : answer.status().message(), now_ms);
}

void Engine::WaitLonger(Tx& tx, std::string why, int64_t now_ms) {
  tx.last_error = std::move(why);
  tx.next_query_ms = now_ms + tx.query_backoff_ms;
  tx.query_backoff_ms = std::min(tx.query_backoff_ms * 2, options_.resolve_max_ms);
}

Engine::State Engine::AnsweredAs(const Tx& tx) {
  const bool abort_waits = tx.abort_decided && (tx.state == State::kPrepared || tx.state == State::kPrecommitted);
  return abort_waits ? State::kAborting : tx.state;
}

bool Engine::Resolvable(const Tx& tx) const {
  return tx.state == State::kPrepared || (tx.protocol == wire::Protocol::k3pc && tx.state == State::kPrecommitted);
}

void Engine::Recover(std::vector<PreparedRecord> records, int64_t now_ms) {
  for (auto& r : records) {
    Tx tx;
    tx.state = r.state == "conflict"       ? State::kConflict
               : r.state == "precommitted" ? State::kPrecommitted
                                           : State::kPrepared;
    tx.precommitted = r.state == "precommitted";
    tx.recovered = true;
    tx.terminate_after_ms = now_ms;
    tx.protocol = r.protocol == "3pc" ? wire::Protocol::k3pc : wire::Protocol::k2pc;
    tx.coordinator = r.coordinator;
    tx.log_id = r.log_id;
    tx.adopted_by = r.adopted_by;
    tx.abort_key = r.abort_key;
    tx.commit_check = r.commit_check;
    tx.participants = r.participants;
    tx.created_ms = r.created_ms;
    tx.deadline_ms = r.deadline_ms;
    tx.timeout_ms = std::max<int64_t>(0, r.deadline_ms - r.created_ms);
    tx.last_error = r.last_error;
    tx.results = nullptr;  // not stored with the record: a repeated prepare's yes says they are unknown
    tx.query_backoff_ms = options_.resolve_initial_ms;
    tx.next_query_ms = now_ms;  // ask at once after a restart
    // Records were prepared together, so their keys cannot overlap.
    locks_.TryAcquire(r.txid, r.lock_keys);
    txs_.emplace(r.txid, std::move(tx));
  }
}

void Engine::Tick(int64_t now_ms) {
  for (auto& [txid, tx] : txs_) {
    if (tx.waiting_prepare && now_ms >= tx.wait_until_ms) RunWaitingPrepare(txid, tx);
    if (!Resolvable(tx) || tx.querying || tx.terminating || now_ms < tx.next_query_ms) continue;
    if (tx.abort_decided) {  // its apply failed: nothing to ask, only to do again
      StartAbort(txid, tx, std::nullopt);
      continue;
    }
    tx.querying = true;
    std::vector<std::string> urls;
    if (!tx.coordinator.empty()) urls.push_back(tx.coordinator);
    for (const auto& u : options_.coordinators) {
      if (std::find(urls.begin(), urls.end(), u) == urls.end()) urls.push_back(u);
    }
    actions_.push_back(action::QueryDecision{txid, tx.log_id, std::move(urls)});
  }
  ForgetBefore(now_ms - std::min(options_.outcome_memory_ms, options_.outcome_retention_ms));
  if (now_ms >= next_forget_ms_) {
    const int64_t cutoff = now_ms - options_.outcome_retention_ms;
    if (next_forget_ms_ != 0) actions_.push_back(action::ForgetOutcomesBefore{cutoff});
    // Often, so that each purge of the table is a small batch (the store deletes a bounded number per call).
    next_forget_ms_ = now_ms + std::clamp<int64_t>(options_.outcome_retention_ms / 10, 10, 1000);
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
    v.state = tx.state;
    v.record_durable = tx.state != State::kPreparing;
    v.protocol = tx.protocol;
    v.age_ms = now_ms - tx.created_ms;
    v.deadline_ms = tx.deadline_ms;
    v.coordinator = tx.coordinator;
    v.log_id = tx.log_id;
    v.adopted_by = tx.adopted_by;
    v.last_error = tx.last_error;
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const HeldView& a, const HeldView& b) { return a.txid < b.txid; });
  return out;
}

nlohmann::json HeldJson(const HeldView& v) {
  nlohmann::json j = {{"txid", v.txid},
                      {"state", HeldStateName(v.state)},
                      {"protocol", wire::ProtocolName(v.protocol)},
                      {"age_ms", v.age_ms},
                      {"deadline_ms", v.deadline_ms},
                      {"coordinator", v.coordinator},
                      {"log_id", v.log_id},
                      {"last_error", v.last_error}};
  if (!v.adopted_by.empty()) j["adopted_by"] = v.adopted_by;
  return j;
}

bool Engine::Knows(const std::string& txid) const { return txs_.count(txid) != 0 || finished_.Find(txid) != nullptr; }

void Engine::LearnOutcome(const std::string& txid, Outcome outcome, int64_t now_ms) {
  if (!Knows(txid)) Remember(txid, outcome, now_ms);
}

std::optional<std::string> Engine::OutcomeOf(const std::string& txid) const {
  const Outcome* f = finished_.Find(txid);
  if (f == nullptr) return std::nullopt;
  return std::string(OutcomeName(*f));
}

}  // namespace commitd::participant

namespace commitd::participant {

std::string_view HeldStateName(HeldState state) {
  switch (state) {
    case HeldState::kPreparing: return "preparing";
    case HeldState::kPrepared: return "prepared";
    case HeldState::kPrecommitting: return "precommitting";
    case HeldState::kPrecommitted: return "precommitted";
    case HeldState::kCommitting: return "committing";
    case HeldState::kAborting: return "aborting";
    case HeldState::kConflict: return "conflict";
  }
  return "unknown";
}

std::string Engine::StateOf(const std::string& txid) const {
  if (auto it = txs_.find(txid); it != txs_.end()) return std::string(HeldStateName(it->second.state));
  if (const Outcome* f = finished_.Find(txid)) return OutcomeName(*f);
  return "unknown";
}

void Engine::OnPrecommit(const std::string& txid, const std::string& commit_key, RequestToken token,
                         int64_t now_ms) {
  auto answer = [&](int status, nlohmann::json body) {
    actions_.push_back(action::Reply{token, status, std::move(body)});
  };
  if (const Outcome* f = finished_.Find(txid)) {
    if (*f == Outcome::kCommitted) {
      answer(200, StateBody(txid, "committed"));
    } else {
      answer(409, AgentError("already_aborted", "transaction " + txid + " was aborted here", txid));
    }
    return;
  }
  auto it = txs_.find(txid);
  if (it == txs_.end()) {
    answer(404, AgentError("unknown_transaction", UnknownHere(txid), txid));
    return;
  }
  Tx& tx = it->second;
  if (tx.protocol != wire::Protocol::k3pc) {
    answer(409, AgentError("not_3pc", "transaction " + txid + " runs 2pc here; precommit is a 3pc message", txid));
    return;
  }
  if (!CommitKeyAccepted(txid, tx, commit_key, token, now_ms)) return;
  switch (AnsweredAs(tx)) {
    case State::kPreparing:
      answer(409, AgentError("not_prepared", "transaction " + txid + " is still preparing here", txid));
      return;
    case State::kAborting:
      answer(409, AgentError("already_aborted", "transaction " + txid + " is being aborted here", txid));
      return;
    case State::kPrecommitted:
    case State::kCommitting:
    case State::kConflict:
      answer(200, StateBody(txid, "precommitted"));
      return;
    case State::kPrecommitting:
      tx.precommit_waiters.push_back(token);
      return;
    case State::kPrepared:
      tx.precommit_waiters.push_back(token);
      tx.state = State::kPrecommitting;
      actions_.push_back(action::PersistPrecommitted{txid});
      return;
  }
}

void Engine::OnPrecommitPersisted(const std::string& txid, const Status& status, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.state != State::kPrecommitting) return;
  Tx& tx = it->second;
  if (!status.ok()) {
    tx.state = State::kPrepared;
    ReplyAll(tx.precommit_waiters, 503, AgentError("storage_error", status.message(), txid));
    if (tx.precommit_then_push) {
      tx.precommit_then_push = false;
      tx.terminating = false;
      WaitLonger(tx, "could not persist precommitted: " + status.message(), now_ms);
    }
    if (tx.abort_requested) StartAbort(txid, tx, std::nullopt);
    return;
  }
  tx.state = State::kPrecommitted;
  tx.precommitted = true;
  ReplyAll(tx.precommit_waiters, 200, StateBody(txid, "precommitted"));
  // The commit should follow at once; ask (and terminate) only if it does not.
  tx.query_backoff_ms = options_.resolve_initial_ms;
  tx.next_query_ms = now_ms + tx.timeout_ms;
  tx.terminate_after_ms = now_ms + tx.timeout_ms + options_.termination_grace_ms;
  if (tx.abort_requested) {
    tx.terminating = false;
    StartAbort(txid, tx, std::nullopt);
    return;
  }
  if (tx.precommit_then_push) {
    tx.precommit_then_push = false;
    PushPrecommit(txid, tx, now_ms);
  }
}

void Engine::OnAdopt(const wire::AdoptRequest& request, RequestToken token, int64_t now_ms) {
  (void)now_ms;
  const std::string& txid = request.txid;
  auto answer = [&](int status, nlohmann::json body) {
    actions_.push_back(action::Reply{token, status, std::move(body)});
  };
  if (const Outcome* f = finished_.Find(txid)) {
    answer(409, *f == Outcome::kCommitted
                    ? AgentError("already_committed", "transaction " + txid + " was committed here", txid)
                    : AgentError("already_aborted", "transaction " + txid + " was aborted here", txid));
    return;
  }
  auto it = txs_.find(txid);
  if (it == txs_.end()) {
    answer(404, AgentError("unknown_transaction", UnknownHere(txid), txid));
    return;
  }
  Tx& tx = it->second;
  switch (AnsweredAs(tx)) {
    case State::kPreparing:
    case State::kPrecommitting:
      answer(409, AgentError("not_prepared",
                             "transaction " + txid + " is being written here (" +
                                 std::string(HeldStateName(tx.state)) + "): ask again",
                             txid));
      return;
    case State::kAborting:
      answer(409, AgentError("already_aborted", "transaction " + txid + " is being aborted here", txid));
      return;
    case State::kCommitting:
    case State::kConflict:
      answer(409, AgentError("already_committing", "transaction " + txid + " is being committed here", txid));
      return;
    case State::kPrepared:
    case State::kPrecommitted:
      break;
  }
  const bool same_keys = tx.adopted_by == request.log_id && tx.abort_key == request.abort_key &&
                         tx.commit_check == request.commit_check;
  if (tx.replaced_keys) {  // an adoption is being written
    if (same_keys) {
      tx.adopt_waiters.push_back(token);
    } else {
      answer(409, AgentError("adoption_in_progress",
                             "transaction " + txid + " is being adopted by decision log " + tx.adopted_by +
                                 ": ask again",
                             txid));
    }
    return;
  }
  if (same_keys) {
    answer(200, AdoptedBody(txid, tx));
    return;
  }
  tx.replaced_keys = Adoption{tx.adopted_by, tx.abort_key, tx.commit_check};
  tx.adopted_by = request.log_id;
  tx.abort_key = request.abort_key;
  tx.commit_check = request.commit_check;
  tx.commit_key.clear();  // the lost log's, if a commit or precommit brought it
  // A termination round running now concludes nothing: its answers are dropped.
  tx.terminating = false;
  tx.precommit_then_push = false;
  tx.adopt_waiters.push_back(token);
  actions_.push_back(action::PersistAdoption{txid, Adoption{request.log_id, request.abort_key, request.commit_check}});
}

void Engine::OnAdoptionPersisted(const std::string& txid, const Status& status, int64_t now_ms) {
  (void)now_ms;
  auto it = txs_.find(txid);
  if (it == txs_.end() || !it->second.replaced_keys) return;
  Tx& tx = it->second;
  if (!status.ok()) {
    tx.adopted_by = tx.replaced_keys->log_id;
    tx.abort_key = tx.replaced_keys->abort_key;
    tx.commit_check = tx.replaced_keys->commit_check;
    tx.replaced_keys.reset();
    ReplyAll(tx.adopt_waiters, 503, AgentError("storage_error", status.message(), txid));
    return;
  }
  tx.replaced_keys.reset();
  ReplyAll(tx.adopt_waiters, 200, AdoptedBody(txid, tx));
}

nlohmann::json Engine::AdoptedBody(const std::string& txid, const Tx& tx) {
  return {{"txid", txid},
          {"state", HeldStateName(tx.state)},
          {"adopted_by", tx.adopted_by},
          {"participants", tx.participants}};
}

std::vector<wire::ParticipantRef> Engine::Peers(const Tx& tx) const {
  std::vector<wire::ParticipantRef> peers;
  for (const auto& p : tx.participants) {
    if (p.name != options_.name) peers.push_back(p);
  }
  return peers;
}

void Engine::StartTermination(const std::string& txid, Tx& tx, int64_t now_ms) {
  if (!tx.adopted_by.empty()) {  // only the adopting log decides it
    WaitLonger(tx, "adopted by decision log " + tx.adopted_by + ": waiting for its decision", now_ms);
    return;
  }
  tx.terminating = true;
  std::vector<wire::ParticipantRef> peers = Peers(tx);
  if (peers.empty()) {
    DecideTermination(txid, tx, {}, now_ms);
    return;
  }
  actions_.push_back(action::CallPeers{txid, action::PeerCall::kState, std::move(peers)});
}

void Engine::OnPeerAnswers(const std::string& txid, action::PeerCall call, std::vector<PeerAnswer> answers,
                           int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || !it->second.terminating) return;
  Tx& tx = it->second;
  if (call == action::PeerCall::kState) {
    DecideTermination(txid, tx, answers, now_ms);
    return;
  }
  if (call != action::PeerCall::kPrecommit) return;
  if (tx.state != State::kPrecommitted || tx.abort_decided) {
    tx.terminating = false;  // decided meanwhile (a commit or abort arrived)
    return;
  }
  auto answered_as = [](const PeerAnswer& a, wire::AgentTxState state) {
    return a.state.ok() && wire::ParseAgentTxState(*a.state) == state;
  };
  for (const auto& a : answers) {
    if (answered_as(a, wire::AgentTxState::kAborted)) {
      Conclude(txid, tx, false, a.name + " refused precommit: " + *a.state);
      return;
    }
  }
  for (const auto& a : answers) {
    if (answered_as(a, wire::AgentTxState::kUnknown)) {
      // It said prepared a moment ago; precommitted here, every participant
      // voted yes: it finished and forgot, or lost its database. Not guessed.
      tx.terminating = false;
      WaitLonger(tx,
                 "termination: " + a.name +
                     " no longer knows the transaction it said was prepared: waiting for the coordinator or an "
                     "operator",
                 now_ms);
      return;
    }
  }
  Conclude(txid, tx, true, "every reachable participant is precommitted");
}

// Skeen's termination rules, applied to this participant's own state (read
// now, not when the round started) and its peers' answers.
void Engine::DecideTermination(const std::string& txid, Tx& tx, const std::vector<PeerAnswer>& answers,
                               int64_t now_ms) {
  if (tx.state != State::kPrepared && tx.state != State::kPrecommitted) {
    tx.terminating = false;
    return;
  }
  if (tx.abort_decided) {  // decided before, its apply failed: abort again, whatever the peers say
    Conclude(txid, tx, false, "an abort was decided here before");
    return;
  }
  std::string committed_at, aborted_at, unknown_at;
  bool any_precommitted = tx.state == State::kPrecommitted;
  std::size_t answered = 0;
  tx.prepared_peers.clear();
  std::string silent;
  for (const auto& a : answers) {
    if (!a.state.ok()) {
      silent += (silent.empty() ? "" : ", ") + a.name;
      continue;
    }
    ++answered;
    const std::string& st = *a.state;
    const std::optional<wire::AgentTxState> parsed = wire::ParseAgentTxState(st);
    if (!parsed) continue;  // a name no agent uses: answered, and proves nothing
    switch (*parsed) {
      case wire::AgentTxState::kCommitted: committed_at = a.name; break;
      case wire::AgentTxState::kAborted:
      case wire::AgentTxState::kPreparing: aborted_at = a.name + " (" + st + ")"; break;
      case wire::AgentTxState::kUnknown: unknown_at = a.name; break;
      case wire::AgentTxState::kPrecommitted: any_precommitted = true; break;
      case wire::AgentTxState::kPrepared:
        for (const auto& p : tx.participants) {
          if (p.name == a.name) tx.prepared_peers.push_back(p);
        }
        break;
    }
  }
  const bool everyone_answered = answered == Peers(tx).size();
  if (!committed_at.empty()) {
    Conclude(txid, tx, true, committed_at + " has committed");
    return;
  }
  if (!aborted_at.empty()) {
    Conclude(txid, tx, false, aborted_at + " has not prepared or has aborted");
    return;
  }
  if (!unknown_at.empty() && any_precommitted) {
    // Someone is precommitted, so every participant voted yes: one that no
    // longer knows the transaction finished it (either way) and forgot, or
    // lost its database. Not guessed: the coordinator or an operator decides.
    tx.terminating = false;
    WaitLonger(tx,
               "termination: " + unknown_at +
                   " no longer knows the transaction though every participant voted yes (it finished it and forgot "
                   "the outcome, or lost its database): waiting for the coordinator or an operator",
               now_ms);
    return;
  }
  if (!unknown_at.empty()) {
    Conclude(txid, tx, false, unknown_at + " (unknown) has not prepared or has aborted");
    return;
  }
  if (tx.recovered && !everyone_answered) {
    // Restarted from disk: what happened while this process was down is
    // unknown, so it never decides without every peer's answer.
    tx.terminating = false;
    WaitLonger(tx, "termination: restarted here, waiting for the coordinator or for " + silent, now_ms);
    return;
  }
  if (!any_precommitted) {
    Conclude(txid, tx, false, "no participant reachable is precommitted");
    return;
  }
  if (tx.state == State::kPrepared) {
    tx.precommit_then_push = true;
    tx.state = State::kPrecommitting;
    actions_.push_back(action::PersistPrecommitted{txid});
    return;
  }
  PushPrecommit(txid, tx, now_ms);
}

void Engine::PushPrecommit(const std::string& txid, Tx& tx, int64_t now_ms) {
  (void)now_ms;
  if (tx.prepared_peers.empty()) {
    Conclude(txid, tx, true, "every reachable participant is precommitted");
    return;
  }
  actions_.push_back(action::CallPeers{txid, action::PeerCall::kPrecommit, tx.prepared_peers, "", tx.commit_key});
}

void Engine::Conclude(const std::string& txid, Tx& tx, bool commit, const std::string& why) {
  tx.terminating = false;
  tx.last_error = std::string("termination decided ") + (commit ? "commit: " : "abort: ") + why;
  std::vector<wire::ParticipantRef> peers = Peers(tx);
  if (commit) {
    StartCommit(txid, tx, std::nullopt);
  } else {
    StartAbort(txid, tx, std::nullopt);
  }
  if (!peers.empty()) {
    actions_.push_back(action::CallPeers{txid, commit ? action::PeerCall::kCommit : action::PeerCall::kAbort,
                                         std::move(peers), commit ? std::string() : tx.abort_key,
                                         commit ? tx.commit_key : std::string()});
  }
}

}  // namespace commitd::participant
