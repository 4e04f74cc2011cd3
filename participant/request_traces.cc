#include "participant/request_traces.h"

#include <utility>

namespace commitd::participant {

ReplyFn RequestTraces::Track(std::string_view call, const std::string& txid, const http::Request& req,
                             ReplyFn reply) {
  auto header = req.Header(TraceContext::kHeader);
  std::optional<TraceContext> trace = header ? TraceContext::Parse(*header) : std::nullopt;
  if (trace) {
    if (traces_.size() >= kMaxTracked && !traces_.contains(txid)) traces_.clear();
    traces_.insert_or_assign(txid, *trace);
  }
  return [this, call = std::string(call), txid, trace = std::move(trace),
          reply = std::move(reply)](NodeReply answer) {
    if (log::Enabled(log::Level::kDebug)) {
      nlohmann::json fields = {{"call", call}, {"txid", txid}, {"status", answer.status}};
      if (const auto* vote = std::get_if<wire::Vote>(&answer.body)) fields["vote"] = vote->yes ? "yes" : "no";
      if (trace) {
        fields["trace_id"] = trace->trace_id();
        fields["span_id"] = trace->span_id();
      }
      log::Debug("protocol_request", fields);
    }
    const auto* vote = std::get_if<wire::Vote>(&answer.body);
    const bool voted_yes = answer.status == 200 && vote != nullptr && vote->yes;
    const bool held = call == "prepare" ? voted_yes : call == "precommit" && answer.status == 200;
    if (!held) traces_.erase(txid);
    reply(std::move(answer));
  };
}

void RequestTraces::Write(log::Level level, std::string_view event, const nlohmann::json& fields) const {
  if (!traces_.empty() && fields.is_object()) {
    auto txid = fields.find("txid");
    if (txid != fields.end() && txid->is_string()) {
      auto it = traces_.find(txid->get_ref<const std::string&>());
      if (it != traces_.end()) {
        nlohmann::json traced = fields;
        traced["trace_id"] = it->second.trace_id();
        log::Write(level, event, traced);
        return;
      }
    }
  }
  log::Write(level, event, fields);
}

}  // namespace commitd::participant
