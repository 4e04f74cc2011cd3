// Node: the coordinator's rules around the pure Engine — what it decides,
// records and delivers, and when. It owns the engine, the participant
// registry (health, catalogs), the waiting clients, txid issuance,
// idempotency lookups, admission, presumed abort on a decision query, the
// takeover sweep, resume at start and on leadership, forced (heuristic)
// decisions and the shutdown rule.
//
// It reaches the world only through what it is given: a DecisionLog, an
// AgentTransport, Timers and, in a group, Leadership. Its API takes and
// returns typed values; adapters (coordinator/service.cc over HTTP, the
// simulator over its network) parse requests and render answers.
//
// Thread: single-threaded and event-driven; every method and every callback
// of what it is given runs on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/config.h"
#include "common/entropy.h"
#include "common/log.h"
#include "common/status.h"
#include "common/wire.h"
#include "coordinator/agent_transport.h"
#include "coordinator/client_body.h"
#include "coordinator/decision_log.h"
#include "coordinator/engine.h"
#include "coordinator/leadership.h"
#include "common/timers.h"
#include "common/trace_context.h"
#include "coordinator/txid_issuer.h"
#include "coordinator/tx_keys.h"

namespace commitd::coordinator {

// A let-go retake's delay doubles up to this many times retry_max_ms.
inline constexpr int64_t kLetGoRetakeMaxFactor = 64;

struct NodeOptions {
  std::string id = "c1";    // txid prefix; named in presumed-abort reasons
  std::string self_url;     // where agents ask for decisions (put in prepares)
  std::vector<RegistryEntry> participants;  // configured (--participant): they win over the log's registry
  int64_t default_tx_timeout_ms = 0;
  int64_t max_in_flight = 0;         // undecided transactions; more are refused (overloaded)
  int64_t max_participants = Config{}.max_participants;  // registry entries; registering more is refused
  int64_t tick_ms = 0;
  int64_t health_interval_ms = 0;   // probe period, and how long one probe may take
  int64_t health_stale_probes = Config{}.health_stale_probes;  // healthy: answered within this many intervals
  // An unreachable participant: probed after 1, 2, 4, ... intervals, up to this.
  int64_t health_backoff_max_ms = Config{}.health_backoff_max_ms;
  int64_t catalog_timeout_ms = 0;    // fetching an unknown catalog while a client waits
  int64_t shutdown_grace_ms = Config{}.shutdown_grace_ms;  // how long shutdown waits for decision delivery
  int64_t decision_retention_ms = Config{}.decision_retention_ms;  // finished decisions are deleted after this
  int64_t forgotten_key_retention_ms = Config{}.forgotten_key_retention_ms;  // their keys are refused this much longer
  // Group: how long a member that let go of its transactions after a failed
  // append, and still leads the same term, waits before it takes over again
  // what the log holds unfinished. A leadership transfer refuses appends
  // until it ends, within an election timeout.
  int64_t retake_delay_ms = Config{}.raft_election_timeout_ms;
  // Records of transactions the engine let go of after their finished marks
  // failed (beyond engine.max_unmarked) are taken over again engine.retry_max_ms
  // later, and twice as late as the last time while marks keep being let go,
  // up to this.
  int64_t let_go_retake_max_ms = kLetGoRetakeMaxFactor * Config{}.retry_max_ms;
  EngineOptions engine;
  // Test-only fault switch (the simulator's planted bug), never set by the
  // binary: a presumed abort is answered without being recorded first.
  bool unsafe_presume_without_record = false;
  // Likewise: a group member that let go of its transactions after a failed
  // append takes nothing over again while it leads the same term, and records
  // let go of after their finished marks failed are taken over by no one
  // until the next start (or the next leader).
  bool unsafe_no_retake = false;
  // Likewise: an operator's forced decision for a transaction this
  // coordinator holds no record of is recorded without adopting it at its
  // participants first.
  bool unsafe_force_without_adoption = false;
  // Likewise: a retry answered from a decision record found by its
  // Idempotency-Key is answered 409 (aborted), whatever the record says.
  bool unsafe_replay_as_abort = false;
};

// The one place Config becomes Node and Engine options.
EngineOptions EngineOptionsFor(const Config& config, std::string self_url);
NodeOptions NodeOptionsFor(const Config& config, std::string id, std::string self_url);

enum class NodeErrorKind {
  kInvalidRequest,    // the request is wrong: nothing changed
  kOverloaded,        // too many transactions in flight: retry later
  kStopping,          // shutting down
  kStorage,           // the decision log failed
  kInProgress,        // the Idempotency-Key's transaction is still running
  kLeadershipLost,    // the outcome is unknown here: retry with the same key, or look it up
  kUndecided,         // force: the protocol still decides it
  kDecisionConflict,  // force: another decision was recorded meanwhile
  kUnknownLog,        // a decision query about a record prepared under another decision log: no answer here
  kNotFound,          // no such participant
  kParticipantInUse,  // the participant holds undecided or undelivered transactions, or is configured
  kForgotten,         // the txid's record was deleted after decision_retention_ms: its outcome is not known here
  kKeyForgotten,      // the Idempotency-Key's decision was deleted after retention: not run again
  // A participant's question about a 3PC transaction resumed after a restart
  // and not decided yet (TxView::participants_may_terminate): no answer.
  kRecovering,
  // force: a participant did not answer its adoption; nothing was recorded
  kParticipantUnavailable,
  kNotContradicted,  // close: no participant contradicted the decision
  kStillDelivering,  // close: a participant has not answered the decision yet
};
struct NodeError {
  NodeErrorKind kind;
  std::string message;
};

// The client's answer: the engine's reply (HTTP status and JSON body, also
// what an Idempotency-Key replay finds in the log), or an error.
struct TxReply {
  int status = 200;
  ClientBody body;
  // The transaction's outcome the body tells; nullopt: none (an error, or
  // not known yet).
  std::optional<Outcome> outcome;
};
using SubmitResult = std::variant<TxReply, NodeError>;

struct SubmitRequest {
  wire::TxRequest tx;
  std::string idempotency_key;  // "" when none
  // The client's trace (the coordinator's span in it); nullopt: none (every
  // agent call then starts a trace of its own, see TraceFor).
  std::optional<TraceContext> trace;
};

// No record: under presumed abort it did not commit. `recorded`: the abort is
// in the log (first decision wins). `group`: every member's URL (they share the log).
struct PresumedAbort {
  std::string txid;
  bool recorded = false;
  std::vector<std::string> group;
};
// The engine's view (running here), the log's record, or presumed abort.
using TxLookup = std::variant<TxView, DecisionRecord, PresumedAbort, NodeError>;

enum class TxListState { kAny, kPending, kInDoubt, kCommitted, kAborted };
struct TxListQuery {
  TxListState state = TxListState::kAny;
  std::size_t limit = 100;
};
// Pending and in-doubt transactions come from the engine, the rest from the log.
using TxList = std::variant<std::vector<TxView>, std::vector<DecisionRecord>, NodeError>;

struct ParticipantStatus {
  RegistryEntry entry;
  bool catalog_known = false;
  std::set<std::string> procedures;
  bool allow_raw_sql = false;
  // What the agent's catalog says it remembers finished txids for (nullopt:
  // not known). Shorter than this coordinator's outcome_retention_ms, a
  // staging record may be fenced after the agent forgot a commit.
  std::optional<int64_t> outcome_retention_ms;
  bool healthy = false;
  int64_t last_seen_ms = 0;
  std::string last_error;
};

struct ForcedParticipant {
  std::string name;
  std::optional<std::string> url;  // nullopt: the registry's
};
struct ForceRequest {
  std::string txid;
  Outcome outcome = Outcome::kAborted;  // committed | aborted
  std::vector<ForcedParticipant> participants;
  std::string reason;  // "" for the default
  std::optional<TraceContext> trace;  // as SubmitRequest::trace, for the forced decision's delivery
  // Participants gone for good: a force of a txid without a record asks
  // every participant an adopted record names, but these.
  std::vector<std::string> skip_participants;
};
struct ForceResult {
  enum class Kind {
    kForced,          // recorded as a heuristic decision and being delivered
    kAlreadyDecided,  // decided the same way: nothing changed
    kConflict,        // decided the other way: refused
    // Held under another log, and `participant` did the other outcome
    // (`outcome`): refused, nothing recorded.
    kParticipantDecided,
  };
  Kind kind = Kind::kForced;
  Outcome outcome = Outcome::kAborted;  // the decision that stands
  std::string participant;  // kParticipantDecided
  std::variant<TxView, DecisionRecord> transaction;
};
using ForceAnswer = std::variant<ForceResult, NodeError>;

// Counters the adapter renders (GET /metrics).
struct NodeMetrics {
  uint64_t started = 0;
  uint64_t committed = 0;
  uint64_t aborted = 0;
  uint64_t aborts_by_reason[kAbortReasonCount] = {};  // by AbortReason; kOverload: refused at admission
  uint64_t heuristic = 0;  // forced decisions in the log (counted from it at start and on leadership)
  uint64_t rejected_overload = 0;
  uint64_t commits_unknown_at_participant = 0;  // commit deliveries answered unknown_transaction
  // Decision deliveries a participant answered with the other outcome (it had finished the transaction so).
  uint64_t decisions_contradicted = 0;
  uint64_t precommits_unknown_at_participant = 0;  // 3PC precommits answered unknown_transaction
  uint64_t precommits_sent = 0;
  uint64_t swept = 0;  // undecided transactions presumed aborted at takeover
  uint64_t forgotten = 0;  // finished decisions deleted after decision_retention_ms (by this node)
  uint64_t finished_mark_failures = 0;  // finished marks whose write failed (each is written again later)
};

// Retention runs one bounded batch per interval, and the next one at once
// while batches come back full (a backlog), each a job of its own between
// client batches on the storage queue.
constexpr std::size_t kForgetBatch = 512;
int64_t ForgetIntervalMs(int64_t retention_ms);  // retention/10, within 10 ms .. 1 s

class Node {
 public:
  // leadership: nullptr for a single coordinator. entropy: the random part of
  // txids. Everything given outlives the Node.
  Node(NodeOptions options, DecisionLog& log, AgentTransport& agents, Timers& timers, Entropy& entropy,
       Leadership* leadership);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Single: recovers the log, resumes every unfinished transaction, sweeps.
  // Group: waits for leadership (then the same).
  Status Start();
  // Refuses new work, lets undecided transactions finish (bounded by their
  // deadlines) and delivery run a short grace, then calls done once.
  void Shutdown(std::function<void()> done);
  bool stopping() const { return stopping_; }

