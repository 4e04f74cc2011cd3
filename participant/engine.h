// The participant's 2PC engine as a pure state machine (design B.1, B.3).
//
// It decides what happens to each transaction on this agent; the agent (or
// the simulator) carries out its actions: resource-manager calls on the
// storage thread, replies to HTTP requests, and questions to the coordinator.
//
// Rules it keeps:
//  - a yes vote is sent only after the prepared record is durable;
//  - a commit is acknowledged only after it is applied and durable;
//  - lock keys are taken after execution (no waiting: a held key votes no)
//    and released exactly when the commit is applied or the abort done;
//  - a prepared transaction past its deadline is never decided alone: the
//    engine keeps asking the coordinator(s), with capped exponential backoff;
//  - duplicates are answered consistently: a repeated prepare gets the same
//    vote, a repeated commit or abort is acknowledged again, an abort before
//    its prepare leaves a tombstone so the late prepare votes no, and a commit
//    for a txid never prepared is an error.
//
// Ordering assumption: Execute and ApplyCommit run on one FIFO storage thread
// whose completions are fed back in order, so a transaction executed after a
// commit was applied sees its effects, and one executed before it finds the
// committing transaction's locks still held.
//
// Thread: not thread-safe; owned by the agent's io thread.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/status.h"
#include "common/wire.h"
#include "participant/lock_table.h"
#include "participant/resource_manager.h"

namespace commitd::participant {

using RequestToken = uint64_t;

enum class Decision { kPending, kCommit, kAbort };

namespace action {
struct Execute {
  std::string txid;
  std::vector<wire::Op> ops;
};
struct PersistPrepared {
  PreparedRecord record;
};
struct ApplyCommit {  // apply the changeset, delete the record, remember "committed": one transaction
  std::string txid;
};
struct ApplyAbort {   // delete the record, remember "aborted": one transaction
  std::string txid;
};
struct RememberOutcome {  // tombstones and no votes; not waited for
  std::string txid;
  std::string outcome;
};
struct ForgetOutcomesBefore {
  int64_t cutoff_ms = 0;
};
struct Reply {
  RequestToken to = 0;
  int status = 200;
  nlohmann::json body;
};
struct QueryDecision {
  std::string txid;
  std::vector<std::string> coordinators;  // URLs, in the order to try
};
}  // namespace action

using Action = std::variant<action::Execute, action::PersistPrepared, action::ApplyCommit, action::ApplyAbort,
                            action::RememberOutcome, action::ForgetOutcomesBefore, action::Reply,
                            action::QueryDecision>;

struct EngineOptions {
  std::vector<std::string> coordinators;     // --coordinator URLs, asked after the record's own
  int64_t resolve_initial_ms = 200;
  int64_t resolve_max_ms = 5000;
  int64_t outcome_retention_ms = 86'400'000;
};

// One transaction held on this agent, for GET /v1/transactions.
struct HeldView {
  std::string txid;
  std::string state;  // "executing" | "persisting" | "prepared" | "committing" | "aborting" | "conflict"
  int64_t age_ms = 0;
  int64_t deadline_ms = 0;  // wall clock
  std::string coordinator;
  std::string last_error;
};

class Engine {
 public:
  explicit Engine(EngineOptions options);

  // --- inputs (now_ms: wall clock in milliseconds) -------------------------
  void OnPrepare(wire::PrepareRequest request, RequestToken token, int64_t now_ms);
  void OnExecuted(const std::string& txid, ExecutionResult result, int64_t now_ms);
  void OnPreparedPersisted(const std::string& txid, const Status& status, int64_t now_ms);
  void OnCommit(const std::string& txid, RequestToken token, int64_t now_ms);
  void OnAbort(const std::string& txid, RequestToken token, int64_t now_ms);
  void OnCommitApplied(const std::string& txid, const Status& status, int64_t now_ms);
  void OnAbortApplied(const std::string& txid, const Status& status, int64_t now_ms);
  // The coordinator's answer to a QueryDecision, or why none came.
  void OnDecisionAnswer(const std::string& txid, Result<Decision> answer, int64_t now_ms);
  // Startup: the records and outcomes found in the database. Every record is
  // asked about at once.
  void Recover(std::vector<PreparedRecord> records, const std::map<std::string, std::string>& outcomes,
               int64_t now_ms);
  void Tick(int64_t now_ms);

  // --- outputs -------------------------------------------------------------
  std::vector<Action> TakeActions();

  // --- queries -------------------------------------------------------------
  std::vector<HeldView> Held(int64_t now_ms) const;
  const LockTable& locks() const { return locks_; }
  std::optional<std::string> OutcomeOf(const std::string& txid) const;
  // Transactions whose changeset did not apply cleanly (each counted once).
  uint64_t conflicts() const { return conflicts_; }

 private:
  enum class State { kExecuting, kPersisting, kPrepared, kCommitting, kAborting, kConflict };
  struct Tx {
    State state = State::kExecuting;
    wire::Protocol protocol = wire::Protocol::k2pc;
    std::string coordinator;
    std::vector<wire::ParticipantRef> participants;
    int64_t timeout_ms = 0;
    int64_t created_ms = 0;
    int64_t deadline_ms = 0;
    nlohmann::json results = nlohmann::json::array();
    std::vector<RequestToken> prepare_waiters;
    std::vector<RequestToken> commit_waiters;
    std::vector<RequestToken> abort_waiters;
    bool abort_requested = false;
    bool conflict_counted = false;
    bool querying = false;
    int64_t next_query_ms = 0;
    int64_t query_backoff_ms = 0;
    std::string last_error;
  };
  struct Finished {
    std::string outcome;  // "committed" | "aborted"
    int64_t at_ms = 0;
  };

  void VoteNo(const std::string& txid, Tx& tx, const std::string& reason, int64_t now_ms);
  void StartCommit(const std::string& txid, Tx& tx, std::optional<RequestToken> token);
  void StartAbort(const std::string& txid, Tx& tx, std::optional<RequestToken> token);
  void Finish(const std::string& txid, const std::string& outcome, int64_t now_ms);
  void ReplyAll(std::vector<RequestToken>& waiters, int status, const nlohmann::json& body);
  nlohmann::json VoteBody(const std::string& txid, bool yes, const std::string& reason,
                          const nlohmann::json& results) const;

  EngineOptions options_;
  std::unordered_map<std::string, Tx> txs_;
  std::unordered_map<std::string, Finished> finished_;
  LockTable locks_;
  std::vector<Action> actions_;
  int64_t next_forget_ms_ = 0;
  uint64_t conflicts_ = 0;
};

// {"error":{"code":code,"message":message},"txid":txid}
nlohmann::json AgentError(std::string_view code, std::string_view message, const std::string& txid);

}  // namespace commitd::participant
