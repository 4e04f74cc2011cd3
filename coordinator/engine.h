// The coordinator's 2PC (presumed abort) and 3PC engine as a pure state machine.
//
// It does no I/O and reads no clock: the service (or the simulator) feeds it
// events with the current time, then takes the actions it produced and
// carries them out, feeding the results back as further events.
//
// Protocol: prepare to every participant -> all vote yes -> PersistDecision
// (commit) -> once durable, reply to the client and send commit to every
// participant, retried with capped exponential backoff until acked -> all
// acked -> PersistFinished. Any no vote, failed prepare or missed deadline ->
// abort: the abort record is persisted, and once it is durable the abort goes
// to every participant that might have prepared and the client is answered
// (so an Idempotency-Key replay sees the same answer). Only a transaction
// whose staging record could not be written sends its abort at once (presumed
// abort: nothing would resume it).
//
// 3PC (Skeen; docs/protocol.md): Start writes a staging record (below) beside
// the prepares; all yes and that record durable -> precommit to every
// participant, retried until acked -> all acked -> the commit decision as above, except that the
// client is answered at once (every participant holds a durable precommit,
// so commit is certain) while commits still wait for it. A participant that
// answers it has aborted -> abort. At the precommit deadline (the
// transaction's timeout_ms after the precommits first leave) the engine commits if at least
// one participant acked (a durable precommitted participant will make the
// others commit); with no ack it keeps asking, since the participants may
// have precommitted. Once precommits are sent, only a participant answering
// that it has aborted leads to abort, and a decision whose write failed is
// written again until it is durable: a commit is never turned into an abort.
// A transaction resumed from its staging record is fenced as in 2PC (below);
// every participant prepared -> the precommit round, which then waits for
// every participant's answer. A staging record that could not be written
// aborts it (precommits need a durable record).
//
// 2PC parallel commit (docs/protocol.md): Start writes a staging record (a
// record with outcome pending, no reply) beside the prepares. Once every vote
// is yes and that record is durable, commit is the only outcome any recovery
// can reach, so the client is answered and the commits are sent at once. The
// commit record, which nobody waits for, waits for the participants' acks and
// is then written once with its finished mark; when an ack is still missing
// retry_initial_ms after the decision it is written alone, and the finished
// mark follows. Either rides on the log's next write
// (PersistDecision::rides_next_write).
// A restart (or a group's next leader) resumes a staging record without a
// decision by fencing every participant (SendFence: a keyless abort, which an
// agent takes only if it has not voted yes, and which makes a late prepare
// vote no): every participant prepared or committed -> commit; every one
// answered and some fenced -> abort. So an abort of a transaction with a
// staging record is sent only once its abort record is durable (one sent
// earlier could reach a participant after a later fence found it prepared); fenced and committed both -> in doubt
// (a participant forgot a commit), for an operator. A staging record older
// than half the agents' outcome retention is not fenced at once: its
// participants may have committed and forgotten, and a fence would record
// abort over such a commit. Every participant is asked first, read-only
// (SendStateQuery): one committed -> commit; one aborted -> abort; every one
// still holding it -> fenced as above (none forgot anything); otherwise in
// doubt, for an operator.
//
// Thread: not thread-safe; owned by the io thread of the service.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "common/wire.h"
#include "coordinator/client_body.h"
#include "coordinator/types.h"

