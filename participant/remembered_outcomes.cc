#include "participant/remembered_outcomes.h"

#include <algorithm>
#include <functional>
#include <utility>

namespace commitd::participant {
namespace {

constexpr std::size_t kMinCapacity = 64;

uint64_t HashOf(std::string_view txid) { return std::hash<std::string_view>{}(txid); }

}  // namespace

std::size_t RememberedOutcomes::Locate(std::string_view txid, uint64_t hash) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.id == 0) return i;
    if (slot.hash == hash && EntryOf(slot.id).txid == txid) return i;
  }
}

std::size_t RememberedOutcomes::SlotOf(uint64_t hash, uint64_t id) const {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash & mask;
  while (slots_[i].id != id) i = (i + 1) & mask;
  return i;
}

const Outcome* RememberedOutcomes::Find(std::string_view txid) const {
  if (entries_.empty()) return nullptr;
  const Slot& slot = slots_[Locate(txid, HashOf(txid))];
  return slot.id == 0 ? nullptr : &EntryOf(slot.id).outcome;
}

Outcome* RememberedOutcomes::Find(std::string_view txid) {
  return const_cast<Outcome*>(std::as_const(*this).Find(txid));
}

bool RememberedOutcomes::Add(std::string_view txid, Outcome outcome, int64_t at_ms) {
  if (2 * (entries_.size() + 1) > slots_.size()) {
    Resize(std::max(kMinCapacity, 2 * slots_.size()));
  }
  const uint64_t hash = HashOf(txid);
  Slot& slot = slots_[Locate(txid, hash)];
  if (slot.id != 0) return false;
  slot = Slot{hash, NextId()};
  entries_.push_back(Entry{std::string(txid), hash, at_ms, outcome});
  return true;
}

void RememberedOutcomes::ForgetOldest() {
  EraseSlot(SlotOf(entries_.front().hash, first_id_ + 1));
  entries_.pop_front();
  ++first_id_;
  // After a burst the window holds far fewer txids: give the memory back.
  if (slots_.size() > kMinCapacity && 8 * entries_.size() < slots_.size()) Resize(slots_.size() / 4);
}

void RememberedOutcomes::RequeueOldest(int64_t at_ms) {
  Slot& slot = slots_[SlotOf(entries_.front().hash, first_id_ + 1)];
  Entry entry = std::move(entries_.front());
  entry.at_ms = at_ms;
  slot.id = NextId();
  entries_.push_back(std::move(entry));
  entries_.pop_front();
  ++first_id_;
}

// Backward-shift deletion: every later slot of the same probe run that may
// move into the hole does, so that lookups never need tombstones.
void RememberedOutcomes::EraseSlot(std::size_t hole) {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = (hole + 1) & mask; slots_[i].id != 0; i = (i + 1) & mask) {
    const std::size_t home = slots_[i].hash & mask;
    // Whether home lies cyclically in (hole, i]: then the slot stays.
    const bool stays = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
    if (stays) continue;
    slots_[hole] = slots_[i];
    hole = i;
  }
  slots_[hole] = Slot{};
}

void RememberedOutcomes::Resize(std::size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{});
  const std::size_t mask = capacity - 1;
  for (const Slot& s : old) {
    if (s.id == 0) continue;
    std::size_t i = s.hash & mask;
    while (slots_[i].id != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

}  // namespace commitd::participant
