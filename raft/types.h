// Identifiers, log entries and the durable per-node state of the Raft core.
#pragma once

#include <cstdint>
#include <string>

#include "raft/membership.h"

namespace commitd::raft {

using Term = uint64_t;
using Index = uint64_t;

enum class EntryType : uint8_t {
  kNormal,  // data is an application command
  kConfig,  // data is an encoded Membership; it takes effect as soon as it is in a log
  kNoop,    // appended by every new leader so that it can commit earlier terms' entries, and as a barrier
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  bool operator==(const Entry&) const = default;
};

// Must be durable before any message of the same Ready is sent.
struct HardState {
  Term term = 0;
  NodeId voted_for = kNoNode;

  bool operator==(const HardState&) const = default;
};

// The last entry a snapshot covers and the membership in force at it. A node
// that was never compacted has index 0, term 0 and its bootstrap membership
// (empty for a node that is to be added to an existing group).
struct SnapshotMeta {
  Index index = 0;
  Term term = 0;
  Membership membership;

  bool operator==(const SnapshotMeta&) const = default;
};

}  // namespace commitd::raft
