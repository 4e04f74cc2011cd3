// How a transaction finished on this agent, as the engine remembers it and
// the stores keep it (_commitd_finished, _commitd_pg_finished).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace commitd::participant {

enum class Outcome : uint8_t { kCommitted, kAborted };

// "committed" | "aborted": the stored and the wire name.
const char* OutcomeName(Outcome outcome);
// nullopt for anything but "committed" or "aborted".
std::optional<Outcome> ParseOutcome(std::string_view name);

}  // namespace commitd::participant
