#include "raft/membership.h"

#include <charconv>

namespace commitd::raft {

namespace {

void AppendIds(std::string& out, const std::set<NodeId>& ids) {
  bool first = true;
  for (NodeId id : ids) {
    if (!first) out += ',';
    first = false;
    out += std::to_string(id);
  }
}

bool ParseIds(std::string_view text, std::set<NodeId>& out) {
  while (!text.empty()) {
    std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    NodeId id = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (ec != std::errc() || end != item.data() + item.size() || id == kNoNode) return false;
    out.insert(id);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return true;
}

}  // namespace

std::string Membership::Encode() const {
  std::string out = "v=";
  AppendIds(out, voters);
  out += ";l=";
  AppendIds(out, learners);
  return out;
}

std::optional<Membership> Membership::Decode(std::string_view text) {
  std::size_t semi = text.find(';');
  if (text.substr(0, 2) != "v=" || semi == std::string_view::npos) return std::nullopt;
  std::string_view learners_part = text.substr(semi + 1);
  if (learners_part.substr(0, 2) != "l=") return std::nullopt;
  Membership m;
  if (!ParseIds(text.substr(2, semi - 2), m.voters)) return std::nullopt;
  if (!ParseIds(learners_part.substr(2), m.learners)) return std::nullopt;
  for (NodeId id : m.learners) {
    if (m.voters.count(id)) return std::nullopt;
  }
  return m;
}

std::optional<Membership> Apply(const Membership& current, const ConfChange& change) {
  if (change.node == kNoNode) return std::nullopt;
  Membership next = current;
  switch (change.type) {
    case ConfChangeType::kAddLearner:
      if (current.Contains(change.node)) return std::nullopt;
      next.learners.insert(change.node);
      return next;
    case ConfChangeType::kPromote:
      if (!current.IsLearner(change.node)) return std::nullopt;
      next.learners.erase(change.node);
      next.voters.insert(change.node);
      return next;
    case ConfChangeType::kRemove:
      if (!current.Contains(change.node)) return std::nullopt;
      if (current.IsVoter(change.node) && current.voters.size() == 1) return std::nullopt;
      next.voters.erase(change.node);
      next.learners.erase(change.node);
      return next;
  }
  return std::nullopt;
}

std::string_view ConfChangeTypeName(ConfChangeType type) {
  switch (type) {
    case ConfChangeType::kAddLearner: return "add-learner";
    case ConfChangeType::kPromote: return "promote";
    case ConfChangeType::kRemove: return "remove";
  }
  return "?";
}

}  // namespace commitd::raft
