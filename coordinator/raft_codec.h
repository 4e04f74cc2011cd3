// Encodings for the coordinator group: the commands that are the
// Raft log's entries — decision records, finished marks, registry and member
// changes — in a binary form (format 2: byte_codec.h pieces, no JSON on the
// path every member applies), and decision records as JSON (RecordToJson, for
// the state machine snapshot). DecodeCommand still reads format 1, the JSON
// objects of raft.db files written before. (Raft messages between members
// travel in the binary frame of raft_wire.h.)
#pragma once

#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "coordinator/types.h"
#include "raft/messages.h"

namespace commitd::coordinator {

nlohmann::json RecordToJson(const DecisionRecord& r);
// InvalidArgument unless j has every field of RecordToJson with its type.
Result<DecisionRecord> RecordFromJson(const nlohmann::json& j);
// {"name", "url", "updated_ms"}; InvalidArgument unless j has them with their types.
Result<RegistryEntry> RegistryEntryFromJson(const nlohmann::json& j);

namespace command {
struct Decide {  // also a staging record (outcome pending)
  DecisionRecord record;
};
struct Finish {
  std::string txid;
  int64_t finished_ms = 0;
};
struct PutParticipant {
  RegistryEntry entry;
};
struct FinishMany {  // finished marks held together (ReplicatedDecisionLog::MarkFinished)
  std::vector<Finish> marks;
};
struct SetMember {  // a group member's URL, before it is added (empty url: forget it)
  std::string id;
  std::string url;
};
struct SetIdentity {  // the group log's identity, created by its first leader (the first applied wins)
  std::string log_id;
  std::string abort_secret;
};
struct ForgetFinished {  // retention: DecisionStore::ForgetFinishedBefore(cutoff_ms, keys_cutoff_ms, limit)
  int64_t cutoff_ms = 0;
  uint32_t limit = 0;
  int64_t keys_cutoff_ms = std::numeric_limits<int64_t>::min();  // the minimum: no key is let go
};
}  // namespace command
using Command = std::variant<command::Decide, command::Finish, command::PutParticipant, command::SetMember,
                             command::FinishMany, command::SetIdentity, command::ForgetFinished>;

std::string EncodeCommand(const Command& c);
Result<Command> DecodeCommand(std::string_view data);

// A node's Raft id, derived from its --id ("c1"): FNV-1a, never 0.
raft::NodeId NodeIdOf(std::string_view name);

}  // namespace commitd::coordinator
