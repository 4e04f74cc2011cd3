#include "tests/raft_sim/checker.h"

#include <algorithm>

namespace commitd::raft_sim {

namespace {

uint64_t Fingerprint(const raft::Entry& e) {
  uint64_t h = 1469598103934665603ULL ^ static_cast<uint64_t>(e.type);
  h *= 1099511628211ULL;
  for (unsigned char c : e.data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t Key(raft::Index index, raft::Term term) { return (index << 24) ^ term; }

std::string Id(raft::NodeId n) { return "n" + std::to_string(n); }

}  // namespace

Checker::Checker(std::size_t node_count)
    : completeness_checked_term_(node_count + 1, 0), seen_commit_(node_count + 1, 0) {}

void Checker::Fail(std::string what) {
  if (!violation_) violation_ = std::move(what);
}

void Checker::OnAppended(raft::NodeId node, const raft::Log& log, const std::vector<raft::Entry>& entries) {
  for (const raft::Entry& e : entries) {
    std::optional<raft::Term> prev = log.TermAt(e.index - 1);
    if (!prev || log.TermAt(e.index) != e.term) {
      Fail("driver: " + Id(node) + " appended " + std::to_string(e.index) + " that is not in its log");
      return;
    }
    Appended a{Fingerprint(e), *prev};
    auto [it, inserted] = appended_.emplace(Key(e.index, e.term), a);
    if (inserted) continue;
    if (it->second.fingerprint != a.fingerprint) {
      Fail("log matching: " + Id(node) + " holds a different entry " + std::to_string(e.index) + "/" +
           std::to_string(e.term) + " than another node");
    } else if (it->second.prev_term != a.prev_term) {
      Fail("log matching: " + Id(node) + " has entry " + std::to_string(e.index) + "/" + std::to_string(e.term) +
           " after term " + std::to_string(a.prev_term) + ", another node after term " +
           std::to_string(it->second.prev_term));
    }
  }
}

void Checker::OnApplied(raft::NodeId node, raft::Index index, uint64_t hash) {
  if (index == 0) return;
  if (applied_hash_.size() <= index) applied_hash_.resize(index + 1);
  auto& known = applied_hash_[index];
  if (!known) {
    known = hash;
  } else if (*known != hash) {
    Fail("state machine safety: " + Id(node) + " applied a different history up to index " + std::to_string(index));
  }
}

void Checker::OnRestart(raft::NodeId node, raft::Index commit_index) { seen_commit_[node] = commit_index; }

void Checker::CheckDurableLog(raft::NodeId node, const raft::Log& log, raft::Index durable_base,
                              raft::Index durable_last, std::optional<raft::Term> durable_last_term) {
  if (durable_base != log.base().index || durable_last != log.last_index() || durable_last_term != log.last_term()) {
    Fail("ready contract: " + Id(node) + " holds " + std::to_string(log.base().index) + ".." +
         std::to_string(log.last_index()) + " in memory but " + std::to_string(durable_base) + ".." +
         std::to_string(durable_last) + " on disk");
  }
}

void Checker::Report(std::string violation) { Fail(std::move(violation)); }

void Checker::OnReadRequested(uint64_t request) { reads_[request] = max_committed_; }

void Checker::OnReadAnswered(raft::NodeId node, const raft::ReadState& read) {
  auto it = reads_.find(read.request);
  if (it == reads_.end()) {
    Fail("read: " + Id(node) + " answered read " + std::to_string(read.request) + " that no one asked (or twice)");
    return;
  }
  raft::Index floor = it->second;
  reads_.erase(it);
  if (!read.ok) return;
  ++reads_answered_;
  if (read.index < floor) {
    Fail("linearizable reads: " + Id(node) + " answered read " + std::to_string(read.request) + " at index " +
         std::to_string(read.index) + ", but " + std::to_string(floor) + " was committed before it was asked");
  }
}

bool Checker::IsCommitted(raft::Index index, raft::Term term) const {
  return index < committed_.size() && committed_[index].known && committed_[index].term == term;
}

void Checker::CheckLeaderHas(const raft::Node& leader, raft::Index index, const Committed& c) {
  if (leader.term() <= c.known_in) return;
  const raft::Log& log = leader.log();
  if (index < log.base().index) return;  // compacted: the snapshot's hash stands for it
  if (log.TermAt(index) != c.term) {
    Fail("leader completeness: " + Id(leader.id()) + ", leader of term " + std::to_string(leader.term()) +
         ", lacks entry " + std::to_string(index) + "/" + std::to_string(c.term) + " committed by term " +
         std::to_string(c.known_in));
  }
}

void Checker::AfterStep(raft::NodeId stepped, const std::vector<const raft::Node*>& nodes) {
  const raft::Node* n = nodes[stepped];
  if (!n) return;
  if (n->role() == raft::Role::kLeader) {
    auto [it, inserted] = leaders_.emplace(n->term(), n->id());
    if (!inserted && it->second != n->id()) {
      Fail("election safety: " + Id(it->second) + " and " + Id(n->id()) + " both leaders of term " +
           std::to_string(n->term()));
      return;
    }
    if (completeness_checked_term_[stepped] != n->term()) {
      completeness_checked_term_[stepped] = n->term();
      for (raft::Index i = 1; i < committed_.size(); ++i) {
        if (committed_[i].known) CheckLeaderHas(*n, i, committed_[i]);
      }
    }
  }
  raft::Index commit = n->commit_index();
  const raft::Log& log = n->log();
  for (raft::Index i = seen_commit_[stepped] + 1; i <= commit; ++i) {
    if (i <= log.base().index) continue;
    std::optional<raft::Term> term = log.TermAt(i);
    if (!term) {
      Fail("commit: " + Id(stepped) + " commits " + std::to_string(i) + " past its log");
      return;
    }
    if (committed_.size() <= i) committed_.resize(i + 1);
    Committed& c = committed_[i];
    if (c.known && c.term != *term) {
      Fail("state machine safety: entries " + std::to_string(i) + "/" + std::to_string(c.term) + " and " +
           std::to_string(i) + "/" + std::to_string(*term) + " both committed (the second at " + Id(stepped) + ")");
      return;
    }
    if (!c.known) {
      c = Committed{true, *term, n->term()};
      ++committed_count_;
      max_committed_ = std::max(max_committed_, i);
    } else if (n->term() < c.known_in) {
      c.known_in = n->term();
    }
    for (const raft::Node* other : nodes) {
      if (other && other->role() == raft::Role::kLeader) CheckLeaderHas(*other, i, c);
    }
  }
  if (commit > seen_commit_[stepped]) seen_commit_[stepped] = commit;
}

}  // namespace commitd::raft_sim
