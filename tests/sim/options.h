// What one simulated run is asked to do, and the deliberate bugs that test
// the checker. Bugs live in the simulator's drivers, never in the engines.
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
  kForgetDecision,    // the coordinator reports its decision durable without writing it
};

std::optional<Bug> ParseBug(std::string_view name);
std::string_view BugName(Bug bug);

struct SimOptions {
  uint64_t seed = 1;
  Bug bug = Bug::kNone;
  bool trace = false;              // echo every trace line
  std::size_t trace_lines = 400;   // kept for the report of a violation
  std::string source_dir;          // for examples/bank
  std::string tmp_dir;             // where the participants' SQLite files live
};

// Every timing of the real processes comes from common/config.h defaults;
// these are what the simulator adds.
constexpr int64_t kEpochMs = 1'700'000'000'000;  // virtual wall clock at the start of a run
constexpr int64_t kSettleBoundMs = 60'000;       // after the last fault, everything must be resolved by then
constexpr int64_t kFinishedRetentionMs = 500;    // the simulated log forgets finished decisions after this

}  // namespace commitd::sim
