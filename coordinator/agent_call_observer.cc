#include "coordinator/agent_call_observer.h"

namespace commitd::coordinator {

std::string_view AgentCallName(AgentCall call) {
  switch (call) {
    case AgentCall::kPrepare: return "prepare";
    case AgentCall::kPrecommit: return "precommit";
    case AgentCall::kCommit: return "commit";
    case AgentCall::kAbort: return "abort";
    case AgentCall::kFence: return "fence";
    case AgentCall::kAdopt: return "adopt";
    case AgentCall::kStateQuery: return "state_query";
    case AgentCall::kProbe: return "probe";
    case AgentCall::kListPrepared: return "list_prepared";
  }
  return "probe";
}

std::string_view AgentCallErrorName(AgentCallError error) {
  switch (error) {
    case AgentCallError::kTimeout: return "timeout";
    case AgentCallError::kUnreachable: return "unreachable";
    case AgentCallError::kRefused: return "refused";
    case AgentCallError::kOverloaded: return "overloaded";
    case AgentCallError::kRejected: return "rejected";
    case AgentCallError::kServerError: return "server_error";
  }
  return "unreachable";
}

}  // namespace commitd::coordinator
