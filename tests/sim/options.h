// What one simulated run is asked to do, and the deliberate bugs that test
// the checker. A bug in a rule the binaries run is a test-only fault switch
// of the shipped class (NodeOptions, ReplicatedLogOptions, raft::DriverOptions,
// DecisionStateMachine), never a copy of the rule.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace commitd::sim {

enum class Bug {
  kNone,
  kCommitOnTimeout,   // a prepared 2PC participant commits by itself at its deadline
  kAckBeforeDurable,  // a participant acks a commit as soon as the apply job is queued
  kAbortAckBeforeDurable,  // a participant acks an abort of a txid it holds no record of at once
  kForgetDecision,    // the coordinator reports its decision durable without writing it
  kPresumeWithoutRecord,  // a presumed abort told to a participant is not recorded first
  kAccept404FromNonOwner,  // a participant takes any coordinator's "not known here" as proof of abort
  kFencedAsPrepared,  // recovering a 2PC staging record, the coordinator reads a fenced participant as prepared
  kFenceTooOld,       // a staging record too old to fence is fenced without asking the participants first
  kAnswerBeforeStaging,  // a 2PC commit is answered (and sent) on the votes alone, before its staging record is durable
  kForceWithoutAdoption,  // an operator's force of a txid without a record is recorded without adopting it first
  // Coordinator group (--coordinators 3):
  kGroupNoResume,              // a new leader resumes no unfinished decision from the log
  kGroupStaleRead,             // a follower answers a decision query from its own state machine
  kGroupPresumeWithoutRecord,  // presumed abort answered without appending abort first
  kGroupOverwriteDecision,     // applying a decision replaces an earlier decision of its txid
  kGroupSendBeforeSync,        // a member sends a Ready's messages (votes, acks) before it is synced
  kGroupReplyBeforeDurable,    // a decision append completes (the client is answered) before it is committed
  // A member whose append was refused while it kept leading (a transfer that
  // timed out, --transfer-leader) takes nothing over again until a new term.
  kGroupNoRetake,
  // A single coordinator whose engine let go of records after their finished
  // marks failed (--refuse-marks) takes none of them over again while it runs.
  kNoLetGoRetake,
  // A single coordinator answers a retry found in its decision log by its
  // Idempotency-Key 409 (aborted), whatever the record says (--client-retries).
  kReplayAsAbort,
  // Power loss (--scenario power-loss):
  kCommitWithoutFsync,  // a participant's commit asks for no fsync, so it may ack a commit a power loss takes back
};

std::optional<Bug> ParseBug(std::string_view name);
std::string_view BugName(Bug bug);

enum class Scenario {
  kChaos,            // random loss, duplication, reordering, crashes and partitions (3PC: crashes only)
  kCoordinatorLoss,  // crashes only, bounded delays: the coordinator dies mid-load and stays down a while
  kPartition,        // no loss, no crash: one participant at a time is cut off from everyone else
  kPowerLoss,        // chaos, and a crash may be a power loss: the disk keeps what was synced and a prefix of the rest
};
std::optional<Scenario> ParseScenario(std::string_view name);
std::string_view ScenarioName(Scenario s);

// What a node's storage keeps when it goes down (SimStorageQueue).
enum class DiskModel {
  kCommitIsDurable,  // process crashes only: every committed batch survives
  kFsyncIsDurable,   // power losses too: only what an fsync covered survives for certain
};

struct SimOptions {
  uint64_t seed = 1;
  Bug bug = Bug::kNone;
  std::string protocol = "2pc";    // what the client asks for: "2pc" | "3pc"
  Scenario scenario = Scenario::kChaos;
  bool trace = false;              // echo every trace line
  std::size_t trace_lines = 400;   // kept for the report of a violation
  std::string focus;               // a txid: print its whole story (and the world's faults) at the end
  std::string source_dir;          // for examples/bank
  std::string tmp_dir;             // where the participants' SQLite files live
  int coordinators = 1;            // 1: one CoordinatorNode; 3: a Raft group of GroupMemberNodes
  bool isolate_leader = false;          // --isolate-leader: 3PC too gets group-internal partitions
  // --transfer-leader: the ready leader is asked to hand over its leadership
  // at random moments, half the time to a member cut off from it.
  bool transfer_leader = false;
  // --refuse-marks: single coordinator; until the faults end, its decision log
  // refuses a share of the finished marks (drawn per seed), as a disk that
  // fails writes would, and its engine keeps only 0-2 of them to write again:
  // the rest are let go and must be taken over again from the log.
  bool refuse_marks = false;
  // --participants 3: a third bank (bank-c, the simulator's own seed) joins
  // bank-a and bank-b, and a third of the transfers split one debit into
  // credits at both other banks: transactions of three branches.
  int participants = 2;
  // --connection-resets (chaos): a crashed process's kernel resets its
  // connections, so each request it was handling fails at once at the caller
  // (with a chance drawn per seed) instead of timing out.
  bool connection_resets = false;
  // --client-retries: single coordinator; the client gives each transfer an
  // Idempotency-Key and retries it, as it does with a group.
  bool client_retries = false;
  bool adversary = false;               // --adversary: hostile callers in every seed (tests/sim/adversary.h)
  // --adversary-outsider: also messages to agents no rule of theirs refuses yet
  // (abort/commit/precommit of running transactions, prepares naming an unknown coordinator).
  bool adversary_outsider = false;
  std::string adversary_only;           // --adversary-only ACTOR: just that actor (regression runs)
  // --prepares-without-log: the coordinators' prepares carry no log identity,
  // as coordinators sent them before prepares named their decision log; the
  // agents then ask without naming a log (an upgrade in progress).
  bool prepares_without_log = false;
};

// Every timing of the real processes comes from common/config.h defaults;
// these are what the simulator adds.
constexpr int64_t kEpochMs = 1'700'000'000'000;  // virtual wall clock at the start of a run
constexpr int64_t kSettleBoundMs = 60'000;       // after the last fault, everything must be resolved by then
// The simulated log forgets finished decisions after this: longer than any
// message is in flight (World's delays: at most 40 + 1,000 ms), as commitd's
// retention is, so that a question an agent sent before its ack never
// arrives after the decision it asks about was forgotten. (After a start,
// longer: CoordinatorNode keeps what its takeover sweep may still act on.)
constexpr int64_t kFinishedRetentionMs = 1'500;
// Coordinator loss: how long after the coordinator's crash every participant
// must have decided (3PC) — the longest timeout_ms (3 s), the termination
// grace, the resolve backoff cap and a round of requests, with room to spare.
constexpr int64_t kNonBlockingBoundMs = 20'000;

}  // namespace commitd::sim
