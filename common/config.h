// Every timeout and limit of commitd, with its default. A --config FILE holds
// a JSON object with any of these keys (unknown keys are an error), e.g.
// {"request_timeout_ms": 2000, "retry_max_ms": 1000}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace commitd {

struct Config {
  // HTTP server (both processes).
  int64_t max_body_bytes = 1 << 20;          // larger request bodies get 413
  int64_t http_read_timeout_ms = 10'000;     // reading one request
  int64_t http_idle_timeout_ms = 60'000;     // keep-alive wait for the next request
  int64_t http_write_timeout_ms = 10'000;    // writing one response
  int64_t http_first_request_timeout_ms = 5'000;  // a new connection must start its first request by then
  int64_t max_connections = 1'024;           // open connections per listener (at most half the fd limit); the longest-idle one makes room
  int64_t handler_timeout_ms = 660'000;      // a request not answered by then gets 504 (above the longest timeout_ms, 600 s)

  // HTTP client (both processes).
  int64_t connect_timeout_ms = 1'000;
  int64_t request_timeout_ms = 5'000;        // one request/response exchange with a peer

  // Coordinator.
  int64_t default_tx_timeout_ms = 5'000;     // prepare deadline when the request has no timeout_ms
  int64_t retry_initial_ms = 50;             // first redelivery delay of commit/abort; the longest a 2PC commit record answered early waits for the acks
  int64_t retry_max_ms = 2'000;              // cap of the exponential redelivery backoff
  int64_t deliveries_per_participant = 256;  // decisions and 3PC precommits sent to one participant and not answered yet; more wait
  int64_t shutdown_grace_ms = 2'000;         // how long shutdown waits for the delivery of decisions
  int64_t max_in_flight = 4'096;             // undecided transactions; more -> 429
  int64_t max_participants = 256;            // registry entries; registering more -> 400
  int64_t retry_after_s = 1;                 // Retry-After sent with 429 and 503
  int64_t health_interval_ms = 1'000;        // how often registered participants are probed
  int64_t health_stale_probes = 3;           // healthy: answered a probe within this many intervals
  int64_t health_backoff_max_ms = 30'000;    // cap of the probe backoff of an unreachable participant
  int64_t tick_ms = 10;                      // timer resolution of the protocol engines
  int64_t raft_election_timeout_ms = 1'000;  // coordinator group: followers campaign after 1-2x this without a leader
  int64_t raft_heartbeat_ms = 100;           // coordinator group: leader heartbeat interval
  int64_t raft_snapshot_entries = 10'000;    // coordinator group: snapshot (and truncate the log) every this many entries
  int64_t raft_log_keep_entries = 200'000;   // coordinator group: a leader keeps up to this many entries for a member behind
  int64_t decision_retention_ms = 604'800'000; // finished decisions (and their Idempotency-Keys' answers) are deleted after this (7 days)
  int64_t forgotten_key_retention_ms = 2'592'000'000; // a deleted decision's Idempotency-Key is refused this much longer, then free again (30 days)

  // Participant agent.
  int64_t resolve_initial_ms = 200;          // first delay of asking the coordinator about an in-doubt record
  int64_t resolve_max_ms = 5'000;            // cap of that backoff
  int64_t termination_grace_ms = 1'000;      // 3PC: past its deadline, how long an agent waits before terminating without the coordinator
  int64_t outcome_retention_ms = 86'400'000; // finished txids remembered for duplicates (24 h), in the database
  int64_t outcome_memory_ms = 60'000;        // the newest of them kept in memory too, answered without a read
  int64_t register_interval_ms = 2'000;      // re-registration with the coordinator(s)
  int64_t sql_statement_timeout_ms = 1'000;  // one statement of an op (procedure, raw SQL) runs at most this long

  // Storage.
  int64_t max_batch = 1'024;                 // jobs per group commit
  int64_t busy_timeout_ms = 5'000;           // SQLite busy timeout

  // PostgreSQL participant (commit-agent --backend postgres).
  int64_t pg_connections = 16;               // pooled connections, each with its own worker thread
  int64_t pg_lock_timeout_ms = 100;          // a prepare waits at most this long for a row lock, then votes no

  static Result<Config> FromJson(const nlohmann::json& value);
  // The text of a config file; `source` names it in messages.
  static Result<Config> Parse(std::string_view text, const std::string& source = "config");
  static Result<Config> Load(const std::string& path);
  nlohmann::json ToJson() const;
};

}  // namespace commitd
