#include "coordinator/group_members.h"

namespace commitd::coordinator {

Status GroupMembersTable::CreateSchema() {
  return db_.Exec("CREATE TABLE IF NOT EXISTS group_members (id TEXT PRIMARY KEY, url TEXT NOT NULL)");
}

Status GroupMembersTable::SetUrl(const std::string& id, const std::string& url) {
  Status error;
  sqlite::Statement* stmt =
      url.empty() ? db_.Prepare("DELETE FROM group_members WHERE id = ?1", &error)
                  : db_.Prepare("INSERT OR REPLACE INTO group_members(id, url) VALUES (?1, ?2)", &error);
  if (stmt == nullptr) return error;
  stmt->Bind(1, id);
  if (!url.empty()) stmt->Bind(2, url);
  return stmt->Run();
}

Result<std::map<std::string, std::string>> GroupMembersTable::Urls() {
  Status error;
  sqlite::Statement* stmt = db_.Prepare("SELECT id, url FROM group_members", &error);
  if (stmt == nullptr) return error;
  std::map<std::string, std::string> out;
  while (stmt->Step()) out[stmt->Text(0)] = stmt->Text(1);
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return s;
  return out;
}

bool GroupMembersTable::Exists() {
  sqlite::Statement* stmt = db_.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'group_members'");
  if (stmt == nullptr) return false;
  const bool found = stmt->Step();
  stmt->Reset();
  return found;
}

}  // namespace commitd::coordinator
