#include "tests/raft_sim/state_machine.h"

#include <sstream>

namespace commitd::raft_sim {

namespace {

uint64_t Mix(uint64_t hash, const void* data, std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 1099511628211ULL;
  }
  return hash;
}

}  // namespace

void StateMachine::Apply(const raft::Entry& entry) {
  hash_ = Mix(hash_, &entry.index, sizeof entry.index);
  hash_ = Mix(hash_, &entry.term, sizeof entry.term);
  hash_ = Mix(hash_, &entry.type, sizeof entry.type);
  hash_ = Mix(hash_, entry.data.data(), entry.data.size());
  applied_ = entry.index;
  if (entry.type == raft::EntryType::kNormal) commands_.push_back(entry.data);
}

std::string StateMachine::Snapshot() const {
  std::string out = std::to_string(applied_) + " " + std::to_string(hash_) + "\n";
  for (const std::string& c : commands_) {
    out += c;
    out += '\n';
  }
  return out;
}

std::optional<StateMachine> StateMachine::Restore(const std::string& snapshot) {
  std::istringstream in(snapshot);
  StateMachine sm;
  if (!(in >> sm.applied_ >> sm.hash_)) return std::nullopt;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) sm.commands_.push_back(line);
  return sm;
}

}  // namespace commitd::raft_sim
