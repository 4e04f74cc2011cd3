#include "tests/sim/world.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include "tests/sim/adversary.h"
#include "tests/sim/api_caller.h"
#include "tests/sim/client.h"
#include "tests/sim/coordinator_node.h"
#include "tests/sim/group_member_node.h"
#include "tests/sim/participant_node.h"
#include "tests/sim/sim_operator.h"

namespace commitd::sim {
namespace {

constexpr char kCoordinator[] = "c1";
constexpr char kOperator[] = "operator";
constexpr char kStranger[] = "c9";  // --adversary: a coordinator the agents know that runs none of their transactions
constexpr int64_t kSettleProbeMs = 50;

struct BankFiles {
  std::string schema, procedures;
  std::map<std::string, std::string> seeds;  // bank -> seed SQL
  std::map<std::string, std::vector<std::string>> accounts;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The account ids of a seed file: every quoted name in its VALUES list.
std::vector<std::string> AccountsOf(const std::string& seed_sql) {
  std::vector<std::string> out;
  std::size_t pos = seed_sql.find("VALUES");
  while (pos != std::string::npos) {
    std::size_t open = seed_sql.find('\'', pos);
    if (open == std::string::npos) break;
    std::size_t close = seed_sql.find('\'', open + 1);
    if (close == std::string::npos) break;
    out.push_back(seed_sql.substr(open + 1, close - open - 1));
    pos = close + 1;
  }
  return out;
}

const BankFiles& Bank(const std::string& source_dir) {
  static const BankFiles files = [&] {
    BankFiles f;
    const std::string dir = source_dir + "/examples/bank/";
    f.schema = ReadFile(dir + "schema.sql");
    f.procedures = ReadFile(dir + "procedures.json");
    f.seeds["bank-a"] = ReadFile(dir + "seed-a.sql");
    f.seeds["bank-b"] = ReadFile(dir + "seed-b.sql");
    // The simulator's own third bank (--participants 3), with the same schema.
    f.seeds["bank-c"] =
        "INSERT INTO accounts(id, balance) VALUES\n  ('ivan', 70),\n  ('judy', 70),\n  ('ken', 70),\n  ('lena', 70);\n";
    for (const auto& [bank, sql] : f.seeds) f.accounts[bank] = AccountsOf(sql);
    return f;
  }();
  return files;
}

class World {
 public:
  explicit World(const SimOptions& options)
      : options_(options),
        random_(options.seed),
        scheduler_(kEpochMs),
        trace_(kEpochMs, options.trace ? 0 : options.trace_lines, options.trace),
        network_(scheduler_, random_, trace_),
        ctx_{scheduler_, random_, trace_, network_, checker_, options.bug, Config{}, options.protocol,
             options.adversary, options.prepares_without_log, options.client_retries,
             options.scenario == Scenario::kPowerLoss ? DiskModel::kFsyncIsDurable : DiskModel::kCommitIsDurable,
             nullptr} {}

  RunResult Run();

 private:
  void DrawProfile();
  Status Build();
  void AfterEvent(const std::string& node, Scheduler::Kind kind);
  // fn(node's process object): a GroupMemberNode, the CoordinatorNode or a ParticipantNode.
  template <typename Fn>
  auto OnNode(const std::string& node, Fn fn);
  void Crash(const std::string& node);
  void PowerLoss(const std::string& node);
  // A crash; in the power-loss scenario, this seed's share of them are power losses.
  void CrashOrPowerLoss(const std::string& node);
  std::size_t UnsyncedBatches(const std::string& node);
  void Restart(const std::string& node);
  // The adversary's restart of a coordinator: clock set back, log replaced.
  void AdversaryRestart(const std::string& node, int64_t back_ms, bool wipe, int64_t down_ms);
  bool IsUp(const std::string& node) const;
  void Heal();
  void Probe();
  void FinalChecks();
  void PlanChaosPartitions();
  // Cuts a | b now, and heals it after length ms (unless healed meanwhile).
  void CutFor(const std::string& a, const std::string& b, int64_t length);
  void PlanIsolations();
  void PlanCoordinatorLoss(int64_t first_submit_ms, int64_t last_submit_ms);
  void SampleInDoubt(int64_t lost_at_ms, int64_t until_ms);
  void PlanLeaderFaults();
  void PlanTransfers();
  void IsolateLeader(const std::string& alone, int64_t length);
  GroupMemberNode* ReadyLeader();
  bool CoordinatorsSettled();
  std::string Describe();
  bool group() const { return !members_.empty(); }
  // Chaos and power loss draw every fault at random; the other scenarios place their own.
  bool ChaosProfile() const {
    return options_.scenario == Scenario::kChaos || options_.scenario == Scenario::kPowerLoss;
  }
  // Coordinator-loss seeds, every other one: the agents' retention is shorter
  // than the coordinator's absence. By the seed, not drawn: every draw stays.
  bool AgentsForgetDuringLoss() const {
    return options_.scenario == Scenario::kCoordinatorLoss && options_.seed % 2 == 1;
  }
  // The agents remember as long as usual, but the coordinator assumes they
  // forget within seconds: every staging record it comes back to is too old
  // to fence, and the agents' answers to its state queries settle it.
  bool CoordinatorAssumesShortRetention() const {
    return options_.scenario == Scenario::kCoordinatorLoss && options_.seed % 4 == 2;
  }

