#include "coordinator/decision_state_machine.h"

#include "coordinator/decision_store.h"
#include "coordinator/group_members.h"
#include "coordinator/state_snapshot.h"

namespace commitd::coordinator {

Status DecisionStateMachine::CreateSchema(sqlite::Database& db) {
  if (Status s = DecisionStore(db).CreateSchema(); !s.ok()) return s;
  return GroupMembersTable(db).CreateSchema();
}

Status DecisionStateMachine::Apply(sqlite::Database& db, const raft::Entry& e) {
  Status s = ApplyCommand(db, e);
  if (observer_) observer_(e, s);
  return s;
}

Status DecisionStateMachine::ApplyCommand(sqlite::Database& db, const raft::Entry& e) {
  if (e.type != raft::EntryType::kNormal) return Status::Ok();
  auto command = DecodeCommand(e.data);
  if (!command.ok()) return command.status();
  DecisionStore store(db);
  if (auto* d = std::get_if<command::Decide>(&*command)) {
    if (overwrite_decisions_ && d->record.outcome != Outcome::kPending) {
      Status error;
      sqlite::Statement* erase = db.Prepare("DELETE FROM decisions WHERE txid = ?1", &error);
      if (erase == nullptr) return error;
      erase->Bind(1, d->record.txid);
      if (Status s = erase->Run(); !s.ok()) return s;
    }
    return store.InsertDecision(d->record);
  }
  if (auto* f = std::get_if<command::Finish>(&*command)) return store.MarkFinished(f->txid, f->finished_ms);
  if (auto* p = std::get_if<command::PutParticipant>(&*command)) return store.PutParticipant(p->entry);
  if (auto* m = std::get_if<command::SetMember>(&*command)) {
    Status s = GroupMembersTable(db).SetUrl(m->id, m->url);
    if (s.ok()) {
      std::lock_guard lock(mu_);
      member_urls_.push_back(std::move(*m));
    }
    return s;
  }
  if (auto* id = std::get_if<command::SetIdentity>(&*command)) return store.SetIdentity(id->log_id, id->abort_secret);
  if (auto* many = std::get_if<command::FinishMany>(&*command)) {
    for (const auto& f : many->marks) {
      Status s = store.MarkFinished(f.txid, f.finished_ms);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
    return Status::Ok();
  }
  if (auto* forget = std::get_if<command::ForgetFinished>(&*command)) {
    auto n = store.ForgetFinishedBefore(forget->cutoff_ms, forget->keys_cutoff_ms, forget->limit);
    if (!n.ok()) return n.status();
    last_forgotten_ = *n;
    return Status::Ok();
  }
  return Status::Internal("unhandled command");
}

Result<std::string> DecisionStateMachine::Snapshot(sqlite::Database& db) { return SnapshotStateMachine(db); }

Status DecisionStateMachine::Restore(sqlite::Database& db, std::string_view snapshot) {
  if (Status s = RestoreStateMachine(db, snapshot); !s.ok()) return s;
  auto urls = GroupMembersTable(db).Urls();
  if (!urls.ok()) return urls.status();
  std::lock_guard lock(mu_);
  member_urls_.clear();
  for (auto& [id, url] : *urls) member_urls_.push_back(command::SetMember{id, url});
  return Status::Ok();
}

void DecisionStateMachine::AfterDurable(const std::vector<raft::Entry>&, bool) {
  std::vector<command::SetMember> urls;
  {
    std::lock_guard lock(mu_);
    urls = std::move(member_urls_);
    member_urls_.clear();
  }
  if (!on_member_url_) return;
  for (const auto& m : urls) on_member_url_(m.id, m.url);
}

}  // namespace commitd::coordinator
