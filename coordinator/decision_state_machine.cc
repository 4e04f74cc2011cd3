#include "coordinator/decision_state_machine.h"

#include "coordinator/decision_store.h"
#include "coordinator/staging_folds.h"
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
  return ApplyDecoded(db, *command);
}

namespace {

// A record or a single finished mark: one statement that writes, or none,
// whatever the result, so a refusal leaves nothing to roll back and it needs
// no savepoint of its own.
bool WritesOnce(const Command& command) {
  return std::holds_alternative<command::Decide>(command) || std::holds_alternative<command::Finish>(command);
}

}  // namespace

Status DecisionStateMachine::ApplyAll(sqlite::Database& db, const std::vector<raft::Entry>& entries,
                                      std::vector<Status>* results) {
  if (overwrite_decisions_) return raft::ApplyEach(db, *this, entries, results);
  std::vector<std::optional<Command>> commands(entries.size());
  std::vector<bool> undecodable(entries.size(), false);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].type != raft::EntryType::kNormal) continue;
    Result<Command> command = DecodeCommand(entries[i].data);
    if (command.ok()) {
      commands[i] = std::move(command).value();
    } else {
      undecodable[i] = true;
    }
  }
  std::map<std::size_t, StagingFold> folds = PlanStagingFolds(commands, undecodable);
  // Entry i alone, as Apply gives it, without a savepoint where it writes at most once.
  const auto apply_alone = [&](std::size_t i, Status* result) -> Status {
    if (!commands[i]) {
      *result = undecodable[i] ? ApplyCommand(db, entries[i]) : Status::Ok();
      return Status::Ok();
    }
    if (!WritesOnce(*commands[i])) {
      return raft::ApplyInSavepoint(db, [&] { return ApplyDecoded(db, *commands[i]); }, result);
    }
    *result = ApplyDecoded(db, *commands[i]);
    return result->code() == StatusCode::kIoError ? *result : Status::Ok();
  };
  std::vector<bool> written_with_staging(entries.size(), false);
  results->reserve(results->size() + entries.size());
  DecisionStore store(db);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const raft::Entry& e = entries[i];
    Status result;
    bool written = written_with_staging[i];
    if (auto fold = folds.find(i); !written && fold != folds.end()) {
      // One statement; refused (the txid or key was taken before this batch),
      // it changed nothing and the entries apply one by one.
      if (Status s = store.InsertNew(fold->second.row, &written); !s.ok()) return s;
      if (written) written_with_staging[fold->second.decision] = true;
    }
    if (!written) {
      if (Status s = apply_alone(i, &result); !s.ok()) return s;
    }
    if (observer_) observer_(e, result);
    results->push_back(std::move(result));
  }
  return Status::Ok();
}

Status DecisionStateMachine::ApplyDecoded(sqlite::Database& db, const Command& command) {
  DecisionStore store(db);
  if (auto* d = std::get_if<command::Decide>(&command)) {
    if (overwrite_decisions_ && d->record.outcome != Outcome::kPending) {
      Status error;
      sqlite::Statement* erase = db.Prepare("DELETE FROM decisions WHERE txid = ?1", &error);
      if (erase == nullptr) return error;
      erase->Bind(1, d->record.txid);
      if (Status s = erase->Run(); !s.ok()) return s;
    }
    return store.InsertDecision(d->record);
  }
  if (auto* f = std::get_if<command::Finish>(&command)) return store.MarkFinished(f->txid, f->finished_ms);
  if (auto* p = std::get_if<command::PutParticipant>(&command)) return store.PutParticipant(p->entry);
  if (auto* m = std::get_if<command::SetMember>(&command)) {
    Status s = GroupMembersTable(db).SetUrl(m->id, m->url);
    if (s.ok()) {
      std::lock_guard lock(mu_);
      member_urls_.push_back(*m);
    }
    return s;
  }
  if (auto* id = std::get_if<command::SetIdentity>(&command)) return store.SetIdentity(id->log_id, id->abort_secret);
  if (auto* many = std::get_if<command::FinishMany>(&command)) {
    for (const auto& f : many->marks) {
      Status s = store.MarkFinished(f.txid, f.finished_ms);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
    return Status::Ok();
  }
  if (auto* forget = std::get_if<command::ForgetFinished>(&command)) {
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
