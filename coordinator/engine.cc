#include "coordinator/engine.h"

#include <algorithm>

#include "common/json_text.h"

namespace commitd::coordinator {
namespace {

// Room for the actions of one step: a start makes a staging record and a
// prepare per branch; a decision a record, a reply and a message per branch.
constexpr std::size_t kActionsReserved = 8;

std::string VoteFailureReason(const std::string& participant, const Status& status, int64_t timeout_ms) {
  switch (status.code()) {
    case StatusCode::kTimeout:
      return participant + " did not vote within " + std::to_string(timeout_ms) + " ms";
    case StatusCode::kUnavailable:
      return participant + " unreachable: " + status.message();
    default:
      return participant + " refused prepare: " + status.message();
  }
}

AbortReason VoteFailureClass(const Status& status) {
  switch (status.code()) {
    case StatusCode::kTimeout: return AbortReason::kTimeout;
    case StatusCode::kUnavailable: return AbortReason::kUnreachable;
    default: return AbortReason::kVoteNo;  // refused the prepare
  }
}

// A client's error answer: {"error":{"code","message"},"txid"}.
nlohmann::json ClientError(std::string_view code, const std::string& message, const std::string& txid) {
  return {{"error", {{"code", code}, {"message", message}}}, {"txid", txid}};
}

// vote: 0 pending, 1 yes, 2 no, 3 none (Engine::VoteState's order).
const char* BranchState(bool acked, Outcome outcome, int vote) {
  if (acked) return outcome == Outcome::kCommitted ? "committed" : "aborted";
  static const char* const kVoteStates[] = {"preparing", "voted_yes", "voted_no", "no_vote"};
  return kVoteStates[vote];
}

}  // namespace

std::string_view TxStateName(TxState s) {
  switch (s) {
    case TxState::kPreparing: return "preparing";
    case TxState::kPrecommitting: return "precommitting";
    case TxState::kDeciding: return "deciding";
    case TxState::kDelivering: return "delivering";
    case TxState::kFinishing: return "finishing";
    case TxState::kInDoubt: return "in_doubt";
    case TxState::kContradicted: return "contradicted";
  }
  return "unknown";
}

std::string_view AbortReasonName(AbortReason r) {
  switch (r) {
    case AbortReason::kVoteNo: return "vote_no";
    case AbortReason::kLockConflict: return "lock_conflict";
    case AbortReason::kTimeout: return "timeout";
    case AbortReason::kUnreachable: return "unreachable";
    case AbortReason::kOverload: return "overload";
    case AbortReason::kStorage: return "storage";
  }
  return "vote_no";
}

Engine::Engine(EngineOptions options) : options_(std::move(options)) {}

void Engine::Start(StartRequest request, int64_t now_ms) {
  if (txs_.count(request.txid) != 0) {
    // A txid is started once: a second start must neither join nor reset the
    // first (its participants, deadline and clients stay as they are).
    if (request.client != 0) {
      actions_.push_back(action::ReplyClient{
          request.client, 409,
          ClientError("duplicate_txid", "transaction " + request.txid + " is already running", request.txid)});
    }
    return;
  }
  Tx tx;
  tx.txid = request.txid;
  tx.protocol = request.protocol;
  tx.idempotency_key = request.idempotency_key;
  tx.created_ms = request.created_ms;
  tx.started_ms = now_ms;
  tx.deadline_ms = now_ms + request.timeout_ms;
  tx.timeout_ms = request.timeout_ms;
  if (request.client != 0) tx.clients.push_back(request.client);
  const std::vector<ParticipantRef>& everyone = request.participants;
  for (const auto& p : request.participants) {
    Branch b;
    b.participant = p;
    tx.branches.push_back(std::move(b));
  }
  // Before the prepares, so that the log has it on its way first.
  tx.staging = true;
  actions_.push_back(action::PersistStaging{RecordOf(tx, Outcome::kPending, now_ms)});
  for (std::size_t i = 0; i < request.participants.size(); ++i) {
    wire::PrepareRequest prepare;
    prepare.txid = request.txid;
    prepare.protocol = request.protocol;
    prepare.participant = request.participants[i].name;
    prepare.coordinator = options_.self_url;
    prepare.log_id = options_.log_id;
    prepare.timeout_ms = request.timeout_ms;
    prepare.ops = std::move(request.ops[i]);
    prepare.participants = everyone;
    actions_.push_back(action::SendPrepare{request.participants[i], std::move(prepare), request.timeout_ms});
  }
  tx.votes_pending = static_cast<int>(tx.branches.size());
  if (!tx.idempotency_key.empty()) txid_by_key_[tx.idempotency_key] = tx.txid;
  ++undecided_;
  txs_.emplace(tx.txid, std::move(tx));
}

bool Engine::AttachClient(const std::string& txid, ClientToken client) {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return false;
  Tx& tx = it->second;
  // A commit answered early is answered so again at once (its record may
  // wait for the acks); anything else undecided or unrecorded waits.
  const bool waits = tx.phase == Phase::kPreparing || tx.phase == Phase::kFencing ||
                     tx.phase == Phase::kPrecommitting || tx.phase == Phase::kPrecommitted ||
                     (tx.phase == Phase::kDeciding && !tx.answered_early) || tx.phase == Phase::kAbortUnrecorded;
  if (waits) {
    tx.clients.push_back(client);
  } else {
    actions_.push_back(action::ReplyClient{client, ReplyStatus(tx), ReplyText(tx), tx.outcome});
  }
  return true;
}

Engine::Branch* Engine::FindBranch(Tx& tx, const std::string& participant) {
  for (auto& b : tx.branches) {
    if (b.participant.name == participant) return &b;
  }
  return nullptr;
}

void Engine::OnVote(const std::string& txid, const std::string& participant, Result<wire::Vote> vote,
                    int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return;
  Tx& tx = it->second;
  Branch* b = FindBranch(tx, participant);
  if (b == nullptr || b->vote != VoteState::kPending) return;
  --tx.votes_pending;
  if (tx.phase != Phase::kPreparing) {
    // Decided already (deadline or another no); a late yes still needs the abort.
    if (vote.ok() && vote->yes) {
      b->vote = VoteState::kYes;
      if (tx.outcome == Outcome::kAborted && !b->needs_decision && !tx.abort_after_record) {
        StartDelivery(tx, *b, now_ms);
      }
    } else {
      b->vote = vote.ok() ? VoteState::kNo : VoteState::kNone;
    }
    return;
  }
  if (!vote.ok()) {
    b->vote = VoteState::kNone;
    Decide(tx, Outcome::kAborted, VoteFailureReason(participant, vote.status(), tx.deadline_ms - tx.started_ms),
           now_ms, VoteFailureClass(vote.status()));
    return;
  }
  if (!vote->yes) {
    b->vote = VoteState::kNo;
    Decide(tx, Outcome::kAborted, participant + " voted no: " + vote->reason, now_ms,
           vote->no_code == wire::VoteNoCode::kLockConflict ? AbortReason::kLockConflict : AbortReason::kVoteNo);
    return;
  }
  b->vote = VoteState::kYes;
  b->results = std::move(vote->results);
  if (tx.votes_pending != 0) return;
  if (tx.protocol == wire::Protocol::k3pc) {
    // A staging record that failed to write aborted the transaction already.
    if (tx.precommit_durable) {
      EnterPrecommitted(tx, now_ms);
    } else {
      SetPhase(tx, Phase::kPrecommitting);  // until the staging record is durable
    }
    return;
  }
  Decide(tx, Outcome::kCommitted, "", now_ms);
  if (tx.precommit_durable || (tx.staging && options_.unsafe_answer_before_staging)) AnswerEarly(tx, now_ms);
}

void Engine::AnswerEarly(Tx& tx, int64_t now_ms) {
  tx.answered_early = true;
  for (auto& b : tx.branches) StartDelivery(tx, b, now_ms);
  SendDue(tx, now_ms);
  // The commits leave before the answer, so that they are on their way
  // before the client can send its next transaction, which may write the
  // same rows (an agent's prepare that meets them waits for the commit:
  // docs/protocol.md, Locks).
  AnswerClients(tx);
}

DecisionRecord Engine::RecordOf(const Tx& tx, Outcome outcome, int64_t now_ms) const {
  DecisionRecord record;
  record.txid = tx.txid;
  record.protocol = tx.protocol;
  record.outcome = outcome;
  for (const auto& b : tx.branches) record.participants.push_back(b.participant);
  record.reason = tx.reason;
  record.idempotency_key = tx.idempotency_key;
  record.heuristic = tx.heuristic;
  // A staging record, written before any vote, has no reply to keep.
  if (outcome != Outcome::kPending && ReplyIsRead(record)) record.reply = ReplyBody(tx, outcome);
  record.created_ms = tx.created_ms;
  record.decided_ms = now_ms;
  return record;
}

void Engine::OnStagingPersisted(const std::string& txid, const Status& status, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return;
  Tx& tx = it->second;
  if (!tx.staging) return;
  const bool undecided = tx.phase == Phase::kPreparing || tx.phase == Phase::kPrecommitting;
  if (!status.ok()) {
    // Nothing was written (the node stops on any write that may have
    // been). 2PC: the decision record alone decides, written before the
    // answer. 3PC: precommits need a durable record first, and no
    // participant has been told to precommit, so abort is still open.
    tx.staging = false;
    if (tx.commit_record_held) {
      // The commit record alone decides now, and the client waits for it.
      tx.commit_record_held = false;
      actions_.push_back(
          action::PersistDecision{RecordOf(tx, Outcome::kCommitted, tx.decided_ms)});
    }
    if (tx.protocol == wire::Protocol::k3pc && undecided) {
      Decide(tx, Outcome::kAborted, "staging record write failed: " + status.message(), now_ms,
             AbortReason::kStorage);
    }
    return;
  }
  tx.precommit_durable = true;
  if (tx.phase == Phase::kDeciding && tx.outcome == Outcome::kCommitted && !tx.answered_early) {
    AnswerEarly(tx, now_ms);
  }
  if (tx.phase == Phase::kPrecommitting) EnterPrecommitted(tx, now_ms);
}

void Engine::EnterPrecommitted(Tx& tx, int64_t now_ms) {
  SetPhase(tx, Phase::kPrecommitted);
  tx.precommit_durable = true;
  tx.precommit_deadline_ms = now_ms + tx.timeout_ms;
  for (auto& b : tx.branches) {
    b.precommit_next_ms = now_ms;
    b.precommit_backoff_ms = options_.retry_initial_ms;
  }
  SendPrecommitsDue(tx, now_ms);
}

bool Engine::TakeDeliverySlot(const ParticipantRef& to, bool& sending_flag) {
  int64_t& sending = sending_to_[to.name];
  if (sending >= options_.deliveries_per_participant) return false;
  ++sending;
  sending_flag = true;
  return true;
}

void Engine::SendPrecommitsDue(Tx& tx, int64_t now_ms) {
  for (auto& b : tx.branches) {
    if (b.precommit_acked || b.precommit_sending || b.precommit_next_ms > now_ms) continue;
    if (TakeDeliverySlot(b.participant, b.precommit_sending)) {
      actions_.push_back(action::SendPrecommit{tx.txid, b.participant});
    }
  }
}

Engine::Branch* Engine::AnsweredBranch(const std::string& txid, const std::string& participant,
                                       bool Branch::*sending, Tx** tx) {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return nullptr;
  *tx = &it->second;
  Branch* b = FindBranch(**tx, participant);
  if (b != nullptr && b->*sending) {
    b->*sending = false;
    --sending_to_[participant];
  }
  return b;
}

void Engine::OnPrecommitAcked(const std::string& txid, const std::string& participant,
                              Result<PrecommitAnswer> answer, int64_t now_ms) {
  Tx* answered = nullptr;
  Branch* b = AnsweredBranch(txid, participant, &Branch::precommit_sending, &answered);
  if (b == nullptr) return;
  Tx& tx = *answered;
  if (tx.phase != Phase::kPrecommitted) return;
  if (!answer.ok()) {
    PrecommitAgainLater(*b, answer.status().message(), now_ms);
    return;
  }
  if (*answer == PrecommitAnswer::kUnknownTransaction) {
    // Neither an ack nor an abort: it may have committed or aborted. Only
    // another participant's proof (committed, or aborted) decides now; the
    // deadline rule no longer may (an agent's termination that sees nobody
    // precommitted counts a peer that does not know the transaction as
    // aborted, so an ack elsewhere proves nothing), and an operator may
    // force it.
    b->precommit_unknown = true;
    tx.unknown_seen = true;
    PrecommitAgainLater(*b,
                        participant + " has no record of it (it finished and forgot the outcome after its "
                                      "outcome_retention_ms, or lost its database): the outcome is in doubt",
                        now_ms);
    return;
  }
  if (*answer == PrecommitAnswer::kAborted && CommitUnrecorded(tx)) {
    // Commit was decided already (its record is being written again); an
    // abort here is a mixed outcome for the operator, not a new decision.
    PrecommitAgainLater(*b, participant + " refused precommit after commit was decided: it has aborted", now_ms);
    return;
  }
  if (*answer == PrecommitAnswer::kAborted && tx.unknown_seen) {
    // Its termination may have counted the participant that no longer
    // knows the transaction as having aborted, though it committed and
    // forgot: no proof of abort. Still in doubt, for an operator.
    PrecommitAgainLater(*b,
                        participant + " refused precommit: it has aborted, perhaps by a termination that counted a "
                                      "participant that forgot a commit as having aborted; the outcome is in doubt",
                        now_ms);
    return;
  }
  if (*answer == PrecommitAnswer::kAborted) {
    // It decided abort by itself (termination while this coordinator was away).
    Decide(tx, Outcome::kAborted, participant + " refused precommit: it has aborted", now_ms);
    return;
  }
  b->precommit_acked = true;
  b->precommit_unknown = false;
  b->last_error.clear();
  if (*answer == PrecommitAnswer::kCommitted) {
    // It committed by termination: commit is proven.
    if (CommitUnrecorded(tx)) return;  // decided already; its record is written again
  } else {
    for (const auto& other : tx.branches) {
      if (!other.precommit_acked) return;
    }
  }
  Decide(tx, Outcome::kCommitted, "", now_ms);
  // Every participant holds a durable precommit (or one committed), and the
  // staging record is durable: commit is the only outcome left (termination
  // commits through any precommitted participant, a coordinator resuming the
  // record finds every participant prepared and precommits again, and no
  // operator may force a recorded transaction), so the clients hear it while
  // the decision is written.
  // Commits are still sent only after that.
  AnswerClients(tx);
}

void Engine::PrecommitAgainLater(Branch& b, std::string why, int64_t now_ms) {
  b.last_error = std::move(why);
  b.precommit_next_ms = now_ms + b.precommit_backoff_ms;
  b.precommit_backoff_ms = std::min(b.precommit_backoff_ms * 2, options_.retry_max_ms);
}

void Engine::ReplyClients(Tx& tx, int status, ClientBody body, std::optional<Outcome> outcome) {
  for (std::size_t i = 0; i + 1 < tx.clients.size(); ++i) {
    actions_.push_back(action::ReplyClient{tx.clients[i], status, body, outcome});
  }
  if (!tx.clients.empty()) {
    actions_.push_back(action::ReplyClient{tx.clients.back(), status, std::move(body), outcome});
  }
  tx.clients.clear();
}

void Engine::AnswerClients(Tx& tx) {
  // A commit answered early, or a resumed transaction, may have no client
  // waiting: then no answer is written.
  if (tx.clients.empty()) return;
  ReplyClients(tx, ReplyStatus(tx), ReplyText(tx), tx.outcome);
}

void Engine::PrecommitDeadline(Tx& tx, int64_t now_ms) {
  if (CommitUnrecorded(tx)) {
    if (now_ms < tx.record_again_ms) return;
    Decide(tx, Outcome::kCommitted, "", now_ms);
    return;
  }
  if (tx.resumed || now_ms < tx.precommit_deadline_ms) return;
  if (tx.unknown_seen) return;  // see OnPrecommitAcked
  for (const auto& b : tx.branches) {
    // A participant that acked holds a durable precommit; termination would
    // commit through it, so commit is the only outcome left. With no ack the
    // engine keeps asking: the participants may be precommitted (their acks
    // lost, or they crashed after precommitting) and, after a total failure,
    // commit by termination, so an abort here could contradict them.
    if (b.precommit_acked) {
      Decide(tx, Outcome::kCommitted, "", now_ms);
      return;
    }
  }
}

void Engine::Decide(Tx& tx, Outcome outcome, std::string reason, int64_t now_ms, AbortReason abort_reason) {
  SetPhase(tx, Phase::kDeciding);
  tx.record_again_ms = 0;
  tx.outcome = outcome;
  tx.reason = std::move(reason);
  tx.decided_ms = now_ms;
  --undecided_;
  const bool again = tx.record_again_backoff_ms != 0;
  if (!again && !tx.heuristic) actions_.push_back(action::Decided{tx.txid, outcome, abort_reason});
  // A 2PC commit with its staging record on the way is answered once that
  // record is durable, not this one, which nobody waits for: it waits for
  // the participants' acks (at most until the first redelivery would be
  // due), to be written once with its finished mark instead of twice. (A
  // 3PC commit's client was answered already, but its commits wait for
  // this record.)
  if (outcome == Outcome::kCommitted && tx.staging && tx.protocol == wire::Protocol::k2pc) {
    tx.commit_record_held = true;
    tx.commit_record_due_ms = now_ms + options_.retry_initial_ms;
    return;
  }
  actions_.push_back(action::PersistDecision{RecordOf(tx, outcome, now_ms), again});
  if (outcome != Outcome::kAborted) return;
  if (tx.staging || tx.precommit_durable) {
    // The log holds (or will hold) its staging record until this record
    // replaces it. An abort sent before could reach a participant after a
    // restarted coordinator's fence found it prepared, and that coordinator
    // would commit (2PC) or precommit it (3PC, where a precommitted
    // participant still takes an abort): it is sent once its record is
    // durable.
    tx.abort_after_record = true;
    return;
  }
  // Presumed abort: no need to wait for the record before telling participants.
  StartAbortDeliveries(tx, now_ms);
  SendDue(tx, now_ms);
}

void Engine::StartDelivery(Tx& tx, Branch& b, int64_t now_ms) {
  (void)tx;
  b.needs_decision = true;
  b.acked = false;
  b.contradiction.reset();
  b.next_send_ms = now_ms;
  b.backoff_ms = options_.retry_initial_ms;
}

void Engine::StartAbortDeliveries(Tx& tx, int64_t now_ms) {
  for (auto& b : tx.branches) {
    if (b.vote != VoteState::kNo) StartDelivery(tx, b, now_ms);
  }
}

void Engine::SendDue(Tx& tx, int64_t now_ms) {
  for (auto& b : tx.branches) {
    if (!b.needs_decision || b.acked || b.contradiction || b.sending || b.next_send_ms > now_ms) continue;
    if (!TakeDeliverySlot(b.participant, b.sending)) continue;
    ++b.attempts;
    actions_.push_back(action::SendDecision{tx.txid, b.participant, tx.outcome});
  }
}

void Engine::OnDecisionPersisted(const std::string& txid, const Status& status, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return;
  Tx& tx = it->second;
  if (tx.phase != Phase::kDeciding) return;  // a repeated report of the same write
  if (!status.ok()) {
    if (tx.precommit_durable || tx.answered_early) {
      RecordAgainLater(tx, status, now_ms);
      return;
    }
    if (tx.outcome == Outcome::kCommitted) {
      // Nothing durable says commit, so presumed abort holds: abort instead.
      tx.outcome = Outcome::kAborted;
      tx.reason = "decision log write failed: " + status.message();
      StartAbortDeliveries(tx, now_ms);
    }
    // An abort that is not durable is still an abort; the client hears it.
  }
  if (status.ok() && tx.record_finishes) {
    // Written with its finished mark: every participant acked, nothing is left.
    AnswerClients(tx);
    if (!tx.idempotency_key.empty()) txid_by_key_.erase(tx.idempotency_key);
    Erase(it);
    return;
  }
  tx.durable = true;
  SetPhase(tx, Phase::kDelivering);
  if (tx.outcome == Outcome::kCommitted && !tx.answered_early) {
    for (auto& b : tx.branches) StartDelivery(tx, b, now_ms);
  }
  if (tx.outcome == Outcome::kAborted && tx.abort_after_record) {
    tx.abort_after_record = false;
    StartAbortDeliveries(tx, now_ms);
  }
  SendDue(tx, now_ms);
  // After the decisions (see AnswerEarly).
  if (!tx.clients.empty() && !status.ok() && !tx.idempotency_key.empty()) {
    // The key was not stored with an answer, so a retry would run the
    // transaction anew: say so instead of giving an answer a replay cannot repeat.
    nlohmann::json error =
        ClientError("storage_error",
                    "the decision could not be recorded (" + status.message() +
                        "); the transaction did not commit; retrying with the same Idempotency-Key runs it again",
                    tx.txid);
    error["outcome"] = OutcomeName(Outcome::kAborted);
    ReplyClients(tx, 503, std::move(error), Outcome::kAborted);
  } else {
    AnswerClients(tx);
  }
  MaybeFinish(tx, now_ms);
}

// The log holds the staging record, which a restart (or a group's next
// leader) resumes until a decision replaces it, so the decision is not let go
// of: it is written again later (capped doubling), and the clients waiting
// are told that its record is not written yet.
void Engine::RecordAgainLater(Tx& tx, const Status& status, int64_t now_ms) {
  tx.record_again_backoff_ms = NextBackoff(tx.record_again_backoff_ms);
  tx.record_again_ms = now_ms + tx.record_again_backoff_ms;
  std::string told;
  if (tx.outcome == Outcome::kCommitted && tx.protocol == wire::Protocol::k2pc) {
    // Every vote was yes and the staging record is durable: a resumed
    // record commits too, so it stays decided, waiting to be written again
    // (its commits go out meanwhile if they did already).
    told = "the commit decision could not be recorded (" + status.message() +
           "); every participant voted yes and the transaction's staging record is durable, so it can only commit";
  } else if (tx.outcome == Outcome::kCommitted) {
    // 3PC decides commit only once a participant has acked its precommit,
    // and precommitted participants commit by termination (as does a
    // coordinator resuming the staging record), so commit is the only
    // outcome left: it waits, undecided, among the precommitted.
    SetPhase(tx, Phase::kPrecommitted);
    tx.outcome = Outcome::kPending;
    tx.decided_ms = 0;
    ++undecided_;
    told = "the commit decision could not be recorded (" + status.message() +
           "); every participant may already be precommitted, so the transaction can only commit";
  } else {
    // An abort over a pending record is not delivered until it is recorded (see Decide).
    SetPhase(tx, Phase::kAbortUnrecorded);
    told = "the abort decision could not be recorded (" + status.message() +
           "); until it is, the log holds the transaction's staging record and the participants are not told";
  }
  ReplyClients(tx, 503,
               ClientError("storage_error",
                           told + "; the coordinator keeps trying to record it: ask GET /v1/transactions/" + tx.txid +
                               " or retry with the same Idempotency-Key",
                           tx.txid),
               std::nullopt);
}

void Engine::AbortAgainIfDue(Tx& tx, int64_t now_ms) {
  if (tx.phase != Phase::kAbortUnrecorded || now_ms < tx.record_again_ms) return;
  tx.record_again_ms = 0;
  SetPhase(tx, Phase::kDeciding);
  actions_.push_back(action::PersistDecision{RecordOf(tx, Outcome::kAborted, tx.decided_ms),
                                             /*again=*/true});
}

void Engine::CommitAgainIfDue(Tx& tx, int64_t now_ms) {
  if (tx.phase != Phase::kDeciding || tx.protocol != wire::Protocol::k2pc) return;
  if (tx.commit_record_held) {
    if (now_ms >= tx.commit_record_due_ms) WriteCommitRecord(tx, /*again=*/false, now_ms);
    return;
  }
  if (tx.record_again_ms == 0 || now_ms < tx.record_again_ms) return;
  tx.record_again_ms = 0;
  if (tx.answered_early) {
    WriteCommitRecord(tx, /*again=*/true, now_ms);
    return;
  }
  actions_.push_back(action::PersistDecision{RecordOf(tx, Outcome::kCommitted, tx.decided_ms),
                                             /*again=*/true});
}

void Engine::WriteCommitRecord(Tx& tx, bool again, int64_t now_ms) {
  tx.commit_record_held = false;
  DecisionRecord record = RecordOf(tx, Outcome::kCommitted, tx.decided_ms);
  tx.record_finishes = AllAcked(tx);
  if (tx.record_finishes) {
    record.finished = true;
    record.finished_ms = now_ms;
  }
  actions_.push_back(action::PersistDecision{std::move(record), again,
                                             /*rides_next_write=*/true});
}

bool Engine::AllAcked(const Tx& tx) {
  if (!tx.answered_early && tx.phase != Phase::kDelivering) return false;
  for (const auto& b : tx.branches) {
    // A participant that has not voted yet got the abort too; its agent keeps a
    // tombstone, so a late prepare there votes no.
    if (b.needs_decision && !b.acked) return false;
  }
  return true;
}

bool Engine::Delivers(const Tx& tx) {
  return tx.phase == Phase::kDelivering || tx.phase == Phase::kAbortUnrecorded ||
         (tx.phase == Phase::kDeciding && (tx.outcome == Outcome::kAborted || tx.answered_early));
}

bool Engine::OnDecisionConflict(const std::string& txid, Outcome recorded, const std::string& recorded_reason,
                                int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return true;
  Tx& tx = it->second;
  // The client heard commit already: an abort recorded first cannot be followed.
  if (recorded == Outcome::kAborted && tx.answered_early) return false;
  // The log's record is not finished: the mark follows as a write of its own.
  tx.record_finishes = false;
  if (recorded == Outcome::kAborted && tx.outcome == Outcome::kCommitted) {
    tx.outcome = Outcome::kAborted;
    tx.reason = "an abort was recorded first: " + recorded_reason;
    StartAbortDeliveries(tx, now_ms);
  } else if (recorded != tx.outcome) {
    return false;
  }
  OnDecisionPersisted(txid, Status::Ok(), now_ms);
  return true;
}

void Engine::OnDecisionAcked(const std::string& txid, const std::string& participant, const Status& status,
                             int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return;
  Tx& tx = it->second;
  Branch* b = FindBranch(tx, participant);
  if (b == nullptr || !b->sending) return;
  b->sending = false;
  --sending_to_[participant];
  if (status.ok()) {
    b->acked = true;
    b->last_error.clear();
    MaybeFinish(tx, now_ms);
    return;
  }
  b->last_error = status.message();
  b->next_send_ms = now_ms + b->backoff_ms;
  b->backoff_ms = std::min(b->backoff_ms * 2, options_.retry_max_ms);
}

bool Engine::OnDecisionFoundDone(const std::string& txid, const std::string& participant, Outcome done,
                                 int64_t now_ms) {
  if (done == Outcome::kPending) return false;
  auto it = txs_.find(txid);
  if (it == txs_.end()) return false;
  Tx& tx = it->second;
  if (done == tx.outcome) {
    OnDecisionAcked(txid, participant, Status::Ok(), now_ms);
    return false;
  }
  Branch* b = FindBranch(tx, participant);
  if (b == nullptr || !b->sending) return false;
  b->sending = false;
  --sending_to_[participant];
  b->contradiction = done;
  b->last_error = "it " + std::string(OutcomeName(done)) + " the transaction, against the decision to " +
                  (tx.outcome == Outcome::kCommitted ? "commit" : "abort") +
                  ": reconcile its data by hand, then close the transaction";
  // A 2PC commit record held for the acks waits for its due time instead.
  return true;
}

Engine::CloseResult Engine::CloseContradicted(const std::string& txid, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return CloseResult::kNotHeld;
  Tx& tx = it->second;
  if (tx.phase == Phase::kFinishing) return CloseResult::kFinishing;
  if (!Contradicted(tx)) return CloseResult::kNotContradicted;
  if (tx.phase != Phase::kDelivering || !tx.durable) return CloseResult::kNotRecorded;
  for (const auto& b : tx.branches) {
    if (b.needs_decision && !b.acked && !b.contradiction) return CloseResult::kStillDelivering;
  }
  SetPhase(tx, Phase::kFinishing);
  actions_.push_back(action::PersistFinished{tx.txid, now_ms});
  return CloseResult::kClosing;
}

void Engine::MaybeFinish(Tx& tx, int64_t now_ms) {
  if (tx.commit_record_held) {
    if (AllAcked(tx)) WriteCommitRecord(tx, /*again=*/false, now_ms);
    return;
  }
  if (tx.phase != Phase::kDelivering || !tx.durable || !AllAcked(tx)) return;
  SetPhase(tx, Phase::kFinishing);
  actions_.push_back(action::PersistFinished{tx.txid, now_ms});
}

void Engine::OnFinishedPersisted(const std::string& txid, const Status& status, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.phase != Phase::kFinishing) return;
  Tx& tx = it->second;
  const bool room = tx.finish_backoff_ms != 0 || unmarked_ < static_cast<std::size_t>(options_.max_unmarked);
  if (!status.ok() && status.code() != StatusCode::kNotFound && room) {
    // Still unfinished in the log: it stays here, visible, until a write succeeds.
    if (tx.finish_backoff_ms == 0) ++unmarked_;
    tx.finish_backoff_ms = NextBackoff(tx.finish_backoff_ms);
    tx.finish_retry_ms = now_ms + tx.finish_backoff_ms;
    return;
  }
  if (!tx.idempotency_key.empty()) txid_by_key_.erase(tx.idempotency_key);
  Erase(it);
}

