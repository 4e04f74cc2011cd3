#include "participant/pg_records.h"

#include <cstdlib>
#include <set>

#include "participant/pg_gid.h"
#include "common/wire.h"

namespace commitd::participant::pg {
namespace {

using Params = std::vector<std::optional<std::string>>;

constexpr const char* kAbortCleanup =
    "WITH m AS (DELETE FROM _commitd_pg_prepared WHERE agent = $1 AND txid = $2), "
    "p AS (DELETE FROM _commitd_pg_precommitted WHERE agent = $1 AND txid = $2), "
    "a AS (DELETE FROM _commitd_pg_adopted WHERE agent = $1 AND txid = $2) "
    "INSERT INTO _commitd_pg_finished(agent, txid, outcome, at_ms) VALUES ($1, $2, 'aborted', $3) "
    "ON CONFLICT (agent, txid) DO NOTHING";
constexpr const char* kSideRowsCleanup =
    "WITH a AS (DELETE FROM _commitd_pg_adopted WHERE agent = $1 AND txid = $2) "
    "DELETE FROM _commitd_pg_precommitted WHERE agent = $1 AND txid = $2";
// Rows kept beside a prepared transaction: one left after it ended is stale.
constexpr const char* kSideTables[] = {"_commitd_pg_precommitted", "_commitd_pg_adopted"};

Status Failed(const PgResult& r, const std::string& what) {
  if (r.connection_lost()) return Status::Unavailable("PostgreSQL unavailable: " + r.error());
  return Status::IoError(what + ": " + Describe(r));
}

// The agent's name and txid of a commitd gid, or nullopt.
std::optional<std::pair<std::string, std::string>> SplitGid(const std::string& gid) {
  const std::string scheme = "commitd:";
  if (gid.rfind(scheme, 0) != 0) return std::nullopt;
  std::size_t colon = gid.find(':', scheme.size());
  if (colon == std::string::npos) return std::nullopt;
  std::string agent = gid.substr(scheme.size(), colon - scheme.size());
  auto txid = TxidOfGid(agent, gid);
  if (!ValidateAgentName(agent).ok() || !txid) return std::nullopt;
  return std::make_pair(agent, *txid);
}

// A gid's metadata row (NULLs if missing), whether it is precommitted, and
// its adoption (NULLs if none): one row.
constexpr const char* kRecordSql =
    "SELECT m.protocol, m.coordinator, m.log_id, m.participants, m.created_ms, m.deadline_ms, "
    "EXISTS (SELECT 1 FROM _commitd_pg_precommitted c WHERE c.agent = $1 AND c.txid = $2), m.abort_key, "
    "m.commit_check, a.log_id, a.abort_key, a.commit_check "
    "FROM (SELECT $1::text AS agent, $2::text AS txid) k LEFT JOIN _commitd_pg_prepared m USING (agent, txid) "
    "LEFT JOIN _commitd_pg_adopted a USING (agent, txid)";

// The record's fields from the first nine columns of a kRecordSql row that found the metadata row.
void FillFromMetadata(const PgResult& meta, PreparedRecord& r) {
  r.protocol = meta.value(0, 0);
  r.coordinator = meta.value(0, 1);
  r.log_id = meta.value(0, 2);
  // Unreadable, it leaves the transaction to the coordinator alone, as a
  // missing metadata row does, and says so.
  Result<std::vector<wire::ParticipantRef>> participants = wire::ParseParticipants(meta.value(0, 3));
  if (participants.ok()) {
    r.participants = std::move(participants).value();
  } else {
    r.last_error = "unreadable in _commitd_pg_prepared: " + participants.status().message();
  }
  r.created_ms = std::strtoll(meta.value(0, 4).c_str(), nullptr, 10);
  r.deadline_ms = std::strtoll(meta.value(0, 5).c_str(), nullptr, 10);
  r.state = meta.value(0, 6) == "t" ? "precommitted" : "prepared";
  r.abort_key = meta.value(0, 7);
  r.commit_check = meta.value(0, 8);
}

}  // namespace

const char* const kFindOutcomeSql =
    "SELECT outcome, at_ms FROM _commitd_pg_finished WHERE agent = $1 AND txid = $2";

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS _commitd_pg_prepared (
  agent text NOT NULL, txid text NOT NULL, protocol text NOT NULL, coordinator text NOT NULL,
  log_id text NOT NULL, participants text NOT NULL, created_ms bigint NOT NULL, deadline_ms bigint NOT NULL,
  abort_key text NOT NULL DEFAULT '', commit_check text NOT NULL DEFAULT '', PRIMARY KEY (agent, txid));
CREATE TABLE IF NOT EXISTS _commitd_pg_precommitted (
  agent text NOT NULL, txid text NOT NULL, PRIMARY KEY (agent, txid));
CREATE TABLE IF NOT EXISTS _commitd_pg_adopted (
  agent text NOT NULL, txid text NOT NULL, log_id text NOT NULL, abort_key text NOT NULL,
  commit_check text NOT NULL, PRIMARY KEY (agent, txid));
CREATE TABLE IF NOT EXISTS _commitd_pg_finished (
  agent text NOT NULL, txid text NOT NULL, outcome text NOT NULL, at_ms bigint NOT NULL,
  PRIMARY KEY (agent, txid));
)sql";

