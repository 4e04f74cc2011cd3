#include "tests/sim/invariants.h"

namespace commitd::sim {
namespace {

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ",") + x;
  return out.empty() ? "-" : out;
}

}  // namespace

void Checker::Fail(const std::string& invariant, const std::string& detail) {
  if (!violation_) violation_ = invariant + ": " + detail;
}

void Checker::OnBranch(const std::string& txid, const std::string& participant) {
  txs_[txid].branches.insert(participant);
}

// One journal row per branch: a second one is a commit applied twice.
void Checker::OnCommitted(const std::string& participant, const std::string& txid) {
  TxFacts& f = txs_[txid];
  if (!f.committed_at.insert(participant).second) {
    Fail("nothing applied twice", txid + " was applied twice at " + participant);
  }
  Check(txid, f);
}

void Checker::OnAborted(const std::string& participant, const std::string& txid) {
  TxFacts& f = txs_[txid];
  f.aborted_at.insert(participant);
  Check(txid, f);
}

void Checker::OnAbortAcknowledged(const std::string& participant, const std::string& txid) {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.aborted_at.count(participant) == 0) {
    Fail("durable acknowledgement", participant + " acknowledged the abort of " + txid +
                                        " before its aborted outcome was synced there");
  }
}

void Checker::OnDecisionDurable(const std::string& txid, bool commit) {
  TxFacts& f = txs_[txid];
  if (f.decision && *f.decision != commit) {
    Fail("atomicity", txid + " was durably decided both commit and abort");
  }
  f.decision = commit;
  Check(txid, f);
}

void Checker::OnClientAnswer(const std::string& txid, bool committed) {
  TxFacts& f = txs_[txid];
  if (f.told && *f.told != committed) Fail("agreement", "the client was told both outcomes for " + txid);
  f.told = committed;
  ++(committed ? client_committed_ : client_aborted_);
  Check(txid, f);
}

void Checker::OnOutcomeTold(const std::string& txid, bool committed) {
  TxFacts& f = txs_[txid];
  if (f.told && *f.told != committed) Fail("agreement", "both outcomes were reported for " + txid);
  f.told = committed;
  Check(txid, f);
}

void Checker::OnLogReplaced() {
  for (auto& [txid, f] : txs_) {
    if (f.decision) f.lost_commit = f.lost_commit || *f.decision;
    f.decision.reset();
  }
}

std::vector<std::string> Checker::Txids() const {
  std::vector<std::string> out;
  for (const auto& [txid, f] : txs_) {
    if (!f.branches.empty()) out.push_back(txid);
  }
  return out;
}

std::set<std::string> Checker::BranchesOf(const std::string& txid) const {
  auto it = txs_.find(txid);
  return it == txs_.end() ? std::set<std::string>{} : it->second.branches;
}

bool Checker::Resolved(const std::string& txid) const {
  auto it = txs_.find(txid);
  if (it == txs_.end() || it->second.branches.empty()) return false;
  for (const auto& p : it->second.branches) {
    if (!it->second.committed_at.count(p) && !it->second.aborted_at.count(p)) return false;
  }
  return true;
}

bool Checker::ShouldCommit(const std::string& txid) const {
  auto it = txs_.find(txid);
  if (it == txs_.end()) return false;
  const TxFacts& f = it->second;
  return !f.committed_at.empty() || (f.decision && *f.decision) || f.lost_commit || (f.told && *f.told);
}

void Checker::Check(const std::string& txid, const TxFacts& f) {
  const std::string where = " (committed at " + Join(f.committed_at) + ", aborted at " + Join(f.aborted_at) + ")";
  if (!f.committed_at.empty() && !f.aborted_at.empty()) {
    Fail("atomicity", txid + " committed at one participant and aborted at another" + where);
  }
  // A txid nobody prepared (a forged one, forced by an operator) leaves at
  // most tombstones: "never prepared here", not an abort of anything.
  const bool prepared_somewhere = !f.branches.empty() || !f.committed_at.empty();
  if (f.decision && *f.decision && !f.aborted_at.empty() && prepared_somewhere) {
    Fail("atomicity", txid + " was decided commit but aborted at a participant" + where);
  }
  if (f.decision && !*f.decision && !f.committed_at.empty()) {
    Fail("atomicity", txid + " was decided abort but committed at a participant" + where);
  }
  if (f.told && *f.told && !f.aborted_at.empty()) {
    Fail("agreement", "the client was told " + txid + " committed, but it aborted at a participant" + where);
  }
  if (f.told && !*f.told && !f.committed_at.empty()) {
    Fail("agreement", "the client was told " + txid + " aborted, but it committed at a participant" + where);
  }
}

void Checker::OnRaftLeader(uint64_t term, const std::string& member) {
  auto [it, inserted] = leaders_.emplace(term, member);
  if (!inserted && it->second != member) {
    Fail("election safety", it->second + " and " + member + " both lead term " + std::to_string(term));
  }
}

void Checker::OnRaftApplied(const std::string& member, uint64_t index, uint64_t term, const std::string& data) {
  auto [it, inserted] = applied_.emplace(index, std::make_pair(term, data));
  if (!inserted && (it->second.first != term || it->second.second != data)) {
    Fail("state machine safety", member + " applied a different entry at index " + std::to_string(index) +
                                     " (term " + std::to_string(term) + ", another member applied term " +
                                     std::to_string(it->second.first) + ")");
  }
}

void Checker::OnIdempotencyKey(const std::string& txid, const std::string& key) { txids_by_key_[key].insert(txid); }

void Checker::Final() {
  for (const auto& [key, txids] : txids_by_key_) {
    std::set<std::string> committed;
    for (const auto& txid : txids) {
      auto it = txs_.find(txid);
      if (it != txs_.end() && !it->second.committed_at.empty()) committed.insert(txid);
    }
    if (committed.size() > 1) {
      Fail("idempotency", "Idempotency-Key " + key + " committed " + std::to_string(committed.size()) +
                              " transactions: " + Join(committed));
      return;
    }
  }
  for (const auto& [txid, f] : txs_) {
    const bool committed =
        !f.committed_at.empty() || (f.decision && *f.decision) || f.lost_commit || (f.told && *f.told);
    if (!committed) continue;
    for (const auto& p : f.branches) {
      if (f.committed_at.count(p) != 0) continue;
      const std::string where = " (committed at " + Join(f.committed_at) + ", aborted at " + Join(f.aborted_at) + ")";
      if (f.told && *f.told) {
        Fail("agreement", "the client was told " + txid + " committed, but " + p + " never applied it" + where);
      } else {
        Fail("atomicity", txid + " committed, but " + p + " never applied it after healing" + where);
      }
      return;
    }
  }
}

}  // namespace commitd::sim