int64_t Engine::NextBackoff(int64_t previous_ms) const {
  return previous_ms == 0 ? options_.retry_initial_ms : std::min(previous_ms * 2, options_.retry_max_ms);
}

bool Engine::awaiting_mark(const std::string& txid) const {
  auto it = txs_.find(txid);
  return it != txs_.end() && it->second.finish_backoff_ms != 0;
}

void Engine::FinishAgainIfDue(Tx& tx, int64_t now_ms) {
  if (tx.phase != Phase::kFinishing || tx.finish_retry_ms == 0 || now_ms < tx.finish_retry_ms) return;
  tx.finish_retry_ms = 0;
  actions_.push_back(action::PersistFinished{tx.txid, now_ms});
}

void Engine::Resume(DecisionRecord record, int64_t now_ms) {
  if (txs_.count(record.txid) != 0) return;
  Tx tx;
  tx.txid = record.txid;
  tx.protocol = record.protocol;
  SetPhase(tx, Phase::kDelivering);
  tx.outcome = record.outcome;
  tx.reason = record.reason;
  tx.created_ms = record.created_ms;
  tx.started_ms = now_ms;
  tx.decided_ms = record.decided_ms;
  tx.durable = true;
  tx.heuristic = record.heuristic;
  tx.idempotency_key = record.idempotency_key;
  tx.recorded_reply = std::move(record.reply);
  // A record with outcome pending is a staging record: the votes are not
  // known, so every participant is fenced. (Logs written before 3PC wrote
  // staging records may hold a 3PC precommit record, written once every vote
  // was yes; fencing finds every participant prepared and resumes its
  // precommit round all the same.)
  const bool staging = record.outcome == Outcome::kPending;
  if (!tx.idempotency_key.empty()) txid_by_key_[tx.idempotency_key] = tx.txid;
  for (auto& p : record.participants) {
    Branch b;
    b.participant = p;
    b.vote = staging ? VoteState::kPending : VoteState::kNone;
    b.results = nullptr;  // the rows a SELECT read went to a client that may be gone
    tx.branches.push_back(std::move(b));
  }
  if (!staging) {
    for (auto& b : tx.branches) StartDelivery(tx, b, now_ms);
    auto [it, inserted] = txs_.emplace(tx.txid, std::move(tx));
    (void)inserted;
    SendDue(it->second, now_ms);
    return;
  }
  SetPhase(tx, Phase::kFencing);
  tx.resumed = true;
  tx.precommit_durable = true;
  tx.decided_ms = 0;
  tx.durable = false;
  ++undecided_;
  for (auto& b : tx.branches) {
    b.precommit_next_ms = now_ms;
    b.precommit_backoff_ms = options_.retry_initial_ms;
  }
  // Wall clocks: created_ms is the starting coordinator's. Older than
  // the bound, a participant may have committed and forgotten the outcome,
  // and a fence would answer (and record) "aborted" for a commit: every
  // participant is asked first what it knows. A record dated as far ahead of
  // this clock says the clock moved back: its age is unknown, so the same.
  const int64_t age_ms = now_ms - tx.created_ms;
  const int64_t bound_ms = options_.outcome_retention_ms / 2;
  tx.too_old_to_fence = (age_ms >= bound_ms || age_ms <= -bound_ms) && !options_.unsafe_fence_too_old;
  if (tx.too_old_to_fence) {
    const std::string age = age_ms >= 0 ? std::to_string(age_ms / 1000) + " s old"
                                        : "dated " + std::to_string(-age_ms / 1000) +
                                              " s ahead of this coordinator's clock, which moved back,";
    for (auto& b : tx.branches) {
      b.last_error = "the staging record is " + age + " and no decision followed it: " + b.participant.name +
                     " may have committed and forgotten the outcome, so it is asked what it knows before any fence";
    }
  }
  auto [it, inserted] = txs_.emplace(tx.txid, std::move(tx));
  (void)inserted;
  SendFencesDue(it->second, now_ms);
}