Result<std::vector<PgPreparedRecord>> LoadPreparedRecords(PgConnection& conn, const std::optional<std::string>& agent,
                                                          int64_t now_ms) {
  PgResult gids = conn.Exec(
      "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1) "
      "ORDER BY prepared, gid",
      {agent ? GidPrefix(*agent) : std::string("commitd:")});
  if (!gids.ok()) return Failed(gids, "reading pg_prepared_xacts");
  std::vector<PgPreparedRecord> out;
  for (int i = 0; i < gids.rows(); ++i) {
    auto parts = SplitGid(gids.value(i, 0));
    if (!parts || (agent && parts->first != *agent)) continue;
    PgPreparedRecord p;
    p.agent = parts->first;
    PreparedRecord& r = p.record;
    r.txid = parts->second;
    PgResult meta = conn.Exec(kRecordSql, {p.agent, r.txid});
    if (!meta.ok()) return Failed(meta, "reading _commitd_pg_prepared");
    if (meta.is_null(0, 0)) {
      r.protocol = "2pc";
      r.state = "prepared";
      r.created_ms = now_ms;
      r.deadline_ms = now_ms;
      r.last_error = "metadata row missing from _commitd_pg_prepared";
    } else {
      FillFromMetadata(meta, r);
    }
    if (!meta.is_null(0, 9)) {
      r.adopted_by = meta.value(0, 9);
      r.abort_key = meta.value(0, 10);
      r.commit_check = meta.value(0, 11);
    }
    out.push_back(std::move(p));
  }
  return out;
}

Status SettleOrphanMetadata(PgConnection& conn, const std::string& agent, int64_t now_ms) {
  PgResult orphans = conn.Exec(
      "SELECT txid FROM _commitd_pg_prepared m WHERE agent = $1 AND NOT EXISTS "
      "(SELECT 1 FROM pg_prepared_xacts x WHERE x.database = current_database() AND x.gid = $2 || m.txid)",
      {agent, GidPrefix(agent)});
  if (!orphans.ok()) return Failed(orphans, "reading _commitd_pg_prepared");
  for (int i = 0; i < orphans.rows(); ++i) {
    PgResult gone = conn.Exec(kAbortCleanup, {agent, orphans.value(i, 0), std::to_string(now_ms)});
    if (!gone.ok()) return Failed(gone, "settling an unprepared record");
  }
  for (const std::string table : kSideTables) {
    PgResult stale = conn.Exec(
        "DELETE FROM " + table + " c WHERE agent = $1 AND NOT EXISTS "
        "(SELECT 1 FROM pg_prepared_xacts x WHERE x.database = current_database() AND x.gid = $2 || c.txid)",
        {agent, GidPrefix(agent)});
    if (!stale.ok()) return Failed(stale, "clearing " + table);
  }
  return Status::Ok();
}

Awaitable<Status> CommitPrepared(PgConnection& conn, const std::string& agent, const std::string& txid,
                                 bool side_rows) {
  auto gid = EncodeGid(agent, txid);
  if (!gid.ok()) co_return gid.status();
  PgResult r = co_await conn.ExecAsync("COMMIT PREPARED " + conn.Literal(*gid));
  const Params params{agent, txid};
  if (!r.ok()) {
    if (r.sqlstate() != sqlstate::kUndefinedObject) co_return Failed(r, "COMMIT PREPARED");
    // Gone: committed before (a repeated commit) only if the outcome row says so.
    PgResult o = co_await conn.ExecAsync(kFindOutcomeSql, params);
    if (!o.ok()) co_return Failed(o, "reading _commitd_pg_finished");
    if (o.rows() != 1 || o.value(0, 0) != "committed") {
      co_return Status::Internal("PostgreSQL holds no prepared transaction " + *gid +
                                 " and no committed outcome for it (was it rolled back by hand?)");
    }
  }
  if (side_rows) {
    co_await conn.ExecAsync(kSideRowsCleanup, params);
  }
  co_return Status::Ok();
}

Awaitable<Status> RollBackPrepared(PgConnection& conn, const std::string& agent, const std::string& txid,
                                   int64_t now_ms) {
  auto gid = EncodeGid(agent, txid);
  if (!gid.ok()) co_return gid.status();
  PgResult r = co_await conn.ExecAsync("ROLLBACK PREPARED " + conn.Literal(*gid));
  if (!r.ok()) {
    if (r.sqlstate() != sqlstate::kUndefinedObject) co_return Failed(r, "ROLLBACK PREPARED");
    const Params params{agent, txid};
    PgResult o = co_await conn.ExecAsync(kFindOutcomeSql, params);
    if (!o.ok()) co_return Failed(o, "reading _commitd_pg_finished");
    if (o.rows() == 1 && o.value(0, 0) == "committed") {
      co_return Status::Internal("transaction " + txid + " was committed in PostgreSQL; it cannot be aborted");
    }
  }
  const Params cleanup_params{agent, txid, std::to_string(now_ms)};
  PgResult cleanup = co_await conn.ExecAsync(kAbortCleanup, cleanup_params);
  if (!cleanup.ok()) co_return Failed(cleanup, "remembering the abort");
  co_return Status::Ok();
}

}  // namespace commitd::participant::pg