  void Submit(SubmitRequest request, std::function<void(SubmitResult)> done);
  // asker: the participant asking (a decision query), "" for anyone else.
  // A participant's question about an unknown txid (and any such question in
  // a group) records the presumed abort before it is answered. asker_log_id:
  // the log the asker's record was prepared under ("" if it does not know);
  // a coordinator (or group) whose log is another one answers kUnknownLog and
  // records nothing (its log cannot prove anything about that record). To a
  // single coordinator, a participant naming no log, or another one, is
  // checked against its agent's listing first (CheckRecordAtAgent).
  void GetTransaction(const std::string& txid, const std::string& asker, const std::string& asker_log_id,
                      std::function<void(TxLookup)> done);
  void ListTransactions(TxListQuery query, std::function<void(TxList)> done);
  std::vector<ParticipantStatus> Participants() const;
  // Records the entry (name, url), then probes the agent.
  void PutParticipant(std::string name, std::string url, std::function<void(std::optional<NodeError>)> done);
  // Removes the entry durably; refused while a transaction this coordinator
  // holds (undecided, being delivered, or in doubt under another log) names it.
  void RemoveParticipant(const std::string& name, std::function<void(std::optional<NodeError>)> done);
  // In a group, only a leader whose log has its identity records one. A
  // transaction neither held here nor in the log is adopted at every named
  // participant first (AdoptionVerdict): the decision is recorded only if
  // what they answer allows it.
  void Force(ForceRequest request, std::function<void(ForceAnswer)> done);
  // Every pending redelivery due now; returns the transactions not finished.
  std::size_t RetryNow();
  // An operator's word that the data of a contradicted transaction
  // (TxState::kContradicted) was reconciled by hand: it is marked finished.
  // Answers once the mark is durable, with the transaction as it was.
  void CloseContradicted(const std::string& txid, std::function<void(std::variant<TxView, NodeError>)> done);