void Engine::SendFencesDue(Tx& tx, int64_t now_ms) {
  if (tx.staging_in_doubt) return;
  for (auto& b : tx.branches) {
    if (b.precommit_next_ms > now_ms) continue;
    if (tx.too_old_to_fence) {
      if (b.state || b.state_query_sending) continue;
      if (TakeDeliverySlot(b.participant, b.state_query_sending)) {
        actions_.push_back(action::SendStateQuery{tx.txid, b.participant});
      }
      continue;
    }
    if (b.fence || b.fence_sending) continue;
    if (TakeDeliverySlot(b.participant, b.fence_sending)) {
      actions_.push_back(action::SendFence{tx.txid, b.participant});
    }
  }
}

void Engine::OnStateAnswer(const std::string& txid, const std::string& participant, Result<StateAnswer> answer,
                           int64_t now_ms) {
  Tx* answered = nullptr;
  Branch* b = AnsweredBranch(txid, participant, &Branch::state_query_sending, &answered);
  if (b == nullptr) return;
  Tx& tx = *answered;
  if (tx.phase != Phase::kFencing || !tx.too_old_to_fence || b->state) return;
  if (!answer.ok()) {
    ++b->state_queries_failed;
    PrecommitAgainLater(*b, "state query: " + answer.status().message(), now_ms);
    return;
  }
  b->state = *answer;
  b->last_error = *answer == StateAnswer::kUnknown
                      ? participant + " does not know the transaction: it never prepared it, or finished it and "
                                      "forgot the outcome, or lost its database"
                      : "";
  std::string committed_at;
  std::string aborted_at;
  bool unknown = false;
  for (const auto& other : tx.branches) {
    if (!other.state) return;  // every answer first: a contradiction is for an operator to see
    if (*other.state == StateAnswer::kCommitted && committed_at.empty()) committed_at = other.participant.name;
    if (*other.state == StateAnswer::kAborted && aborted_at.empty()) aborted_at = other.participant.name;
    unknown |= *other.state == StateAnswer::kUnknown;
  }
  // A 3PC termination that sees nobody precommitted counts a peer that no
  // longer knows the transaction as having aborted it, also when that peer
  // was the precommitted one and committed and forgot: beside an unknown, a
  // 3PC abort proves nothing.
  const bool abort_proven = !aborted_at.empty() && (tx.protocol == wire::Protocol::k2pc || !unknown);
  if (!committed_at.empty() && !aborted_at.empty()) {
    // A commit needs every yes, and a participant aborts only without its
    // own yes, with an abort or by termination: one of them lost its
    // database or was settled by hand. Not guessed.
    tx.staging_in_doubt = true;
    for (auto& other : tx.branches) {
      if (*other.state == StateAnswer::kAborted) {
        other.last_error = other.participant.name + " aborted the transaction while " + committed_at +
                           " committed it; the outcome is in doubt";
      }
    }
    return;
  }
  if (!committed_at.empty()) {
    // Only a commit makes a participant commit, and a commit needs every
    // yes: commit is proven, and so is every vote.
    for (auto& other : tx.branches) other.vote = VoteState::kYes;
    Decide(tx, Outcome::kCommitted, "", now_ms);
    return;
  }
  if (abort_proven) {
    // It never voted yes, took an abort (sent only once recorded, which
    // would have replaced the staging record), or aborted by 3PC
    // termination while every peer still knew the transaction.
    Decide(tx, Outcome::kAborted,
           aborted_at + " had aborted the transaction when the coordinator recovered its staging record", now_ms,
           AbortReason::kTimeout);
    return;
  }
  if (unknown) {
    // Nobody proves an outcome, and a participant that does not know the
    // transaction may have committed it: not guessed, an operator settles it.
    tx.staging_in_doubt = true;
    for (auto& other : tx.branches) {
      if (*other.state == StateAnswer::kUnknown) other.last_error += "; the outcome is in doubt";
      if (*other.state == StateAnswer::kAborted) {
        other.last_error = other.participant.name +
                           " aborted the transaction, perhaps by a termination that counted a participant that "
                           "forgot a commit as having aborted; the outcome is in doubt";
      }
    }
    return;
  }
  // Every participant still holds the transaction, so none committed and
  // forgot: fencing is safe again.
  tx.too_old_to_fence = false;
  for (auto& other : tx.branches) {
    other.precommit_next_ms = now_ms;
    other.precommit_backoff_ms = options_.retry_initial_ms;
  }
  SendFencesDue(tx, now_ms);
}

