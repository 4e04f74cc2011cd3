// AgentTransport: how the coordinator's Node talks to participant agents.
// Every answer is typed; how it travels (HTTP in the binary, the simulated
// network in commitd-sim) is the implementation's business.
//
// Thread: every method is called on the Node's thread and every callback runs
// there, exactly once (an unreachable agent is an error status).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/wire.h"
#include "coordinator/engine.h"
#include "coordinator/types.h"

namespace commitd::coordinator {

// A participant's answer to a commit or abort.
enum class DecisionAck {
  kAcked,
  // The agent does not know the txid (forgotten after its retention window,
  // or a lost database).
  kUnknownTransaction,
  // The agent finished the transaction already (409 already_committed or
  // already_committing; 409 already_aborted): what it did, whatever was sent.
  kFoundCommitted,
  kFoundAborted,
};

// A participant's answer to an adoption (POST /v1/adopt).
enum class AdoptAnswer {
  kAdopted,    // it holds the record undecided, and from now on answers only to this log's keys
  kCommitted,  // it committed, or is committing
  kAborted,    // it aborted, or is aborting
  kUnknown,    // no record and no outcome: it never prepared the transaction, or forgot it
};
struct AdoptReply {
  AdoptAnswer answer = AdoptAnswer::kAdopted;
  // kAdopted: every participant of the transaction as the record's prepare
  // named them (empty from a record that kept none).
  std::vector<ParticipantRef> participants;
};

// What an agent can run: GET /v1/procedures.
struct AgentCatalog {
  std::set<std::string> procedures;
  bool allow_raw_sql = false;
  // How long the agent remembers a finished txid; nullopt from an older agent.
  std::optional<int64_t> outcome_retention_ms;
};

// A transaction an agent holds prepared, and the coordinator URL it will ask.
struct PreparedAtAgent {
  std::string txid;
  std::string coordinator;
  std::string log_id;  // the decision log it was prepared under; "" from an older agent or record
};

class AgentTransport {
 public:
  virtual ~AgentTransport() = default;

  // The vote, or why none came (a refusal is an InvalidArgument status).
  virtual void Prepare(const ParticipantRef& to, const wire::PrepareRequest& request, int64_t timeout_ms,
                       std::function<void(Result<wire::Vote>)> done) = 0;
  // Delivers commit (kCommitted, with the transaction's commit key) or abort
  // (kAborted, with its abort key); key is "" when the log has no secret.
  virtual void Deliver(const ParticipantRef& to, const std::string& txid, Outcome outcome, const std::string& key,
                       std::function<void(Result<DecisionAck>)> done) = 0;
  // commit_key: the transaction's commit key ("" when the log has no secret).
  virtual void Precommit(const ParticipantRef& to, const std::string& txid, const std::string& commit_key,
                         std::function<void(Result<PrecommitAnswer>)> done) = 0;
  // 2PC recovery of a staging record: a keyless POST /v1/abort, which the
  // agent takes only if it has not voted yes (FenceAnswer).
  virtual void Fence(const ParticipantRef& to, const std::string& txid,
                     std::function<void(Result<FenceAnswer>)> done) = 0;
  // A forced decision for a record prepared under another decision log: the
  // agent takes this log's keys for it (wire::AdoptRequest; request.txid names it).
  virtual void Adopt(const ParticipantRef& to, const wire::AdoptRequest& request,
                     std::function<void(Result<AdoptReply>)> done) = 0;
  // Recovery of a staging record too old to fence: what the agent knows of
  // txid (GET /v1/transactions/{txid}), which changes nothing there.
  virtual void QueryState(const ParticipantRef& to, const std::string& txid,
                          std::function<void(Result<StateAnswer>)> done) = 0;
  // Every transaction the agent holds prepared now (takeover sweep).
  virtual void ListPrepared(const ParticipantRef& to, std::function<void(Result<std::vector<PreparedAtAgent>>)> done) = 0;
  // timeout_ms 0: the transport's usual request timeout.
  virtual void FetchCatalog(const ParticipantRef& to, int64_t timeout_ms,
                            std::function<void(Result<AgentCatalog>)> done) = 0;
};

}  // namespace commitd::coordinator
