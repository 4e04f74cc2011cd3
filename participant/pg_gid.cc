#include "participant/pg_gid.h"

#include "common/wire.h"

namespace commitd::participant::pg {
namespace {

constexpr std::string_view kScheme = "commitd:";

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

}  // namespace

Status ValidateAgentName(std::string_view agent) {
  if (agent.empty() || agent.size() > kMaxAgentNameForGid) {
    return Status::InvalidArgument("agent name for PostgreSQL: must be 1-" + std::to_string(kMaxAgentNameForGid) +
                                   " characters");
  }
  for (char c : agent) {
    if (!IsNameChar(c)) {
      return Status::InvalidArgument("agent name for PostgreSQL: must be characters of [A-Za-z0-9._-], not '" +
                                     std::string(agent) + "'");
    }
  }
  return Status::Ok();
}

std::string GidPrefix(std::string_view agent) {
  std::string prefix(kScheme);
  prefix += agent;
  prefix += ':';
  return prefix;
}

Result<std::string> EncodeGid(std::string_view agent, std::string_view txid) {
  if (Status s = ValidateAgentName(agent); !s.ok()) return s;
  if (!wire::IsValidTxid(std::string(txid))) {
    return Status::InvalidArgument(std::string(wire::kInvalidTxidMessage));
  }
  return GidPrefix(agent) + std::string(txid);
}

std::optional<std::string> TxidOfGid(std::string_view agent, std::string_view gid) {
  const std::string prefix = GidPrefix(agent);
  if (gid.size() <= prefix.size() || gid.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string txid(gid.substr(prefix.size()));
  if (!wire::IsValidTxid(txid)) return std::nullopt;
  return txid;
}

}  // namespace commitd::participant::pg
