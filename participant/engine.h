// The participant's 2PC and 3PC engine as a pure state machine.
//
// It decides what happens to each transaction on this agent; the participant
// Node (participant/node.h) carries out its actions: storage jobs on the
// resource manager, replies to requests, and questions to the coordinator.
//
// Rules it keeps:
//  - a yes vote is sent only after the prepared record is durable;
//  - a commit is acknowledged only after it is applied and durable;
//  - lock keys are taken by the resource manager as it writes the prepared
//    record (a held key votes no; once, briefly, a prepare first waits for a
//    holder that voted yes here, holding nothing meanwhile) and released exactly when the
//    commit is applied or the abort done; the engine keeps a copy of the
//    table, as of the completions it has seen, for listings;
//  - a prepared transaction past its deadline is never decided alone: the
//    engine keeps asking the coordinator(s), with capped exponential backoff;
//  - 3PC (docs/protocol.md): a precommit is acknowledged only once the record
//    says "precommitted" durably; past its deadline a 3PC transaction asks the
//    coordinator(s) first and, when none answers, runs the termination
//    protocol with the other participants (CallPeers): any committed -> commit;
//    any aborted or unknown -> abort; any precommitted -> precommit every
//    prepared peer, then commit; all merely prepared -> abort. A participant
//    restarted from its database (recovered) decides only on decisive evidence
//    or with every peer's answer, never alone;
//  - an abort of a record that voted yes is taken only with the abort key its
//    prepare carried (common/abort_key.h): from its coordinator, or from a
//    peer that decided abort by termination. Any other abort, and every
//    abort of a record whose prepare carried no key (an older coordinator's),
//    is refused 409 abort_not_from_coordinator and makes the engine ask the
//    coordinator at once; only its answer aborts such a record;
//  - a commit or precommit of a record that voted yes is taken only with the
//    commit key whose check its prepare carried (common/abort_key.h): from
//    its coordinator, or from a precommitted peer that was given the key and
//    decided commit by termination. Any other is refused 409
//    commit_not_from_coordinator, changes nothing, and makes the engine ask
//    the coordinator at once. A record whose prepare carried no check (an
//    older coordinator's) takes any commit or precommit;
//  - duplicates are answered consistently: a repeated prepare gets the same
//    vote, a repeated commit or abort is acknowledged again, an abort before
//    its prepare leaves a tombstone so the late prepare votes no, and a commit
//    for a txid never prepared is an error.
//
// Ordering assumption: Prepare, ApplyCommit and ApplyAbort run on one FIFO
// storage thread whose completions are fed back in order; the resource
// manager's lock table decides there (ResourceManager::Prepare).
//
// Thread: not thread-safe; owned by the agent's io thread.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "common/wire.h"
#include "participant/lock_table.h"
#include "participant/outcome.h"
#include "participant/remembered_outcomes.h"
#include "participant/resource_manager.h"