void Engine::OnFenceAnswer(const std::string& txid, const std::string& participant, Result<FenceAnswer> answer,
                           int64_t now_ms) {
  Tx* answered = nullptr;
  Branch* b = AnsweredBranch(txid, participant, &Branch::fence_sending, &answered);
  if (b == nullptr) return;
  Tx& tx = *answered;
  if (tx.phase != Phase::kFencing || b->fence) return;
  if (!answer.ok()) {
    PrecommitAgainLater(*b, "fence: " + answer.status().message(), now_ms);
    return;
  }
  b->fence = *answer;
  if (options_.unsafe_fenced_as_prepared && *b->fence == FenceAnswer::kFenced) b->fence = FenceAnswer::kPrepared;
  b->vote = *answer == FenceAnswer::kFenced ? VoteState::kNone : VoteState::kYes;
  b->last_error.clear();
  bool fenced = false;
  bool committed = false;
  std::string first_fenced;
  for (const auto& other : tx.branches) {
    if (!other.fence) return;  // every answer first: one fenced and one committed is a contradiction to see
    if (*other.fence == FenceAnswer::kFenced && !fenced) first_fenced = other.participant.name;
    fenced |= *other.fence == FenceAnswer::kFenced;
    committed |= *other.fence == FenceAnswer::kCommitted;
  }
  if (fenced && committed) {
    // Only a commit makes a participant commit, and a commit needs every
    // yes: the fenced one voted yes, committed, and forgot it (after its
    // outcome_retention_ms), or lost its database. Not guessed: an operator
    // settles it.
    tx.staging_in_doubt = true;
    for (auto& other : tx.branches) {
      if (*other.fence != FenceAnswer::kFenced) continue;
      other.last_error = other.participant.name +
                         " does not know the transaction while another participant committed it: it forgot the "
                         "outcome or lost its database; the outcome is in doubt";
    }
    return;
  }
  if (fenced) {
    Decide(tx, Outcome::kAborted,
           first_fenced + " had not voted yes when the coordinator recovered the transaction (its staging record "
                          "had no decision), and is fenced from doing so",
           now_ms, AbortReason::kTimeout);
    return;
  }
  if (tx.protocol == wire::Protocol::k3pc && !committed) {
    // Every participant voted yes, but 3PC commits only through precommits:
    // the participants' termination aborts a transaction none of them
    // precommitted. So the precommit round resumes, and decides.
    EnterPrecommitted(tx, now_ms);
    return;
  }
  Decide(tx, Outcome::kCommitted, "", now_ms);
}

