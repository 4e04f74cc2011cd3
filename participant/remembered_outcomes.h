// RememberedOutcomes: the outcomes of the txids that finished here, oldest
// first, with a lookup by txid.
//
// An agent looks every prepare and commit up here, and at a steady rate holds
// hundreds of thousands of txids, nearly all of them misses for the txid in
// hand. So the index is one flat array (open addressing, linear probing) of
// (hash, entry id) slots: a miss reads one or two slots and no entry; only a
// full hash that matches reads the entry to compare the txid. The entries
// themselves sit in a deque in the order they were remembered, and leave it
// from the front only (ForgetOldest), or go to the back (RequeueOldest).
//
// Thread: not thread-safe; the engine's own.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "participant/outcome.h"

namespace commitd::participant {

class RememberedOutcomes {
 public:
  // txid's outcome, or nullptr. The pointer lasts until the next change.
  Outcome* Find(std::string_view txid);
  const Outcome* Find(std::string_view txid) const;
  // Remembers txid's outcome at at_ms, the newest entry; a txid already
  // remembered keeps its outcome and place. Whether it was added.
  bool Add(std::string_view txid, Outcome outcome, int64_t at_ms);

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  // The oldest entry; only when not empty().
  const std::string& oldest_txid() const { return entries_.front().txid; }
  int64_t oldest_at_ms() const { return entries_.front().at_ms; }
  // Forgets the oldest entry.
  void ForgetOldest();
  // Makes the oldest entry the newest, remembered at at_ms.
  void RequeueOldest(int64_t at_ms);

 private:
  struct Entry {
    std::string txid;
    uint64_t hash = 0;
    int64_t at_ms = 0;
    Outcome outcome = Outcome::kCommitted;
  };
  // id 0: empty. An entry's id is its place in the sequence of every entry
  // ever added, plus one: entries_[id - 1 - first_id_].
  struct Slot {
    uint64_t hash = 0;
    uint64_t id = 0;
  };

  std::size_t Locate(std::string_view txid, uint64_t hash) const;  // its slot, or an empty one
  std::size_t SlotOf(uint64_t hash, uint64_t id) const;            // the slot holding id
  void EraseSlot(std::size_t slot);
  void Resize(std::size_t capacity);
  uint64_t NextId() const { return first_id_ + entries_.size() + 1; }
  const Entry& EntryOf(uint64_t id) const { return entries_[id - 1 - first_id_]; }

  std::deque<Entry> entries_;
  uint64_t first_id_ = 0;     // entries forgotten or requeued from the front so far
  std::vector<Slot> slots_;   // a power of two in size, at most half full
};

}  // namespace commitd::participant
