// Network: request/response exchanges between simulated nodes.
//
// An HTTP exchange is modelled as two one-way messages (request, response),
// each delayed, possibly dropped, duplicated or overtaken by later messages,
// and lost while its two ends are partitioned. The caller always hears back
// exactly once: the first response to arrive, "connection refused" when the
// callee was down, possibly "connection reset" when it crashed while
// handling the request (NetworkFaults::reset_on_crash), or a timeout (all
// but the timeout travel as messages, which can be lost) — unless the
// caller itself crashed meanwhile, in which case nothing is delivered (its
// process and sockets are gone).
// A response produced by a callee that has since crashed is never sent.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tests/sim/random.h"
#include "tests/sim/scheduler.h"
#include "tests/sim/trace.h"

namespace commitd::sim {

struct Request {
  std::string method;  // "POST" | "GET"
  std::string target;  // "/v1/prepare", "/v1/transactions/{txid}", ...
  nlohmann::json body;
  std::map<std::string, std::string> headers;  // lower-case names: "idempotency-key", "x-commitd-forwarded"
};

struct Response {
  int status = 200;
  nlohmann::json body;
};

using Responder = std::function<void(Response)>;
using Handler = std::function<void(const Request&, Responder)>;
using ReplyCallback = std::function<void(Result<Response>)>;

struct NetworkFaults {
  double drop = 0;            // per message
  double duplicate = 0;       // per message
  double delay_outlier = 0;   // per message: a long delay that reorders it behind later ones
  int64_t min_delay_ms = 1;
  int64_t max_delay_ms = 5;
  int64_t outlier_max_ms = 300;
  // Per request a crashing callee was handling: its kernel resets the
  // connection, and the caller hears "connection reset" (one message's delay
  // later) instead of waiting for its timeout. 0: never (no draw is made).
  double reset_on_crash = 0;
};

class Network {
 public:
  Network(Scheduler& scheduler, Random& random, Trace& trace) : scheduler_(scheduler), random_(random), trace_(trace) {}

  void AddNode(const std::string& name, Handler handler);
  // A crash makes a node unreachable and invalidates everything its old
  // process was waiting for; a restart makes it reachable again.
  void Crash(const std::string& name);
  void Restart(const std::string& name);
  bool IsUp(const std::string& name) const { return nodes_.at(name).up; }

  void Cut(const std::string& a, const std::string& b);
  void Heal(const std::string& a, const std::string& b);
  void HealAll();
  bool Connected(const std::string& a, const std::string& b) const;

  void set_faults(const NetworkFaults& faults) { faults_ = faults; }
  // Called as each one-way message leaves, before the links are looked at:
  // lets a scenario cut links at the worst moment (an adversarial schedule).
  using SendHook = std::function<void(const std::string& from, const std::string& to, const std::string& label)>;
  void set_send_hook(SendHook hook) { send_hook_ = std::move(hook); }
  uint64_t messages() const { return messages_; }

  void Call(const std::string& from, const std::string& to, Request request, int64_t timeout_ms,
            ReplyCallback callback);
  // A one-way message with no answer (a Raft message): `deliver` runs at `to`
  // if it arrives while `to` is up.
  void Post(const std::string& from, const std::string& to, const std::string& label, std::function<void()> deliver);

 private:
  struct Node {
    Handler handler;
    bool up = true;
    uint64_t incarnation = 0;
  };
  struct CallState {
    uint64_t id = 0;
    std::string from;
    std::string to;
    std::string label;
    uint64_t from_incarnation = 0;
    bool done = false;
    bool answered = false;  // the callee's handler produced its response
    std::optional<uint64_t> handled_by;  // the callee incarnation whose handler has it (reset_on_crash)
    ReplyCallback callback;
  };

  // Sends one one-way message; `arrive` runs at `to` unless it is lost.
  void Transmit(const std::string& from, const std::string& to, const std::string& label,
                std::function<void()> arrive);
  void Finish(const std::shared_ptr<CallState>& call, Result<Response> result);
  // Requests each node's handler has and has not answered yet (only with reset_on_crash).
  std::map<std::string, std::vector<std::weak_ptr<CallState>>> handling_;
  static std::pair<std::string, std::string> Link(const std::string& a, const std::string& b);

  Scheduler& scheduler_;
  Random& random_;
  Trace& trace_;
  NetworkFaults faults_;
  SendHook send_hook_;
  std::map<std::string, Node> nodes_;
  std::set<std::pair<std::string, std::string>> cut_;
  uint64_t next_call_ = 0;
  uint64_t messages_ = 0;
};

}  // namespace commitd::sim
