// A snapshot of the replicated state machine of a coordinator group member:
// every decision record, the participant registry, the members' URLs and the
// log's identity (log_id, abort_secret), as one JSON document.
// Taken inside a storage-thread transaction, so it is the state at exactly
// the applied index stored with it (a consistent copy of the
// state machine tables).
#pragma once

#include <string>
#include <string_view>

#include "common/sqlite_db.h"
#include "common/status.h"

namespace commitd::coordinator {

Result<std::string> SnapshotStateMachine(sqlite::Database& db);
// Replaces the decisions and the registry with the snapshot's.
Status RestoreStateMachine(sqlite::Database& db, std::string_view snapshot);

}  // namespace commitd::coordinator
