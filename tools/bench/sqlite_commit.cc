#include <chrono>
#include <cstdio>
#include <string>

#include "common/sqlite_db.h"
#include "tools/bench/flag_values.h"
#include "tools/bench/latency_recorder.h"
#include "tools/bench/modes.h"

namespace commitd::bench {

int RunSqliteCommit(const Flags& flags) {
  using Clock = std::chrono::steady_clock;
  auto path = flags.Get("db");
  auto count = IntFlag(flags, "count", 0, 1);
  auto duration_s = DoubleFlag(flags, "duration-s", 5, 0.1);
  const bool json = flags.Has("json");
  if (!path) {
    std::fprintf(stderr, "sqlite-commit: --db FILE is required\n");
    return 2;
  }
  for (const Status* s : {&count.status(), &duration_s.status()}) {
    if (!s->ok()) {
      std::fprintf(stderr, "sqlite-commit: %s\n", s->message().c_str());
      return 2;
    }
  }
  if (flags.Has("count") && flags.Has("duration-s")) {
    std::fprintf(stderr, "sqlite-commit: give --count or --duration-s, not both\n");
    return 2;
  }

  auto db = sqlite::Database::Open(*path);  // WAL, synchronous=FULL
  if (!db.ok()) {
    std::fprintf(stderr, "sqlite-commit: cannot open %s: %s\n", path->c_str(), db.status().ToString().c_str());
    return 1;
  }
  Status s = (*db)->Exec("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v INTEGER)");

  LatencyRecorder latency;
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop_at =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(*duration_s));
  int64_t done = 0;
  while (s.ok()) {
    if (*count > 0 ? done >= *count : Clock::now() >= stop_at) break;
    const Clock::time_point t0 = Clock::now();
    sqlite::Transaction tx(**db);
    s = tx.status();
    if (!s.ok()) break;
    sqlite::Statement* insert = (*db)->Prepare("INSERT OR REPLACE INTO t(id, v) VALUES(?1, ?2)", &s);
    if (insert == nullptr) break;
    s = insert->Bind(1, done % 1024).Bind(2, done).Run();
    if (s.ok()) s = tx.Commit();
    latency.Record(Clock::now() - t0);
    ++done;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "sqlite-commit: %s: %s\n", path->c_str(), s.ToString().c_str());
    return 1;
  }

  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double per_s = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  const double p50_us = static_cast<double>(latency.PercentileNs(50)) / 1e3;
  const double p99_us = static_cast<double>(latency.PercentileNs(99)) / 1e3;
  if (json) {
    nlohmann::json out = {{"mode", "sqlite-commit"}, {"commits", done},    {"seconds", elapsed},
                          {"commits_per_s", per_s},   {"p50_us", p50_us}, {"p99_us", p99_us}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("sqlite-commit: %lld one-row commits in %.2f s (WAL, synchronous=FULL)\n",
                static_cast<long long>(done), elapsed);
    std::printf("  commits/s  %10.0f\n  p50        %10.1f us\n  p99        %10.1f us\n", per_s, p50_us, p99_us);
  }
  return 0;
}

}  // namespace commitd::bench
