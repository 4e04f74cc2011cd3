// The global transaction id (gid) under which the PostgreSQL participant
// prepares a transaction: "commitd:<agent>:<txid>". The prefix
// "commitd:<agent>:" is how the agent finds its own prepared transactions in
// pg_prepared_xacts after a restart, among those of other programs and of
// other agents on the same database.
//
// Both parts are restricted so that a gid needs no escaping inside a SQL
// string literal and parses back unambiguously: the agent name is 1-62
// characters of [A-Za-z0-9._-] (no ':'), the txid wire::IsValidTxid's
// alphabet; the whole stays below PostgreSQL's 200-byte gid limit.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace commitd::participant::pg {

constexpr std::size_t kMaxAgentNameForGid = 62;

// InvalidArgument naming what is wrong.
Status ValidateAgentName(std::string_view agent);
// "commitd:<agent>:"
std::string GidPrefix(std::string_view agent);
// InvalidArgument for an agent name or txid outside the alphabets above.
Result<std::string> EncodeGid(std::string_view agent, std::string_view txid);
// The txid of one of this agent's gids; nullopt for any other gid.
std::optional<std::string> TxidOfGid(std::string_view agent, std::string_view gid);

}  // namespace commitd::participant::pg
