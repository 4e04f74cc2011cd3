#include "coordinator/service_metrics.h"

#include "coordinator/node.h"
#include "raft/driver.h"

namespace commitd::coordinator {
namespace {

constexpr AgentCall kRoundTripCalls[] = {AgentCall::kPrepare, AgentCall::kPrecommit, AgentCall::kCommit,
                                         AgentCall::kAbort, AgentCall::kFence};
constexpr AgentCallError kErrors[] = {AgentCallError::kTimeout,    AgentCallError::kUnreachable,
                                      AgentCallError::kRefused,    AgentCallError::kOverloaded,
                                      AgentCallError::kRejected,   AgentCallError::kServerError};

std::size_t DurationIndex(wire::Protocol protocol, Outcome outcome) {
  return (protocol == wire::Protocol::k3pc ? 2 : 0) + (outcome == Outcome::kCommitted ? 0 : 1);
}

}  // namespace

ServiceMetrics::ServiceMetrics(const std::string& version, const std::string& commit)
    : round_trip_(registry_, "commitd_participant_round_trip_seconds",
                  "Round trip of a protocol message to a participant, from sending to its answer (or failure).",
                  {"participant", "phase"}, metrics::LatencyBuckets()),
      errors_(registry_, "commitd_participant_errors_total",
              "Exchanges with a participant that failed (health probes included), by kind.", {"participant", "kind"}),
      healthy_(registry_, "commitd_participant_healthy",
               "1 if the participant answered a health probe within health_stale_probes intervals.", {"participant"}),
      undecided_(registry_.AddGauge("commitd_transactions_undecided",
                                     "Transactions not decided yet (collecting votes; 3PC: also waiting for precommits).")),
      in_doubt_undelivered_(registry_.AddGauge(
          "commitd_transactions_in_doubt",
          "Transactions waiting on delivery or an operator: undelivered (decided by the protocol), held "
          "(decided by an operator), foreign_log (prepared under another decision log, waiting for an operator), "
          "precommit_unknown (3PC, undecided: a participant no longer knows it, waiting for an operator), "
          "staging_unknown (undecided, resumed from its staging record: a participant may have forgotten a "
          "commit, waiting for an operator), contradicted (decided, and a participant did the other outcome: "
          "waiting for an operator to reconcile the data and close it).",
          {{"kind", "undelivered"}})),
      in_doubt_held_(registry_.AddGauge("commitd_transactions_in_doubt", "", {{"kind", "held"}})),
      in_doubt_foreign_log_(registry_.AddGauge("commitd_transactions_in_doubt", "", {{"kind", "foreign_log"}})),
      in_doubt_precommit_unknown_(
          registry_.AddGauge("commitd_transactions_in_doubt", "", {{"kind", "precommit_unknown"}})),
      in_doubt_staging_unknown_(
          registry_.AddGauge("commitd_transactions_in_doubt", "", {{"kind", "staging_unknown"}})),
      in_doubt_contradicted_(registry_.AddGauge("commitd_transactions_in_doubt", "", {{"kind", "contradicted"}})),
      in_flight_(registry_.AddGauge("commitd_transactions_in_flight",
                                    "Transactions the coordinator holds: undecided, or decided and being delivered.")),
      log_batch_size_(registry_.AddHistogram("commitd_decision_log_batch_size",
                                             "Records per group commit of the decision log (of the Raft log in a "
                                             "group).",
                                             metrics::SizeBuckets())),
      log_fsync_seconds_(registry_.AddHistogram(
          "commitd_decision_log_fsync_seconds",
          "Duration of the COMMIT (with its fsync) of a decision-log batch that synced, or of an fsync of the WAL alone.",
          metrics::LatencyBuckets())) {
  for (wire::Protocol p : {wire::Protocol::k2pc, wire::Protocol::k3pc}) {
    for (Outcome o : {Outcome::kCommitted, Outcome::kAborted}) {
      tx_duration_[DurationIndex(p, o)] = &registry_.AddHistogram(
          "commitd_transaction_duration_seconds",
          "Client transactions from the request to the answer, by protocol and outcome.", metrics::LatencyBuckets(),
          {{"protocol", std::string(wire::ProtocolName(p))}, {"outcome", std::string(OutcomeName(o))}});
    }
  }
  metrics::AddProcessMetrics(registry_);
  metrics::AddBuildInfo(registry_, "commitd", version, commit);
}

void ServiceMetrics::Attach(MetricSources sources) {
  sources_ = std::move(sources);
  const Node* node = sources_.node;
  const NodeMetrics* m = &node->metrics();
  registry_.AddCounterFn("commitd_transactions_started_total", "Transactions started.", {},
                         [m] { return static_cast<double>(m->started); });
  registry_.AddCounterFn("commitd_transactions_total", "Transactions decided, by outcome.",
                         {{"outcome", "committed"}}, [m] { return static_cast<double>(m->committed); });
  registry_.AddCounterFn("commitd_transactions_total", "", {{"outcome", "aborted"}},
                         [m] { return static_cast<double>(m->aborted); });
  for (std::size_t r = 0; r < kAbortReasonCount; ++r) {
    registry_.AddCounterFn(
        "commitd_transaction_aborts_total",
        "Aborted transactions by reason class; overload: refused at admission (429, max_in_flight); storage: the "
        "decision log failed.",
        {{"reason", std::string(AbortReasonName(static_cast<AbortReason>(r)))}},
        [m, r] { return static_cast<double>(m->aborts_by_reason[r]); });
  }
  registry_.AddCounterFn("commitd_transactions_heuristic_total",
                         "Decisions forced by an operator (commitctl resolve --force), in the log.", {},
                         [m] { return static_cast<double>(m->heuristic); });
  registry_.AddCounterFn("commitd_transactions_rejected_overload_total", "Requests refused with 429.", {},
                         [m] { return static_cast<double>(m->rejected_overload); });
  registry_.AddCounterFn(
      "commitd_commits_unknown_at_participant_total",
      "Commit deliveries a participant answered unknown_transaction (forgotten after retention, or a lost disk).", {},
      [m] { return static_cast<double>(m->commits_unknown_at_participant); });
  registry_.AddCounterFn("commitd_decisions_contradicted_total",
                         "Decision deliveries a participant answered with the other outcome (it had finished the "
                         "transaction so): the data disagrees until an operator reconciles it.",
                         {}, [m] { return static_cast<double>(m->decisions_contradicted); });
  registry_.AddCounterFn("commitd_precommits_unknown_at_participant_total",
                         "3PC precommits a participant answered unknown_transaction: the outcome is in doubt.", {},
                         [m] { return static_cast<double>(m->precommits_unknown_at_participant); });
  registry_.AddCounterFn("commitd_precommits_sent_total", "3PC precommit messages sent (retries included).", {},
                         [m] { return static_cast<double>(m->precommits_sent); });
  registry_.AddCounterFn(
      "commitd_presumed_aborts_swept_total",
      "Prepared transactions of a previous incarnation or leader with no decision, aborted at takeover.", {},
      [m] { return static_cast<double>(m->swept); });
  registry_.AddCounterFn("commitd_finished_marks_failed_total",
                         "Finished marks whose write to the decision log failed; each is written again later.", {},
                         [m] { return static_cast<double>(m->finished_mark_failures); });
  registry_.AddCounterFn("commitd_decisions_forgotten_total",
                         "Finished decisions deleted after decision_retention_ms by this coordinator (as leader, in a group).",
                         {}, [m] { return static_cast<double>(m->forgotten); });
  auto counter = [this](const char* name, const char* help, std::function<uint64_t()> read) {
    registry_.AddCounterFn(name, help, {}, [read = std::move(read)] { return static_cast<double>(read()); });
  };
  counter("commitd_requests_forwarded_total", "Client requests a follower passed to the leader.", sources_.forwarded);
  counter("commitd_log_batches_total", "Group commits of the decision log.", sources_.log_batches);
  counter("commitd_log_records_total", "Records written to the decision log.", sources_.log_records);
  counter("commitd_peer_messages_total", "Protocol messages sent to agents.", sources_.peer_messages);
  counter("commitd_peer_exchanges_total", "HTTP exchanges that carried them (batched).", sources_.peer_exchanges);
  if (const raft::Driver* raft = sources_.raft) {
    registry_.AddGaugeFn("commitd_raft_term", "Current Raft term of this member.", {},
                         [raft] { return static_cast<double>(raft->node().term()); });
    registry_.AddGaugeFn("commitd_raft_commit_index", "Highest log index known committed.", {},
                         [raft] { return static_cast<double>(raft->node().commit_index()); });
    registry_.AddGaugeFn("commitd_raft_applied_index", "Highest log index applied to the decision state machine.",
                         {}, [raft] { return static_cast<double>(raft->applied()); });
    registry_.AddCounterFn("commitd_raft_leader_changes_total",
                           "Times the leader this member knows of became another member.", {},
                           [raft] { return static_cast<double>(raft->counters().leader_changes); });
    registry_.AddCounterFn("commitd_raft_snapshots_total",
                           "Snapshots: taken (log compacted here), installed (received from the leader).",
                           {{"kind", "taken"}},
                           [raft] { return static_cast<double>(raft->counters().snapshots_taken); });
    registry_.AddCounterFn("commitd_raft_snapshots_total", "", {{"kind", "installed"}},
                           [raft] { return static_cast<double>(raft->counters().snapshots_installed); });
    const char* roles[] = {"leader", "follower", "candidate"};
    for (std::size_t i = 0; i < 3; ++i) {
      raft_role_[i] = &registry_.AddGauge("commitd_raft_role", "1 for this member's current Raft role.",
                                          {{"role", roles[i]}});
    }
  }
}

void ServiceMetrics::ObserveTransaction(wire::Protocol protocol, Outcome outcome, double seconds) {
  if (outcome == Outcome::kPending) return;
  tx_duration_[DurationIndex(protocol, outcome)]->Observe(seconds);
}

ServiceMetrics::ParticipantSeries& ServiceMetrics::SeriesOf(const std::string& participant) {
  auto it = participants_.find(participant);
  if (it != participants_.end()) return it->second;
  ParticipantSeries s;
  for (std::size_t i = 0; i < s.round_trip.size(); ++i) {
    s.round_trip[i] = &round_trip_.With({participant, std::string(AgentCallName(kRoundTripCalls[i]))});
  }
  for (std::size_t i = 0; i < s.errors.size(); ++i) {
    s.errors[i] = &errors_.With({participant, std::string(AgentCallErrorName(kErrors[i]))});
  }
  s.healthy = &healthy_.With({participant});
  return participants_.emplace(participant, s).first->second;
}

void ServiceMetrics::Forget(const std::string& participant) {
  participants_.erase(participant);
  for (AgentCall c : kRoundTripCalls) round_trip_.Remove({participant, std::string(AgentCallName(c))});
  for (AgentCallError e : kErrors) errors_.Remove({participant, std::string(AgentCallErrorName(e))});
  healthy_.Remove({participant});
}

// One hash lookup by the participant's name; the series are resolved already.
void ServiceMetrics::OnAgentCall(const std::string& participant, AgentCall call, double seconds,
                                 std::optional<AgentCallError> error) {
  ParticipantSeries& s = SeriesOf(participant);
  const auto index = static_cast<std::size_t>(call);
  if (index < s.round_trip.size()) s.round_trip[index]->Observe(seconds);
  if (error) s.errors[static_cast<std::size_t>(*error)]->Inc();
}

void ServiceMetrics::RefreshFromNode() {
  const Node& node = *sources_.node;
  undecided_.Set(static_cast<double>(node.undecided()));
  in_flight_.Set(static_cast<double>(node.active()));
  const Node::InDoubt in_doubt = node.in_doubt();
  in_doubt_undelivered_.Set(static_cast<double>(in_doubt.undelivered));
  in_doubt_held_.Set(static_cast<double>(in_doubt.held));
  in_doubt_foreign_log_.Set(static_cast<double>(in_doubt.foreign_log));
  in_doubt_precommit_unknown_.Set(static_cast<double>(in_doubt.precommit_unknown));
  in_doubt_staging_unknown_.Set(static_cast<double>(in_doubt.staging_unknown));
  in_doubt_contradicted_.Set(static_cast<double>(in_doubt.contradicted));
  // Participants: every registered one has series; a removed one loses them.
  std::set<std::string> registered;
  for (const ParticipantStatus& p : node.Participants()) {
    registered.insert(p.entry.name);
    SeriesOf(p.entry.name).healthy->Set(p.healthy ? 1 : 0);
  }
  std::vector<std::string> gone;
  for (const auto& [name, s] : participants_) {
    if (registered.count(name) == 0) gone.push_back(name);
  }
  for (const auto& name : gone) Forget(name);
  if (const raft::Driver* raft = sources_.raft) {
    const raft::Role role = raft->node().role();
    raft_role_[0]->Set(role == raft::Role::kLeader ? 1 : 0);
    raft_role_[1]->Set(role == raft::Role::kFollower ? 1 : 0);
    raft_role_[2]->Set(role == raft::Role::kCandidate || role == raft::Role::kPreCandidate ? 1 : 0);
  }
}

std::string ServiceMetrics::Render() {
  if (sources_.node != nullptr) RefreshFromNode();
  return registry_.Render();
}

}  // namespace commitd::coordinator
