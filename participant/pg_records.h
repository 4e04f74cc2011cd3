// The PostgreSQL participant's durable state, read and settled on one
// connection: its prepared transactions (pg_prepared_xacts, gid
// "commitd:<agent>:<txid>") with their metadata rows (_commitd_pg_prepared),
// and its remembered outcomes (_commitd_pg_finished). PostgresStore runs
// these on its pool; commitctl recover --participant-dsn runs them offline.
//
// Thread: the caller's (the connection's).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "participant/pg_connection.h"
#include "participant/prepared_record_store.h"

namespace commitd::participant::pg {

// The agent's tables, created if missing.
extern const char* const kSchema;
// A txid's row of _commitd_pg_finished: outcome, at_ms ($1 the agent, $2 the txid).
extern const char* const kFindOutcomeSql;

struct PgPreparedRecord {
  std::string agent;
  PreparedRecord record;
};

// Prepared transactions of `agent` (every commitd agent's when nullopt) in
// the connection's database, with their metadata; state "precommitted" when
// _commitd_pg_precommitted says so; adopted_by, abort_key and commit_check
// from _commitd_pg_adopted when it holds the txid. A gid without a metadata
// row gets a record naming no coordinator, with last_error saying so.
Result<std::vector<PgPreparedRecord>> LoadPreparedRecords(PgConnection& conn, const std::optional<std::string>& agent,
                                                          int64_t now_ms);
// Metadata rows of `agent` without a prepared transaction (never prepared,
// or rolled back before the row went): remembered as aborted, rows removed.
Status SettleOrphanMetadata(PgConnection& conn, const std::string& agent, int64_t now_ms);

// COMMIT PREPARED; Ok too when the gid is gone and the outcome row says
// committed (a repeated commit). Unavailable when the connection broke.
// side_rows: also remove its _commitd_pg_precommitted (3PC) and
// _commitd_pg_adopted rows.
// Arguments are read until the coroutine ends (RunBlocking runs it offline).
Awaitable<Status> CommitPrepared(PgConnection& conn, const std::string& agent, const std::string& txid,
                                 bool side_rows);
// ROLLBACK PREPARED (Ok when already gone, unless committed), then the
// metadata rows go and "aborted" is remembered.
Awaitable<Status> RollBackPrepared(PgConnection& conn, const std::string& agent, const std::string& txid,
                                   int64_t now_ms);

}  // namespace commitd::participant::pg
