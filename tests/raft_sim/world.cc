#include "tests/raft_sim/world.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <memory>

#include "tests/raft_sim/checker.h"
#include "tests/raft_sim/network.h"
#include "tests/raft_sim/server.h"

namespace commitd::raft_sim {

namespace {

using raft::NodeId;

struct Event {
  enum class Kind { kDeliver, kTick, kRestart, kChaos, kClient, kHealLinks };
  int64_t time = 0;
  uint64_t seq = 0;
  Kind kind = Kind::kTick;
  NodeId node = raft::kNoNode;
  uint64_t incarnation = 0;  // kTick: the incarnation it belongs to
  raft::Message message;     // kDeliver
};

struct Later {
  bool operator()(const Event& a, const Event& b) const {
    return a.time != b.time ? a.time > b.time : a.seq > b.seq;
  }
};

class World {
 public:
  World(const SimOptions& options, bool hash_trace);
  RunResult Run();

 private:
  void Schedule(Event event);
  void StartServer(NodeId id);
  void AfterStep(NodeId id);
  void Send(raft::Message m);
  void Chaos();
  void Client();
  void ChangeMembership(Server& leader);
  void Heal();
  Server* Leader();
  void Trace(NodeId node, const std::string& what);
  bool tracing() const { return options_.trace || hash_trace_ || options_.trace_tail > 0; }

  SimOptions options_;
  bool hash_trace_;
  raft::SplitMix64 rng_;
  std::unique_ptr<Network> network_;
  Checker checker_;
  std::vector<std::unique_ptr<Server>> servers_;  // by id; [0] unused
  std::vector<const raft::Node*> nodes_;          // running nodes by id, for the checker
  std::vector<std::pair<raft::Role, raft::Term>> last_seen_;
  std::vector<Event> queue_;
  uint64_t seq_ = 0;
  int64_t now_ = 0;
  bool healed_ = false;
  int64_t heal_ms_ = 0;
  std::vector<std::pair<raft::Index, raft::Term>> proposed_after_heal_;
  std::optional<int64_t> liveness_met_ms_;
  uint64_t proposals_ = 0;
  uint64_t reads_ = 0;

  // The seed's profile.
  double p_crash_ = 0, p_partition_ = 0, p_membership_ = 0, p_transfer_ = 0;
  int64_t chaos_gap_ms_ = 0, client_gap_ms_ = 0, max_down_ms_ = 0;
  std::string profile_;

