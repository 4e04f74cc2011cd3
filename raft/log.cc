#include "raft/log.h"

#include <algorithm>
#include <cassert>

namespace commitd::raft {

Log::Log(SnapshotMeta base, std::vector<Entry> entries) : base_(std::move(base)) {
  for (Entry& e : entries) Append(std::move(e));
}

std::optional<Term> Log::TermAt(Index index) const {
  if (index == base_.index) return base_.term;
  if (index < base_.index || index > last_index()) return std::nullopt;
  return entries_[index - first_index()].term;
}

const Entry& Log::At(Index index) const {
  assert(index >= first_index() && index <= last_index());
  return entries_[index - first_index()];
}

std::vector<Entry> Log::Slice(Index from, Index to, std::size_t max_count) const {
  std::vector<Entry> out;
  assert(from >= first_index());
  for (Index i = from; i <= to && i <= last_index() && out.size() < max_count; ++i) out.push_back(At(i));
  return out;
}

Index Log::FirstIndexOfTerm(Index index) const {
  if (index < first_index() || index > last_index()) return first_index();
  Term term = At(index).term;
  auto first = std::lower_bound(entries_.begin(), entries_.end(), term,
                                [](const Entry& e, Term t) { return e.term < t; });
  return first_index() + static_cast<Index>(first - entries_.begin());
}

std::optional<Index> Log::LastIndexOfTerm(Term term) const {
  auto after = std::upper_bound(entries_.begin(), entries_.end(), term,
                                [](Term t, const Entry& e) { return t < e.term; });
  if (after == entries_.begin()) {
    if (base_.term == term && base_.index > 0) return base_.index;
    return std::nullopt;
  }
  const Entry& last = *(after - 1);
  if (last.term != term) return std::nullopt;
  return last.index;
}

bool Log::IsUpToDate(Index index, Term term) const {
  return term > last_term() || (term == last_term() && index >= last_index());
}

const Membership& Log::membership() const {
  return configs_.empty() ? base_.membership : configs_.rbegin()->second;
}

Membership Log::MembershipAt(Index index) const {
  auto it = configs_.upper_bound(index);
  if (it == configs_.begin()) return base_.membership;
  return std::prev(it)->second;
}

Index Log::last_config_index() const { return configs_.empty() ? base_.index : configs_.rbegin()->first; }

void Log::Append(Entry entry) {
  assert(entry.index == last_index() + 1);
  assert(entry.term >= last_term());
  if (entry.type == EntryType::kConfig) {
    // An undecodable configuration would be a bug in whoever built the entry.
    auto m = Membership::Decode(entry.data);
    assert(m);
    if (m) configs_[entry.index] = *m;
  }
  entries_.push_back(std::move(entry));
}

void Log::TruncateFrom(Index from) {
  assert(from > base_.index);
  if (from > last_index()) return;
  entries_.resize(from - first_index());
  configs_.erase(configs_.lower_bound(from), configs_.end());
}

void Log::CompactTo(Index index) {
  assert(index > base_.index && index <= last_index());
  SnapshotMeta next{index, At(index).term, MembershipAt(index)};
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(index - base_.index));
  configs_.erase(configs_.begin(), configs_.upper_bound(index));
  base_ = std::move(next);
}

bool Log::InstallSnapshot(const SnapshotMeta& meta) {
  bool keep = meta.index > base_.index && TermAt(meta.index) == meta.term;
  if (keep) {
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(meta.index - base_.index));
    configs_.erase(configs_.begin(), configs_.upper_bound(meta.index));
  } else {
    entries_.clear();
    configs_.clear();
  }
  base_ = meta;
  return keep;
}

}  // namespace commitd::raft
