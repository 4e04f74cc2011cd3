#include "participant/sqlite_store.h"

#include <memory>

#include "common/failpoint.h"

namespace commitd::participant {

Result<Store::Contents> SqliteStore::Load() {
  auto records = rm_.LoadPrepared();
  if (!records.ok()) return records.status();
  Contents contents;
  contents.records = std::move(records).value();
  return contents;
}

void SqliteStore::Prepare(action::Prepare prepare,
                          std::function<void(const std::string& txid, PrepareResult, Status)> done) {
  auto job = std::make_shared<PrepareJob>(PrepareJob{std::move(prepare.ops), std::move(prepare.record), {}, {}});
  StorageJob sj;
  sj.scratch = [this, job](sqlite::Database&) { job->Scratch(rm_); };
  sj.run = [this, job](sqlite::Database&) {
    failpoint::CrashIf("agent.crash_before_prepare_durable");
    job->Durable(rm_);
    return Status::Ok();
  };
  sj.done = [job, done = std::move(done)](Status s) {
    const std::string txid = job->record.txid;
    if (job->result.lock_conflict) {
      job->result.ops = std::move(job->ops);
      job->result.record = std::move(job->record);
    }
    done(txid, std::move(job->result), s);
  };
  queue_.Submit(std::move(sj));
}

// Commits, aborts and remembered outcomes follow a decision that is already
// durable at the coordinator (or, in 3PC, certain): they ride on the next
// prepare's fsync instead of holding the storage thread for one of their own.
// What they release (keys, records) is released in the database at once, and
// a later prepare that reads it is synced together with it (one WAL).
void SqliteStore::Commit(const std::string& txid, std::function<void(Status)> done) {
  queue_.Submit({[this, txid](sqlite::Database&) { return rm_.Commit(txid, timers_.NowMs()); }, std::move(done),
                 nullptr, unsafe_commit_without_sync_ ? Durability::kNone : Durability::kSyncWithNext});
}

void SqliteStore::Abort(const std::string& txid, std::function<void(Status)> done) {
  queue_.Submit({[this, txid](sqlite::Database&) { return rm_.Abort(txid, timers_.NowMs()); }, std::move(done),
                 nullptr, Durability::kSyncWithNext});
}

void SqliteStore::Precommit(const std::string& txid, std::function<void(Status)> done) {
  queue_.Submit(
      {[this, txid](sqlite::Database&) { return rm_.UpdatePrepared(txid, "precommitted", ""); }, std::move(done)});
}

void SqliteStore::Adopt(const std::string& txid, const Adoption& adoption, std::function<void(Status)> done) {
  queue_.Submit(
      {[this, txid, adoption](sqlite::Database&) { return rm_.AdoptPrepared(txid, adoption); }, std::move(done)});
}

void SqliteStore::WriteTombstone(const std::string& txid, std::function<void(Result<Outcome>)> done) {
  auto held = std::make_shared<Result<Outcome>>(Outcome::kAborted);
  StorageJob job;
  job.run = [this, txid, held](sqlite::Database&) {
    if (Status s = rm_.RememberOutcome(txid, OutcomeName(Outcome::kAborted), timers_.NowMs()); !s.ok()) return s;
    Result<std::optional<StoredOutcome>> found = rm_.FindOutcome(txid);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return Status::Internal("the tombstone of " + txid + " was written but cannot be read");
    *held = (*found)->outcome;
    return Status::Ok();
  };
  job.done = [held, done = std::move(done)](Status s) {
    if (!s.ok()) {
      done(s);
      return;
    }
    done(std::move(*held));
  };
  // Nobody waits for it but its aborts: it rides on the next prepare's fsync.
  job.durability = Durability::kSyncWithNext;
  queue_.Submit(std::move(job));
}

void SqliteStore::FindOutcome(const std::string& txid,
                              std::function<void(Result<std::optional<StoredOutcome>>)> done) {
  auto found = std::make_shared<Result<std::optional<StoredOutcome>>>(std::optional<StoredOutcome>{});
  StorageJob job;
  job.run = [this, txid, found](sqlite::Database&) {
    *found = rm_.FindOutcome(txid);
    return found->ok() ? Status::Ok() : found->status();
  };
  job.done = [found, done = std::move(done)](Status s) {
    if (!s.ok()) {
      done(s);
      return;
    }
    done(std::move(*found));
  };
  job.durability = Durability::kNone;  // a read
  queue_.Submit(std::move(job));
}

void SqliteStore::ForgetOutcomesBefore(int64_t cutoff_ms) {
  queue_.Submit({[this, cutoff_ms](sqlite::Database&) { return rm_.ForgetOutcomesBefore(cutoff_ms); }, nullptr,
                 nullptr, Durability::kSyncWithNext});
}

}  // namespace commitd::participant
