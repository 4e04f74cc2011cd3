// Context: what every simulated node of one run shares. Owned by the world;
// outlives every node.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "common/batch_sync.h"
#include "common/config.h"
#include "tests/sim/invariants.h"
#include "tests/sim/network.h"
#include "tests/sim/options.h"
#include "tests/sim/random.h"
#include "tests/sim/scheduler.h"
#include "tests/sim/trace.h"

namespace commitd::sim {

struct Context {
  Scheduler& scheduler;
  Random& random;
  Trace& trace;
  Network& network;
  Checker& checker;
  Bug bug = Bug::kNone;
  Config config;  // the real processes' defaults: timeouts, backoffs, tick
  std::string protocol = "2pc";  // what the client asks for
  bool adversary = false;        // --adversary: hostile callers act (tests/sim/adversary.h)
  bool prepares_without_log = false;  // --prepares-without-log (SimOptions)
  bool client_retries = false;        // --client-retries (SimOptions)
  DiskModel disk = DiskModel::kCommitIsDurable;  // power-loss scenario: kFsyncIsDurable
  // A participant was told "not known here: presumed abort" by a coordinator
  // (its URL). Set by the adversary, which reacts to it.
  std::function<void(const std::string& participant, const std::string& txid, const std::string& coordinator_url)>
      on_presumed_abort;
  // Set: the coordinators' engine option max_unmarked (--transfer-leader:
  // small, so that finished marks refused during a transfer are let go and
  // taken over again from the log).
  std::optional<int64_t> max_unmarked;
  // Set: the agents' outcome retention the coordinators assume (their engine
  // option outcome_retention_ms), instead of the agents' own.
  std::optional<int64_t> coordinator_assumed_retention_ms;
  // --refuse-marks: the chance that the single coordinator's log refuses a
  // finished mark written on its own; 0 once the faults end.
  double refuse_marks = 0;
  // --client-retries: the chance that an answer of the coordinator is lost on
  // its way to the client (drawn per seed), which then retries with its key.
  double lost_answer = 0;
  // How long held dones wait for another batch's fsync before the WAL is
  // synced for them alone, in virtual ms: BatchWriter's linger, or longer
  // (the power-loss scenario draws it), so that batches come within it as
  // they do on a real storage thread, microseconds apart.
  int64_t sync_linger_ms =
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(kDefaultSyncLinger).count());

  int64_t now() const { return scheduler.now(); }
  void Log(const std::string& node, const std::string& what) { trace.Add(scheduler.now(), node, what); }
};

// Nodes address each other by name; URLs are "sim://<name>".
inline std::string UrlOf(const std::string& node) { return "sim://" + node; }
inline std::string NodeOf(const std::string& url) { return url.rfind("sim://", 0) == 0 ? url.substr(6) : url; }

}  // namespace commitd::sim
