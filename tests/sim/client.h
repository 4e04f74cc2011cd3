// Client: submits bank transfers to the coordinator and records every answer.
//
// A transfer debits an account of one bank and credits an account of the
// other, each with its journal row; amounts are random, so some debits
// overdraw and their bank votes no; half of them read the debited balance
// back, and a committed answer must carry those rows. The client itself never crashes and is
// never partitioned from anything but the coordinator.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tests/sim/context.h"

namespace commitd::sim {

class Client {
 public:
  // accounts: bank -> its account ids.
  Client(Context& ctx, std::string coordinator, std::map<std::string, std::vector<std::string>> accounts);

  // Submits one transfer at `at_ms` with the given prepare timeout.
  void SubmitAt(int64_t at_ms, int64_t timeout_ms);

  uint64_t submitted() const { return submitted_; }
  uint64_t answered() const { return answered_; }

 private:
  void Submit(int64_t timeout_ms);
  void CheckResults(const std::string& txid, const nlohmann::json& body,
                    const std::map<std::string, std::size_t>& ops_per_branch);

  Context& ctx_;
  std::string coordinator_;
  std::map<std::string, std::vector<std::string>> accounts_;
  std::vector<std::string> banks_;
  uint64_t submitted_ = 0;
  uint64_t answered_ = 0;
};

}  // namespace commitd::sim