void Engine::Tick(int64_t now_ms) {
  for (auto& [txid, tx] : txs_) {
    if (tx.phase == Phase::kFencing) {
      SendFencesDue(tx, now_ms);
      continue;
    }
    if (tx.phase == Phase::kPreparing) {
      if (now_ms >= tx.deadline_ms) {
        std::string missing;
        for (auto& b : tx.branches) {
          if (b.vote == VoteState::kPending) {
            if (missing.empty()) missing = b.participant.name;
          }
        }
        Decide(tx, Outcome::kAborted,
               missing + " did not vote within " + std::to_string(tx.deadline_ms - tx.started_ms) + " ms", now_ms,
               AbortReason::kTimeout);
        // Branches still pending may have prepared: they get the abort too.
      }
      continue;
    }
    if (tx.phase == Phase::kPrecommitted) {
      SendPrecommitsDue(tx, now_ms);
      PrecommitDeadline(tx, now_ms);
      continue;
    }
    if (Delivers(tx)) SendDue(tx, now_ms);
    CommitAgainIfDue(tx, now_ms);
    AbortAgainIfDue(tx, now_ms);
    FinishAgainIfDue(tx, now_ms);
  }
}

void Engine::RetryNow(int64_t now_ms) {
  for (auto& [txid, tx] : txs_) {
    for (auto& b : tx.branches) {
      if (b.needs_decision && !b.acked && !b.contradiction) {
        b.next_send_ms = now_ms;
        b.backoff_ms = options_.retry_initial_ms;
      }
      if ((tx.phase == Phase::kPrecommitted && !b.precommit_acked) ||
          (tx.phase == Phase::kFencing && (tx.too_old_to_fence ? !b.state : !b.fence))) {
        b.precommit_next_ms = now_ms;
        b.precommit_backoff_ms = options_.retry_initial_ms;
      }
    }
    if (tx.phase == Phase::kFencing) SendFencesDue(tx, now_ms);
    if (Delivers(tx)) SendDue(tx, now_ms);
    if (tx.phase == Phase::kDeciding && tx.record_again_ms != 0) {
      tx.record_again_ms = now_ms;
      CommitAgainIfDue(tx, now_ms);
    }
    if (tx.phase == Phase::kAbortUnrecorded) {
      tx.record_again_ms = now_ms;
      AbortAgainIfDue(tx, now_ms);
    }
    if (tx.finish_retry_ms != 0) {
      tx.finish_retry_ms = now_ms;
      FinishAgainIfDue(tx, now_ms);
    }
    if (tx.phase == Phase::kPrecommitted) {
      if (CommitUnrecorded(tx)) tx.record_again_ms = now_ms;
      SendPrecommitsDue(tx, now_ms);
      PrecommitDeadline(tx, now_ms);
    }
  }
}

