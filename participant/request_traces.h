// The trace context each transaction's protocol requests came with (the
// coordinator's `traceparent`, one span per call), so that the agent's log
// lines about a transaction carry its trace_id: the request lines written at
// debug level, and the Node's own events (conflicts, decision answers,
// termination) while the transaction is held here.
//
// Thread: the agent's event thread, like the Node.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "common/http_types.h"
#include "common/log.h"
#include "common/trace_context.h"
#include "participant/node.h"

namespace commitd::participant {

class RequestTraces {
 public:
  // Remembers req's traceparent for txid (a missing or malformed one: none)
  // and returns `reply` wrapped: the answer is logged (debug) with the trace;
  // after a final answer (a commit or abort, a prepare not voted yes) txid is
  // forgotten.
  ReplyFn Track(std::string_view call, const std::string& txid, const http::Request& req, ReplyFn reply);
  // log::Write, adding trace_id when fields name a txid with a known trace.
  void Write(log::Level level, std::string_view event, const nlohmann::json& fields) const;
  std::size_t size() const { return traces_.size(); }

 private:
  // Bounds the map if final answers never come (a coordinator that vanished):
  // past this many, every entry is dropped.
  static constexpr std::size_t kMaxTracked = 1 << 16;
  std::unordered_map<std::string, TraceContext> traces_;
};

}  // namespace commitd::participant