namespace commitd::coordinator {

// Identifies a waiting client request inside the service.
using ClientToken = uint64_t;

struct StartRequest {
  std::string txid;
  wire::Protocol protocol = wire::Protocol::k2pc;
  int64_t timeout_ms = Config{}.default_tx_timeout_ms;
  std::vector<ParticipantRef> participants;   // one per branch
  std::vector<std::vector<wire::Op>> ops;     // ops[i] for participants[i]
  std::string idempotency_key;
  ClientToken client = 0;
  int64_t created_ms = 0;                     // wall clock, recorded in the log
};

// Why a transaction was aborted, in classes an operator can alert on.
enum class AbortReason {
  kVoteNo,        // a participant voted no (or refused the prepare, or had aborted before precommit)
  kLockConflict,  // a participant voted no because another transaction holds a lock it needs
  kTimeout,       // a vote did not come before the transaction's deadline
  kUnreachable,   // a participant could not be reached for its vote
  kOverload,      // refused at admission: too many transactions in flight (counted by the Node)
  kStorage,       // the decision log could not record a 3PC transaction's staging record
};
inline constexpr std::size_t kAbortReasonCount = 6;
std::string_view AbortReasonName(AbortReason r);  // "vote_no" | "lock_conflict" | ...

namespace action {
struct SendPrepare {
  ParticipantRef to;
  wire::PrepareRequest request;
  int64_t timeout_ms = 0;  // how long to wait for the vote
};
struct SendDecision {
  std::string txid;
  ParticipantRef to;
  Outcome outcome = Outcome::kAborted;
};
// A transaction was decided (once per transaction: not when a decision is
// written again, nor an operator's, counted once recorded), for counting.
// Its record may be written later (a 2PC commit answered early).
struct Decided {
  std::string txid;
  Outcome outcome = Outcome::kAborted;
  AbortReason abort_reason = AbortReason::kVoteNo;  // for an abort: its class
};
struct PersistDecision {
  DecisionRecord record;
  bool again = false;  // written again after its write failed (logged once)
  // A 2PC commit whose staging record and yes votes already make it certain:
  // nobody waits on it, so it may ride on the log's next write (still
  // durable before the engine hears it persisted).
  bool rides_next_write = false;
};
struct PersistFinished {
  std::string txid;
  int64_t finished_ms = 0;
};
struct ReplyClient {
  ClientToken client = 0;
  int status = 200;
  ClientBody body;
  // The transaction's outcome the answer tells (committed or aborted);
  // nullopt: it tells none (an error, or an outcome not known yet).
  std::optional<Outcome> outcome;
};
struct PersistStaging {  // record.outcome is kPending
  DecisionRecord record;
};
struct SendPrecommit {
  std::string txid;
  ParticipantRef to;
};
// Recovery of a staging record: a keyless abort (see FenceAnswer).
struct SendFence {
  std::string txid;
  ParticipantRef to;
};
// Recovery of a staging record too old to fence: what the participant knows
// of txid, read-only (see StateAnswer).
struct SendStateQuery {
  std::string txid;
  ParticipantRef to;
};
}  // namespace action

using Action = std::variant<action::SendPrepare, action::SendDecision, action::PersistDecision,
                            action::PersistFinished, action::ReplyClient, action::PersistStaging,
                            action::SendPrecommit, action::SendFence, action::SendStateQuery, action::Decided>;

// A participant's answer to a precommit.
enum class PrecommitAnswer {
  kAcked,              // it holds a durable precommit
  kCommitted,          // it committed (termination while the coordinator was away): commit is proven
  kAborted,            // it aborted (termination, or an abort of an earlier run)
  kUnknownTransaction  // no record and no outcome after its yes vote: it finished and forgot, or lost its database
};

// A participant's answer to a fence (a keyless POST /v1/abort).
enum class FenceAnswer {
  kFenced,     // it had not voted yes: it aborted, or left a tombstone, so it never will
  kPrepared,   // it voted yes and holds the prepared record (the abort was refused)
  kCommitted,  // it committed
};

// A participant's answer to a state query (GET /v1/transactions/{txid} at
// the agent), which changes nothing there.
enum class StateAnswer {
  kHolds,      // it holds the transaction, undecided (preparing, prepared, precommitted)
  kCommitted,  // it committed, or is committing
  kAborted,    // it aborted, or is aborting
  kUnknown,    // no record and no outcome: never prepared, forgot, or lost its database
};

struct EngineOptions {
  std::string self_url;  // put in prepare requests: where agents ask for decisions
  int64_t retry_initial_ms = Config{}.retry_initial_ms;  // decision redelivery backoff
  int64_t retry_max_ms = Config{}.retry_max_ms;
  // Decisions sent to one participant and not answered yet; more wait for a later tick.
  int64_t deliveries_per_participant = Config{}.deliveries_per_participant;
  std::string log_id;  // put in prepare requests: the decision log's identity
  // Transactions kept to write their finished mark again after it failed;
  // beyond this many one is let go (its record stays unfinished, and the
  // next start or leader delivers it again), so a log that refuses every
  // write cannot grow the engine without bound.
  int64_t max_unmarked = Config{}.max_in_flight;
  // How long agents remember a finished txid (the coordinator assumes its
  // own config's value). A staging record older than half of it when
  // resumed may have participants that committed and forgot: they are
  // asked what they know before any is fenced.
  int64_t outcome_retention_ms = Config{}.outcome_retention_ms;
  // Planted bugs for the simulator (tests/sim): never set in a binary.
  bool unsafe_fenced_as_prepared = false;     // a fenced participant counts as prepared
  bool unsafe_fence_too_old = false;          // a staging record too old to fence is fenced without asking
  bool unsafe_answer_before_staging = false;  // a 2PC commit is answered before its staging record is durable
};

// Where a transaction the coordinator holds is.
enum class TxState {
  kPreparing,      // collecting votes
  kPrecommitting,  // 3PC: every vote yes; waiting for the staging record, or for the precommits' acks
  kDeciding,       // the decision record is being written (3PC: or waits to be written again after it failed)
  kDelivering,     // decided; the decision goes to every participant (2PC: its commit record may wait for the acks)
  kFinishing,      // every participant acked; the finished mark is being written
  kInDoubt,        // prepared under another decision log: only an operator can settle it
  // Decided, and a participant did the other outcome (a forced decision
  // against what it did): not sent there again; an operator reconciles the
  // data and closes it (Engine::CloseContradicted).
  kContradicted,
};
std::string_view TxStateName(TxState s);  // "preparing" | "precommitting" | ... | "in_doubt"

// A read-only picture of a transaction the engine holds, for the API.
struct TxView {
  std::string txid;
  wire::Protocol protocol = wire::Protocol::k2pc;
  TxState state = TxState::kPreparing;
  Outcome outcome = Outcome::kPending;
  std::string reason;
  struct Branch {
    std::string participant;
    // "preparing" | "voted_yes" | "voted_no" | "no_vote" | "precommitted" | "committed" | "aborted"
    std::string state;
    int attempts = 0;   // decision deliveries tried
    std::string last_error;
  };
  std::vector<Branch> branches;
  // 3PC: a participant answered its precommit unknown_transaction, so the
  // outcome cannot be known from the participants: an operator settles it.
  bool in_doubt = false;
  int64_t started_ms = 0;
  int64_t decided_ms = 0;  // 0 while undecided
  bool heuristic = false;  // decided by an operator (forced), and recorded
  // 3PC, resumed after a restart and undecided: the engine waits for every
  // participant's answer (fence or precommit), however long. Its
  // participants are not told "pending", which would hold them all while one
  // is unreachable: they may decide among themselves (termination), and the
  // engine follows what they did (a fence answered aborted, a precommit
  // refused, a participant committed).
  bool participants_may_terminate = false;
  // Decided, and not acknowledged by every participant yet (finishing: every
  // participant acked; only its finished mark is missing).
  bool undelivered() const { return outcome != Outcome::kPending && state != TxState::kFinishing; }
};

class Engine {
 public:
  explicit Engine(EngineOptions options);