bool Engine::CommitUnrecorded(const Tx& tx) {
  return tx.phase == Phase::kPrecommitted && tx.record_again_ms != 0;
}

bool Engine::Contradicted(const Tx& tx) {
  return std::any_of(tx.branches.begin(), tx.branches.end(),
                     [](const Branch& b) { return b.contradiction.has_value(); });
}

bool Engine::InDoubt(const Tx& tx) {
  if (tx.phase == Phase::kFencing) {
    // Too old to fence, and a participant answered unknown (only an answer
    // still to come proving commit, or in 2PC abort, can settle it) or does
    // not answer at all (a machine gone for good would hold it forever): an
    // operator may settle it first. The questions go on meanwhile.
    constexpr int kFailedQueriesBeforeInDoubt = 3;
    return tx.staging_in_doubt ||
           (tx.too_old_to_fence && std::any_of(tx.branches.begin(), tx.branches.end(), [](const Branch& b) {
              return b.state == StateAnswer::kUnknown || (!b.state && b.state_queries_failed >= kFailedQueriesBeforeInDoubt);
            }));
  }
  return tx.phase == Phase::kPrecommitted && !CommitUnrecorded(tx) &&
         std::any_of(tx.branches.begin(), tx.branches.end(), [](const Branch& b) { return b.precommit_unknown; });
}

