#include "tests/sim/options.h"

namespace commitd::sim {

std::optional<Bug> ParseBug(std::string_view name) {
  if (name == "none") return Bug::kNone;
  if (name == "commit-on-timeout") return Bug::kCommitOnTimeout;
  if (name == "ack-before-durable") return Bug::kAckBeforeDurable;
  if (name == "abort-ack-before-durable") return Bug::kAbortAckBeforeDurable;
  if (name == "forget-decision") return Bug::kForgetDecision;
  if (name == "presume-without-record") return Bug::kPresumeWithoutRecord;
  if (name == "accept-404-from-non-owner") return Bug::kAccept404FromNonOwner;
  if (name == "group-no-resume") return Bug::kGroupNoResume;
  if (name == "group-stale-read") return Bug::kGroupStaleRead;
  if (name == "group-presume-without-record") return Bug::kGroupPresumeWithoutRecord;
  if (name == "group-overwrite-decision") return Bug::kGroupOverwriteDecision;
  if (name == "group-send-before-sync") return Bug::kGroupSendBeforeSync;
  if (name == "group-reply-before-durable") return Bug::kGroupReplyBeforeDurable;
  if (name == "group-no-retake") return Bug::kGroupNoRetake;
  if (name == "no-let-go-retake") return Bug::kNoLetGoRetake;
  if (name == "replay-as-abort") return Bug::kReplayAsAbort;
  if (name == "fenced-as-prepared") return Bug::kFencedAsPrepared;
  if (name == "fence-too-old") return Bug::kFenceTooOld;
  if (name == "force-without-adoption") return Bug::kForceWithoutAdoption;
  if (name == "answer-before-staging") return Bug::kAnswerBeforeStaging;
  if (name == "commit-without-fsync") return Bug::kCommitWithoutFsync;
  return std::nullopt;
}

std::optional<Scenario> ParseScenario(std::string_view name) {
  if (name == "chaos") return Scenario::kChaos;
  if (name == "coordinator-loss") return Scenario::kCoordinatorLoss;
  if (name == "partition") return Scenario::kPartition;
  if (name == "power-loss") return Scenario::kPowerLoss;
  return std::nullopt;
}

std::string_view ScenarioName(Scenario s) {
  switch (s) {
    case Scenario::kChaos: return "chaos";
    case Scenario::kCoordinatorLoss: return "coordinator-loss";
    case Scenario::kPartition: return "partition";
    case Scenario::kPowerLoss: return "power-loss";
  }
  return "chaos";
}

std::string_view BugName(Bug bug) {
  switch (bug) {
    case Bug::kNone: return "none";
    case Bug::kCommitOnTimeout: return "commit-on-timeout";
    case Bug::kAckBeforeDurable: return "ack-before-durable";
    case Bug::kAbortAckBeforeDurable: return "abort-ack-before-durable";
    case Bug::kForgetDecision: return "forget-decision";
    case Bug::kPresumeWithoutRecord: return "presume-without-record";
    case Bug::kAccept404FromNonOwner: return "accept-404-from-non-owner";
    case Bug::kGroupNoResume: return "group-no-resume";
    case Bug::kGroupStaleRead: return "group-stale-read";
    case Bug::kGroupPresumeWithoutRecord: return "group-presume-without-record";
    case Bug::kGroupOverwriteDecision: return "group-overwrite-decision";
    case Bug::kGroupSendBeforeSync: return "group-send-before-sync";
    case Bug::kGroupReplyBeforeDurable: return "group-reply-before-durable";
    case Bug::kGroupNoRetake: return "group-no-retake";
    case Bug::kNoLetGoRetake: return "no-let-go-retake";
    case Bug::kReplayAsAbort: return "replay-as-abort";
    case Bug::kFencedAsPrepared: return "fenced-as-prepared";
    case Bug::kFenceTooOld: return "fence-too-old";
    case Bug::kForceWithoutAdoption: return "force-without-adoption";
    case Bug::kAnswerBeforeStaging: return "answer-before-staging";
    case Bug::kCommitWithoutFsync: return "commit-without-fsync";
  }
  return "none";
}

}  // namespace commitd::sim