  // --- inputs -------------------------------------------------------------
  // A txid the engine holds already is refused (ReplyClient 409 duplicate_txid).
  void Start(StartRequest request, int64_t now_ms);
  // Another client waits for the answer of a running transaction (same Idempotency-Key).
  bool AttachClient(const std::string& txid, ClientToken client);
  // The answer to a SendPrepare: a vote, or why none came.
  void OnVote(const std::string& txid, const std::string& participant, Result<wire::Vote> vote, int64_t now_ms);
  void OnDecisionPersisted(const std::string& txid, const Status& status, int64_t now_ms);
  // The log refused the decision: another one for txid was recorded first
  // (first decision wins). A commit that lost to a recorded abort becomes that
  // abort; otherwise the recorded outcome is this engine's and it goes on as if
  // persisted. Returns false when the recorded outcome cannot be followed (an
  // abort already sent against a recorded commit): the caller reports it.
  bool OnDecisionConflict(const std::string& txid, Outcome recorded, const std::string& recorded_reason,
                          int64_t now_ms);
  // The answer to a SendDecision: ok when the participant acknowledged.
  void OnDecisionAcked(const std::string& txid, const std::string& participant, const Status& status,
                       int64_t now_ms);
  // The answer to a SendDecision from a participant that had finished the
  // transaction already, as `done`. The decision's own outcome is an ack;
  // the other contradicts the decision, and nothing is sent there again:
  // the transaction stays (kContradicted) until an operator closes it.
  // True when this answer contradicted the decision (not for a stale answer).
  bool OnDecisionFoundDone(const std::string& txid, const std::string& participant, Outcome done, int64_t now_ms);
  // A failed mark is written again later (capped doubling), unless the log
  // holds no record to mark (NotFound) or max_unmarked are waiting already.
  void OnFinishedPersisted(const std::string& txid, const Status& status, int64_t now_ms);
  // The staging record (both protocols).
  void OnStagingPersisted(const std::string& txid, const Status& status, int64_t now_ms);
  void OnPrecommitAcked(const std::string& txid, const std::string& participant, Result<PrecommitAnswer> answer,
                        int64_t now_ms);
  // Recovery of a staging record: the answer to a SendFence.
  void OnFenceAnswer(const std::string& txid, const std::string& participant, Result<FenceAnswer> answer,
                     int64_t now_ms);
  // Recovery of a staging record too old to fence: the answer to a SendStateQuery.
  void OnStateAnswer(const std::string& txid, const std::string& participant, Result<StateAnswer> answer,
                     int64_t now_ms);
  // Recovery: a decided transaction from the log that not every participant
  // acked, or a staging record (outcome kPending) without a decision.
  void Resume(DecisionRecord record, int64_t now_ms);
  // Deadlines and redeliveries due by now_ms.
  void Tick(int64_t now_ms);
  // Makes every pending redelivery due now (operator "retry now").
  void RetryNow(int64_t now_ms);
  // An operator's decision for a 3PC transaction left in doubt (a participant
  // answered its precommit unknown_transaction): decided as forced (heuristic).
  // False, changing nothing, for any other transaction.
  bool ForceInDoubt(const std::string& txid, Outcome outcome, std::string reason, int64_t now_ms);
  // An operator's acknowledgment of a contradicted decision, once every
  // participant acked it or contradicted it: its finished mark is written
  // (PersistFinished) and the engine lets it go.
  enum class CloseResult {
    kClosing,           // the finished mark is being written
    kNotHeld,           // no such transaction here (unknown, or finished)
    kNotContradicted,   // no participant contradicted its decision
    kFinishing,         // its finished mark is being written already
    kStillDelivering,   // a participant has neither acked nor contradicted it yet
    kNotRecorded,       // its decision record is not durable yet: ask again
  };
  CloseResult CloseContradicted(const std::string& txid, int64_t now_ms);
  // Shutdown: the clients still waiting on transactions whose staging record
  // a restart resumes (3PC precommitting, or fencing) are answered 503 with the txid.
  void AnswerClientsAtShutdown();

