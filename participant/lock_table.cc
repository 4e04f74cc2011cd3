#include "participant/lock_table.h"

namespace commitd::participant {

std::optional<std::string> LockTable::FirstHolder(const std::string& txid,
                                                  const std::vector<std::string>& keys) const {
  for (const auto& key : keys) {
    auto it = holder_.find(key);
    if (it != holder_.end() && it->second != txid) return it->second;
  }
  return std::nullopt;
}

std::optional<std::string> LockTable::TryAcquire(const std::string& txid, const std::vector<std::string>& keys) {
  if (auto holder = FirstHolder(txid, keys)) return holder;
  auto& held = held_by_[txid];
  for (const auto& key : keys) {
    if (holder_.emplace(key, txid).second) held.push_back(key);
  }
  if (held.empty()) held_by_.erase(txid);
  return std::nullopt;
}

void LockTable::Release(const std::string& txid) {
  auto it = held_by_.find(txid);
  if (it == held_by_.end()) return;
  for (const auto& key : it->second) holder_.erase(key);
  held_by_.erase(it);
}

void LockTable::Clear() {
  holder_.clear();
  held_by_.clear();
}

std::optional<std::string> LockTable::Holder(const std::string& key) const {
  auto it = holder_.find(key);
  if (it == holder_.end()) return std::nullopt;
  return it->second;
}

}  // namespace commitd::participant
