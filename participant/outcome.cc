#include "participant/outcome.h"

#include <string>

namespace commitd::participant {

const char* OutcomeName(Outcome outcome) { return outcome == Outcome::kCommitted ? "committed" : "aborted"; }

Result<Outcome> ParseStoredOutcome(std::string_view name, std::string_view table, std::string_view txid) {
  if (name == "committed") return Outcome::kCommitted;
  if (name == "aborted") return Outcome::kAborted;
  return Status::Corruption(std::string(table) + " '" + std::string(txid) + "': outcome '" + std::string(name) + "'");
}

}  // namespace commitd::participant