  // --- outputs ------------------------------------------------------------
  std::vector<Action> TakeActions();
  bool HasActions() const { return !actions_.empty(); }

  // --- queries ------------------------------------------------------------
  std::optional<TxView> Find(const std::string& txid) const;
  std::vector<TxView> List() const;
  std::optional<std::string> TxidForIdempotencyKey(const std::string& key) const;
  std::size_t undecided() const { return undecided_; }
  // Undecided transactions a shutdown waits for: collecting votes (their
  // deadline decides them), 3PC ones waiting for their staging record (its
  // write ends that wait), or live 3PC ones before their precommit deadline. Not counted: 3PC transactions past that deadline or
  // resumed (they wait on their participants, however long), and 3PC
  // decisions waiting to be written again (a restart resumes all of these
  // from the staging record).
  std::size_t undecided_due_by_deadline(int64_t now_ms) const;
  // Decided transactions whose decision record is being written (their
  // clients wait), or waits for the acks (a 2PC commit answered early).
  std::size_t awaiting_record() const { return deciding_; }
  std::size_t active() const { return txs_.size(); }
  // txid's finished mark failed and waits to be written again.
  bool awaiting_mark(const std::string& txid) const;
  // Transactions waiting to write their finished mark again.
  std::size_t unmarked() const { return unmarked_; }

