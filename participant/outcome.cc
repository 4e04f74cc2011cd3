#include "participant/outcome.h"

namespace commitd::participant {

const char* OutcomeName(Outcome outcome) { return outcome == Outcome::kCommitted ? "committed" : "aborted"; }

std::optional<Outcome> ParseOutcome(std::string_view name) {
  if (name == "committed") return Outcome::kCommitted;
  if (name == "aborted") return Outcome::kAborted;
  return std::nullopt;
}

}  // namespace commitd::participant
