// The coordinator's GET /metrics: every series of docs/operations.md in one
// metrics::Registry. The Node counts (NodeMetrics) and answers queries; this
// adapter turns those, the agent exchanges (AgentCallObserver), the client
// latencies measured by the service, the decision log's storage thread and
// the Raft driver into Prometheus series.
//
// Thread: the io thread, except the decision-log histograms, which the
// storage thread records into (lock-free, common/metrics.h).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <unordered_map>

#include "common/batch_writer.h"
#include "common/metrics.h"
#include "common/wire.h"
#include "coordinator/agent_call_observer.h"
#include "coordinator/engine.h"

namespace commitd::raft {
class Driver;
}

namespace commitd::coordinator {

class Node;

// What the metrics read when rendered, besides the Node.
struct MetricSources {
  const Node* node = nullptr;
  const raft::Driver* raft = nullptr;  // null: a single coordinator (no Raft series)
  std::function<uint64_t()> log_batches, log_records;
  std::function<uint64_t()> peer_messages, peer_exchanges;
  std::function<uint64_t()> forwarded;
};

class ServiceMetrics final : public AgentCallObserver {
 public:
  ServiceMetrics(const std::string& version, const std::string& commit);

  // Once the node and the logs exist (before the first render).
  void Attach(MetricSources sources);

  // A client's transaction, from its request to its answer.
  void ObserveTransaction(wire::Protocol protocol, Outcome outcome, double seconds);
  void OnAgentCall(const std::string& participant, AgentCall call, double seconds,
                   std::optional<AgentCallError> error) override;
  // For the decision log's BatchWriter.
  BatchMetrics decision_log_batch_metrics() { return {&log_batch_size_, &log_fsync_seconds_}; }

  // Refreshes the gauges read from the node and renders everything.
  std::string Render();

 private:
  // A participant's series, resolved once (its first exchange or render).
  struct ParticipantSeries {
    std::array<metrics::Histogram*, 4> round_trip{};  // by AgentCall prepare..abort
    std::array<metrics::Counter*, 6> errors{};        // by AgentCallError
    metrics::Gauge* healthy = nullptr;
  };
  ParticipantSeries& SeriesOf(const std::string& participant);
  void Forget(const std::string& participant);
  void RefreshFromNode();

  metrics::Registry registry_;
  MetricSources sources_;
  std::array<metrics::Histogram*, 4> tx_duration_{};  // [protocol 2pc/3pc][committed/aborted]
  metrics::HistogramFamily round_trip_;
  metrics::CounterFamily errors_;
  metrics::GaugeFamily healthy_;
  std::unordered_map<std::string, ParticipantSeries> participants_;
  metrics::Gauge& undecided_;
  metrics::Gauge& in_doubt_undelivered_;
  metrics::Gauge& in_doubt_held_;
  metrics::Gauge& in_doubt_foreign_log_;
  metrics::Gauge& in_doubt_precommit_unknown_;
  metrics::Gauge& in_doubt_staging_unknown_;
  metrics::Gauge& in_doubt_contradicted_;
  metrics::Gauge& in_flight_;
  metrics::Histogram& log_batch_size_;
  metrics::Histogram& log_fsync_seconds_;
  std::array<metrics::Gauge*, 3> raft_role_{};  // leader, follower, candidate
};

}  // namespace commitd::coordinator