  const NodeMetrics& metrics() const { return metrics_; }
  std::size_t undecided() const;
  // Records agents hold prepared for this coordinator under another decision
  // log (its log was lost or replaced): never presumed aborted, kept in doubt
  // until an operator forces them.
  std::size_t in_doubt_foreign_log() const { return foreign_.size(); }
  std::size_t active() const;
  // Decided transactions not yet acknowledged by every participant, by kind.
  struct InDoubt {
    std::size_t undelivered = 0;  // decided by the protocol, delivery still running
    std::size_t held = 0;         // decided by an operator (forced), delivery still running
    std::size_t foreign_log = 0;  // prepared under another decision log: waiting for an operator
    // 3PC, undecided: a participant answered its precommit unknown_transaction; waiting for an operator.
    std::size_t precommit_unknown = 0;
    std::size_t staging_unknown = 0;  // undecided, resumed from its staging record (either protocol)
    // Decided, and a participant did the other outcome: waiting for an operator to close it.
    std::size_t contradicted = 0;
  };
  InDoubt in_doubt() const;
  // Every transaction the engine holds (for diagnostics).
  std::vector<TxView> Transactions() const;
  // The trace the agent calls about txid belong to: the client's, or one
  // started from `fresh` (and kept, and logged) on the first call, e.g. for a
  // decision resumed after a restart or by a new leader. Forgotten once the
  // transaction is finished here.
  TraceContext TraceFor(const std::string& txid, Entropy& fresh);