namespace commitd::participant {

using RequestToken = uint64_t;

enum class Decision { kPending, kCommit, kAbort };

// A reply's body. A vote stays typed until it leaves the agent, which writes
// it with wire::VoteText; any other reply is a JSON value.
using ReplyBody = std::variant<nlohmann::json, wire::Vote>;
// The body as a JSON value (a vote's through wire::ToJson).
nlohmann::json JsonOf(const ReplyBody& body);

namespace action {
// Execute the ops, take their lock keys and write the prepared record: one
// storage job (ResourceManager::Execute, then ResourceManager::Prepare),
// answered through OnPrepared.
struct Prepare {
  std::vector<wire::Op> ops;
  PreparedRecord record;  // without changeset and lock keys: the execution gives them
};
struct ApplyCommit {  // ResourceManager::Commit: apply the changeset, delete the record, remember "committed"
  std::string txid;
};
struct ApplyAbort {   // ResourceManager::Abort: delete the record, remember "aborted"
  std::string txid;
};
// "aborted" for a txid that holds no record here (a no vote, an abort before
// its prepare): any abort of it is answered once this is durable
// (OnTombstoneWritten), so a prepare arriving after a restart still votes no.
struct WriteTombstone {
  std::string txid;
  bool again = false;  // a write that failed before, retried: not a new no vote
};
struct ForgetOutcomesBefore {
  int64_t cutoff_ms = 0;
};
struct Reply {
  RequestToken to = 0;
  int status = 200;
  ReplyBody body;
};
struct QueryDecision {
  std::string txid;
  std::string log_id;  // the decision log the record was prepared under ("" if unknown)
  std::vector<std::string> coordinators;  // URLs, in the order to try
};
struct PersistPrecommitted {  // the record's state becomes "precommitted"
  std::string txid;
};
// Store::Adopt, answered through OnAdoptionPersisted.
struct PersistAdoption {
  std::string txid;
  Adoption adoption;
};
enum class PeerCall { kState, kPrecommit, kCommit, kAbort };
// 3PC termination: one request to each peer (GET /v1/transactions/{txid},
// POST /v1/precommit, /v1/commit, /v1/abort). kState and kPrecommit are
// answered through OnPeerAnswers; kCommit and kAbort are not waited for.
struct CallPeers {
  std::string txid;
  PeerCall call = PeerCall::kState;
  std::vector<wire::ParticipantRef> peers;
  std::string abort_key;  // kAbort: the transaction's abort key ("" if its prepare had none)
  std::string commit_key;  // kPrecommit, kCommit: the commit key this agent was given ("" if none)
};
}  // namespace action

using Action = std::variant<action::Prepare, action::ApplyCommit, action::ApplyAbort,
                            action::WriteTombstone, action::ForgetOutcomesBefore, action::Reply,
                            action::QueryDecision, action::PersistPrecommitted, action::PersistAdoption,
                            action::CallPeers>;

// A peer's answer in the termination protocol: the state it reports
// (StateOf's names), or why it did not answer.
struct PeerAnswer {
  std::string name;
  Result<std::string> state = Status::Unavailable("no answer");
};

struct EngineOptions {
  std::vector<std::string> coordinators;     // --coordinator URLs, asked after the record's own
  int64_t resolve_initial_ms = Config{}.resolve_initial_ms;
  int64_t resolve_max_ms = Config{}.resolve_max_ms;
  int64_t outcome_retention_ms = Config{}.outcome_retention_ms;  // in the store
  int64_t outcome_memory_ms = Config{}.outcome_memory_ms;        // in memory too (capped by retention)
  // 3PC: how long past its deadline a prepared participant waits before it
  // runs the termination protocol without the coordinator; it must exceed the
  // longest a precommit can take to arrive (3PC assumes bounded delays).
  int64_t termination_grace_ms = Config{}.termination_grace_ms;
  std::string name;  // this participant's name: excluded from a 3PC transaction's peers
};

// Where a transaction this agent holds stands.
enum class HeldState {
  kPreparing,      // its prepare is being written: no record yet
  kPrepared,
  kPrecommitting,  // 3PC: its precommit is being written
  kPrecommitted,
  kCommitting,
  kAborting,
  kConflict,       // its commit's changeset did not apply cleanly; held until an operator acts
};
// "preparing", "prepared", ...: the names GET /v1/transactions and peers use.
std::string_view HeldStateName(HeldState state);

// One transaction held on this agent, for GET /v1/transactions.
struct HeldView {
  std::string txid;
  HeldState state = HeldState::kPreparing;
  // false while the prepare is being written (kPreparing): no record yet.
  bool record_durable = false;
  wire::Protocol protocol = wire::Protocol::k2pc;
  int64_t age_ms = 0;
  int64_t deadline_ms = 0;  // wall clock
  std::string coordinator;
  std::string log_id;  // the coordinator's decision log ("" if the prepare named none)
  std::string adopted_by;  // the decision log that adopted the record ("" if none)
  std::string last_error;
};
// A held transaction as GET /v1/transactions lists it (docs/participant.md).
nlohmann::json HeldJson(const HeldView& v);

class Engine {
 public:
  explicit Engine(EngineOptions options);

