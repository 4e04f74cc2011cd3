// participant::Node: one participant process's rules. It owns
// the Engine and carries out its actions: storage work through a Store,
// questions to coordinators through a CoordinatorTransport, 3PC termination
// calls through a PeerTransport, ticks and registration retries through
// Timers. It decides what counts as an answer:
//  - a coordinator's "not known here" is proof of abort only from the
//    transaction's own coordinator (the first URL asked, from the prepare) or
//    from a group that lists it; any other coordinator's is no answer, and the
//    next URL is asked;
//  - only the transaction's own coordinator is asked with this participant's
//    name (so it records its presumed abort before answering);
//  - a peer that never saw the transaction answers "unknown", one that refused
//    because it aborted answers "aborted" (engine.h has what they decide);
//  - a prepare is taken only when it names a known coordinator: one of
//    NodeOptions::coordinators, or a member of their groups (asked of them,
//    GET /v1/cluster, when a prepare names a URL not known yet). Without a
//    configured coordinator every prepare is refused.
// Recovery at start: the Store's prepared records go into the engine, which
// asks about every record at once. Remembered outcomes stay in the store, so
// neither start work nor memory grows with finished history: the engine keeps
// only the last outcome_memory_ms of them; a prepare's storage job reads the
// store's for its txid, and a commit, abort, precommit or state question
// about a txid the engine does not know waits for one lookup there.
//
// The commit-agent binary runs it behind HTTP (participant/agent.cc), the
// simulator over its network (tests/sim/participant_node.cc).
//
// Thread: single-threaded; every method and every callback it is given runs
// on one event thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/config.h"
#include "common/log.h"
#include "common/status.h"
#include "common/wire.h"
#include "participant/coordinator_transport.h"
#include "participant/engine.h"
#include "participant/peer_transport.h"
#include "participant/store.h"
#include "common/timers.h"

namespace commitd::participant {

struct NodeOptions {
  std::string name;      // the participant name coordinators use
  std::string self_url;  // what coordinators are told at registration
  // Asked for decisions after a transaction's own coordinator; registered
  // with; the only coordinators (with their groups' members) prepares are
  // taken from.
  std::vector<std::string> coordinators;
  bool register_with_coordinators = true;
  int64_t tick_ms = Config{}.tick_ms;
  int64_t register_interval_ms = Config{}.register_interval_ms;
  int64_t resolve_initial_ms = Config{}.resolve_initial_ms;
  int64_t resolve_max_ms = Config{}.resolve_max_ms;
  int64_t outcome_retention_ms = Config{}.outcome_retention_ms;
  int64_t outcome_memory_ms = Config{}.outcome_memory_ms;
  int64_t termination_grace_ms = Config{}.termination_grace_ms;
  // Test-only fault switch (the simulator's planted bug), never set by the
  // binary: any coordinator's "not known here" is taken as proof of abort.
  bool unsafe_accept_not_known_from_any = false;

  // Timings from the one source of defaults.
  static NodeOptions From(const Config& config, std::string name, std::string self_url,
                          std::vector<std::string> coordinators);
};

// The answer to a request: an HTTP-like status and the protocol's JSON body
// (docs/protocol.md, agent API).
struct NodeReply {
  int status = 200;
  ReplyBody body;
};
using ReplyFn = std::function<void(NodeReply)>;

struct NodeCounters {
  uint64_t prepares = 0, votes_yes = 0, votes_no = 0, commits = 0, aborts = 0;
  uint64_t precommits = 0;             // precommitted records made durable
  uint64_t termination_rounds = 0;     // times the peers were asked (the coordinator was silent)
  uint64_t termination_decisions = 0;  // commits and aborts decided by termination
  uint64_t apply_conflicts = 0;        // transactions whose changeset did not apply, each once
};

// Where a Node reports what it did (decision answers, termination rounds,
// conflicts...): the binary's JSON log, the simulator's trace.
using NodeEventFn = std::function<void(log::Level level, std::string_view event, const nlohmann::json& fields)>;

class Node {
 public:
  // Every reference must outlive the Node.
  Node(NodeOptions options, Store& store, CoordinatorTransport& coordinators, PeerTransport& peers,
       Timers& timers);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Default: log::Write.
  void set_event_log(NodeEventFn fn) { event_log_ = std::move(fn); }

  // Loads the store's records into the engine (recovery), starts ticking and
  // registering. Nothing else may be called before it succeeds.
  Status Start();
  // Shutdown: no more ticks, registrations, decision queries or peer calls
  // act; storage work in flight still completes and answers its requests.
  void Stop();

