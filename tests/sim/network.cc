#include "tests/sim/network.h"

namespace commitd::sim {

void Network::AddNode(const std::string& name, Handler handler) { nodes_[name].handler = std::move(handler); }

void Network::Crash(const std::string& name) {
  Node& n = nodes_.at(name);
  n.up = false;
  ++n.incarnation;
  auto it = handling_.find(name);
  if (it == handling_.end()) return;
  std::vector<std::weak_ptr<CallState>> calls = std::move(it->second);
  handling_.erase(it);
  for (const auto& weak : calls) {
    std::shared_ptr<CallState> call = weak.lock();
    // An answered request's response left before the reset: TCP delivers it first.
    if (!call || call->done || call->answered || !random_.Chance(faults_.reset_on_crash)) continue;
    Transmit(name, call->from, "reset " + call->label,
             [this, call, name] { Finish(call, Status::Unavailable("connection to " + name + " reset")); });
  }
}

void Network::Restart(const std::string& name) { nodes_.at(name).up = true; }

std::pair<std::string, std::string> Network::Link(const std::string& a, const std::string& b) {
  return a < b ? std::make_pair(a, b) : std::make_pair(b, a);
}

void Network::Cut(const std::string& a, const std::string& b) { cut_.insert(Link(a, b)); }
void Network::Heal(const std::string& a, const std::string& b) { cut_.erase(Link(a, b)); }
void Network::HealAll() { cut_.clear(); }
bool Network::Connected(const std::string& a, const std::string& b) const { return cut_.count(Link(a, b)) == 0; }

void Network::Transmit(const std::string& from, const std::string& to, const std::string& label,
                       std::function<void()> arrive) {
  ++messages_;
  if (send_hook_) send_hook_(from, to, label);
  if (!Connected(from, to)) {
    trace_.Add(scheduler_.now(), from, "net cut " + label + " -> " + to);
    return;
  }
  if (random_.Chance(faults_.drop)) {
    trace_.Add(scheduler_.now(), from, "net drop " + label + " -> " + to);
    return;
  }
  const int copies = random_.Chance(faults_.duplicate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    int64_t delay = random_.Uniform(faults_.min_delay_ms, faults_.max_delay_ms);
    if (random_.Chance(faults_.delay_outlier)) delay += random_.Uniform(0, faults_.outlier_max_ms);
    if (i == 1) trace_.Add(scheduler_.now(), from, "net dup " + label + " -> " + to);
    scheduler_.After(delay, to, [this, from, to, label, arrive] {
      if (!Connected(from, to)) {
        trace_.Add(scheduler_.now(), to, "net cut (in flight) " + label + " from " + from);
        return;
      }
      arrive();
    });
  }
}

void Network::Call(const std::string& from, const std::string& to, Request request, int64_t timeout_ms,
                   ReplyCallback callback) {
  auto call = std::make_shared<CallState>();
  call->id = ++next_call_;
  call->from = from;
  call->to = to;
  call->label = request.method + " " + request.target + " #" + std::to_string(call->id);
  call->from_incarnation = nodes_.at(from).incarnation;
  call->callback = std::move(callback);
  scheduler_.After(timeout_ms, from, [this, call, timeout_ms] {
    Finish(call, Status::Timeout("request to " + call->to + " timed out after " + std::to_string(timeout_ms) +
                                 " ms"));
  });
  Transmit(from, to, call->label, [this, call, request = std::move(request)] {
    Node& callee = nodes_.at(call->to);
    if (!callee.up) {
      Transmit(call->to, call->from, "refused " + call->label,
               [this, call] { Finish(call, Status::Unavailable("connect to " + call->to + " refused")); });
      return;
    }
    const uint64_t incarnation = callee.incarnation;
    // A duplicated request reaches the handler twice; it is reset at most once.
    if (faults_.reset_on_crash > 0 && call->handled_by != incarnation) {
      call->handled_by = incarnation;
      auto& handling = handling_[call->to];
      if (handling.size() >= 64) {
        std::erase_if(handling, [](const std::weak_ptr<CallState>& w) {
          auto c = w.lock();
          return !c || c->done || c->answered;
        });
      }
      handling.push_back(call);
    }
    callee.handler(request, [this, call, incarnation](Response response) {
      if (nodes_.at(call->to).incarnation != incarnation) return;
      call->answered = true;
      Transmit(call->to, call->from, "reply " + std::to_string(response.status) + " " + call->label,
               [this, call, response = std::move(response)] { Finish(call, response); });
    });
  });
}

void Network::Post(const std::string& from, const std::string& to, const std::string& label,
                   std::function<void()> deliver) {
  Transmit(from, to, label, [this, to, deliver = std::move(deliver)] {
    if (nodes_.at(to).up) deliver();
  });
}

void Network::Finish(const std::shared_ptr<CallState>& call, Result<Response> result) {
  if (call->done) return;
  call->done = true;
  if (nodes_.at(call->from).incarnation != call->from_incarnation) return;
  if (!result.ok()) trace_.Add(scheduler_.now(), call->from, "net fail " + call->label + ": " + result.status().message());
  call->callback(std::move(result));
}

}  // namespace commitd::sim