  // --- inputs (now_ms: wall clock in milliseconds) -------------------------
  void OnPrepare(wire::PrepareRequest request, RequestToken token, int64_t now_ms);
  // The storage job of a Prepare: its result, or the batch's error (then nothing of it lasted).
  void OnPrepared(const std::string& txid, PrepareResult result, const Status& status, int64_t now_ms);
  // commit_key: what the request carried ("" if nothing).
  void OnCommit(const std::string& txid, const std::string& commit_key, RequestToken token, int64_t now_ms);
  // abort_key: what the request carried ("" if nothing).
  void OnAbort(const std::string& txid, const std::string& abort_key, RequestToken token, int64_t now_ms);
  void OnCommitApplied(const std::string& txid, const Status& status, int64_t now_ms);
  void OnAbortApplied(const std::string& txid, const Status& status, int64_t now_ms);
  // The store's answer to a WriteTombstone: the outcome it holds for txid.
  void OnTombstoneWritten(const std::string& txid, const Result<Outcome>& held);
  // 3PC: POST /v1/precommit, from the coordinator or a peer running termination.
  void OnPrecommit(const std::string& txid, const std::string& commit_key, RequestToken token, int64_t now_ms);
  void OnPrecommitPersisted(const std::string& txid, const Status& status, int64_t now_ms);
  // POST /v1/adopt: a coordinator whose log is not the record's (that one was
  // lost or replaced) takes over a record that voted yes and is undecided:
  // from now on only the adopting log's keys decide it, so decisions of the
  // lost log still in the network are refused, and it no longer runs 3PC
  // termination (the adopter's forced decision settles it). Answered 200
  // once durable; a record that is deciding, or decided, says so (409), one
  // not known here 404 unknown_transaction, one still preparing 409 not_prepared.
  void OnAdopt(const wire::AdoptRequest& request, RequestToken token, int64_t now_ms);
  void OnAdoptionPersisted(const std::string& txid, const Status& status, int64_t now_ms);
  // The answers to a CallPeers of kind kState or kPrecommit, one per peer.
  void OnPeerAnswers(const std::string& txid, action::PeerCall call, std::vector<PeerAnswer> answers,
                     int64_t now_ms);
  // The coordinator's answer to a QueryDecision, or why none came.
  void OnDecisionAnswer(const std::string& txid, Result<Decision> answer, int64_t now_ms);
  // Startup: the prepared records found in the database. Every record is
  // asked about at once.
  void Recover(std::vector<PreparedRecord> records, int64_t now_ms);
  void Tick(int64_t now_ms);

  // --- outputs -------------------------------------------------------------
  std::vector<Action> TakeActions();

  // --- queries -------------------------------------------------------------
  std::vector<HeldView> Held(int64_t now_ms) const;
  const LockTable& locks() const { return locks_; }
  std::optional<std::string> OutcomeOf(const std::string& txid) const;
  // Holds txid, or remembers its outcome in memory.
  bool Knows(const std::string& txid) const;
  // An outcome the store remembers past the memory window or from before
  // this start (the Node looks it up before a commit, abort, precommit or
  // state question about a txid the engine does not know): remembered in
  // memory again. Ignored when txid is known.
  void LearnOutcome(const std::string& txid, Outcome outcome, int64_t now_ms);
  // What a peer asking about txid is told: a HeldView state, "committed",
  // "aborted", or "unknown" (never seen here, or forgotten).
  std::string StateOf(const std::string& txid) const;
  // Transactions whose changeset did not apply cleanly (each counted once).
  uint64_t conflicts() const { return conflicts_; }

