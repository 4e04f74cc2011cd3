// Snapshots (Raft §7). The state machine's tables, stored with the index
// they have applied, are a durable snapshot at every moment, so compacting
// the log only records its new base and deletes the entries up to it: every
// snapshot_entries applied entries, keeping the last snapshot_entries / 2 so
// that a follower a little behind still catches up from the log. A leader
// also keeps what any member behind still needs, up to log_keep_entries
// behind its applied index. The bytes a
// follower behind the base needs are serialized only when the leader's core
// asks for them (snapshot_wanted): a copy of the whole state costs CPU in
// proportion to it, which taking it at every compaction spent on every member
// for nothing.
#include <algorithm>

#include "common/log.h"
#include "raft/driver.h"
#include "raft/storage.h"

namespace commitd::raft {

void Driver::MaybeSnapshot() {
  if (snapshotting_) return;
  if (node_->snapshot_wanted()) {
    SerializeSnapshot();
    return;
  }
  const Index keep = options_.snapshot_entries / 2;
  if (applied_ < snapshot_index_ + options_.snapshot_entries + keep) return;
  Index upto = applied_ - keep;
  if (std::optional<Index> needed = node_->IndexNeededByMembers()) {
    // A member that paused for a few seconds then catches up from the log,
    // not from a copy of the whole state (which costs in proportion to it).
    const Index floor = applied_ > options_.log_keep_entries ? applied_ - options_.log_keep_entries : 0;
    upto = std::min(upto, std::max(*needed - 1, floor));
    // Held back: compacted again once half a step more is free.
    if (upto < snapshot_index_ + keep) return;
  }
  // Once a member behind catches up, what was kept goes a step at a time: one
  // storage job deleting a few hundred thousand entries would hold up the
  // Readies (and the heartbeats) behind it.
  CompactLog(std::min(upto, snapshot_index_ + options_.snapshot_entries + keep));
}

void Driver::CompactLog(Index index) {
  const Log& log = node_->log();
  auto term = log.TermAt(index);
  if (!term) return;  // already compacted further (a snapshot installed from the leader)
  snapshotting_ = true;
  SnapshotMeta meta{index, *term, log.MembershipAt(index)};
  StorageJob job;
  job.run = [meta](sqlite::Database& db) { return Storage(db).SaveSnapshot(meta); };
  job.done = [this, alive = alive_, meta](Status s) {
    if (!*alive) return;
    snapshotting_ = false;
    if (!s.ok()) {
      log::Error("snapshot_failed", {{"index", meta.index}, {"error", s.ToString()}});
      return;
    }
    snapshot_index_ = std::max(snapshot_index_, meta.index);
    if (stopped_) return;
    node_->CompactLog(meta.index, nullptr);
    ++counters_.snapshots_taken;
    log::Info("snapshot_taken", {{"index", meta.index}, {"log_compacted", true}});
    Pump();
  };
  storage_.Submit(std::move(job));
}

// The copy is read in one read transaction: the tables exactly at the applied
// index stored with them.
void Driver::SerializeSnapshot() {
  snapshotting_ = true;
  auto read = [this, alive = alive_, &machine = machine_, &timers = timers_](Result<sqlite::Database*> opened) {
    Result<std::pair<Index, std::string>> taken = [&]() -> Result<std::pair<Index, std::string>> {
      if (!opened.ok()) return opened.status();
      sqlite::Database& db = **opened;
      if (Status s = db.Exec("BEGIN"); !s.ok()) return s;
      auto applied = Storage(db).Applied();
      auto data = applied.ok() ? machine.Snapshot(db) : Result<std::string>(applied.status());
      db.Exec("COMMIT");
      if (!data.ok()) return data.status();
      return std::make_pair(*applied, std::move(data).value());
    }();
    timers.Post([this, alive, taken = std::move(taken)]() mutable {
      if (*alive) ProvideSnapshot(std::move(taken));
    });
  };
  if (options_.read_snapshot) {
    options_.read_snapshot(std::move(read));
  } else {
    storage_.Read([read = std::move(read)](sqlite::Database& db) mutable { read(&db); });
  }
}

void Driver::ProvideSnapshot(Result<std::pair<Index, std::string>> taken) {
  snapshotting_ = false;
  if (stopped_) return;
  if (!taken.ok()) {
    log::Warn("snapshot_failed", {{"error", taken.status().ToString()}});
    return;  // the core asks again at its next heartbeat
  }
  auto data = std::make_shared<const std::string>(std::move(taken->second));
  node_->ProvideSnapshot(taken->first, data);
  log::Info("snapshot_serialized", {{"index", taken->first}, {"bytes", data->size()}});
  Pump();
}

}  // namespace commitd::raft