 private:
  struct Waiting;

  bool group() const { return leadership_ != nullptr; }
  void NewEngine();
  void Resume(RecoveredLog recovered);
  void OnLeadership(bool ready);
  void DropEngine(const std::string& why);
  // Group: an append this engine could not confirm. Drops the engine; a
  // member that still leads the term takes over again (ScheduleRetake).
  void DropUnconfirmed(const std::string& why);
  // After delay_ms, takes over every unfinished record the engine does not
  // hold (Retake), then, if sweep, runs the takeover sweep. One at a time per
  // engine: a second call while one waits only adds its sweep.
  void ScheduleRetake(uint64_t term, int64_t delay_ms, bool sweep);
  void Retake(uint64_t term, int64_t delay_ms);
  void RetakeLater(uint64_t term, int64_t delay_ms, log::Level level, const char* event, const Status& why);
  void LeadAgainLater();
  // The engine let go of a transaction whose finished mark failed: its record
  // stays unfinished; take it over again later (delay doubling while it recurs).
  void RetakeLetGo();
  // Still the ready leader of term (a single coordinator: always), and the
  // engine not dropped since epoch.
  bool StillLeads(uint64_t term, uint64_t epoch) const;
  // Into the engine, as records of the log: what it holds already stays as it is.
  void ResumeRecords(std::vector<DecisionRecord> records);
  // Answers the operator's request that forced txid in doubt (if any), once its record's write is done.
  void AnswerForce(const std::string& txid, const Status& written);
  void SweepUndecided();
  // The sweep's presumed abort of txid, which holders hold prepared (not forgotten, not running here).
  void PresumeAbortSwept(const std::string& txid, const std::vector<ParticipantRef>& holders, uint64_t epoch);
  void Pump();
  // Runs the engine's actions until it has none (Pump without the shutdown check).
  void ExecuteActions();
  void Execute(Action& a);
  void ScheduleTick();
  void ScheduleHealth();
  // Probes now, unless a probe of it is in flight (force: anyway; a new URL).
  void Probe(const std::string& name, bool force = false);
  void SetHealthy(const std::string& name, ParticipantStatus& p, bool healthy, const std::string& why);
  // Logs a participant's decision deliveries once per change (failing, answering), not per txid.
  void NoteDelivery(const std::string& participant, const std::string& txid, const Status& status);
  void ScheduleForget(int64_t delay_ms);
  void PresumeAbort(const std::string& txid, const std::string& asker, std::function<void(TxLookup)> done);
  void LearnCatalog(const std::string& name, const AgentCatalog& catalog);
  std::string DeliveryUrl(const ParticipantRef& to) const;
  std::optional<std::string> CheckOps(const wire::TxRequest& tx) const;
  void ValidateAndStart(std::shared_ptr<SubmitRequest> request, std::function<void(SubmitResult)> done);
  void StartTransaction(std::shared_ptr<SubmitRequest> request, std::function<void(SubmitResult)> done);
  void AttachClient(const std::string& txid, std::function<void(SubmitResult)> done);
  void RecordHeuristic(DecisionRecord record, std::optional<TraceContext> trace,
                       std::function<void(ForceAnswer)> done);
  // Adopts record.txid at each of record.participants, and at every other
  // participant an adopted record names but `skip`, then records it if their
  // answers allow (JudgeAdoptions).
  struct AdoptionRound;
  void AdoptThenRecord(DecisionRecord record, std::optional<TraceContext> trace, std::set<std::string> skip,
                       std::function<void(ForceAnswer)> done);
  void Adopt(const std::shared_ptr<AdoptionRound>& round, ParticipantRef to);
  // Adopt at the registry's URL, unless `named` was asked already or is
  // skipped; one not registered counts as not answering.
  void AdoptIfNew(const std::shared_ptr<AdoptionRound>& round, const ParticipantRef& named);
  void JudgeAdoptionRound(AdoptionRound& round);
  // fields, with the transaction's trace_id when it has one here.
  nlohmann::json Traced(const std::string& txid, nlohmann::json fields) const;
  void MaybeFinishShutdown();
  void FollowRecordedDecision(const std::string& txid, const Status& conflict);
  void CheckRecordAtAgent(const std::string& txid, const std::string& asker, const std::string& asker_log_id,
                          std::function<void(TxLookup)> done);
  void LookUpOrPresume(const std::string& txid, const std::string& asker, std::function<void(TxLookup)> done);
  // A decision log that cannot write: the only input that stops the process.
  [[noreturn]] static void FailStop(const std::string& txid);