 private:
  using State = HeldState;
  struct Tx {
    State state = State::kPreparing;
    wire::Protocol protocol = wire::Protocol::k2pc;
    std::string coordinator;
    std::string log_id;
    std::string abort_key;
    std::string commit_check;  // from the prepare ("" from an older coordinator)
    // The commit key, once a commit or precommit carrying it arrived; kept in
    // memory only (a restarted agent has none: its peers then commit on its
    // state, by their own termination).
    std::string commit_key;
    std::vector<wire::ParticipantRef> participants;
    int64_t timeout_ms = 0;
    int64_t created_ms = 0;
    int64_t deadline_ms = 0;
    nlohmann::json results = nlohmann::json::array();
    std::vector<RequestToken> prepare_waiters;
    std::vector<RequestToken> commit_waiters;
    std::vector<RequestToken> abort_waiters;
    bool abort_requested = false;
    // Its prepare met a key held by a transaction that voted yes here: it
    // waits (once) for that one to be decided and applied, then runs again.
    std::optional<action::Prepare> waiting_prepare;
    std::string waiting_for;  // the holder
    int64_t wait_until_ms = 0;
    bool waited = false;
    bool conflict_counted = false;
    std::vector<RequestToken> precommit_waiters;
    bool querying = false;
    int64_t next_query_ms = 0;
    int64_t query_backoff_ms = 0;
    std::string last_error;
    // 3PC.
    bool precommitted = false;       // the record says "precommitted" durably
    // Set when an abort starts (every abort here is decided: the
    // coordinator's, a peer's termination, this agent's own). If its apply
    // fails the state goes back to prepared or precommitted, but a precommit
    // or commit is refused and the abort is applied again on a later tick.
    // Not kept across a restart.
    bool abort_decided = false;
    bool recovered = false;          // loaded from the database at startup
    std::string adopted_by;          // the adopting decision log (PreparedRecord::adopted_by)
    // An adoption being written: its waiters, and the keys it replaced
    // (restored if the write fails). The new keys are in force meanwhile.
    std::vector<RequestToken> adopt_waiters;
    std::optional<Adoption> replaced_keys;
    bool terminating = false;        // a termination round is running
    bool precommit_then_push = false;  // termination: once precommitted here, precommit the prepared peers
    std::vector<wire::ParticipantRef> prepared_peers;  // termination: peers that answered "prepared"
    int64_t terminate_after_ms = 0;  // termination may start once the coordinator is silent past this
  };
  void VoteNo(const std::string& txid, Tx& tx, const std::string& reason, int64_t now_ms,
              wire::VoteNoCode code = wire::VoteNoCode::kOther);
  // A prepare that met a key of `holder`: parks it when holder voted yes here
  // (its commit or abort usually arrives within a round trip: the
  // coordinator answers a client as it sends the commits, and the client's
  // next transaction may reach this agent first). Returns whether it waits.
  bool WaitForHolder(const std::string& txid, Tx& tx, PrepareResult& result, int64_t now_ms);
  // Runs the prepares that wait for `holder` again.
  void RunWaitingPrepares(const std::string& holder);
  // Runs txid's waiting prepare again now (its holder done, its wait over, or an abort came).
  void RunWaitingPrepare(const std::string& txid, Tx& tx);
  void StartCommit(const std::string& txid, Tx& tx, std::optional<RequestToken> token);
  void StartAbort(const std::string& txid, Tx& tx, std::optional<RequestToken> token);
  void Finish(const std::string& txid, Outcome outcome, int64_t now_ms);
  // Remembers txid's outcome in memory from now_ms. Every caller has
  // checked that txid is neither held nor remembered: an outcome is never
  // remembered twice, and replaced only by what the store reports it holds
  // (OnTombstoneWritten).
  void Remember(const std::string& txid, Outcome outcome, int64_t now_ms);
  // Forgets from memory what was remembered before cutoff_ms.
  void ForgetBefore(int64_t cutoff_ms);
  // A prepare of a txid that finished here: the vote it had, again.
  void AnswerFinishedPrepare(const std::string& txid, Outcome outcome, RequestToken token);
  // An abort of a txid that finished here.
  void AnswerFinishedAbort(const std::string& txid, Outcome outcome, RequestToken token);
  // Writes txid's tombstone; `aborts` are answered once it is durable.
  void WriteTombstone(const std::string& txid, std::vector<RequestToken> aborts, bool again = false);
  // A prepare's storage job found txid finished here before: no record was
  // written; its waiters are answered as for a finished transaction.
  void OnPreparedFinishedBefore(const std::string& txid, Tx& tx, Outcome outcome, int64_t now_ms);
  // Whether txid finished here before is unknown (its storage job could not
  // read it): the waiters are answered 503, and nothing is decided or
  // remembered, so a retry reads again.
  void AbandonPrepare(const std::string& txid, Tx& tx, const std::string& why);
  void ReplyAll(std::vector<RequestToken>& waiters, int status, ReplyBody body);
  bool Resolvable(const Tx& tx) const;  // waiting for a decision it may ask about
  // The state a commit or precommit is answered by: a decided abort whose
  // apply failed (the state back to prepared or precommitted) answers as aborting.
  static State AnsweredAs(const Tx& tx);
  // A commit or precommit for a record that voted yes: refused (and answered)
  // unless it carries the commit key; returns whether it may go on.
  bool CommitKeyAccepted(const std::string& txid, Tx& tx, const std::string& commit_key, RequestToken token,
                         int64_t now_ms);
  void WaitLonger(Tx& tx, std::string why, int64_t now_ms);
  // 200 to an adoption: {"txid", "state", "adopted_by", "participants"} (the
  // transaction's participants as its prepare named them).
  static nlohmann::json AdoptedBody(const std::string& txid, const Tx& tx);
  void StartTermination(const std::string& txid, Tx& tx, int64_t now_ms);
  void DecideTermination(const std::string& txid, Tx& tx, const std::vector<PeerAnswer>& answers, int64_t now_ms);
  void PushPrecommit(const std::string& txid, Tx& tx, int64_t now_ms);
  void Conclude(const std::string& txid, Tx& tx, bool commit, const std::string& why);
  std::vector<wire::ParticipantRef> Peers(const Tx& tx) const;
  wire::Vote VoteBody(const std::string& txid, bool yes, const std::string& reason, const nlohmann::json& results,
                      wire::VoteNoCode code = wire::VoteNoCode::kOther) const;


