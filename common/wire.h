// JSON wire types of the client API and the agent API (docs/protocol.md), with
// validation that names the offending field precisely.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_syntax.h"
#include "common/status.h"

namespace commitd::wire {

enum class Protocol { k2pc, k3pc };
std::string_view ProtocolName(Protocol p);

// One operation of a branch: a named procedure with named args, or raw SQL
// with positional params.
struct Op {
  std::optional<std::string> procedure;
  nlohmann::json args = nlohmann::json::object();  // scalar values only
  std::optional<std::string> sql;
  nlohmann::json params = nlohmann::json::array();  // scalar values only
  // Set in place of args or params when a client's request is read straight
  // from its text: the args object or the params array as the client wrote
  // it, each value checked to be a string, a boolean, null or an integer
  // that fits 64 bits. The coordinator passes a client's values on without
  // reading them; the agent reads them from this text as from args or params
  // (a name given twice: the last one counts, as in nlohmann's parser).
  std::string values_text;
  bool is_raw() const { return sql.has_value(); }
};

struct Branch {
  std::string participant;
  std::vector<Op> ops;
};

// POST /v1/transactions
struct TxRequest {
  Protocol protocol = Protocol::k2pc;
  std::optional<int64_t> timeout_ms;
  std::vector<Branch> branches;
};

constexpr int64_t kMaxTimeoutMs = 600'000;
constexpr std::size_t kMaxBranches = 64;
constexpr std::size_t kMaxOpsPerBranch = 1024;

// Errors are InvalidArgument with a message like
// "branches[1].ops[0].args.amount: must be a string, number, boolean or null".
// A request as clients usually write it is read straight from the text, its
// ops' values kept as text (Op::values_text); any other (an error, a
// repeated member, a float) by ParseTxRequestTree, which gives the same
// request, its values read, and every error message.
Result<TxRequest> ParseTxRequest(std::string_view body);
// Through a parsed JSON value, for every input.
Result<TxRequest> ParseTxRequestTree(std::string_view body);
Result<TxRequest> ParseTxRequest(const nlohmann::json& body);

// {"procedure": ..., "args": ...} or {"sql": ..., "params": ...}; the values
// read from values_text when it is set.
nlohmann::json OpToJson(const Op& op);
Result<Op> ParseOp(const nlohmann::json& value, const std::string& where);

struct ParticipantRef {
  std::string name;
  std::string url;
  bool operator==(const ParticipantRef&) const = default;
};
// {"name": ..., "url": ...}: nlohmann::json(participants) is their array.
void to_json(nlohmann::json& j, const ParticipantRef& p);
// [{"name": ..., "url": ...}, ...], as nlohmann's dump of that array writes
// it, byte for byte; the form prepares, prepared records and decision
// records hold the participant list in.
void AppendParticipants(std::string* out, const std::vector<ParticipantRef>& participants);
std::string ParticipantsText(const std::vector<ParticipantRef>& participants);
// That text read back: InvalidArgument for anything but an array of objects
// with a string "name" and a string "url".
Result<std::vector<ParticipantRef>> ParseParticipants(std::string_view text);
// The same from a value already parsed.
Result<std::vector<ParticipantRef>> ParticipantsOf(const nlohmann::json& list);

// POST /v1/prepare (coordinator -> agent)
struct PrepareRequest {
  std::string txid;
  Protocol protocol = Protocol::k2pc;
  std::string participant;   // the name the coordinator knows this agent by
  std::string coordinator;   // URL to ask for the decision
  int64_t timeout_ms = 0;    // the agent's deadline is now + timeout_ms
  std::vector<Op> ops;
  std::vector<ParticipantRef> participants;  // every participant of the transaction
  std::string log_id;  // the coordinator's decision log identity; "" from an older coordinator
  // The transaction's abort capability (common/abort_key.h); "" from an older coordinator.
  std::string abort_key;
  // CommitCheck of the transaction's commit key (common/abort_key.h); "" from an older coordinator.
  std::string commit_check;
};
nlohmann::json ToJson(const PrepareRequest& r);
// The text of ToJson(r) as DumpJson writes it, byte for byte (but an op's
// values_text as it is), written without building the JSON value (the
// coordinator sends one per branch).
std::string PrepareRequestText(const PrepareRequest& r);
// Whether a body's JSON syntax is still to be checked, or was checked
// already (a batch's sub-request, http::Request::body_checked_json).
using BodySyntax = JsonSyntax;

// A prepare as coordinators write it is read straight from the text; any
// other (an error, a repeated member, a float) by ParsePrepareRequestTree,
// which gives the same request and every error message.
Result<PrepareRequest> ParsePrepareRequest(std::string_view body, BodySyntax syntax = BodySyntax::kUnchecked);
// Through a parsed JSON value, for every input.
Result<PrepareRequest> ParsePrepareRequestTree(std::string_view body);

// Why a participant voted no, when it is a class the coordinator counts
// ("code" in the vote; absent: kOther).
enum class VoteNoCode { kOther, kLockConflict };

// Reply to /v1/prepare.
struct Vote {
  std::string txid;
  bool yes = false;
  std::string reason;                               // why no
  // One array of row objects per op; null when the agent no longer knows them
  // (it restarted after the prepare was durable and before it answered).
  nlohmann::json results = nlohmann::json::array();
  VoteNoCode no_code = VoteNoCode::kOther;          // "code": "lock_conflict"
};
nlohmann::json ToJson(const Vote& v);
// The text of ToJson(v) as DumpJson writes it, byte for byte, written
// without building the JSON value (an agent sends one per prepare).
std::string VoteText(const Vote& v);
// A vote as agents write it is read straight from the text; any other (an
// error, a member it does not know, a repeated one) by ParseVoteTree, which
// gives the same vote and every error message.
Result<Vote> ParseVote(std::string_view body, BodySyntax syntax = BodySyntax::kUnchecked);
// Through a parsed JSON value, for every input.
Result<Vote> ParseVoteTree(std::string_view body);

// {"txid": "..."} alone.
Result<std::string> ParseTxidBody(std::string_view body);

// POST /v1/commit, /v1/precommit: {"txid": "...", "commit_key": "..."};
// commit_key is "" when absent.
struct CommitRequest {
  std::string txid;
  std::string commit_key;
};
nlohmann::json ToJson(const CommitRequest& r);
// The text of ToJson(r) as DumpJson writes it, byte for byte.
std::string CommitRequestText(const CommitRequest& r);
// A body as coordinators write it is read straight from the text; any other
// (an error, a repeated member) by ParseCommitRequestTree, which gives the
// same request and every error message.
Result<CommitRequest> ParseCommitRequest(std::string_view body, BodySyntax syntax = BodySyntax::kUnchecked);
// Through a parsed JSON value, for every input.
Result<CommitRequest> ParseCommitRequestTree(std::string_view body);

// POST /v1/abort: {"txid": "...", "abort_key": "..."}; abort_key is "" when absent.
struct AbortRequest {
  std::string txid;
  std::string abort_key;
};
nlohmann::json ToJson(const AbortRequest& r);
// The text of ToJson(r) as DumpJson writes it, byte for byte.
std::string AbortRequestText(const AbortRequest& r);
Result<AbortRequest> ParseAbortRequest(std::string_view body);

// POST /v1/adopt: a coordinator whose decision log is not the one a record
// was prepared under (that log was lost or replaced) takes the record over
// before an operator's forced decision: the record's keys become this log's,
// so the lost log's decisions still in the network are refused. Every field
// is required.
struct AdoptRequest {
  std::string txid;
  std::string log_id;        // the adopting coordinator's decision log
  std::string abort_key;     // that log's abort key for txid
  std::string commit_check;  // and its commit check
};
nlohmann::json ToJson(const AdoptRequest& r);
Result<AdoptRequest> ParseAdoptRequest(std::string_view body);

// A txid is 1..128 characters of [A-Za-z0-9._:-].
bool IsValidTxid(std::string_view txid);
// What a route with {txid} in its path answers one that is not.
inline constexpr std::string_view kInvalidTxidMessage = "txid: must be 1-128 characters of [A-Za-z0-9._:-]";

// A transaction's state as an agent names it to whoever asks
// (GET /v1/transactions/{txid}: a 3PC peer, or a recovering coordinator).
enum class AgentTxState {
  kPreparing,     // preparing (executing, persisting in older agents): it has not voted yes
  kPrepared,
  kPrecommitted,  // precommitting, precommitted
  kCommitted,     // committed, committing, conflict (its commit did not apply cleanly: it got a commit)
  kAborted,       // aborted, aborting
  kUnknown,       // no record and no outcome
};
// nullopt: a name no agent uses.
std::optional<AgentTxState> ParseAgentTxState(std::string_view name);

}  // namespace commitd::wire
