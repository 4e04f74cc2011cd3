// Operator: after healing, settles what only an operator may settle. It
// lists the first coordinator's in-doubt transactions (records prepared
// under a log that was replaced, and 3PC transactions a participant answered
// unknown_transaction after forgetting them), asks each branch's agent its
// state, and forces commit if one is precommitted, committing or committed or
// the history says commit (Checker::ShouldCommit), abort otherwise, naming
// every branch. It polls until a listing finds nothing left in doubt. A 3PC
// transaction reported in doubt while every agent still knows it is a
// violation ("in doubt without cause").
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "tests/sim/api_caller.h"
#include "tests/sim/context.h"

namespace commitd::sim {

class Operator {
 public:
  // node: the network node its calls come from (registered by the caller).
  // banks: every participant, for a transaction whose branches the history lacks.
  Operator(Context& ctx, std::string node, std::string coordinator, std::vector<std::string> banks);

  void OnHealed();
  // Nothing in flight, and the last listing found nothing in doubt.
  bool idle() const { return caller_.in_flight() == 0 && !busy_; }

 private:
  void Poll();
  // needs_forgotten: a 3PC transaction in doubt, which some agent must no longer know.
  void Settle(const std::string& txid, bool needs_forgotten);

  Context& ctx_;
  ApiCaller caller_;
  std::string coordinator_;
  std::vector<std::string> banks_;
  bool busy_ = false;
};

}  // namespace commitd::sim
