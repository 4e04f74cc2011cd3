#include "tests/sim/sim_operator.h"

#include <memory>

namespace commitd::sim {
namespace {

constexpr int64_t kPollMs = 500;

}  // namespace

Operator::Operator(Context& ctx, std::string node, std::string coordinator, std::vector<std::string> banks)
    : ctx_(ctx), caller_(ctx, std::move(node)), coordinator_(std::move(coordinator)), banks_(std::move(banks)) {}

void Operator::OnHealed() {
  busy_ = true;
  Poll();
}

void Operator::Poll() {
  caller_.Call(coordinator_, Request{"GET", "/v1/transactions?state=in_doubt", nullptr}, [this](const Response& r) {
    bool any = false;
    if (r.status == 200 && r.body.is_object() && r.body.contains("transactions")) {
      for (const auto& t : r.body["transactions"]) {
        // Decided transactions still being delivered are listed too; the
        // coordinator settles those itself.
        const bool foreign = t.value("state", "") == "in_doubt";  // prepared under a replaced log
        if (!foreign && !t.value("in_doubt", false)) continue;
        any = true;
        // A 2PC staging record is also in doubt when a fence found a
        // participant that committed and forgot (its tombstone then answers
        // aborted, not unknown).
        const bool staging = t.value("protocol", "") == "2pc";
        Settle(t.value("txid", ""), /*needs_forgotten=*/!foreign && !staging);
      }
    }
    busy_ = any || r.status != 200;
  });
  ctx_.scheduler.After(kPollMs, caller_.node(), [this] { Poll(); });
}

// First what the agents say (a 3PC record precommitted anywhere is
// committing by termination), then the history.
void Operator::Settle(const std::string& txid, bool needs_forgotten) {
  auto branches = ctx_.checker.BranchesOf(txid);
  if (branches.empty()) branches.insert(banks_.begin(), banks_.end());
  struct Survey {
    bool commit = false;
    std::size_t answers = 0;
    bool forgotten = false;  // some agent no longer knows the txid
    std::vector<std::string> holders;  // the agents holding it undecided: whom the force names, as commitctl does
  };
  auto survey = std::make_shared<Survey>();
  survey->commit = ctx_.checker.ShouldCommit(txid);
  for (const auto& b : branches) {
    caller_.Call(b, Request{"GET", "/v1/transactions/" + txid, nullptr}, [survey, b](const Response& state) {
      ++survey->answers;
      const std::string s = state.body.is_object() ? state.body.value("state", "") : "";
      if (s == "precommitted" || s == "committing" || s == "committed") survey->commit = true;
      if (s == "unknown") survey->forgotten = true;
      if (s == "prepared" || s == "precommitted") survey->holders.push_back(b);
    });
  }
  ctx_.scheduler.After(kPollMs / 2, caller_.node(), [this, txid, branches, survey, needs_forgotten] {
    // A 3PC transaction is in doubt only because a participant forgot it.
    if (needs_forgotten && survey->answers == branches.size() && !survey->forgotten) {
      ctx_.checker.Fail("in doubt without cause",
                        txid + " is reported in doubt, but every participant still knows it");
      return;
    }
    nlohmann::json participants = nlohmann::json::array();
    for (const auto& b : survey->holders.empty() ? std::vector<std::string>(branches.begin(), branches.end())
                                                 : survey->holders) {
      participants.push_back({{"name", b}});
    }
    const bool forced_commit = survey->commit || ctx_.checker.ShouldCommit(txid);
    ctx_.Log(caller_.node(), "OPERATOR settles " + txid + ": " + (forced_commit ? "commit" : "abort"));
    caller_.Call(coordinator_, Request{"POST", "/v1/admin/transactions/" + txid + "/force",
                               {{"outcome", forced_commit ? "commit" : "abort"},
                                {"participants", std::move(participants)},
                                {"reason", "settled by the operator"}}},
         nullptr);
  });
}

}  // namespace commitd::sim
