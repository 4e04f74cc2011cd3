// A network of raft::Nodes that a unit test drives by hand, one step at a
// time: no randomness, no faults unless the test asks for them, and a
// transcript of every delivered message for golden-style comparisons.
// Readies are handled as raft/node.h requires (persist, send, apply).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/node.h"

namespace commitd::raft_sim {

class StepNetwork {
 public:
  struct Storage {
    raft::HardState hard_state;
    raft::SnapshotMeta snapshot;
    std::shared_ptr<const std::string> snapshot_data;
    std::vector<raft::Entry> entries;
  };

  // Nodes 1..voters, all voters; `tuning` applies to every node (id and seed are set per node).
  explicit StepNetwork(int voters, raft::NodeOptions tuning = {}) : tuning_(tuning) {
    raft::Membership m;
    for (raft::NodeId id = 1; id <= static_cast<raft::NodeId>(voters); ++id) m.voters.insert(id);
    for (raft::NodeId id = 1; id <= static_cast<raft::NodeId>(voters); ++id) Add(id, m);
  }

  // A node bootstrapped with `membership` (empty for one that is to join).
  void Add(raft::NodeId id, raft::Membership membership) {
    storage_[id] = Storage{};
    storage_[id].snapshot.membership = std::move(membership);
    Restart(id);
  }

  // Replaces a node's storage (a log built by the test) and restarts it from it.
  void Load(raft::NodeId id, Storage storage) {
    storage_[id] = std::move(storage);
    Restart(id);
  }

  raft::Node& node(raft::NodeId id) { return *nodes_.at(id); }
  bool up(raft::NodeId id) const { return nodes_.count(id) > 0; }
  int64_t now() const { return now_ms_; }
  const Storage& storage(raft::NodeId id) const { return storage_.at(id); }
  // Entries each node handed to its state machine, in order (snapshots show as one entry of type kNoop, data "snapshot").
  const std::vector<raft::Entry>& applied(raft::NodeId id) const { return applied_.at(id); }
  // ReadIndex answers each node gave, in order.
  const std::vector<raft::ReadState>& reads(raft::NodeId id) { return reads_[id]; }
  std::vector<std::string>& transcript() { return transcript_; }
  std::deque<raft::Message>& in_flight() { return queue_; }

  // Moves the clock and ticks every running node.
  void Advance(int64_t ms) {
    now_ms_ += ms;
    for (auto& [id, n] : nodes_) {
      n->Tick(now_ms_);
      Collect(id);
    }
  }
  // Ticks one node at a time far enough in the future that its election timeout has passed.
  void Campaign(raft::NodeId id) {
    now_ms_ += 2 * tuning_.election_timeout_ms;
    node(id).Tick(now_ms_);
    Collect(id);
  }
  raft::ProposeResult Propose(raft::NodeId id, std::string data) {
    raft::ProposeResult r = node(id).Propose(std::move(data), now_ms_);
    Collect(id);
    return r;
  }
  template <class F>
  auto With(raft::NodeId id, F&& f) {
    auto r = f(node(id), now_ms_);
    Collect(id);
    return r;
  }

  // Delivers queued messages in order (and those they cause) until none is
  // left or `limit` were delivered. Returns how many were delivered.
  std::size_t DeliverAll(std::size_t limit = 100000) {
    std::size_t n = 0;
    while (!queue_.empty() && n < limit) {
      raft::Message m = std::move(queue_.front());
      queue_.pop_front();
      if (!Deliverable(m)) continue;
      ++n;
      transcript_.push_back(raft::Describe(m));
      node(m.to).Step(m, now_ms_);
      Collect(m.to);
    }
    return n;
  }
  // Drops every queued message.
  void DropAll() { queue_.clear(); }

  void Isolate(raft::NodeId id) { isolated_.insert(id); }
  void Heal() { isolated_.clear(); drop_.clear(); }
  // Drops every message that matches.
  void DropIf(std::function<bool(const raft::Message&)> predicate) { drop_.push_back(std::move(predicate)); }

  // Loses everything but storage.
  void Crash(raft::NodeId id) { nodes_.erase(id); }
  void Restart(raft::NodeId id) {
    const Storage& s = storage_.at(id);
    raft::NodeOptions options = tuning_;
    options.id = id;
    options.seed = id * 7919 + restarts_++;
    raft::RestoredState restored{s.hard_state, s.snapshot, s.snapshot_data, s.entries, s.snapshot.index};
    nodes_[id] = std::make_unique<raft::Node>(options, std::move(restored), now_ms_);
    applied_[id];
  }

 private:
  bool Deliverable(const raft::Message& m) const {
    if (!nodes_.count(m.to) || isolated_.count(m.to) || isolated_.count(m.from)) return false;
    for (const auto& drop : drop_) {
      if (drop(m)) return false;
    }
    return true;
  }

  void Collect(raft::NodeId id) {
    raft::Node& n = node(id);
    while (n.HasReady()) {
      raft::Ready ready = n.TakeReady();
      Storage& s = storage_[id];
      if (ready.hard_state) s.hard_state = *ready.hard_state;
      if (ready.snapshot) {
        std::erase_if(s.entries, [&](const raft::Entry& e) { return e.index <= ready.snapshot->meta.index; });
        s.snapshot = ready.snapshot->meta;
        s.snapshot_data = ready.snapshot->data;
        applied_[id].push_back(raft::Entry{s.snapshot.term, s.snapshot.index, raft::EntryType::kNoop, "snapshot"});
      }
      if (ready.truncate_from) {
        std::erase_if(s.entries, [&](const raft::Entry& e) { return e.index >= *ready.truncate_from; });
      }
      for (const raft::Entry& e : ready.append) s.entries.push_back(e);
      for (raft::Message& m : ready.messages) queue_.push_back(std::move(m));
      for (const raft::Entry& e : ready.committed) applied_[id].push_back(e);
      for (const raft::ReadState& r : ready.reads) reads_[id].push_back(r);
    }
  }

  raft::NodeOptions tuning_;
  int64_t now_ms_ = 0;
  uint64_t restarts_ = 0;
  std::map<raft::NodeId, std::unique_ptr<raft::Node>> nodes_;
  std::map<raft::NodeId, Storage> storage_;
  std::map<raft::NodeId, std::vector<raft::Entry>> applied_;
  std::map<raft::NodeId, std::vector<raft::ReadState>> reads_;
  std::deque<raft::Message> queue_;
  std::vector<std::string> transcript_;
  std::set<raft::NodeId> isolated_;
  std::vector<std::function<bool(const raft::Message&)>> drop_;
};

}  // namespace commitd::raft_sim
