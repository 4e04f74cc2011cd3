#include "coordinator/staging_folds.h"

#include <string>
#include <unordered_map>

namespace commitd::coordinator {
namespace {

struct Candidate {
  enum class Stage { kStaged, kDecided, kBlocked } stage = Stage::kBlocked;
  std::size_t staging = 0;
  StagingFold fold;
};

// The row a staging record leaves once its decision replaced it
// (DecisionStore::ReplacePending): the decision's outcome, reason, reply,
// times and flags over the staging record's participants, key and creation.
DecisionRecord Replaced(const DecisionRecord& staging, const DecisionRecord& decision) {
  DecisionRecord row = decision;
  row.participants = staging.participants;
  row.idempotency_key = staging.idempotency_key;
  row.created_ms = staging.created_ms;
  return row;
}

}  // namespace

std::map<std::size_t, StagingFold> PlanStagingFolds(const std::vector<std::optional<Command>>& commands,
                                                    const std::vector<bool>& undecodable) {
  std::map<std::size_t, StagingFold> folds;
  std::unordered_map<std::string, Candidate> open;  // by txid, within the current stretch
  const auto close_stretch = [&] {
    for (auto& [txid, c] : open) {
      if (c.stage == Candidate::Stage::kDecided) folds.emplace(c.staging, std::move(c.fold));
    }
    open.clear();
  };
  const auto finished_mark = [&](const std::string& txid) {
    auto it = open.find(txid);
    // Before its decision, a mark meets the staging record (NotFound) where a
    // folded row would take it.
    if (it != open.end() && it->second.stage == Candidate::Stage::kStaged) {
      it->second.stage = Candidate::Stage::kBlocked;
    }
  };
  for (std::size_t i = 0; i < commands.size(); ++i) {
    if (undecodable[i]) {
      close_stretch();
      continue;
    }
    if (!commands[i]) continue;
    const Command& command = *commands[i];
    if (const auto* d = std::get_if<command::Decide>(&command)) {
      const DecisionRecord& r = d->record;
      auto [it, fresh] = open.try_emplace(r.txid);
      Candidate& c = it->second;
      if (fresh) {
        if (r.outcome == Outcome::kPending) {
          c.stage = Candidate::Stage::kStaged;
          c.staging = i;
          c.fold.row = r;
        }
      } else if (c.stage == Candidate::Stage::kStaged && r.outcome != Outcome::kPending &&
                 r.protocol == c.fold.row.protocol) {
        c.stage = Candidate::Stage::kDecided;
        c.fold.row = Replaced(c.fold.row, r);
        c.fold.decision = i;
      } else {
        c.stage = Candidate::Stage::kBlocked;
      }
    } else if (const auto* f = std::get_if<command::Finish>(&command)) {
      finished_mark(f->txid);
    } else if (const auto* many = std::get_if<command::FinishMany>(&command)) {
      for (const command::Finish& mark : many->marks) finished_mark(mark.txid);
    } else {
      close_stretch();
    }
  }
  close_stretch();
  return folds;
}

}  // namespace commitd::coordinator
