// The agent's HTTP answers (status + JSON body, docs/api.md) as the typed
// answers of AgentTransport. Pure; shared by HttpAgentTransport and the
// simulator's transport, so the mapping exists once.
#pragma once

#include <string_view>
#include <vector>

#include "coordinator/agent_transport.h"

namespace commitd::coordinator {

// The error code of a JSON error body ({"error":{"code":...}}), "" if none.
std::string ErrorCodeOf(std::string_view body);

// 200: the vote in the body; anything else: InvalidArgument("HTTP n: message").
// `syntax`: whether the body's JSON syntax was checked already (a batch's
// sub-response).
Result<wire::Vote> VoteOf(int status, std::string_view body, wire::BodySyntax syntax);
// 200: acked; 404 unknown_transaction: unknown; 409 already_committed or
// already_committing: found committed; 409 already_aborted: found aborted;
// else Unavailable.
Result<DecisionAck> DecisionAckOf(int status, std::string_view body);
// "acked" | "unknown_transaction" | "found_committed" | "found_aborted".
std::string_view DecisionAckName(DecisionAck ack);
// 200 state precommitted: acked, committed: committed; 409 already_aborted: aborted;
// 404 unknown_transaction: unknown; else Unavailable.
Result<PrecommitAnswer> PrecommitAnswerOf(int status, std::string_view body);
// A keyless abort: 200 aborted: fenced; 409 abort_not_from_coordinator:
// prepared (it voted yes); 409 already_committed or already_committing:
// committed; else Unavailable.
Result<FenceAnswer> FenceAnswerOf(int status, std::string_view body);
// 200: adopted, with the record's participants; 409 already_committed or already_committing: committed; 409
// already_aborted: aborted; 404 unknown_transaction: unknown; else
// Unavailable (a record still being written, another adoption running, an
// agent without the route).
Result<AdoptReply> AdoptAnswerOf(int status, std::string_view body);
// "adopted" | "committed" | "aborted" | "unknown".
std::string_view AdoptAnswerName(AdoptAnswer answer);
// GET /v1/transactions/{txid} at the agent: 200 {"txid","state"} by the
// state's name; 404 not_found (an agent without the route): unknown; else
// Unavailable.
Result<StateAnswer> StateAnswerOf(int status, std::string_view body);
// GET /v1/procedures.
Result<AgentCatalog> CatalogOf(int status, std::string_view body);
// GET /v1/transactions?state=prepared: the entries in state "prepared".
Result<std::vector<PreparedAtAgent>> PreparedListOf(int status, std::string_view body);

}  // namespace commitd::coordinator
