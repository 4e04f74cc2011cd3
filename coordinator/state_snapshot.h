// A snapshot of the replicated state machine of a coordinator group member:
// every decision record, the participant registry, the members' URLs and the
// log's identity (log_id, abort_secret). Version 2, written now, is JSON
// lines: a header object (version, registry, members, identity, what
// retention forgot), one line per decision, and an end line with their count,
// so that neither side ever holds more than the bytes and one record's JSON.
// Version 1, one JSON document with every decision in it, is still read.
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
// The same state as a version-1 document (for tests of what older members sent).
Result<std::string> SnapshotStateMachineAsOneDocument(sqlite::Database& db);
// Replaces the decisions and the registry with the snapshot's.
Status RestoreStateMachine(sqlite::Database& db, std::string_view snapshot);

}  // namespace commitd::coordinator
