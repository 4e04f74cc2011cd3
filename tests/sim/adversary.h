// Adversary (--adversary): hostile and careless callers, active in every
// seed while the faults last. (The operator who settles, after healing, what
// only an operator may settle is tests/sim/sim_operator.h; in adversary runs
// its calls come from the adversary's node.)
//
// Actors (each acts 1-3 times per seed at random moments; --adversary-only
// NAME keeps one):
//   query-forged       GET /v1/transactions/<txid>?participant=<bank> for txids
//                      in the issuer's format that were never issued: a seen
//                      txid's prefix with a later sequence and a wrong random
//                      part, or the next incarnation's first
//   query-old          the same for txids seen before (replayed)
//   force-forged       two operators force one never-issued txid, commit and
//                      abort, at the same instant
//   force-after-presumed  whenever a participant is told "presumed abort", force
//                      commit of that txid at the coordinator that said it
//   replay-key         a transfer with an Idempotency-Key, then the same key
//                      again with another body
//   start-with-txid    a transaction request naming an old txid
//   outsider-message   commit, abort or precommit sent straight to an agent for
//                      a never-issued txid or one every participant resolved
//   outsider-prepare   a prepare of a made-up transaction naming a real
//                      coordinator and its log (a credit of 0 and a journal row
//                      of 0), then sometimes its abort (--adversary-outsider:
//                      or its commit)
//   clock-back         a coordinator (group: a member) crashes and restarts with
//                      its wall clock set back by 1 s to 10 min
//   wipe-log           single coordinator: while it is down its decisions.db is
//                      replaced by an empty file
// With --adversary-outsider also (each refused by an agent rule: the abort key,
// the commit key, the known coordinators):
//   outsider-abort-running, outsider-commit-running, outsider-precommit-running
//                      abort/commit/precommit sent to an agent for a running txid
//   outsider-prepare-unknown  a prepare naming a coordinator that does not exist
//
// What it checks besides the world's invariants: a never-issued txid is never
// reported committed, a replayed Idempotency-Key answers the first txid, a
// request naming its own txid is refused, two opposite forces of one txid
// cannot both win; every definite outcome it is told must hold (the checker).

#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/sim/api_caller.h"
#include "tests/sim/context.h"

namespace commitd::sim {

struct AdversaryTargets {
  std::vector<std::string> coordinators;  // c1, or the group's members
  std::map<std::string, std::vector<std::string>> accounts;  // bank -> account ids
  // Crashes `node` now; its clock goes back by back_ms and (wipe) its log is
  // replaced by an empty file; it restarts down_ms later.
  std::function<void(const std::string& node, int64_t back_ms, bool wipe, int64_t down_ms)> restart;
  std::function<bool()> healed;
  // A single coordinator's log identity (visible in any agent's listing); "" for a group.
  std::function<std::string(const std::string& node)> log_id_of;
};

class Adversary {
 public:
  static constexpr char kNode[] = "mallory";

  Adversary(Context& ctx, AdversaryTargets targets, bool outsider, std::string only);

  // Schedules this seed's actions in [from_ms, until_ms].
  void Plan(int64_t from_ms, int64_t until_ms);
  // Nothing in flight.
  bool idle() const { return caller_.in_flight() == 0; }
  uint64_t actions() const { return actions_; }

 private:
  enum class Actor {
    kQueryForged, kQueryOld, kForceForged, kReplayKey, kStartWithTxid, kOutsiderMessage, kOutsiderPrepare,
    kClockBack, kWipeLog,
    kOutsiderAbortRunning, kOutsiderCommitRunning, kOutsiderPrecommitRunning, kOutsiderPrepareUnknown,
  };
  static const char* NameOf(Actor a);

  void Act(Actor a);
  void OnPresumedAbort(const std::string& participant, const std::string& txid, const std::string& coordinator_url);
  void Call(const std::string& to, Request request, std::function<void(const Response&)> on_answer);
  std::string Pick(const std::vector<std::string>& from);
  std::string Bank();
  std::string Coordinator();
  std::string ForgedTxid();
  std::string OldTxid(bool resolved_only);
  std::string RunningTxid();
  nlohmann::json Transfer(int64_t amount);
  void QueryTxid(const std::string& txid, bool forged, bool name_log);
  void ReplayKey();
  void OutsiderPrepare(const std::string& coordinator_url);
  void SendToAgent(const std::string& what, const std::string& txid, const std::string& bank);

  Context& ctx_;
  ApiCaller caller_;
  AdversaryTargets targets_;
  bool outsider_;
  std::string only_;
  std::vector<std::string> banks_;
  uint64_t actions_ = 0;
  uint64_t next_key_ = 0;
  uint64_t next_made_up_ = 0;
  int force_after_presumed_left_ = 8;
  int64_t wiped_at_ms_ = -1;
  int64_t wipe_planned_ms_ = -1;  // keys replayed before a wipe may start anew
  std::set<std::string> forged_;  // never issued (the random part is ours)
};

}  // namespace commitd::sim
