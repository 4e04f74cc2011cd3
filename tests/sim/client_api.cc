#include "tests/sim/client_api.h"

#include <map>
#include <string_view>
#include <utility>

#include "common/json_text.h"
#include "coordinator/api_render.h"

namespace commitd::sim {
namespace {

// "/a/b?k=v&k2=v2" -> ("/a/b", {k: v, k2: v2}).
std::pair<std::string, std::map<std::string, std::string>> SplitTarget(const std::string& target) {
  std::map<std::string, std::string> query;
  const std::size_t q = target.find('?');
  if (q == std::string::npos) return {target, query};
  std::size_t at = q + 1;
  while (at <= target.size()) {
    std::size_t end = target.find('&', at);
    if (end == std::string::npos) end = target.size();
    const std::string pair = target.substr(at, end - at);
    const std::size_t eq = pair.find('=');
    if (eq != std::string::npos) query[pair.substr(0, eq)] = pair.substr(eq + 1);
    at = end + 1;
  }
  return {target.substr(0, q), query};
}

}  // namespace

void ServeClientApi(Context& ctx, const std::string& from, coordinator::Node& node, const Request& request,
                    Responder respond) {
  const int64_t now = ctx.now();
  if (request.method == "POST" && request.target == "/v1/transactions") {
    // From the text, as a coordinator reads it.
    auto parsed = wire::ParseTxRequest(std::string_view(DumpJson(request.body)));
    if (!parsed.ok()) {
      respond(Response{400, {{"error", {{"code", "invalid_request"}, {"message", parsed.status().message()}}}}});
      return;
    }
    auto key = request.headers.find("idempotency-key");
    coordinator::SubmitRequest submit{std::move(parsed).value(), key != request.headers.end() ? key->second : ""};
    node.Submit(std::move(submit), [&ctx, from, respond = std::move(respond)](coordinator::SubmitResult result) {
      coordinator::api::Rendered r = coordinator::api::Submit(std::move(result));
      nlohmann::json body = coordinator::JsonOf(r.body);
      ctx.Log(from, "reply client: " + std::to_string(r.status) + " " +
                        (body.is_object() ? body.value("txid", "") + " " + body.value("outcome", "") : ""));
      respond(Response{r.status, std::move(body)});
    });
    return;
  }
  const auto [path, query] = SplitTarget(request.target);
  auto param = [&query](const std::string& name) {
    auto it = query.find(name);
    return it == query.end() ? std::string() : it->second;
  };
  if (request.method == "GET" && path == "/v1/transactions") {
    const std::string state = param("state");
    coordinator::TxListQuery list;
    if (state == "in_doubt") list.state = coordinator::TxListState::kInDoubt;
    if (state == "pending") list.state = coordinator::TxListState::kPending;
    node.ListTransactions(list, [now, respond = std::move(respond)](coordinator::TxList result) {
      coordinator::api::Rendered r = coordinator::api::List(result, now);
      respond(Response{r.status, coordinator::JsonOf(r.body)});
    });
    return;
  }
  if (request.method == "GET" && path.rfind("/v1/transactions/", 0) == 0) {
    const std::string txid = path.substr(17);
    node.GetTransaction(txid, param("participant"), param("log_id"),
                        [&ctx, from, txid, now, respond = std::move(respond)](coordinator::TxLookup lookup) {
      coordinator::api::Rendered r = coordinator::api::Lookup(lookup, now);
      nlohmann::json body = coordinator::JsonOf(r.body);
      ctx.Log(from, "answer " + txid + ": " + std::to_string(r.status) + " " +
                        (body.is_object() ? body.value("outcome", "") : ""));
      respond(Response{r.status, std::move(body)});
    });
    return;
  }
  // POST /v1/admin/transactions/{txid}/force {"outcome", "participants": [{"name"}]}
  if (request.method == "POST" && path.rfind("/v1/admin/transactions/", 0) == 0 &&
      path.size() > 29 && path.compare(path.size() - 6, 6, "/force") == 0) {
    coordinator::ForceRequest force;
    force.txid = path.substr(23, path.size() - 23 - 6);
    const std::string outcome = request.body.value("outcome", "");
    force.outcome = outcome == "commit" ? coordinator::Outcome::kCommitted : coordinator::Outcome::kAborted;
    for (const auto& p : request.body.value("participants", nlohmann::json::array())) {
      force.participants.push_back({p.value("name", ""), std::nullopt});
    }
    const std::string txid = force.txid;
    ctx.Log(from, "force " + outcome + " " + txid);
    node.Force(std::move(force), [&ctx, from, txid, now, respond = std::move(respond)](coordinator::ForceAnswer answer) {
      coordinator::api::Rendered r = coordinator::api::Force(txid, answer, now);
      nlohmann::json body = coordinator::JsonOf(r.body);
      ctx.Log(from, "force " + txid + ": " + std::to_string(r.status) + " " + (body.is_object() ? body.dump() : ""));
      respond(Response{r.status, std::move(body)});
    });
    return;
  }
  respond(Response{404, {{"error", {{"code", "not_found"}, {"message", request.target}}}}});
}

}  // namespace commitd::sim
