#include "coordinator/types.h"

namespace commitd::coordinator {

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kPending: return "pending";
    case Outcome::kCommitted: return "committed";
    case Outcome::kAborted: return "aborted";
  }
  return "unknown";
}

std::optional<Outcome> ParseOutcome(std::string_view name) {
  if (name == "pending") return Outcome::kPending;
  if (name == "committed") return Outcome::kCommitted;
  if (name == "aborted") return Outcome::kAborted;
  return std::nullopt;
}

}  // namespace commitd::coordinator
