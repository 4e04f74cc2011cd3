// A node's in-memory view of its Raft log: the snapshot base (the last
// compacted entry) and the entries after it, with the configurations they
// hold. The durable copy belongs to the driver, which keeps it in step with
// the Ready batches the Node emits.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "raft/types.h"

namespace commitd::raft {

class Log {
 public:
  // entries must be contiguous and start at base.index + 1.
  explicit Log(SnapshotMeta base = {}, std::vector<Entry> entries = {});

  const SnapshotMeta& base() const { return base_; }
  Index first_index() const { return base_.index + 1; }
  Index last_index() const { return base_.index + entries_.size(); }
  Term last_term() const { return entries_.empty() ? base_.term : entries_.back().term; }

  // The term of the entry at index; the base's term at base().index;
  // nullopt before the base (compacted) and after the last entry.
  std::optional<Term> TermAt(Index index) const;
  // first_index() <= index <= last_index().
  const Entry& At(Index index) const;
  // Entries [from, to], at most max_count of them; from >= first_index().
  std::vector<Entry> Slice(Index from, Index to, std::size_t max_count) const;

  // The first index of the run of entries sharing the term of the entry at index
  // (never below first_index(); first_index() for an index outside the log).
  Index FirstIndexOfTerm(Index index) const;
  // The last index holding an entry of exactly this term, if any is still in the log.
  std::optional<Index> LastIndexOfTerm(Term term) const;

  // Raft §5.4.1: a candidate whose last entry is (last_index, last_term) may get our vote.
  bool IsUpToDate(Index last_index, Term last_term) const;

  // The membership in force: that of the latest configuration entry, or the base's.
  const Membership& membership() const;
  // The membership in force just after index (base().index <= index <= last_index()).
  Membership MembershipAt(Index index) const;
  // The index of the latest configuration entry in the log, or base().index if none.
  Index last_config_index() const;

  // entry.index must be last_index() + 1.
  void Append(Entry entry);
  // Removes every entry with index >= from (from > base().index).
  void TruncateFrom(Index from);
  // Drops entries up to and including index (base().index < index <= last_index()).
  void CompactTo(Index index);
  // Installs a snapshot: keeps the entries after meta.index when the log holds
  // meta.index with meta.term, else empties the log. Returns whether it kept them.
  bool InstallSnapshot(const SnapshotMeta& meta);

 private:
  SnapshotMeta base_;
  std::vector<Entry> entries_;
  std::map<Index, Membership> configs_;  // configuration entries after the base
};

}  // namespace commitd::raft
