// Values shared by the coordinator engine, its decision log and its service.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/wire.h"

namespace commitd::coordinator {

enum class Outcome { kPending, kCommitted, kAborted };
std::string_view OutcomeName(Outcome o);  // "pending" | "committed" | "aborted"
std::optional<Outcome> ParseOutcome(std::string_view name);

using wire::ParticipantRef;

// What the decision log keeps about one decided transaction. Every record
// carries the participant list, so whoever holds the log can finish it.
struct DecisionRecord {
  std::string txid;
  wire::Protocol protocol = wire::Protocol::k2pc;
  Outcome outcome = Outcome::kAborted;  // committed | aborted
  std::vector<ParticipantRef> participants;
  std::string reason;                   // why aborted; empty when committed
  std::string idempotency_key;          // empty when none
  nlohmann::json reply;                 // the client reply body, replayed for the idempotency key
  int64_t created_ms = 0;               // wall clock when the client request arrived
  int64_t decided_ms = 0;
  bool finished = false;                // every participant acknowledged the decision
  int64_t finished_ms = 0;
  // Forced by an operator (commitctl resolve --force) instead of decided by
  // the protocol, typically because the original decision log was lost.
  bool heuristic = false;
};
// A record's reply is read back only to answer a retry with the same
// Idempotency-Key.
inline bool ReplyIsRead(const DecisionRecord& record) { return !record.idempotency_key.empty(); }

// A participant known to the coordinator (PUT /v1/participants/{name} or --participant).
struct RegistryEntry {
  std::string name;
  std::string url;
  int64_t updated_ms = 0;
};

}  // namespace commitd::coordinator
