#include "tests/sim/decision_state_machine.h"

#include <algorithm>

namespace commitd::sim {

using coordinator::DecisionRecord;
using coordinator::Outcome;

Status DecisionStateMachine::Apply(const coordinator::Command& command) {
  Status result;
  if (const auto* d = std::get_if<coordinator::command::Decide>(&command)) {
    const DecisionRecord& r = d->record;
    auto it = records_.find(r.txid);
    if (it != records_.end()) {
      DecisionRecord& stored = it->second;
      if (stored.outcome == Outcome::kPending && r.outcome != Outcome::kPending) {
        stored.outcome = r.outcome;
        stored.reason = r.reason;
        stored.reply = r.reply;
        stored.decided_ms = r.decided_ms;
        stored.heuristic = r.heuristic;
      } else if (overwrite_decisions_) {
        stored = r;
      } else {
        return Status::Conflict("decision for " + r.txid + " already recorded: " +
                                std::string(coordinator::OutcomeName(stored.outcome)));
      }
    } else {
      if (!r.idempotency_key.empty()) {
        auto [k, inserted] = txid_by_key_.emplace(r.idempotency_key, r.txid);
        if (!inserted) {
          return Status::Conflict("idempotency key '" + r.idempotency_key + "' already used by " + k->second);
        }
      }
      records_.emplace(r.txid, r);
    }
  } else if (const auto* f = std::get_if<coordinator::command::Finish>(&command)) {
    auto it = records_.find(f->txid);
    if (it == records_.end()) {
      result = Status::NotFound("no decision for " + f->txid);
    } else if (!it->second.finished) {
      it->second.finished = true;
      it->second.finished_ms = f->finished_ms;
    }
  }
  return result;
}

const DecisionRecord* DecisionStateMachine::Find(const std::string& txid) const {
  auto it = records_.find(txid);
  return it == records_.end() ? nullptr : &it->second;
}

const DecisionRecord* DecisionStateMachine::FindByIdempotencyKey(const std::string& key) const {
  auto it = txid_by_key_.find(key);
  return it == txid_by_key_.end() ? nullptr : Find(it->second);
}

std::vector<DecisionRecord> DecisionStateMachine::Unfinished() const {
  std::vector<DecisionRecord> out;
  for (const auto& [txid, r] : records_) {
    if (!r.finished) out.push_back(r);
  }
  return out;
}

bool DecisionStateMachine::AllFinished() const {
  return std::all_of(records_.begin(), records_.end(), [](const auto& kv) { return kv.second.finished; });
}

}  // namespace commitd::sim
