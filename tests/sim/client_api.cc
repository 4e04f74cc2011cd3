#include "tests/sim/client_api.h"

#include "coordinator/api_render.h"

namespace commitd::sim {

void ServeClientApi(Context& ctx, const std::string& from, coordinator::Node& node, const Request& request,
                    Responder respond) {
  const int64_t now = ctx.now();
  if (request.method == "POST" && request.target == "/v1/transactions") {
    auto parsed = wire::ParseTxRequest(request.body);
    if (!parsed.ok()) {
      respond(Response{400, {{"error", {{"code", "invalid_request"}, {"message", parsed.status().message()}}}}});
      return;
    }
    auto key = request.headers.find("idempotency-key");
    coordinator::SubmitRequest submit{std::move(parsed).value(), key != request.headers.end() ? key->second : ""};
    node.Submit(std::move(submit), [&ctx, from, respond = std::move(respond)](coordinator::SubmitResult result) {
      coordinator::api::Rendered r = coordinator::api::Submit(result);
      ctx.Log(from, "reply client: " + std::to_string(r.status) + " " +
                        (r.body.is_object() ? r.body.value("txid", "") + " " + r.body.value("outcome", "") : ""));
      respond(Response{r.status, std::move(r.body)});
    });
    return;
  }
  if (request.method == "GET" && request.target.rfind("/v1/transactions/", 0) == 0) {
    std::string txid = request.target.substr(17);
    std::string asker;
    std::string asker_log_id;
    if (auto l = txid.find("&log_id="); l != std::string::npos) {
      asker_log_id = txid.substr(l + 8);
      txid.resize(l);
    }
    if (auto q = txid.find("?participant="); q != std::string::npos) {
      asker = txid.substr(q + 13);
      txid.resize(q);
    }
    node.GetTransaction(txid, asker, asker_log_id, [&ctx, from, txid, now, respond = std::move(respond)](coordinator::TxLookup lookup) {
      coordinator::api::Rendered r = coordinator::api::Lookup(lookup, now);
      ctx.Log(from, "answer " + txid + ": " + std::to_string(r.status) + " " +
                        (r.body.is_object() ? r.body.value("outcome", "") : ""));
      respond(Response{r.status, std::move(r.body)});
    });
    return;
  }
  respond(Response{404, {{"error", {{"code", "not_found"}, {"message", request.target}}}}});
}

}  // namespace commitd::sim