  // --- requests (answered through `reply`, exactly once unless stopped) ----
  // A prepare for another participant is answered 400 wrong_participant; one
  // naming a coordinator that is not known is answered 403
  // unknown_coordinator, and holds and records nothing.
  void Prepare(wire::PrepareRequest request, ReplyFn reply);
  // Commit and precommit: refused 409 commit_not_from_coordinator unless
  // commit_key is the transaction's (engine.h: when a key is needed).
  void Commit(const wire::CommitRequest& request, ReplyFn reply);
  // Refused 409 abort_not_from_coordinator unless abort_key is the
  // transaction's (engine.h: when a key is needed).
  void Abort(const wire::AbortRequest& request, ReplyFn reply);
  void Precommit(const wire::CommitRequest& request, ReplyFn reply);
  // Engine::OnAdopt.
  void Adopt(const wire::AdoptRequest& request, ReplyFn reply);

  // --- queries -------------------------------------------------------------
  // What a peer asking about txid is told (Engine::StateOf), once the store
  // was asked about a txid the engine does not know; an error when it could not be.
  void LookUpState(const std::string& txid, std::function<void(Result<std::string>)> done);
  // The same from memory only (transactions held, outcomes seen since the start).
  std::string StateOf(const std::string& txid) const { return engine_->StateOf(txid); }
  std::vector<HeldView> Held() const { return engine_->Held(timers_.NowMs()); }
  // The held transactions whose prepared record is durable (what an agent lists).
  std::vector<HeldView> HeldRecords() const {
    std::vector<HeldView> held = Held();
    std::erase_if(held, [](const HeldView& v) { return !v.record_durable; });
    return held;
  }
  const LockTable& locks() const { return engine_->locks(); }
  std::vector<std::string> ProcedureNames() const { return store_.ProcedureNames(); }
  const NodeCounters& counters() const { return counters_; }
  uint64_t conflict_attempts() const { return engine_->conflicts(); }
  std::size_t recovered() const { return recovered_; }
  // Registered with at least one coordinator (true when it has none to register with).
  bool registered() const {
    return !options_.register_with_coordinators || options_.coordinators.empty() || registered_ > 0;
  }

 private:
  RequestToken Track(ReplyFn reply);
  bool KnownCoordinator(const std::string& url) const;
  // Asks coordinators[index..] for their groups' members until request's
  // coordinator is among them, then prepares; refuses when none lists it.
  void LearnMembersThenPrepare(wire::PrepareRequest request, ReplyFn reply, std::size_t index);
  void AcceptPrepare(wire::PrepareRequest request, ReplyFn reply);
  // Runs `then` once the engine knows what the store remembers of txid (at
  // once when it knows txid already, or nothing from before the start can
  // still be remembered); `failed` instead when the store could not be read.
  void WithStoredOutcome(const std::string& txid, std::function<void()> then,
                         std::function<void(const Status&)> failed);
  // WithStoredOutcome for a request: a storage error is answered 503.
  void WithStoredOutcome(const std::string& txid, const ReplyFn& reply, std::function<void()> then);
  void Pump();
  void Execute(Action& a);
  void QueryDecision(std::string txid, std::string log_id, std::vector<std::string> urls, std::size_t index,
                     std::string errors);
  void OnDecisionAnswer(const std::string& txid, const std::string& log_id, const std::vector<std::string>& urls,
                        std::size_t index, std::string errors, DecisionAnswer answer);
  void CallPeers(action::CallPeers call);
  void ScheduleTick();
  void RegisterWithCoordinators();

  void Event(log::Level level, std::string_view event, const nlohmann::json& fields) const;

  NodeOptions options_;
  NodeEventFn event_log_;
  Store& store_;
  CoordinatorTransport& coordinators_;
  PeerTransport& peers_;
  Timers& timers_;
  std::unique_ptr<Engine> engine_;
  std::unordered_map<RequestToken, ReplyFn> requests_;
  RequestToken next_token_ = 1;
  std::vector<std::string> unregistered_;  // coordinators not yet told our URL
  // Normalized URLs (NormalizedPeerUrl) prepares are taken from: the
  // configured coordinators and the group members they listed.
  std::unordered_set<std::string> known_coordinators_;
  std::size_t registered_ = 0;             // coordinators that accepted it
  std::map<std::string, std::string> registration_errors_;  // coordinator URL -> the reason last logged
  std::unordered_set<std::string> conflicted_;
  std::unordered_set<std::string> forgotten_reported_;  // txids whose coordinator forgot the decision (logged once)
  NodeCounters counters_;
  std::size_t recovered_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  // Shared with every callback handed out: false once the Node is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// A peer's reply as the engine's input: a state name, or why there is none.
Result<std::string> PeerStateOf(const PeerReply& reply, const std::string& peer_url);

}  // namespace commitd::participant