std::size_t Engine::undecided_due_by_deadline(int64_t now_ms) const {
  std::size_t n = 0;
  for (const auto& [txid, tx] : txs_) {
    if (tx.phase == Phase::kPreparing || tx.phase == Phase::kPrecommitting) {
      ++n;
    } else if (tx.phase == Phase::kPrecommitted && !tx.resumed && !CommitUnrecorded(tx) &&
               now_ms < tx.precommit_deadline_ms && !InDoubt(tx)) {
      ++n;
    }
  }
  return n;
}

bool Engine::ForceInDoubt(const std::string& txid, Outcome outcome, std::string reason, int64_t now_ms) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || outcome == Outcome::kPending) return false;
  Tx& tx = it->second;
  if (!InDoubt(tx)) return false;
  tx.heuristic = true;
  Decide(tx, outcome, outcome == Outcome::kCommitted ? "" : std::move(reason), now_ms);
  return true;
}

void Engine::AnswerClientsAtShutdown() {
  for (auto& [txid, tx] : txs_) {
    if ((tx.phase != Phase::kPrecommitted && tx.phase != Phase::kAbortUnrecorded && tx.phase != Phase::kFencing) ||
        tx.clients.empty()) {
      continue;
    }
    ReplyClients(tx, 503,
                 ClientError("stopping",
                             "the coordinator is shutting down before the outcome of " + tx.txid +
                                 " was recorded; its staging record is durable and the coordinator resumes it when "
                                 "it starts again: ask GET /v1/transactions/" +
                                 tx.txid + " or retry with the same Idempotency-Key",
                             tx.txid),
                 std::nullopt);
  }
}

std::vector<Action> Engine::TakeActions() {
  std::vector<Action> out;
  out.swap(actions_);
  // One step of a transaction makes a handful of actions: room for them at
  // once instead of growing (and moving them) one push at a time.
  actions_.reserve(kActionsReserved);
  return out;
}

void Engine::SetPhase(Tx& tx, Phase phase) {
  if (tx.phase == Phase::kDeciding) --deciding_;
  if (phase == Phase::kDeciding) ++deciding_;
  tx.phase = phase;
}