 private:
  enum class Phase {
    kPreparing,
    // Resumed from a staging record: fencing the participants.
    kFencing,
    // 3PC: every vote yes, waiting for the staging record to be durable.
    kPrecommitting,
    kPrecommitted,
    kDeciding,
    // Aborted, but the abort's write failed and waits to be written again;
    // the log holds the staging record meanwhile, and the abort is not sent.
    kAbortUnrecorded,
    kDelivering,
    kFinishing,
  };
  enum class VoteState { kPending, kYes, kNo, kNone };
  struct Branch {
    ParticipantRef participant;
    VoteState vote = VoteState::kPending;
    nlohmann::json results = nlohmann::json::array();
    bool needs_decision = false;  // must get the decision and ack it
    bool acked = false;
    // It had done this instead of the decision: not sent again.
    std::optional<Outcome> contradiction;
    bool sending = false;
    int attempts = 0;
    int64_t next_send_ms = 0;
    int64_t backoff_ms = 0;
    std::string last_error;
    // Recovery of a staging record: the participant's answer to its fence.
    std::optional<FenceAnswer> fence;
    bool fence_sending = false;
    // Recovery of a staging record too old to fence: its answer to the state query.
    std::optional<StateAnswer> state;
    bool state_query_sending = false;
    int state_queries_failed = 0;  // in a row
    // 3PC precommit delivery; a fence is retried with the same timing fields.
    bool precommit_acked = false;
    bool precommit_sending = false;
    int64_t precommit_next_ms = 0;
    int64_t precommit_backoff_ms = 0;
    bool precommit_unknown = false;  // answered unknown_transaction: its outcome is not known
  };
  struct Tx {
    std::string txid;
    wire::Protocol protocol = wire::Protocol::k2pc;
    Phase phase = Phase::kPreparing;
    Outcome outcome = Outcome::kPending;
    std::string reason;
    std::vector<Branch> branches;
    std::vector<ClientToken> clients;
    std::string idempotency_key;
    int64_t created_ms = 0;
    int64_t started_ms = 0;
    int64_t deadline_ms = 0;
    int64_t decided_ms = 0;
    bool durable = false;
    bool heuristic = false;
    int votes_pending = 0;
    int64_t timeout_ms = 0;
    int64_t precommit_deadline_ms = 0;
    // The log holds its staging record (written, or resumed from).
    bool precommit_durable = false;
    // Its staging record was written beside the prepares (cleared if that
    // write failed).
    bool staging = false;
    // 2PC: the client was answered and the commits sent before the commit
    // record was durable (the staging record and the yes votes made it certain).
    bool answered_early = false;
    // 2PC parallel commit: the commit record is not written yet. It waits
    // for every participant's ack, to be written once with its finished
    // mark, until commit_record_due_ms at the latest.
    bool commit_record_held = false;
    int64_t commit_record_due_ms = 0;
    // The decision record being written carries the finished mark too.
    bool record_finishes = false;
    // With a staging record: its abort is sent once the abort record is
    // durable, not at once.
    bool abort_after_record = false;
    // Resumed from its staging record: its outcome is in doubt (a
    // participant was fenced and another committed, or the record was too
    // old to fence and a participant no longer knows it), for an operator.
    bool staging_in_doubt = false;
    // Resumed from a staging record too old to fence: the participants are
    // asked what they know (read-only) before any fence.
    bool too_old_to_fence = false;
    // With a pending record in the log: when to write the decision again
    // after its write failed (0: not waiting to), and the wait before that.
    // A 3PC commit waits in kPrecommitted (CommitUnrecorded), a 2PC commit in
    // kDeciding, an abort in kAbortUnrecorded.
    int64_t record_again_ms = 0;
    int64_t record_again_backoff_ms = 0;
    // Every participant acked and the finished mark's write failed: when to
    // write it again (0: not waiting to), and the wait before that.
    int64_t finish_retry_ms = 0;
    int64_t finish_backoff_ms = 0;
    bool resumed = false;  // from the log after a restart
    // 3PC: some participant answered its precommit unknown_transaction. A
    // peer's termination may have counted that as an abort, so the deadline
    // rule never commits this transaction (sticky, even after that
    // participant acks).
    bool unknown_seen = false;
    // Resumed: the reply the log holds (votes and SELECT results are not in
    // the engine any more); used when its outcome is the one being answered.
    nlohmann::json recorded_reply;
  };

