// World: one simulated run of one seed.
//
// It builds the nodes (one coordinator or a Raft group of three, two or
// three bank participants, a client),
// draws this seed's fault profile (swarm testing: every seed gets its own
// rates of loss, duplication, reordering, crashes and partitions), runs the
// schedule until the last fault, heals everything, and then requires the
// system to settle within kSettleBoundMs, checking the invariants throughout.
//
// Scenarios (options.h): chaos draws everything at random, except that 3PC
// gets only the faults it is designed for (crashes, bounded delays: no loss,
// no partition); coordinator-loss kills the coordinator mid-load and counts,
// kNonBlockingBoundMs later, what the participants still hold in doubt (3PC
// must hold nothing); partition cuts one participant off from everyone else
// at random times, with no loss and no crash; power-loss is chaos in which a
// crash may be a power loss (the node's disk keeps what was synced and a
// prefix of what was not: SimStorageQueue), most likely right after a step
// that left batches committed without fsync. With a group (chaos and power
// loss) the ready leader is also killed, and cut off from the other members,
// at random moments of the load; with --transfer-leader it is also asked to
// hand over its leadership, half the time to a member cut off from it.
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
  uint64_t power_losses = 0;  // of the crashes
  uint64_t messages = 0;
  uint64_t events = 0;
  int64_t settle_ms = 0;      // from the last fault to everything resolved
  // Coordinator loss: transactions still in doubt at participants
  // kNonBlockingBoundMs after the coordinator died (-1: not that scenario).
  int64_t in_doubt_after_loss = -1;
  // Coordinator loss: from the crash until no participant held anything in
  // doubt any more (sampled every 10 ms; 0 if nothing was in doubt).
  int64_t decided_after_loss_ms = 0;
  int64_t virtual_ms = 0;
  uint64_t trace_hash = 0;
  uint64_t trace_lines = 0;
};

// Runs one seed. The last trace lines are printed when it finds a violation.
RunResult RunSeed(const SimOptions& options);

}  // namespace commitd::sim
