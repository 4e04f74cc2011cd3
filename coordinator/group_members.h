// The URLs of a coordinator group's members (group_members table): part of
// the replicated state machine, changed by command::SetMember entries, so
// every member learns a new member's address from the log.
#pragma once

#include <map>
#include <string>

#include "common/sqlite_db.h"
#include "common/status.h"

namespace commitd::coordinator {

class GroupMembersTable {
 public:
  explicit GroupMembersTable(sqlite::Database& db) : db_(db) {}

  Status CreateSchema();
  // An empty url removes the member's entry.
  Status SetUrl(const std::string& id, const std::string& url);
  Result<std::map<std::string, std::string>> Urls();
  // A plain decisions.db (one coordinator) has no such table.
  bool Exists();

 private:
  sqlite::Database& db_;
};

}  // namespace commitd::coordinator
