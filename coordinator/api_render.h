// The client API's answers (docs/api.md) rendered from Node's typed values:
// status codes and JSON bodies. Used by the HTTP adapter (service.cc) and by
// the simulator's adapter, so both answer alike.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

#include "coordinator/client_body.h"
#include "coordinator/node.h"

namespace commitd::coordinator::api {

struct Rendered {
  int status = 200;
  ClientBody body;
  bool retry_after = false;  // send Retry-After (Config::retry_after_s)
};

nlohmann::json ViewJson(const TxView& v, int64_t now_ms);
nlohmann::json RecordJson(const DecisionRecord& r, int64_t now_ms);
// One entry of GET /v1/transactions.
nlohmann::json ListEntryJson(const TxView& v, int64_t now_ms);
nlohmann::json ListEntryJson(const DecisionRecord& r, int64_t now_ms);

Rendered Error(const NodeError& error);
Rendered Submit(SubmitResult result);
Rendered Lookup(const TxLookup& lookup, int64_t now_ms);
Rendered List(const TxList& list, int64_t now_ms);
Rendered Force(const std::string& txid, const ForceAnswer& answer, int64_t now_ms);

}  // namespace commitd::coordinator::api
