#include "tests/sim/api_caller.h"

namespace commitd::sim {
namespace {

constexpr int64_t kCallTimeoutMs = 10'000;

}  // namespace

void ApiCaller::AddCallingNode(Context& ctx, const std::string& node) {
  ctx.network.AddNode(node, [](const Request&, Responder respond) {
    respond({404, {{"error", {{"code", "not_found"}, {"message", "nothing here"}}}}});
  });
}

void ApiCaller::Call(const std::string& to, Request request, std::function<void(const Response&)> on_answer) {
  ++in_flight_;
  const std::string label = request.method + " " + request.target;
  ctx_.network.Call(node_, to, std::move(request), kCallTimeoutMs,
                    [this, to, label, on_answer = std::move(on_answer)](Result<Response> r) {
                      --in_flight_;
                      if (!r.ok()) {
                        ctx_.Log(node_, label + " -> " + to + ": " + r.status().message());
                        return;
                      }
                      ctx_.Log(node_, label + " -> " + to + ": " + std::to_string(r->status) + " " +
                                          (r->body.is_null() ? "" : r->body.dump()));
                      if (on_answer) on_answer(*r);
                    });
}

}  // namespace commitd::sim