void Engine::Erase(std::unordered_map<std::string, Tx>::iterator it) {
  if (it->second.phase == Phase::kDeciding) --deciding_;
  if (it->second.finish_backoff_ms != 0) --unmarked_;
  for (const Branch& b : it->second.branches) {
    if (b.sending) --sending_to_[b.participant.name];
    if (b.precommit_sending) --sending_to_[b.participant.name];
    if (b.fence_sending) --sending_to_[b.participant.name];
    if (b.state_query_sending) --sending_to_[b.participant.name];
  }
  txs_.erase(it);
}

int Engine::ReplyStatus(const Tx& tx) const { return tx.outcome == Outcome::kCommitted ? 200 : 409; }

std::string_view Engine::VoteName(VoteState vote) {
  switch (vote) {
    case VoteState::kYes: return "yes";
    case VoteState::kNo: return "no";
    case VoteState::kPending:
    case VoteState::kNone: return "none";
  }
  return "none";
}

bool Engine::RepliesAsRecorded(const Tx& tx, Outcome outcome) {
  return tx.recorded_reply.is_object() && tx.recorded_reply.value("outcome", "") == OutcomeName(outcome);
}

nlohmann::json Engine::ReplyBody(const Tx& tx, Outcome outcome) const {
  if (RepliesAsRecorded(tx, outcome)) return tx.recorded_reply;
  // Member by member: nlohmann's initializer lists copy every value once more.
  nlohmann::json body(nlohmann::json::value_t::object);
  body["txid"] = tx.txid;
  body["outcome"] = OutcomeName(outcome);
  if (outcome != Outcome::kCommitted) body["reason"] = tx.reason;
  nlohmann::json& branches = body["branches"] = nlohmann::json::array();
  branches.get_ref<nlohmann::json::array_t&>().reserve(tx.branches.size());
  for (const auto& b : tx.branches) {
    nlohmann::json& branch = branches.emplace_back(nlohmann::json::value_t::object);
    branch["participant"] = b.participant.name;
    branch["vote"] = VoteName(b.vote);
    if (outcome == Outcome::kCommitted) branch["results"] = b.results;
  }
  return body;
}

JsonText Engine::ReplyText(const Tx& tx) const {
  if (RepliesAsRecorded(tx, tx.outcome)) return {DumpJson(tx.recorded_reply)};
  // The bytes DumpJson(ReplyBody(tx, tx.outcome)) writes, members in its
  // sorted order, without building that value.
  const bool committed = tx.outcome == Outcome::kCommitted;
  std::string out;
  out.reserve(96 + tx.txid.size() + tx.reason.size() + 64 * tx.branches.size());
  out += R"({"branches":[)";
  for (std::size_t i = 0; i < tx.branches.size(); ++i) {
    const Branch& b = tx.branches[i];
    if (i > 0) out += ',';
    out += R"({"participant":)";
    AppendJsonString(&out, b.participant.name);
    if (committed) {
      out += R"(,"results":)";
      AppendJson(&out, b.results);
    }
    out += R"(,"vote":")";
    out += VoteName(b.vote);
    out += R"("})";
  }
  out += R"(],"outcome":")";
  out += OutcomeName(tx.outcome);
  out += '"';
  if (!committed) {
    out += R"(,"reason":)";
    AppendJsonString(&out, tx.reason);
  }
  out += R"(,"txid":)";
  AppendJsonString(&out, tx.txid);
  out += '}';
  return {std::move(out)};
}

TxView Engine::View(const Tx& tx) const {
  TxView v;
  v.txid = tx.txid;
  v.protocol = tx.protocol;
  switch (tx.phase) {
    case Phase::kPreparing:
    case Phase::kFencing: v.state = TxState::kPreparing; break;
    case Phase::kPrecommitting: v.state = TxState::kPrecommitting; break;
    case Phase::kPrecommitted:  // or commit decided, its record to be written again
      v.state = CommitUnrecorded(tx) ? TxState::kDeciding : TxState::kPrecommitting;
      break;
    case Phase::kDeciding:  // a 2PC commit answered early delivers while its record waits
      v.state = tx.answered_early ? TxState::kDelivering : TxState::kDeciding;
      break;
    case Phase::kAbortUnrecorded: v.state = TxState::kDeciding; break;
    case Phase::kDelivering: v.state = TxState::kDelivering; break;
    case Phase::kFinishing: v.state = TxState::kFinishing; break;
  }
  // A commit answered early is certain before its record is durable.
  const bool known = tx.durable || tx.answered_early;
  v.outcome = known ? tx.outcome : Outcome::kPending;
  v.reason = tx.durable ? tx.reason : "";
  v.started_ms = tx.started_ms;
  v.decided_ms = known ? tx.decided_ms : 0;
  v.heuristic = tx.durable && tx.heuristic;
  v.in_doubt = InDoubt(tx);
  v.participants_may_terminate = tx.protocol == wire::Protocol::k3pc && tx.resumed &&
                                 (tx.phase == Phase::kFencing || (tx.phase == Phase::kPrecommitted && !CommitUnrecorded(tx)));
  if (tx.phase != Phase::kFinishing && Contradicted(tx)) v.state = TxState::kContradicted;
  for (const auto& b : tx.branches) {
    TxView::Branch vb;
    vb.participant = b.participant.name;
    vb.state = BranchState(b.acked, tx.outcome, static_cast<int>(b.vote));
    if (!b.acked && b.precommit_acked) vb.state = "precommitted";
    if (tx.phase == Phase::kPrecommitted && b.precommit_unknown) vb.state = "unknown";
    if (tx.phase == Phase::kFencing && tx.too_old_to_fence) {
      vb.state = !b.state                                ? "unknown"
                 : *b.state == StateAnswer::kHolds     ? "prepared"
                 : *b.state == StateAnswer::kCommitted ? "committed"
                 : *b.state == StateAnswer::kAborted   ? "aborted"
                                                       : "unknown";
    } else if (tx.phase == Phase::kFencing && tx.staging_in_doubt && !b.fence) {
      vb.state = "unknown";  // never fenced
    }
    if (b.contradiction) vb.state = OutcomeName(*b.contradiction);
    vb.attempts = b.attempts;
    vb.last_error = b.last_error;
    v.branches.push_back(std::move(vb));
  }
  return v;
}

std::optional<TxView> Engine::Find(const std::string& txid) const {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return std::nullopt;
  return View(it->second);
}

std::vector<TxView> Engine::List() const {
  std::vector<TxView> out;
  out.reserve(txs_.size());
  for (const auto& [txid, tx] : txs_) out.push_back(View(tx));
  return out;
}


std::optional<std::string> Engine::TxidForIdempotencyKey(const std::string& key) const {
  auto it = txid_by_key_.find(key);
  if (it == txid_by_key_.end()) return std::nullopt;
  return it->second;
}

}  // namespace commitd::coordinator