  void Decide(Tx& tx, Outcome outcome, std::string reason, int64_t now_ms,
              AbortReason abort_reason = AbortReason::kVoteNo);
  // 3PC: every vote yes (or fenced prepared) and the staging record durable: precommits go out.
  void EnterPrecommitted(Tx& tx, int64_t now_ms);
  // 2PC: every vote yes and the staging record durable.
  void AnswerEarly(Tx& tx, int64_t now_ms);
  // Fences, or state queries first for a record too old to fence.
  void SendFencesDue(Tx& tx, int64_t now_ms);
  void CommitAgainIfDue(Tx& tx, int64_t now_ms);
  // The 2PC commit record of a transaction answered early (its first write,
  // or again after a failed one), riding on the log's next write; with its
  // finished mark when every participant acked already.
  void WriteCommitRecord(Tx& tx, bool again, int64_t now_ms);
  // Deliveries started, and every participant that needs the decision acked it.
  static bool AllAcked(const Tx& tx);
  // Takes one of `to`'s delivery slots (decisions, precommits and fences
  // share them: a restart resuming thousands of records sends them in waves;
  // the rest go out on a later tick, as answers come back) and sets
  // sending_flag. False: none is free.
  bool TakeDeliverySlot(const ParticipantRef& to, bool& sending_flag);
  void SendPrecommitsDue(Tx& tx, int64_t now_ms);
  void PrecommitDeadline(Tx& tx, int64_t now_ms);
  // 3PC, undecided, and a participant answered its precommit unknown_transaction.
  static bool InDoubt(const Tx& tx);
  // A participant answered the decision that it had done the other outcome.
  static bool Contradicted(const Tx& tx);
  // 3PC: commit was decided, and its record waits to be written again.
  static bool CommitUnrecorded(const Tx& tx);
  // The decision's write failed while the log holds the staging record.
  void RecordAgainLater(Tx& tx, const Status& status, int64_t now_ms);
  void AbortAgainIfDue(Tx& tx, int64_t now_ms);
  // The decision goes out to the participants that have not acked it.
  static bool Delivers(const Tx& tx);
  // The wait before a write is tried again: retry_initial_ms after none (0), then doubled up to retry_max_ms.
  int64_t NextBackoff(int64_t previous_ms) const;
  // A precommit not acked: why, and when it is sent again (capped doubling).
  void PrecommitAgainLater(Branch& b, std::string why, int64_t now_ms);
  // Answers every client waiting on tx, and forgets them.
  void ReplyClients(Tx& tx, int status, ClientBody body, std::optional<Outcome> outcome);
  // ReplyClients with the transaction's answer (its outcome decided).
  void AnswerClients(Tx& tx);
  DecisionRecord RecordOf(const Tx& tx, Outcome outcome, int64_t now_ms) const;
  void StartDelivery(Tx& tx, Branch& b, int64_t now_ms);
  // The abort goes to every participant but those that voted no (they aborted already).
  void StartAbortDeliveries(Tx& tx, int64_t now_ms);
  void SendDue(Tx& tx, int64_t now_ms);
  void MaybeFinish(Tx& tx, int64_t now_ms);
  void FinishAgainIfDue(Tx& tx, int64_t now_ms);
  // The client's answer for the outcome, as a value (what a decision record
  // keeps for a replay) and as the text ReplyBody(tx, tx.outcome) dumps to.
  nlohmann::json ReplyBody(const Tx& tx, Outcome outcome) const;
  JsonText ReplyText(const Tx& tx) const;
  // A resumed transaction answers with the reply its record keeps, when that
  // reply is for this outcome.
  static bool RepliesAsRecorded(const Tx& tx, Outcome outcome);
  static std::string_view VoteName(VoteState vote);  // "yes" | "no" | "none"
  int ReplyStatus(const Tx& tx) const;
  Branch* FindBranch(Tx& tx, const std::string& participant);
  // The branch a precommit's or a fence's answer is for (null: none), no
  // longer counted as sending (`sending`: that message's flag); *tx is set
  // when the transaction is held.
  Branch* AnsweredBranch(const std::string& txid, const std::string& participant, bool Branch::*sending, Tx** tx);
  TxView View(const Tx& tx) const;
  void SetPhase(Tx& tx, Phase phase);  // keeps deciding_
  void Erase(std::unordered_map<std::string, Tx>::iterator it);

  EngineOptions options_;
  std::unordered_map<std::string, Tx> txs_;
  std::unordered_map<std::string, std::string> txid_by_key_;
  std::size_t undecided_ = 0;
  std::size_t deciding_ = 0;  // transactions in Phase::kDeciding
  std::size_t unmarked_ = 0;  // transactions with finish_backoff_ms != 0
  std::unordered_map<std::string, int64_t> sending_to_;  // participant -> decisions and precommits sent, not answered
  std::vector<Action> actions_;
};

}  // namespace commitd::coordinator
