// What HttpAgentTransport reports about each exchange with an agent, for the
// coordinator's metrics (coordinator/service_metrics.h).
//
// Thread: the io thread (the transport's).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace commitd::coordinator {

enum class AgentCall { kPrepare, kPrecommit, kCommit, kAbort, kFence, kStateQuery, kProbe, kListPrepared, kAdopt };

// Why an exchange failed. An answer the protocol expects (a no vote, 404
// unknown_transaction, 409 already_aborted, a fence's 409) is not an error.
enum class AgentCallError {
  kTimeout,      // no answer in time
  kUnreachable,  // no connection, or it broke
  kRefused,      // 401 or 403: a token problem
  kOverloaded,   // 429 or 503
  kRejected,     // any other 4xx: the agent refused the request
  kServerError,  // any other 5xx
};
std::string_view AgentCallName(AgentCall call);            // "prepare", "precommit", "commit", "abort", "probe", ...
std::string_view AgentCallErrorName(AgentCallError error);  // "timeout", "unreachable", ...

class AgentCallObserver {
 public:
  virtual ~AgentCallObserver() = default;
  // seconds: from sending to the answer (or the failure).
  virtual void OnAgentCall(const std::string& participant, AgentCall call, double seconds,
                           std::optional<AgentCallError> error) = 0;
};

}  // namespace commitd::coordinator
