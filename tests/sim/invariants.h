// Checker: the invariants of a run, fed with facts as they become durable.
//
// Facts: which txids a participant has durably committed (read from its
// journal table) or aborted (its abort or no-vote record synced), which
// decisions the coordinator's log made durable (in a group: applied by a
// member), and what the client was told; in a group also who led which term
// and which entry each member applied at each index; in a group and with
// --client-retries, which txids were decided for which Idempotency-Key.
// Every new fact is checked against the others at once (atomicity, agreement
// with the client); Final() checks what must hold once everything has healed.
// The first violation is kept; the world stops the run when there is one.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace commitd::sim {

class Checker {
 public:
  void OnBranch(const std::string& txid, const std::string& participant);
  void OnCommitted(const std::string& participant, const std::string& txid);
  void OnAborted(const std::string& participant, const std::string& txid);
  // A participant answered an abort 200: its "aborted" must be synced there by then.
  void OnAbortAcknowledged(const std::string& participant, const std::string& txid);
  void OnDecisionDurable(const std::string& txid, bool commit);
  void OnClientAnswer(const std::string& txid, bool committed);
  // A definite outcome told to anyone else (the adversary's callers): it must
  // hold like a client's answer, without counting as one.
  void OnOutcomeTold(const std::string& txid, bool committed);
  void Fail(const std::string& invariant, const std::string& detail);

  // Coordinator group. Election safety: at most one leader per term. State
  // machine safety: every member applies the same entry at each index.
  void OnRaftLeader(uint64_t term, const std::string& member);
  void OnRaftApplied(const std::string& member, uint64_t index, uint64_t term, const std::string& data);
  // The transaction a coordinator started for a client's Idempotency-Key:
  // at most one per key may commit anywhere (a retried transfer runs once).
  void OnIdempotencyKey(const std::string& txid, const std::string& key);

  // The coordinator's log was replaced by an empty one: its decisions are
  // gone (what participants and callers were told of them stays checked);
  // a later decision is compared with the new log's only.
  void OnLogReplaced();

  // After healing: every transaction all-or-nothing at its participants, and
  // every client answer true everywhere.
  void Final();

  // What an observer of the system knows (the adversary picks txids from it;
  // the operator settles in-doubt records with it).
  std::vector<std::string> Txids() const;
  std::set<std::string> BranchesOf(const std::string& txid) const;
  // Every branch has durably committed or aborted it.
  bool Resolved(const std::string& txid) const;
  // Commit if it committed anywhere, was durably decided commit or reported
  // committed; abort otherwise.
  bool ShouldCommit(const std::string& txid) const;

  bool violated() const { return violation_.has_value(); }
  const std::string& violation() const { return *violation_; }
  std::size_t client_committed() const { return client_committed_; }
  std::size_t client_aborted() const { return client_aborted_; }

 private:
  struct TxFacts {
    std::set<std::string> branches;
    std::set<std::string> committed_at;
    std::set<std::string> aborted_at;
    std::optional<bool> decision;  // durable in the coordinator's log
    bool lost_commit = false;      // decided commit by a log since replaced
    std::optional<bool> told;      // what the client heard: true = committed
  };
  void Check(const std::string& txid, const TxFacts& f);

  std::map<std::string, TxFacts> txs_;
  std::map<uint64_t, std::string> leaders_;                          // term -> member
  std::map<uint64_t, std::pair<uint64_t, std::string>> applied_;     // index -> (term, data)
  std::map<std::string, std::set<std::string>> txids_by_key_;
  std::optional<std::string> violation_;
  std::size_t client_committed_ = 0;
  std::size_t client_aborted_ = 0;
};

}  // namespace commitd::sim
