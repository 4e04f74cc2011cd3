#include "common/config.h"
#include "common/json_parse.h"

#include <fstream>
#include <sstream>

namespace commitd {
namespace {

// One table of every key, used for both reading and writing.
template <class Fn>
void ForEachField(Config& c, Fn&& fn) {
  fn("max_body_bytes", c.max_body_bytes);
  fn("http_read_timeout_ms", c.http_read_timeout_ms);
  fn("http_idle_timeout_ms", c.http_idle_timeout_ms);
  fn("http_write_timeout_ms", c.http_write_timeout_ms);
  fn("http_first_request_timeout_ms", c.http_first_request_timeout_ms);
  fn("max_connections", c.max_connections);
  fn("handler_timeout_ms", c.handler_timeout_ms);
  fn("connect_timeout_ms", c.connect_timeout_ms);
  fn("request_timeout_ms", c.request_timeout_ms);
  fn("default_tx_timeout_ms", c.default_tx_timeout_ms);
  fn("retry_initial_ms", c.retry_initial_ms);
  fn("retry_max_ms", c.retry_max_ms);
  fn("deliveries_per_participant", c.deliveries_per_participant);
  fn("shutdown_grace_ms", c.shutdown_grace_ms);
  fn("max_in_flight", c.max_in_flight);
  fn("max_participants", c.max_participants);
  fn("retry_after_s", c.retry_after_s);
  fn("health_interval_ms", c.health_interval_ms);
  fn("health_stale_probes", c.health_stale_probes);
  fn("health_backoff_max_ms", c.health_backoff_max_ms);
  fn("tick_ms", c.tick_ms);
  fn("resolve_initial_ms", c.resolve_initial_ms);
  fn("raft_election_timeout_ms", c.raft_election_timeout_ms);
  fn("raft_heartbeat_ms", c.raft_heartbeat_ms);
  fn("raft_snapshot_entries", c.raft_snapshot_entries);
  fn("raft_log_keep_entries", c.raft_log_keep_entries);
  fn("decision_retention_ms", c.decision_retention_ms);
  fn("forgotten_key_retention_ms", c.forgotten_key_retention_ms);
  fn("termination_grace_ms", c.termination_grace_ms);
  fn("resolve_max_ms", c.resolve_max_ms);
  fn("outcome_retention_ms", c.outcome_retention_ms);
  fn("outcome_memory_ms", c.outcome_memory_ms);
  fn("register_interval_ms", c.register_interval_ms);
  fn("sql_statement_timeout_ms", c.sql_statement_timeout_ms);
  fn("max_batch", c.max_batch);
  fn("busy_timeout_ms", c.busy_timeout_ms);
  fn("pg_connections", c.pg_connections);
  fn("pg_lock_timeout_ms", c.pg_lock_timeout_ms);
}

}  // namespace

Result<Config> Config::FromJson(const nlohmann::json& value) {
  if (!value.is_object()) return Status::InvalidArgument("config: must be a JSON object");
  Config config;
  std::size_t known = 0;
  std::string error;
  ForEachField(config, [&](const char* key, int64_t& field) {
    auto it = value.find(key);
    if (it == value.end()) return;
    ++known;
    if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
      if (error.empty()) error = std::string("config.") + key + ": must be a positive integer";
      return;
    }
    field = it->get<int64_t>();
  });
  if (!error.empty()) return Status::InvalidArgument(error);
  if (known != value.size()) {
    nlohmann::json known_keys = config.ToJson();
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (!known_keys.contains(it.key())) return Status::InvalidArgument("config: unknown key '" + it.key() + "'");
    }
  }
  if (config.retry_initial_ms > config.retry_max_ms)
    return Status::InvalidArgument("config: retry_initial_ms must not exceed retry_max_ms");
  // On PostgreSQL the memory covers a tombstone still being written on another connection.
  if (config.outcome_memory_ms < 1'000) return Status::InvalidArgument("config.outcome_memory_ms: must be at least 1000");
  if (config.resolve_initial_ms > config.resolve_max_ms)
    return Status::InvalidArgument("config: resolve_initial_ms must not exceed resolve_max_ms");
  return config;
}

Result<Config> Config::Parse(std::string_view text, const std::string& source) {
  auto parsed = ParseJson(text);
  if (parsed.is_discarded()) return Status::InvalidArgument(source + " is not valid JSON");
  return FromJson(parsed);
}

Result<Config> Config::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), "config file " + path);
}

nlohmann::json Config::ToJson() const {
  nlohmann::json out = nlohmann::json::object();
  Config copy = *this;
  ForEachField(copy, [&](const char* key, int64_t& field) { out[key] = field; });
  return out;
}

}  // namespace commitd
