// ApiCaller: a simulated operator's or adversary's HTTP calls from one
// network node, each traced with its answer, counting the calls not answered yet.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "tests/sim/context.h"

namespace commitd::sim {

class ApiCaller {
 public:
  ApiCaller(Context& ctx, std::string node) : ctx_(ctx), node_(std::move(node)) {}

  // Puts a node that only calls out on the network: anything sent to it is answered 404.
  static void AddCallingNode(Context& ctx, const std::string& node);

  // on_answer runs only for an answer (a lost call or a timeout is traced and dropped).
  void Call(const std::string& to, Request request, std::function<void(const Response&)> on_answer);
  uint64_t in_flight() const { return in_flight_; }
  const std::string& node() const { return node_; }

 private:
  Context& ctx_;
  std::string node_;
  uint64_t in_flight_ = 0;
};

}  // namespace commitd::sim
