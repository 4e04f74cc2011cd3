#include "tools/commitctl/group_files.h"

#include <filesystem>

#include "coordinator/decision_state_machine.h"
#include "raft/storage.h"
#include "tools/commitctl/offline_files.h"

namespace commitd::commitctl {

bool IsGroupMemberDir(const std::string& data_dir) {
  std::error_code ec;
  const std::filesystem::path dir(data_dir);
  return std::filesystem::is_regular_file(dir / "raft.db", ec) &&
         !std::filesystem::exists(dir / "decisions.db", ec);
}

Result<GroupMemberFiles> OpenGroupMember(const std::string& data_dir) {
  GroupMemberFiles m;
  m.path = (std::filesystem::path(data_dir) / "raft.db").string();
  auto file = OpenOffline(m.path, "commitd (group member)");
  if (!file.ok()) return file.status();
  m.lock = std::move(file).value();
  auto copy = sqlite::Database::Open(":memory:");
  if (!copy.ok()) return copy.status();
  sqlite3_backup* backup = sqlite3_backup_init((*copy)->handle(), "main", m.lock->handle(), "main");
  if (backup == nullptr) return (*copy)->LastError("copy " + m.path);
  const int rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return Status::IoError("copy " + m.path + ": " + sqlite3_errstr(rc));
  m.db = std::move(copy).value();
  if (Status s = coordinator::DecisionStateMachine::CreateSchema(*m.db); !s.ok()) {
    return Status(s.code(), m.path + ": " + s.message());
  }
  raft::Storage storage(*m.db);
  if (Status s = storage.Init(raft::Membership{}); !s.ok()) return Status(s.code(), m.path + ": " + s.message());
  auto restored = storage.Load();
  if (!restored.ok()) return Status(restored.status().code(), m.path + ": " + restored.status().message());
  m.term = restored->hard_state.term;
  m.applied = restored->applied;
  m.applied_term = restored->snapshot.term;
  m.last_index = restored->snapshot.index;
  m.last_term = restored->snapshot.term;
  m.membership = restored->snapshot.membership;
  for (raft::Entry& e : restored->entries) {
    m.last_index = e.index;
    m.last_term = e.term;
    if (e.index == m.applied) m.applied_term = e.term;
    if (e.type == raft::EntryType::kConfig) {
      if (auto membership = raft::Membership::Decode(e.data)) m.membership = *membership;
    }
    if (e.index > m.applied) m.tail.push_back(std::move(e));
  }
  if (m.applied > m.last_index) {
    return Status::Corruption(m.path + ": applied index " + std::to_string(m.applied) + " is past the log's end " +
                              std::to_string(m.last_index));
  }
  return m;
}

Result<std::map<std::string, std::vector<TailDecision>>> DecisionsInTails(
    const std::vector<GroupMemberFiles>& members) {
  std::map<std::string, std::vector<TailDecision>> out;
  for (const GroupMemberFiles& m : members) {
    for (const raft::Entry& e : m.tail) {
      if (e.type != raft::EntryType::kNormal) continue;
      auto command = coordinator::DecodeCommand(e.data);
      if (!command.ok()) {
        return Status::Corruption(m.path + ": log entry " + std::to_string(e.index) + ": " +
                                  command.status().message());
      }
      if (const auto* d = std::get_if<coordinator::command::Decide>(&*command)) {
        out[d->record.txid].push_back({m.path, e.index, e.term, d->record.outcome});
      }
    }
  }
  return out;
}

}  // namespace commitd::commitctl