  SimOptions options_;
  Random random_;
  Scheduler scheduler_;
  Trace trace_;
  Network network_;
  Checker checker_;
  Context ctx_;
  std::unique_ptr<CoordinatorNode> coordinator_;           // one coordinator, or
  std::map<std::string, std::unique_ptr<GroupMemberNode>> members_;  // a group (--coordinators 3)
  std::map<std::string, std::unique_ptr<ParticipantNode>> participants_;
  std::unique_ptr<Client> client_;
  // --adversary: a coordinator that runs none of the transactions (the agents
  // know it too), and the adversary.
  std::unique_ptr<CoordinatorNode> stranger_;
  std::unique_ptr<Adversary> adversary_;
  // Settles what only an operator may, after healing: with the adversary
  // (its calls come from the adversary's node), and where agents forget
  // outcomes while the coordinator is away.
  std::unique_ptr<Operator> operator_;
  RunResult result_;

  // This seed's profile.
  NetworkFaults faults_;
  double crash_chance_ = 0;  // per step of a node; a twentieth of it per tick
  // Power-loss scenario: the share of crashes that are power losses, and the
  // chance of one after a step that leaves batches committed without fsync.
  double power_loss_share_ = 0;
  double at_unsynced_ = 0;
  int64_t crashes_left_ = 0;
  int64_t max_down_ms_ = 0;
  int64_t fault_end_ms_ = 0;
  bool healed_ = false;
  bool isolated_ = false;  // partition scenario, group leader: one isolation at a time
  bool done_ = false;
  std::map<std::string, uint64_t> down_epoch_;  // a restart scheduled before a later crash or heal is void
};

void World::DrawProfile() {
  faults_.drop = static_cast<double>(random_.Uniform(0, 100)) / 1000;
  faults_.duplicate = static_cast<double>(random_.Uniform(0, 50)) / 1000;
  faults_.delay_outlier = static_cast<double>(random_.Uniform(0, 50)) / 1000;
  faults_.min_delay_ms = 1;
  faults_.max_delay_ms = random_.Uniform(1, 40);
  faults_.outlier_max_ms = random_.Uniform(10, 1000);
  crash_chance_ = static_cast<double>(random_.Uniform(0, 300)) / 10000;
  crashes_left_ = random_.Uniform(0, 6);
  max_down_ms_ = random_.Uniform(1, 3000);
  const bool three_phase = options_.protocol == "3pc";
  if (three_phase || !ChaosProfile()) {
    // 3PC's assumptions: no message is lost, every delay is bounded (well
    // under the termination grace). The same for 2PC in the comparison scenarios.
    faults_.drop = 0;
    faults_.outlier_max_ms = std::min<int64_t>(faults_.outlier_max_ms, 300);
  }
  if (!ChaosProfile()) {
    crash_chance_ = 0;  // the scenario places its faults itself
    crashes_left_ = 0;
  }
  if (options_.scenario == Scenario::kPowerLoss) {
    power_loss_share_ = static_cast<double>(random_.Uniform(250, 1000)) / 1000;
    at_unsynced_ = static_cast<double>(random_.Uniform(0, 100)) / 1000;
    ctx_.sync_linger_ms = random_.Uniform(ctx_.sync_linger_ms, 5);
  }
  // Two seeds in three keep agents' outcomes in memory for only a few ticks,
  // so that duplicates, late prepares and peers' questions are answered from
  // the database. Chosen by the seed, not drawn: every other draw stays as it was.
  static constexpr int64_t kOutcomeMemoryMs[] = {Config{}.outcome_memory_ms, 30, 300};
  ctx_.config.outcome_memory_ms = kOutcomeMemoryMs[options_.seed % 3];
  if (options_.transfer_leader) ctx_.max_unmarked = static_cast<int64_t>(options_.seed % 3);
  // Only process crashes reset connections: never with power losses.
  if (options_.connection_resets && options_.scenario == Scenario::kChaos) {
    faults_.reset_on_crash = static_cast<double>(random_.Uniform(250, 1000)) / 1000;
  }
  if (options_.client_retries) ctx_.lost_answer = static_cast<double>(random_.Uniform(50, 300)) / 1000;
  if (options_.refuse_marks) {
    // Marks are refused only until the faults end (at most about 15 s of
    // load and 3 s more): the take-over that waits then is at most 32 s
    // away (retry_max_ms doubling from 2 s), within kSettleBoundMs.
    ctx_.max_unmarked = static_cast<int64_t>(options_.seed % 3);
    ctx_.refuse_marks = static_cast<double>(random_.Uniform(100, 800)) / 1000;
  }
  if (AgentsForgetDuringLoss()) {
    // Shorter than the coordinator's absence: a 3PC coordinator coming back
    // finds its precommits answered unknown_transaction (in doubt until the
    // operator settles them), a 2PC one its commits. A 3PC termination that
    // sees nobody precommitted takes a peer that no longer knows a
    // transaction for one that aborted it, so
    // the retention must outlast every agent's absence and every message's
    // delay (a limit of the protocol, not something to find here): this
    // scenario crashes no agent and bounds delays well under a second.
    ctx_.config.outcome_retention_ms = 2'000 + static_cast<int64_t>(options_.seed % 7) * 1'000;
    ctx_.config.outcome_memory_ms = std::min(ctx_.config.outcome_memory_ms, ctx_.config.outcome_retention_ms);
    if (crash_chance_ != 0 || 4 * (faults_.max_delay_ms + faults_.outlier_max_ms) > ctx_.config.outcome_retention_ms) {
      checker_.Fail("simulation profile", "agents forget sooner than the faults allow");
    }
  }
  if (CoordinatorAssumesShortRetention()) {
    ctx_.coordinator_assumed_retention_ms = 2'000 + static_cast<int64_t>(options_.seed % 7) * 1'000;
  }
  char line[320];
  std::snprintf(line, sizeof line,
                "drop %.3f dup %.3f outlier %.3f delay 1-%lld ms (+%lld) crash/step %.3f crashes<=%lld down<=%lld ms "
                "outcome memory %lld ms retention %lld ms",
                faults_.drop, faults_.duplicate, faults_.delay_outlier, static_cast<long long>(faults_.max_delay_ms),
                static_cast<long long>(faults_.outlier_max_ms), crash_chance_, static_cast<long long>(crashes_left_),
                static_cast<long long>(max_down_ms_), static_cast<long long>(ctx_.config.outcome_memory_ms),
                static_cast<long long>(ctx_.config.outcome_retention_ms));
  result_.profile = line;
  if (ctx_.coordinator_assumed_retention_ms) {
    std::snprintf(line, sizeof line, " (the coordinator assumes %lld ms)",
                  static_cast<long long>(*ctx_.coordinator_assumed_retention_ms));
    result_.profile += line;
  }
  if (options_.connection_resets) {
    std::snprintf(line, sizeof line, " resets %.3f of handled requests at a crash", faults_.reset_on_crash);
    result_.profile += line;
  }
  if (options_.client_retries) {
    std::snprintf(line, sizeof line, " answers lost %.3f", ctx_.lost_answer);
    result_.profile += line;
  }
  if (options_.refuse_marks) {
    std::snprintf(line, sizeof line, " marks refused %.3f, %lld kept", ctx_.refuse_marks,
                  static_cast<long long>(*ctx_.max_unmarked));
    result_.profile += line;
  }
  if (options_.scenario == Scenario::kPowerLoss) {
    std::snprintf(line, sizeof line, " power loss %.2f of crashes, %.3f/step while unsynced, linger %lld ms",
                  power_loss_share_, at_unsynced_, static_cast<long long>(ctx_.sync_linger_ms));
    result_.profile += line;
  }
}

Status World::Build() {
  // The run's banks: the first options_.participants of them.
  BankFiles bank = Bank(options_.source_dir);
  while (bank.seeds.size() > static_cast<std::size_t>(options_.participants)) {
    bank.accounts.erase(std::prev(bank.accounts.end()));
    bank.seeds.erase(std::prev(bank.seeds.end()));
  }
  auto procedures = participant::Procedures::Parse(bank.procedures);
  if (!procedures.ok()) return procedures.status();
  std::vector<std::string> coordinator_names;
  if (options_.coordinators > 1) {
    std::vector<GroupMember> group;
    for (int i = 1; i <= options_.coordinators; ++i) {
      const std::string name = "c" + std::to_string(i);
      group.push_back({name, coordinator::NodeIdOf(name)});
    }
    std::vector<std::string> banks;
    for (const auto& [name, seed_sql] : bank.seeds) banks.push_back(name);
    std::map<raft::NodeId, GroupMemberNode*> by_id;
    for (const auto& m : group) {
      auto node = std::make_unique<GroupMemberNode>(
          m, group, ctx_, options_.tmp_dir + "/seed" + std::to_string(options_.seed) + "-" + m.name + "-raft.db",
          banks);
      node->set_log_delay_ms(random_.Uniform(1, 20));
      by_id[m.id] = node.get();
      coordinator_names.push_back(m.name);
      members_.emplace(m.name, std::move(node));
    }
    for (auto& [name, member] : members_) member->Connect(by_id);
  } else {
    const std::string path = options_.tmp_dir + "/seed" + std::to_string(options_.seed) + "-" + kCoordinator + ".db";
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    std::vector<std::string> banks;
    for (const auto& [name, seed_sql] : bank.seeds) banks.push_back(name);
    coordinator_ = std::make_unique<CoordinatorNode>(kCoordinator, ctx_, path, banks);
    coordinator_->set_log_delay_ms(random_.Uniform(1, 20));
    coordinator_names.push_back(kCoordinator);
  }
  std::vector<std::string> coordinator_urls;
  for (const auto& name : coordinator_names) coordinator_urls.push_back(UrlOf(name));
  if (options_.adversary) {
    const std::string path = options_.tmp_dir + "/seed" + std::to_string(options_.seed) + "-" + kStranger + ".db";
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    std::vector<std::string> banks;
    for (const auto& [name, seed_sql] : bank.seeds) banks.push_back(name);
    stranger_ = std::make_unique<CoordinatorNode>(kStranger, ctx_, path, banks);
    coordinator_urls.push_back(UrlOf(kStranger));
  }
  for (const auto& [name, seed_sql] : bank.seeds) {
    const std::string path =
        options_.tmp_dir + "/seed" + std::to_string(options_.seed) + "-" + name + ".db";
    auto p = std::make_unique<ParticipantNode>(name, ctx_, path, procedures.value(), coordinator_urls);
    if (Status s = p->Create(bank.schema, seed_sql); !s.ok()) return s;
    p->set_storage_delay_ms(random_.Uniform(1, 20));
    participants_.emplace(name, std::move(p));
  }
  client_ = std::make_unique<Client>(ctx_, coordinator_names, bank.accounts);
  if (options_.adversary) {
    AdversaryTargets targets;
    targets.coordinators = coordinator_names;
    targets.accounts = bank.accounts;
    targets.restart = [this](const std::string& node, int64_t back_ms, bool wipe, int64_t down_ms) {
      AdversaryRestart(node, back_ms, wipe, down_ms);
    };
    targets.healed = [this] { return healed_; };
    targets.log_id_of = [this](const std::string& node) {
      return coordinator_ && node == kCoordinator ? coordinator_->log_id() : std::string();
    };
    adversary_ = std::make_unique<Adversary>(ctx_, std::move(targets), options_.adversary_outsider,
                                             options_.adversary_only);
    if (Status s = stranger_->Start(); !s.ok()) return s;
  }
  std::vector<std::string> bank_names;
  for (const auto& [name, ids] : bank.accounts) bank_names.push_back(name);
  if (adversary_) {
    operator_ = std::make_unique<Operator>(ctx_, Adversary::kNode, coordinator_names.front(), bank_names);
  } else if (AgentsForgetDuringLoss() || CoordinatorAssumesShortRetention()) {
    // A participant that never got its prepare also answers a state query
    // "unknown": such a record is in doubt, for the operator.
    ApiCaller::AddCallingNode(ctx_, kOperator);
    operator_ = std::make_unique<Operator>(ctx_, kOperator, coordinator_names.front(), bank_names);
  }
  if (coordinator_) {
    if (Status s = coordinator_->Start(); !s.ok()) return s;
  }
  for (auto& [name, member] : members_) {
    if (Status s = member->Start(); !s.ok()) return s;
  }
  for (auto& [name, p] : participants_) {
    if (Status s = p->Start(); !s.ok()) return s;
  }
  return Status::Ok();
}

bool World::IsUp(const std::string& node) const {
  if (auto m = members_.find(node); m != members_.end()) return m->second->up();
  if (coordinator_ && node == kCoordinator) return coordinator_->up();
  auto it = participants_.find(node);
  return it != participants_.end() && it->second->up();
}

void World::AfterEvent(const std::string& node, Scheduler::Kind kind) {
  if (healed_ || crashes_left_ <= 0 || node == "client" || !IsUp(node)) return;
  if (random_.Chance(kind == Scheduler::Kind::kTick ? crash_chance_ / 20 : crash_chance_)) {
    CrashOrPowerLoss(node);
  } else if (options_.scenario == Scenario::kPowerLoss && UnsyncedBatches(node) != 0 &&
             random_.Chance(at_unsynced_)) {
    // The worst moment: what the disk holds for certain lags behind what the node has seen.
    PowerLoss(node);
  } else {
    return;
  }
  --crashes_left_;
  scheduler_.After(random_.Uniform(1, max_down_ms_), "", [this, node, epoch = down_epoch_[node]] {
    if (down_epoch_[node] == epoch) Restart(node);
  });
}

template <typename Fn>
auto World::OnNode(const std::string& node, Fn fn) {
  if (auto m = members_.find(node); m != members_.end()) return fn(*m->second);
  if (node == kCoordinator) return fn(*coordinator_);
  return fn(*participants_.at(node));
}

void World::Crash(const std::string& node) {
  ++result_.crashes;
  ++down_epoch_[node];
  OnNode(node, [](auto& n) { n.Crash(); });
}

// A crash, and the node's files keep what was synced and a prefix of what was not.
void World::PowerLoss(const std::string& node) {
  ctx_.Log("world", "POWER LOSS " + node);
  ++result_.power_losses;
  Crash(node);
  OnNode(node, [](auto& n) { n.storage().LoseUnsynced(); });
}

void World::CrashOrPowerLoss(const std::string& node) {
  if (options_.scenario == Scenario::kPowerLoss && random_.Chance(power_loss_share_)) {
    PowerLoss(node);
  } else {
    Crash(node);
  }
}

std::size_t World::UnsyncedBatches(const std::string& node) {
  return OnNode(node, [](auto& n) { return n.storage().unsynced_batches(); });
}

void World::Restart(const std::string& node) {
  ++down_epoch_[node];
  if (Status s = OnNode(node, [](auto& n) { return n.Start(); }); !s.ok()) {
    checker_.Fail("recovery", node + " cannot restart: " + s.ToString());
  }
}

void World::AdversaryRestart(const std::string& node, int64_t back_ms, bool wipe, int64_t down_ms) {
  if (healed_) return;
  ctx_.Log("world", "ADVERSARY restarts " + node + (back_ms != 0 ? ", clock set back " + std::to_string(back_ms) +
                                                                       " ms" : "") +
                        (wipe ? ", log replaced by an empty file" : ""));
  if (IsUp(node)) {
    Crash(node);
  } else {
    ++down_epoch_[node];  // void the restart already planned
  }
  if (auto m = members_.find(node); m != members_.end()) {
    m->second->set_clock_offset_ms(m->second->clock_offset_ms() - back_ms);
  } else {
    coordinator_->set_clock_offset_ms(coordinator_->clock_offset_ms() - back_ms);
    if (wipe) coordinator_->ReplaceLogWithEmptyFile();
  }
  scheduler_.After(down_ms, "", [this, node, epoch = down_epoch_[node]] {
    if (down_epoch_[node] == epoch) Restart(node);
  });
}

void World::Heal() {
  healed_ = true;
  ctx_.refuse_marks = 0;
  ctx_.lost_answer = 0;
  ctx_.Log("world", "HEAL: no more faults; every node up, every link whole");
  NetworkFaults calm;
  calm.max_delay_ms = faults_.max_delay_ms;
  network_.set_faults(calm);
  network_.HealAll();
  if (coordinator_ && !coordinator_->up()) Restart(kCoordinator);
  for (auto& [name, m] : members_) {
    if (!m->up()) Restart(name);
  }
  for (auto& [name, p] : participants_) {
    if (!p->up()) Restart(name);
  }
  if (operator_) operator_->OnHealed();
  scheduler_.After(kSettleProbeMs, "", [this] { Probe(); });
}

void World::Probe() {
  if (checker_.violated()) return;
  bool settled = CoordinatorsSettled() && (!adversary_ || adversary_->idle()) && (!operator_ || operator_->idle());
  for (auto& [name, p] : participants_) settled = settled && p->Settled();
  if (settled) {
    result_.settle_ms = scheduler_.now() - fault_end_ms_;
    FinalChecks();
    done_ = true;
    return;
  }
  if (scheduler_.now() - fault_end_ms_ > kSettleBoundMs) {
    checker_.Fail("no stuck state", "not settled " + std::to_string(kSettleBoundMs) +
                                        " ms after the last fault:\n  " + Describe());
    return;
  }
  scheduler_.After(kSettleProbeMs, "", [this] { Probe(); });
}

// A group has settled when every member is up and idle, one is the ready
// leader, every member has applied the leader's whole log and every record in
// it is finished, and the client waits for nothing (as a single coordinator's
// must with --client-retries).
bool World::CoordinatorsSettled() {
  if (coordinator_) return coordinator_->Settled() && (!ctx_.client_retries || client_->idle());
  GroupMemberNode* leader = ReadyLeader();
  if (leader == nullptr || !client_->idle()) return false;
  for (auto& [name, m] : members_) {
    if (!m->Idle() || !m->Caught(leader->last_index())) return false;
  }
  return true;
}

GroupMemberNode* World::ReadyLeader() {
  for (auto& [name, m] : members_) {
    if (m->leader_ready()) return m.get();
  }
  return nullptr;
}

std::string World::Describe() {
  std::string out = client_->idle() ? "" : "client still waits for an answer\n  ";
  if (adversary_ && !adversary_->idle()) out += "the adversary waits for answers\n  ";
  if (operator_ && !operator_->idle()) out += "the operator still settles\n  ";
  if (coordinator_) out += coordinator_->Describe();
  for (auto& [name, m] : members_) out += (name == members_.begin()->first ? "" : "\n  ") + m->Describe();
  for (auto& [name, p] : participants_) out += "\n  " + p->Describe();
  return out;
}

void World::FinalChecks() {
  checker_.Final();
  int64_t total = 0, seed_total = 0;
  for (auto& [name, p] : participants_) {
    int64_t bank_total = 0;
    if (auto problem = p->CheckBalances(&bank_total)) checker_.Fail("conservation", *problem);
    total += bank_total;
    seed_total += p->seed_total();
  }
  if (total != seed_total) {
    checker_.Fail("conservation", "the banks hold " + std::to_string(total) + " in total, seeded with " +
                                      std::to_string(seed_total));
  }
}

RunResult World::Run() {
  trace_.set_focus(options_.focus);
  DrawProfile();
  if (Status s = Build(); !s.ok()) {
    result_.ok = false;
    result_.violation = "setup: " + s.ToString();
    return result_;
  }
  network_.set_faults(faults_);
  ctx_.Log("world", "seed " + std::to_string(options_.seed) + ": " + result_.profile);

  const int64_t transactions = random_.Uniform(5, 40);
  const int64_t max_gap = random_.Uniform(1, 300);
  const int64_t timeout = random_.Uniform(50, 3000);
  int64_t at = scheduler_.now();
  for (int64_t i = 0; i < transactions; ++i) {
    at += random_.Uniform(0, max_gap);
    client_->SubmitAt(at, timeout);
  }
  fault_end_ms_ = at + random_.Uniform(0, 3000);

  switch (options_.scenario) {
    case Scenario::kChaos:
    case Scenario::kPowerLoss:
      if (options_.protocol != "3pc") PlanChaosPartitions();
      if (group()) PlanLeaderFaults();
      if (options_.transfer_leader) PlanTransfers();
      break;
    case Scenario::kPartition:
      PlanIsolations();
      break;
    case Scenario::kCoordinatorLoss:
      PlanCoordinatorLoss(scheduler_.now(), at);
      break;
  }
  if (adversary_) adversary_->Plan(scheduler_.now(), fault_end_ms_);
  if (options_.scenario != Scenario::kCoordinatorLoss) scheduler_.At(fault_end_ms_, "", [this] { Heal(); });
  scheduler_.set_after_event([this](const std::string& node, Scheduler::Kind kind) { AfterEvent(node, kind); });

  while (!done_ && !checker_.violated() && scheduler_.Step()) ++result_.events;
  if (!done_ && !checker_.violated()) checker_.Fail("simulation", "ran out of events before settling");

  result_.ok = !checker_.violated();
  if (!result_.ok) result_.violation = checker_.violation();
  result_.transactions = client_->submitted();
  result_.committed = checker_.client_committed();
  result_.aborted = checker_.client_aborted();
  result_.messages = network_.messages();
  result_.virtual_ms = scheduler_.now() - kEpochMs;
  result_.trace_hash = trace_.hash();
  result_.trace_lines = trace_.lines();
  if (!options_.focus.empty()) {
    std::printf("--- every trace line of %s, and the world's faults, seed %llu ---\n", options_.focus.c_str(),
                static_cast<unsigned long long>(options_.seed));
    trace_.DumpFocus();
    std::printf("--- end ---\n");
  } else if (!result_.ok && !options_.trace && options_.trace_lines > 0) {
    std::printf("--- last %zu trace lines of seed %llu (seconds since start, node, event) ---\n",
                options_.trace_lines, static_cast<unsigned long long>(options_.seed));
    trace_.Dump();
    std::printf("--- end of trace ---\n");
  }
  return result_;
}

// Random cuts between any two nodes.
void World::PlanChaosPartitions() {
  std::vector<std::string> nodes;
  if (coordinator_) nodes.push_back(kCoordinator);
  nodes.push_back("client");
  for (const auto& [name, m] : members_) nodes.push_back(name);
  for (const auto& [name, p] : participants_) nodes.push_back(name);
  const int64_t partitions = random_.Uniform(0, 4);
  for (int64_t i = 0; i < partitions; ++i) {
    const auto [a_index, b_index] = random_.DistinctPair(nodes.size());
    const std::string a = nodes[a_index];
    const std::string b = nodes[b_index];
    const int64_t start = random_.Uniform(scheduler_.now(), fault_end_ms_);
    const int64_t length = random_.Uniform(1, 3000);
    scheduler_.At(start, "", [this, a, b, length] { CutFor(a, b, length); });
  }
}

void World::CutFor(const std::string& a, const std::string& b, int64_t length) {
  if (healed_) return;
  ctx_.Log("world", "PARTITION " + a + " | " + b + " for " + std::to_string(length) + " ms");
  network_.Cut(a, b);
  scheduler_.After(length, "", [this, a, b] {
    if (healed_ || network_.Connected(a, b)) return;
    ctx_.Log("world", "HEAL " + a + " | " + b);
    network_.Heal(a, b);
  });
}

// Group: the ready leader is killed (per seed: 0-3 times) at random moments
// of the load, and cut off from the other members (0-2 times) so that it is
// deposed without knowing it. Under 3PC only with --isolate-leader: the
// participants keep every link, but it is a partition all the same.
void World::PlanLeaderFaults() {
  const int64_t kills = random_.Uniform(0, 3);
  for (int64_t i = 0; i < kills; ++i) {
    const int64_t at = random_.Uniform(scheduler_.now(), fault_end_ms_);
    const int64_t down = random_.Uniform(1, std::max<int64_t>(max_down_ms_, 300));
    scheduler_.At(at, "", [this, down] {
      GroupMemberNode* leader = ReadyLeader();
      if (healed_ || leader == nullptr) return;
      const std::string node = leader->name();
      ctx_.Log("world", "KILL LEADER " + node + " (down for " + std::to_string(down) + " ms)");
      CrashOrPowerLoss(node);
      scheduler_.After(down, "", [this, node, epoch = down_epoch_[node]] {
        if (down_epoch_[node] == epoch) Restart(node);
      });
    });
  }
  if (options_.protocol == "3pc" && !options_.isolate_leader) return;
  const int64_t isolations = random_.Uniform(0, 2);
  for (int64_t i = 0; i < isolations; ++i) {
    const int64_t at = random_.Uniform(scheduler_.now(), fault_end_ms_);
    const int64_t length = random_.Uniform(100, 3000);
    scheduler_.At(at, "", [this, length] {
      if (GroupMemberNode* leader = ReadyLeader()) IsolateLeader(leader->name(), length);
    });
  }
  // The worst moment: as the leader replicates a decision or a staging
  // record (a follower may hold it, the leader has not committed it yet).
  const double at_append = static_cast<double>(random_.Uniform(0, 200)) / 1000;
  network_.set_send_hook([this, at_append](const std::string& from, const std::string&, const std::string& label) {
    if (label.rfind("raft ", 0) != 0 || label.find("AppendEntries") == std::string::npos) return;
    bool carries_record = false;
    for (const char* kind : {"decision ", "staging record "}) {
      carries_record |= label.find(std::string("[") + kind) != std::string::npos ||
                        label.find(std::string(", ") + kind) != std::string::npos;
    }
    if (!carries_record) return;
    GroupMemberNode* leader = ReadyLeader();
    if (leader == nullptr || leader->name() != from || !random_.Chance(at_append)) return;
    IsolateLeader(from, random_.Uniform(100, 3000));
  });
}

// --transfer-leader: the ready leader is asked (1-4 times per seed) to hand
// its leadership to another member. Half the time that member is cut off
// from it for a while, so the transfer times out and the leader keeps its
// term, having refused every append meanwhile.
void World::PlanTransfers() {
  const int64_t transfers = random_.Uniform(1, 4);
  for (int64_t i = 0; i < transfers; ++i) {
    const int64_t at = random_.Uniform(scheduler_.now(), fault_end_ms_);
    const bool cut = random_.Chance(0.5);
    const int64_t length = random_.Uniform(100, 3000);
    scheduler_.At(at, "", [this, cut, length] {
      GroupMemberNode* leader = ReadyLeader();
      if (healed_ || leader == nullptr) return;
      const std::string from = leader->name();
      std::vector<std::string> others;
      for (const auto& [name, m] : members_) {
        if (name != from) others.push_back(name);
      }
      const std::string to = others[random_.Index(others.size())];
      if (cut && network_.Connected(from, to)) CutFor(from, to, length);
      leader->TransferLeadership(to);
    });
  }
}

void World::IsolateLeader(const std::string& alone, int64_t length) {
  if (healed_ || isolated_) return;
  isolated_ = true;
  ctx_.Log("world", "PARTITION leader " + alone + " | the other members, for " + std::to_string(length) + " ms");
  for (const auto& [name, m] : members_) {
    if (name != alone) network_.Cut(alone, name);
  }
  scheduler_.After(length, "", [this, alone] {
    isolated_ = false;
    if (healed_) return;
    ctx_.Log("world", "HEAL leader " + alone);
    for (const auto& [name, m] : members_) {
      if (name != alone) network_.Heal(alone, name);
    }
  });
}

// One participant at a time cut off from the coordinator and the other
// participant: the schedule under which 3PC can decide both ways. Some
// isolations start at random times; others at the worst moment, as the
// coordinator's precommit leaves for the participant (which then never gets
// it while the other does).
void World::PlanIsolations() {
  std::vector<std::string> banks;
  for (const auto& [name, p] : participants_) banks.push_back(name);
  auto isolate = [this, banks](const std::string& alone, int64_t length) {
    if (healed_ || isolated_) return;
    isolated_ = true;
    ctx_.Log("world", "PARTITION " + alone + " | everyone else, for " + std::to_string(length) + " ms");
    network_.Cut(alone, kCoordinator);
    for (const auto& other : banks) {
      if (other != alone) network_.Cut(alone, other);
    }
    scheduler_.After(length, "", [this, alone, banks] {
      isolated_ = false;
      if (healed_) return;
      ctx_.Log("world", "HEAL " + alone);
      network_.Heal(alone, kCoordinator);
      for (const auto& other : banks) {
        if (other != alone) network_.Heal(alone, other);
      }
    });
  };
  const int64_t isolations = random_.Uniform(0, 3);
  for (int64_t i = 0; i < isolations; ++i) {
    const std::string alone = banks[random_.Index(banks.size())];
    const int64_t start = random_.Uniform(scheduler_.now(), fault_end_ms_);
    const int64_t length = random_.Uniform(500, 20000);
    scheduler_.At(start, "", [isolate, alone, length] { isolate(alone, length); });
  }
  const double at_precommit = static_cast<double>(random_.Uniform(0, 300)) / 1000;
  network_.set_send_hook([this, isolate, at_precommit](const std::string& from, const std::string& to,
                                                       const std::string& label) {
    if (from != kCoordinator || label.rfind("POST /v1/precommit", 0) != 0 || !random_.Chance(at_precommit)) return;
    isolate(to, random_.Uniform(12'000, 25'000));
  });
}

// The coordinator dies somewhere in the load and stays down for
// kNonBlockingBoundMs; then whatever the participants still hold in doubt is
// counted (3PC: must be nothing), and the coordinator comes back for the
// usual settling and checks.
void World::SampleInDoubt(int64_t lost_at_ms, int64_t until_ms) {
  if (scheduler_.now() >= until_ms) return;
  std::size_t in_doubt = 0;
  for (auto& [name, p] : participants_) in_doubt += p->InDoubt();
  if (in_doubt != 0) result_.decided_after_loss_ms = scheduler_.now() + 10 - lost_at_ms;
  scheduler_.After(10, "", [this, lost_at_ms, until_ms] { SampleInDoubt(lost_at_ms, until_ms); });
}

void World::PlanCoordinatorLoss(int64_t first_submit_ms, int64_t last_submit_ms) {
  const int64_t crash_at = random_.Uniform(first_submit_ms, last_submit_ms + 300);
  scheduler_.At(crash_at, "", [this] {
    ctx_.Log("world", "COORDINATOR LOST (down for " + std::to_string(kNonBlockingBoundMs) + " ms)");
    Crash(kCoordinator);
    SampleInDoubt(scheduler_.now(), scheduler_.now() + kNonBlockingBoundMs);
    scheduler_.After(kNonBlockingBoundMs, "", [this] {
      int64_t in_doubt = 0;
      std::string where;
      for (auto& [name, p] : participants_) {
        const auto n = static_cast<int64_t>(p->InDoubt());
        in_doubt += n;
        if (n != 0) where += "\n  " + p->Describe();
      }
      result_.in_doubt_after_loss = in_doubt;
      ctx_.Log("world", std::to_string(in_doubt) + " transaction(s) in doubt " + std::to_string(kNonBlockingBoundMs) +
                            " ms after the coordinator was lost");
      if (in_doubt != 0 && options_.protocol == "3pc") {
        checker_.Fail("non-blocking", std::to_string(in_doubt) + " transaction(s) still in doubt " +
                                          std::to_string(kNonBlockingBoundMs) +
                                          " ms after the coordinator was lost:" + where);
        return;
      }
      fault_end_ms_ = scheduler_.now();
      Heal();
    });
  });
}

}  // namespace

RunResult RunSeed(const SimOptions& options) {
  World world(options);
  return world.Run();
}

}  // namespace commitd::sim
