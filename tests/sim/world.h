// World: one simulated run of one seed.
//
// It builds the nodes (one coordinator, two bank participants, a client),
// draws this seed's fault profile (swarm testing: every seed gets its own
// rates of loss, duplication, reordering, crashes and partitions), runs the
// schedule until the last fault, heals everything, and then requires the
// system to settle within kSettleBoundMs, checking the invariants throughout.
#pragma once

#include <cstdint>
#include <string>

#include "tests/sim/options.h"

namespace commitd::sim {

struct RunResult {
  bool ok = true;
  std::string violation;      // "invariant: detail", when !ok
  std::string profile;        // this seed's fault profile, one line
  uint64_t transactions = 0;  // submitted by the client
  uint64_t committed = 0;     // answers the client got
  uint64_t aborted = 0;
  uint64_t crashes = 0;
  uint64_t messages = 0;
  uint64_t events = 0;
  int64_t settle_ms = 0;      // from the last fault to everything resolved
  int64_t virtual_ms = 0;
  uint64_t trace_hash = 0;
  uint64_t trace_lines = 0;
};

// Runs one seed. The last trace lines are printed when it finds a violation.
RunResult RunSeed(const SimOptions& options);

}  // namespace commitd::sim
