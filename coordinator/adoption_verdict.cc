#include "coordinator/adoption_verdict.h"

namespace commitd::coordinator {

AdoptionVerdict JudgeAdoptions(Outcome wanted, const AdoptionAnswers& answers) {
  AdoptionVerdict v;
  const std::string* committed = nullptr;
  const std::string* aborted = nullptr;
  const std::string* unknown = nullptr;
  const std::pair<std::string, Result<AdoptAnswer>>* silent = nullptr;
  for (const auto& entry : answers) {
    const auto& [name, answer] = entry;
    if (!answer.ok()) {
      if (silent == nullptr) silent = &entry;
      continue;
    }
    switch (*answer) {
      case AdoptAnswer::kAdopted: break;
      case AdoptAnswer::kCommitted: committed = &name; break;
      case AdoptAnswer::kAborted: aborted = &name; break;
      case AdoptAnswer::kUnknown: unknown = &name; break;
    }
  }
  if (committed != nullptr && aborted != nullptr) {
    v.kind = AdoptionVerdict::Kind::kImpossible;
    v.reason = *committed + " committed it and " + *aborted + " aborted it: no outcome can be forced";
    return v;
  }
  if (wanted == Outcome::kAborted && committed != nullptr) {
    v.kind = AdoptionVerdict::Kind::kContradicted;
    v.participant = *committed;
    v.done = Outcome::kCommitted;
    return v;
  }
  if (wanted == Outcome::kCommitted && aborted != nullptr) {
    v.kind = AdoptionVerdict::Kind::kContradicted;
    v.participant = *aborted;
    v.done = Outcome::kAborted;
    return v;
  }
  // What a participant did refuses the force whatever the silent ones did; only then does silence.
  if (silent != nullptr) {
    v.kind = AdoptionVerdict::Kind::kUnavailable;
    v.participant = silent->first;
    v.reason = silent->second.status().message();
    return v;
  }
  if (wanted == Outcome::kCommitted && committed == nullptr && unknown != nullptr) {
    v.kind = AdoptionVerdict::Kind::kImpossible;
    v.reason = *unknown + " holds no record of it (it never prepared it, or forgot it) and no participant "
                          "committed it: a commit cannot be forced";
    return v;
  }
  return v;
}

}  // namespace commitd::coordinator
