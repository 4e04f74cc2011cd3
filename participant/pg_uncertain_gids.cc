#include "participant/pg_uncertain_gids.h"

#include <algorithm>

namespace commitd::participant::pg {
namespace {

// A process with the pid whose start is the one recorded, or unknown here,
// or hidden from this role (another role's session shows a NULL start).
constexpr char kMayStillRunSql[] =
    "SELECT 1 FROM pg_stat_activity WHERE pid = $1 "
    "AND ($2::timestamptz IS NULL OR backend_start IS NULL OR backend_start = $2::timestamptz)";

}  // namespace

void UncertainGids::Add(std::string gid, std::optional<Backend> running) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_back({next_id_++, std::move(gid), std::move(running)});
}

bool UncertainGids::Contains(const std::string& gid) const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::any_of(entries_.begin(), entries_.end(), [&gid](const Entry& e) { return e.gid == gid; });
}

std::vector<std::string> UncertainGids::Gids() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> gids;
  for (const Entry& e : entries_) gids.push_back(e.gid);
  return gids;
}

Awaitable<void> UncertainGids::RollBack(PgLink& link) {
  std::vector<Entry> uncertain;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Entry& e : entries_) {
      if (e.in_retry) continue;
      e.in_retry = true;
      uncertain.push_back(e);
    }
  }
  std::vector<uint64_t> settled;
  bool reachable = true;
  for (Entry& u : uncertain) {
    // Once PostgreSQL cannot be reached, the rest wait for the next retry.
    Result<PgConnection*> got = Status::Unavailable("not tried");
    if (reachable) got = co_await link.Get();
    if (!got.ok()) {
      reachable = false;
      continue;
    }
    // "Does not exist" is final only once nothing can still prepare the gid:
    // the process that ran the statement may not have finished it yet. So
    // that process is looked for before the rollback; looked for after, it
    // could finish the PREPARE between the two and be gone, leaving the gid
    // prepared and forgotten.
    bool may_still_prepare = false;
    if (u.running && u.running->cluster) {
      // A session of another cluster (or one whose cluster is unknown)
      // cannot look for the process. The store's sessions read it at setup.
      may_still_prepare = (*got)->backend().cluster != u.running->cluster;
    }
    if (u.running && !may_still_prepare) {
      std::optional<std::string> start;
      if (u.running->start) start = u.running->start->utc;
      const std::vector<std::optional<std::string>> params{std::to_string(u.running->pid), start};
      PgResult running = co_await (*got)->ExecAsync(kMayStillRunSql, params);
      if (!running.ok()) {
        link.DropIfBroken(running);
        continue;
      }
      may_still_prepare = running.rows() > 0;
    }
    PgResult r = co_await (*got)->ExecAsync("ROLLBACK PREPARED " + (*got)->Literal(u.gid));
    if (r.ok()) {
      settled.push_back(u.id);
    } else if (r.sqlstate() != sqlstate::kUndefinedObject) {
      link.DropIfBroken(r);
    } else if (!may_still_prepare) {
      settled.push_back(u.id);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(entries_, [&settled](const Entry& e) {
    return std::find(settled.begin(), settled.end(), e.id) != settled.end();
  });
  for (Entry& e : entries_) {
    if (std::any_of(uncertain.begin(), uncertain.end(), [&e](const Entry& u) { return u.id == e.id; })) {
      e.in_retry = false;
    }
  }
}

}  // namespace commitd::participant::pg
