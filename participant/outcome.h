// How a transaction finished on this agent, as the engine remembers it and
// the stores keep it (_commitd_finished, _commitd_pg_finished).
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace commitd::participant {

enum class Outcome : uint8_t { kCommitted, kAborted };

// "committed" | "aborted": the stored and the wire name.
const char* OutcomeName(Outcome outcome);
// An outcome as a store's row holds it: anything but "committed" or
// "aborted" is Corruption, naming the table and the txid.
Result<Outcome> ParseStoredOutcome(std::string_view name, std::string_view table, std::string_view txid);

}  // namespace commitd::participant
