// Client: submits bank transfers to the coordinator and records every answer.
//
// A transfer debits an account of one bank and credits an account of
// another, each with its journal row (with three banks a third of them
// credit two accounts at the two others); amounts are random, so some debits
// overdraw and their bank votes no; half of them read the debited balance
// back, and a committed answer must carry those rows. The client itself never crashes and is
// never partitioned from anything but the coordinator.
//
// With a coordinator group the client sends each attempt to a random member
// with an Idempotency-Key of its own per transfer, and retries (same key) on
// anything but a definite answer — no answer, 503 while there is no leader —
// up to kMaxAttempts times. With --client-retries it does the same against
// the single coordinator.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/sim/context.h"

namespace commitd::sim {

class Client {
 public:
  // accounts: bank -> its account ids.
  // coordinators: one name, or every member of a group.
  Client(Context& ctx, std::vector<std::string> coordinators, std::map<std::string, std::vector<std::string>> accounts);

  // Submits one transfer at `at_ms` with the given prepare timeout.
  void SubmitAt(int64_t at_ms, int64_t timeout_ms);

  uint64_t submitted() const { return submitted_; }
  uint64_t answered() const { return answered_; }
  // No transfer waiting for an answer or a retry.
  bool idle() const { return in_flight_ == 0; }

 private:
  struct Transfer {
    std::string what;
    std::string key;  // with RetriesWithKey() only
    Request request;
    std::map<std::string, std::size_t> ops_per_branch;
    int attempts = 0;
  };
  void Submit(int64_t timeout_ms);
  void SubmitSplit(int64_t timeout_ms);
  void Send(std::string what, uint64_t n, int64_t timeout_ms, nlohmann::json branches);
  void Attempt(std::shared_ptr<Transfer> transfer);
  // Keys and retries: with a group, or --client-retries.
  bool RetriesWithKey() const;
  // --client-retries: turns an answer into a failed connection, with the
  // seed's chance (until the world heals).
  void LoseAnswer(const Transfer& transfer, Result<Response>& r);
  // True when the answer is definite (committed or aborted).
  bool OnAnswer(const Transfer& transfer, const Result<Response>& r);
  void CheckResults(const std::string& txid, const nlohmann::json& body,
                    const std::map<std::string, std::size_t>& ops_per_branch);

  Context& ctx_;
  std::vector<std::string> coordinators_;
  std::map<std::string, std::vector<std::string>> accounts_;
  std::vector<std::string> banks_;
  uint64_t submitted_ = 0;
  uint64_t answered_ = 0;
  uint64_t in_flight_ = 0;
};

}  // namespace commitd::sim