  NodeOptions options_;
  DecisionLog& log_;
  AgentTransport& agents_;
  Timers& timers_;
  Leadership* leadership_;
  std::unique_ptr<Engine> engine_;
  std::map<std::string, ParticipantStatus> registry_;
  struct ProbeSchedule {
    int64_t next_ms = 0;     // the next probe is due then
    int64_t backoff_ms = 0;  // 0 while it answers; doubled per failure up to health_backoff_max_ms
    bool in_flight = false;
    uint64_t generation = 0;  // bumped by a forced probe: older answers are ignored
  };
  std::map<std::string, ProbeSchedule> probes_;  // by participant name
  struct DeliveryTrouble {
    uint64_t failures = 0;  // since its deliveries last succeeded
    std::string first_error;
  };
  std::map<std::string, DeliveryTrouble> failing_deliveries_;  // by participant name
  std::unordered_map<ClientToken, std::function<void(SubmitResult)>> clients_;
  ClientToken next_client_ = 1;
  Entropy& entropy_;
  // Set once the incarnation is durable (single: at Start; group: for the
  // term this member leads); nullopt while nothing may be issued.
  std::optional<TxidIssuer> txids_;
  std::string log_id_;  // the log's identity ("" for an older log)
  TxKeys keys_;  // derived from the log's secret; off for a log without one
  struct ForeignRecord {
    std::string log_id;  // the log the agents' records name
    std::vector<ParticipantRef> holders;
    int64_t seen_ms = 0;
  };
  std::map<std::string, ForeignRecord> foreign_;  // txid -> prepared under another log
  std::unordered_map<std::string, TraceContext> traces_;  // txid -> its trace, until finished
  // txid -> the operator's request that forced it while in doubt, answered once its record is written.
  std::unordered_map<std::string, std::function<void(ForceAnswer)>> forcing_;
  // Contradicted transactions being closed: answered once the finished mark was written.
  struct Closing {
    TxView view;
    std::function<void(std::variant<TxView, NodeError>)> done;
  };
  std::unordered_map<std::string, Closing> closing_;
  void AnswerClose(const std::string& txid, const Status& marked);
  // txid -> participants that answered its precommit unknown_transaction (logged once each), until finished.
  std::unordered_map<std::string, std::set<std::string>> precommit_unknown_logged_;
  // What the node keeps of txid until it ends here (its trace, its logged unknowns).
  void ForgetEnded(const std::string& txid);
  static constexpr std::size_t kTracesPruneAt = 4096;
  std::size_t traces_prune_at_ = kTracesPruneAt;
  TxView ForeignView(const std::string& txid, const ForeignRecord& r) const;
  // Bumped whenever the engine is dropped: callbacks of the old engine's work compare it.
  uint64_t epoch_ = 0;
  // A retake waits for this epoch's engine (ScheduleRetake), and whether it sweeps.
  std::optional<uint64_t> retake_epoch_;
  bool retake_sweep_ = false;
  // The next let-go retake's delay, and when the last one ran.
  int64_t let_go_delay_ms_ = 0;
  int64_t let_go_retake_ms_ = std::numeric_limits<int64_t>::min();
  // Shared with every pending timer and callback; false once the Node is gone or stopped.
  std::shared_ptr<bool> alive_;
  bool stopping_ = false;
  int64_t delivery_grace_until_ = 0;
  std::function<void()> on_stopped_;
  NodeMetrics metrics_;
};

}  // namespace commitd::coordinator
