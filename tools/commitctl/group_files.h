// A coordinator group member's files, read offline: <data-dir>/raft.db holds
// the member's Raft log, term and vote, and its state machine tables
// (DecisionStore's), which have applied the log up to `applied`. Everything
// up to `applied` is committed; the log entries after it may or may not be.
//
// The file is locked as OpenOffline does and copied into memory; the copy is
// what is read (an older format is upgraded there), the file is never changed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"
#include "coordinator/raft_codec.h"
#include "raft/membership.h"
#include "raft/types.h"

namespace commitd::commitctl {

struct GroupMemberFiles {
  std::string path;                         // of raft.db
  std::unique_ptr<sqlite::Database> lock;   // the file, held exclusively while this lives
  std::unique_ptr<sqlite::Database> db;     // the in-memory copy: the state machine at `applied`
  raft::Term term = 0;                      // the member's current term
  raft::Index applied = 0;
  raft::Term applied_term = 0;              // the term of the entry at `applied`
  raft::Index last_index = 0;
  raft::Term last_term = 0;
  raft::Membership membership;              // the latest in its log (or its snapshot's)
  std::vector<raft::Entry> tail;            // entries after `applied`: not known to be committed
};

// <data_dir>/raft.db exists and <data_dir>/decisions.db does not.
bool IsGroupMemberDir(const std::string& data_dir);
Result<GroupMemberFiles> OpenGroupMember(const std::string& data_dir);

// A decision (or 3PC precommit) some member's log tail holds for a txid.
struct TailDecision {
  std::string member_path;
  raft::Index index = 0;
  raft::Term term = 0;
  coordinator::Outcome outcome = coordinator::Outcome::kPending;
};
// txid -> every Decide command in the members' tails. Corruption if an entry
// cannot be read (then nothing may be presumed from these files).
Result<std::map<std::string, std::vector<TailDecision>>> DecisionsInTails(
    const std::vector<GroupMemberFiles>& members);

}  // namespace commitd::commitctl