  RunResult result_;
  std::deque<std::string> tail_;
};

World::World(const SimOptions& options, bool hash_trace)
    : options_(options), hash_trace_(hash_trace), rng_(options.seed * 0x9e3779b97f4a7c15ULL + 1),
      checker_(kNodeCount) {
  NetworkProfile net;
  net.drop = rng_.Uniform(0, 100) / 1000.0;
  net.duplicate = rng_.Uniform(0, 50) / 1000.0;
  net.outlier = rng_.Uniform(0, 50) / 1000.0;
  net.max_delay_ms = rng_.Chance(0.2) ? rng_.Uniform(40, 150) : rng_.Uniform(2, 40);
  net.max_outlier_ms = rng_.Uniform(10, 400);
  network_ = std::make_unique<Network>(rng_, net);
  p_crash_ = rng_.Uniform(0, 40) / 100.0;
  p_partition_ = rng_.Uniform(0, 40) / 100.0;
  p_membership_ = rng_.Uniform(0, 30) / 100.0;
  p_transfer_ = rng_.Uniform(0, 20) / 100.0;
  // Swarm testing: some seeds are storms, some have a slow client (which
  // leaves a new leader's term without entries of its own for a while).
  chaos_gap_ms_ = rng_.Chance(0.3) ? rng_.Uniform(5, 40) : rng_.Uniform(20, 300);
  client_gap_ms_ = rng_.Chance(0.3) ? rng_.Uniform(50, 400) : rng_.Uniform(5, 60);
  max_down_ms_ = rng_.Uniform(20, 2000);

  raft::NodeOptions tuning;
  tuning.election_timeout_ms = kElectionTimeoutMs;
  tuning.heartbeat_interval_ms = kHeartbeatMs;
  tuning.max_entries_per_append = static_cast<std::size_t>(rng_.Uniform(1, 32));
  tuning.snapshot_chunk_bytes = static_cast<std::size_t>(rng_.Uniform(16, 512));
  tuning.promotion_margin = static_cast<raft::Index>(rng_.Uniform(0, 16));
  raft::Index compact_every = rng_.Chance(0.2) ? 0 : static_cast<raft::Index>(rng_.Uniform(3, 60));
  uint64_t initial_voters = rng_.Chance(0.7) ? 3 : (rng_.Chance(0.5) ? 5 : 1);

  raft::Membership bootstrap;
  for (NodeId id = 1; id <= initial_voters; ++id) bootstrap.voters.insert(id);
  servers_.resize(kNodeCount + 1);
  nodes_.assign(kNodeCount + 1, nullptr);
  last_seen_.assign(kNodeCount + 1, {raft::Role::kFollower, 0});
  for (NodeId id = 1; id <= kNodeCount; ++id) {
    servers_[id] = std::make_unique<Server>(id, id <= initial_voters ? bootstrap : raft::Membership{}, tuning,
                                            options_.bug, compact_every);
  }
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "voters %llu/%llu drop %.3f dup %.3f outlier %.3f delay 1-%lld ms (+%lld) crash %.2f partition %.2f "
                "membership %.2f transfer %.2f chaos every <=%lld ms down <=%lld ms batch %zu chunk %zu B "
                "compact %llu",
                (unsigned long long)initial_voters, (unsigned long long)kNodeCount, net.drop, net.duplicate,
                net.outlier, (long long)net.max_delay_ms, (long long)net.max_outlier_ms, p_crash_, p_partition_,
                p_membership_, p_transfer_, (long long)chaos_gap_ms_, (long long)max_down_ms_,
                tuning.max_entries_per_append, tuning.snapshot_chunk_bytes, (unsigned long long)compact_every);
  profile_ = buf;
}

void World::Trace(NodeId node, const std::string& what) {
  char prefix[48];
  std::snprintf(prefix, sizeof prefix, "%9.3f n%llu  ", static_cast<double>(now_) / 1000.0,
                static_cast<unsigned long long>(node));
  std::string line = prefix + what;
  if (options_.trace) std::printf("%s\n", line.c_str());
  if (hash_trace_) {
    for (unsigned char c : line) {
      result_.trace_hash ^= c;
      result_.trace_hash *= 1099511628211ULL;
    }
  }
  if (options_.trace_tail > 0) {
    tail_.push_back(std::move(line));
    if (tail_.size() > options_.trace_tail) tail_.pop_front();
  }
}

void World::Schedule(Event event) {
  event.seq = seq_++;
  queue_.push_back(std::move(event));
  std::push_heap(queue_.begin(), queue_.end(), Later());
}

void World::StartServer(NodeId id) {
  Server& s = *servers_[id];
  s.Start(now_, rng_.Next());
  nodes_[id] = s.node_or_null();
  checker_.OnRestart(id, s.node().commit_index());
  last_seen_[id] = {s.node().role(), s.node().term()};
  Event tick;
  tick.time = now_ + rng_.Uniform(1, kTickMs);
  tick.kind = Event::Kind::kTick;
  tick.node = id;
  tick.incarnation = s.incarnation();
  Schedule(std::move(tick));
  if (tracing()) {
    Trace(id, "START incarnation " + std::to_string(s.incarnation()) + " term " + std::to_string(s.node().term()) +
                  " log " + std::to_string(s.node().log().base().index) + ".." +
                  std::to_string(s.node().log().last_index()) + " " + s.node().membership().Encode());
  }
}

void World::Send(raft::Message m) {
  ++result_.stats.messages;
  std::vector<int64_t> delays = network_->Plan(m.from, m.to);
  if (tracing()) Trace(m.from, "send " + raft::Describe(m) + (delays.empty() ? " (lost)" : delays.size() > 1 ? " (dup)" : ""));
  for (std::size_t i = 0; i < delays.size(); ++i) {
    Event e;
    e.time = now_ + delays[i];
    e.kind = Event::Kind::kDeliver;
    e.node = m.to;
    e.message = (i + 1 == delays.size()) ? std::move(m) : m;
    Schedule(std::move(e));
  }
}

void World::AfterStep(NodeId id) {
  Server& s = *servers_[id];
  s.Pump(checker_, [this](raft::Message m) { Send(std::move(m)); });
  checker_.AfterStep(id, nodes_);
  const raft::Node& n = s.node();
  if (tracing() && (last_seen_[id].first != n.role() || last_seen_[id].second != n.term())) {
    Trace(id, std::string("becomes ") + std::string(raft::RoleName(n.role())) + " in term " +
                  std::to_string(n.term()) + " (log " + std::to_string(n.log().last_index()) + "/" +
                  std::to_string(n.log().last_term()) + ", commit " + std::to_string(n.commit_index()) + ")");
  }
  last_seen_[id] = {n.role(), n.term()};
}

Server* World::Leader() {
  Server* best = nullptr;
  for (NodeId id = 1; id <= kNodeCount; ++id) {
    Server* s = servers_[id].get();
    if (s->up() && s->node().role() == raft::Role::kLeader && (!best || s->node().term() > best->node().term())) {
      best = s;
    }
  }
  return best;
}

// Like a real client: starting at a random server, it tries each in turn
// and follows a leader hint; it sends to the first leader it finds.
void World::Client() {
  NodeId start = static_cast<NodeId>(rng_.Uniform(1, kNodeCount));
  Server* s = nullptr;
  for (NodeId k = 0; k < kNodeCount && !s; ++k) {
    Server* tried = servers_[(start + k - 1) % kNodeCount + 1].get();
    if (!tried->up()) continue;
    if (tried->node().role() == raft::Role::kLeader) {
      s = tried;
    } else if (NodeId hint = tried->node().leader(); hint != raft::kNoNode && servers_[hint]->up()) {
      s = servers_[hint].get();
    }
  }
  if (!s) return;
  if (rng_.Chance(0.25)) {
    uint64_t request = ++reads_;
    checker_.OnReadRequested(request);
    raft::ProposeStatus st = s->node().ReadIndex(request, now_);
    if (st != raft::ProposeStatus::kOk) checker_.OnReadAnswered(s->id(), raft::ReadState{request, 0, false});
    if (tracing()) Trace(s->id(), "read " + std::to_string(request) + ": " + std::string(raft::ProposeStatusName(st)));
    AfterStep(s->id());
    return;
  }
  std::string data = "v" + std::to_string(++proposals_);
  raft::ProposeResult r = s->node().Propose(data, now_);
  if (tracing()) {
    Trace(s->id(), "propose " + data + ": " + std::string(raft::ProposeStatusName(r.status)) +
                       (r.status == raft::ProposeStatus::kOk ? " at " + std::to_string(r.index) : ""));
  }
  if (r.status == raft::ProposeStatus::kOk && healed_) proposed_after_heal_.emplace_back(r.index, r.term);
  AfterStep(s->id());
}

void World::ChangeMembership(Server& leader) {
  const raft::Membership& m = leader.node().membership();
  std::vector<raft::ConfChange> options;
  for (NodeId id = 1; id <= kNodeCount; ++id) {
    if (!m.Contains(id)) options.push_back({raft::ConfChangeType::kAddLearner, id});
    if (m.IsLearner(id)) options.push_back({raft::ConfChangeType::kPromote, id});
    if (m.Contains(id) && id != leader.id()) options.push_back({raft::ConfChangeType::kRemove, id});
  }
  if (options.empty()) return;
  raft::ConfChange change = options[static_cast<std::size_t>(rng_.Uniform(0, static_cast<int64_t>(options.size()) - 1))];
  raft::ProposeResult r = leader.node().ProposeConfChange(change, now_);
  if (r.status == raft::ProposeStatus::kOk) ++result_.stats.conf_changes;
  if (tracing()) {
    Trace(leader.id(), "conf change " + std::string(raft::ConfChangeTypeName(change.type)) + " n" +
                           std::to_string(change.node) + ": " + std::string(raft::ProposeStatusName(r.status)));
  }
  AfterStep(leader.id());
}

void World::Chaos() {
  double roll = static_cast<double>(rng_.Uniform(0, 9999)) / 10000.0;
  if ((roll -= p_crash_) < 0) {
    NodeId id = static_cast<NodeId>(rng_.Uniform(1, kNodeCount));
    Server& s = *servers_[id];
    if (!s.up()) return;
    s.Crash();
    nodes_[id] = nullptr;
    ++result_.stats.crashes;
    if (tracing()) Trace(id, "CRASH");
    Event restart;
    restart.time = now_ + rng_.Uniform(1, max_down_ms_);
    restart.kind = Event::Kind::kRestart;
    restart.node = id;
    Schedule(std::move(restart));
    return;
  }
  if ((roll -= p_partition_) < 0) {
    ++result_.stats.partitions;
    std::string what = "PARTITION";
    if (rng_.Chance(0.5)) {
      NodeId id = static_cast<NodeId>(rng_.Uniform(1, kNodeCount));
      for (NodeId other = 1; other <= kNodeCount; ++other) {
        if (other == id) continue;
        network_->Cut(id, other);
        network_->Cut(other, id);
      }
      what += " isolate n" + std::to_string(id);
    } else {
      for (int i = static_cast<int>(rng_.Uniform(1, 4)); i > 0; --i) {
        NodeId a = static_cast<NodeId>(rng_.Uniform(1, kNodeCount));
        NodeId b = static_cast<NodeId>(rng_.Uniform(1, kNodeCount));
        if (a != b) network_->Cut(a, b);
        what += " cut n" + std::to_string(a) + "->n" + std::to_string(b);
      }
    }
    if (tracing()) Trace(0, what);
    Event heal;
    heal.time = now_ + rng_.Uniform(50, 2000);
    heal.kind = Event::Kind::kHealLinks;
    Schedule(std::move(heal));
    return;
  }
  Server* leader = Leader();
  if (!leader) return;
  if ((roll -= p_membership_) < 0) {
    ChangeMembership(*leader);
    return;
  }
  if ((roll -= p_transfer_) < 0) {
    std::vector<NodeId> voters;
    for (NodeId v : leader->node().membership().voters) {
      if (v != leader->id()) voters.push_back(v);
    }
    if (voters.empty()) return;
    NodeId to = voters[static_cast<std::size_t>(rng_.Uniform(0, static_cast<int64_t>(voters.size()) - 1))];
    raft::ProposeStatus st = leader->node().TransferLeadership(to, now_);
    if (st == raft::ProposeStatus::kOk) ++result_.stats.transfers;
    if (tracing()) Trace(leader->id(), "transfer leadership to n" + std::to_string(to));
    AfterStep(leader->id());
  }
}

void World::Heal() {
  healed_ = true;
  heal_ms_ = now_;
  network_->Heal();
  network_->StopFaults(kElectionTimeoutMs / 10);
  if (tracing()) Trace(0, "HEAL: every link whole, no more loss, short delays, every server up");
  for (NodeId id = 1; id <= kNodeCount; ++id) {
    if (!servers_[id]->up()) StartServer(id);
  }
}

RunResult World::Run() {
  for (NodeId id = 1; id <= kNodeCount; ++id) StartServer(id);
  Event chaos;
  chaos.time = rng_.Uniform(1, chaos_gap_ms_);
  chaos.kind = Event::Kind::kChaos;
  Schedule(chaos);
  Event client;
  client.time = rng_.Uniform(1, client_gap_ms_);
  client.kind = Event::Kind::kClient;
  Schedule(client);

  RunStats& stats = result_.stats;
  while (!queue_.empty()) {
    std::pop_heap(queue_.begin(), queue_.end(), Later());
    Event e = std::move(queue_.back());
    queue_.pop_back();
    now_ = e.time;
    ++stats.steps;
    switch (e.kind) {
      case Event::Kind::kDeliver: {
        Server& s = *servers_[e.node];
        if (!s.up() || network_->IsCut(e.message.from, e.message.to)) break;
        if (tracing()) Trace(e.node, "recv " + raft::Describe(e.message));
        s.node().Step(e.message, now_);
        AfterStep(e.node);
        break;
      }
      case Event::Kind::kTick: {
        Server& s = *servers_[e.node];
        if (!s.up() || s.incarnation() != e.incarnation) break;
        s.node().Tick(now_);
        AfterStep(e.node);
        e.time = now_ + kTickMs;
        Schedule(std::move(e));
        break;
      }
      case Event::Kind::kRestart:
        if (!servers_[e.node]->up()) StartServer(e.node);
        break;
      case Event::Kind::kChaos:
        if (healed_) break;
        Chaos();
        e.time = now_ + rng_.Uniform(1, chaos_gap_ms_);
        Schedule(std::move(e));
        break;
      case Event::Kind::kClient:
        Client();
        e.time = now_ + rng_.Uniform(1, healed_ ? std::min<int64_t>(client_gap_ms_, 50) : client_gap_ms_);
        Schedule(std::move(e));
        break;
      case Event::Kind::kHealLinks:
        if (!healed_) {
          network_->Heal();
          if (tracing()) Trace(0, "links healed");
        }
        break;
    }
    if (checker_.violation()) {
      result_.violation = checker_.violation();
      break;
    }
    if (!healed_ && stats.steps >= options_.fault_steps) Heal();
    if (healed_) {
      for (auto [index, term] : proposed_after_heal_) {
        if (checker_.IsCommitted(index, term)) {
          liveness_met_ms_ = now_;
          break;
        }
      }
      if (liveness_met_ms_) break;
      if (now_ - heal_ms_ > kLivenessBoundMs) {
        result_.violation = "liveness: no entry proposed after healing committed within " +
                            std::to_string(kLivenessBoundMs) + " ms";
        break;
      }
    }
  }
  if (result_.violation && tracing()) Trace(0, "VIOLATION " + *result_.violation);
  stats.virtual_ms = now_;
  stats.leaders = checker_.leader_count();
  stats.max_term = checker_.max_leader_term();
  stats.committed = checker_.committed_count();
  stats.reads = checker_.reads_answered();
  stats.heal_to_commit_ms = liveness_met_ms_ ? *liveness_met_ms_ - heal_ms_ : 0;
  for (NodeId id = 1; id <= kNodeCount; ++id) {
    stats.snapshots_taken += servers_[id]->counters().snapshots_taken;
    stats.snapshots_installed += servers_[id]->counters().snapshots_installed;
  }
  result_.profile = profile_;
  result_.tail.assign(tail_.begin(), tail_.end());
  return std::move(result_);
}

}  // namespace

RunResult RunSeed(const SimOptions& options, bool hash_trace) { return World(options, hash_trace).Run(); }

}  // namespace commitd::raft_sim