  EngineOptions options_;
  std::unordered_map<std::string, std::vector<std::string>> waiting_for_;  // holder -> txids whose prepare waits
  std::unordered_map<std::string, Tx> txs_;
  // The outcomes of the last outcome_memory_ms (the store keeps them for
  // outcome_retention_ms), oldest first: the purge pops what is past the
  // memory window (a tombstone still being written goes to the back
  // instead). What each costs is what an agent's memory grows by at a steady
  // rate (docs/operations.md): keep it small.
  RememberedOutcomes finished_;
  // Tombstones being written, with the aborts that wait for them. Their
  // "aborted" is in finished_ already, so prepares vote no meanwhile.
  std::unordered_map<std::string, std::vector<RequestToken>> tombstones_writing_;
  // Tombstones whose write failed (their aborts got 503): the next abort of
  // the txid writes it again. Each is also in finished_ and leaves with it.
  std::unordered_set<std::string> tombstones_unwritten_;
  LockTable locks_;
  std::vector<Action> actions_;
  int64_t next_forget_ms_ = 0;
  uint64_t conflicts_ = 0;
};

// {"error":{"code":code,"message":message},"txid":txid}
nlohmann::json AgentError(std::string_view code, std::string_view message, const std::string& txid);

}  // namespace commitd::participant
