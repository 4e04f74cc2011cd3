// Who votes and who only receives the log. Changed one server at a time
// (Ongaro's thesis §4.1): a new server joins as a learner, catches up, and is
// then promoted to voter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace commitd::raft {

using NodeId = uint64_t;
constexpr NodeId kNoNode = 0;

struct Membership {
  std::set<NodeId> voters;
  std::set<NodeId> learners;  // receive entries; never vote, never counted for commit or election

  bool IsVoter(NodeId id) const { return voters.count(id) > 0; }
  bool IsLearner(NodeId id) const { return learners.count(id) > 0; }
  bool Contains(NodeId id) const { return IsVoter(id) || IsLearner(id); }
  std::size_t Quorum() const { return voters.size() / 2 + 1; }

  // "v=1,2,3;l=4", the data of a kConfig entry.
  std::string Encode() const;
  static std::optional<Membership> Decode(std::string_view text);

  bool operator==(const Membership&) const = default;
};

enum class ConfChangeType { kAddLearner, kPromote, kRemove };

struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddLearner;
  NodeId node = kNoNode;
};

// The membership after `change`, or nullopt when the change does not apply
// (adding a member, promoting a non-learner, removing a non-member or the last voter).
std::optional<Membership> Apply(const Membership& current, const ConfChange& change);

std::string_view ConfChangeTypeName(ConfChangeType type);

}  // namespace commitd::raft
