// commitd-bench snapshot: what a coordinator group's state machine snapshot
// costs the leader that serializes it and the member that restores it.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/sqlite_db.h"
#include "coordinator/decision_state_machine.h"
#include "coordinator/decision_store.h"
#include "coordinator/state_snapshot.h"
#include "raft/storage.h"
#include "tools/bench/flag_values.h"
#include "tools/bench/modes.h"

namespace commitd::bench {
namespace {

// VmHWM of this process in KiB, then reset to the current RSS (clear_refs 5),
// so the next reading is the peak of what ran in between.
int64_t PeakRssKibAndReset() {
  int64_t kib = -1;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) kib = std::stoll(line.substr(6));
  }
  std::ofstream("/proc/self/clear_refs") << "5";
  return kib;
}

Result<std::unique_ptr<sqlite::Database>> OpenStore(const std::string& path) {
  auto db = sqlite::Database::Open(path, {.wal = true, .synchronous_full = false});
  if (!db.ok()) return db.status();
  // The tables of a group member's raft.db: the state machine's and the log's.
  if (Status s = coordinator::DecisionStateMachine::CreateSchema(**db); !s.ok()) return s;
  raft::Membership bootstrap;
  bootstrap.voters.insert(1);
  if (Status s = raft::Storage(**db).Init(bootstrap); !s.ok()) return s;
  return db;
}

// A finished 2PC transfer as the leader records it, with an Idempotency-Key.
coordinator::DecisionRecord Transfer(int64_t i) {
  coordinator::DecisionRecord r;
  char txid[64];
  std::snprintf(txid, sizeof txid, "c1-1-1-%016llx", static_cast<unsigned long long>(i));
  r.txid = txid;
  r.outcome = coordinator::Outcome::kCommitted;
  r.participants = {{"bank-a", "http://127.0.0.1:7101"}, {"bank-b", "http://127.0.0.1:7102"}};
  r.idempotency_key = "client-key-" + std::to_string(i);
  r.reply = {{"txid", r.txid},
             {"outcome", "committed"},
             {"branches",
              {{{"participant", "bank-a"}, {"vote", "yes"}, {"results", nlohmann::json::array()}},
               {{"participant", "bank-b"}, {"vote", "yes"}, {"results", nlohmann::json::array()}}}}};
  r.created_ms = 1'700'000'000'000 + i;
  r.decided_ms = r.created_ms + 2;
  r.finished = true;
  r.finished_ms = r.created_ms + 3;
  return r;
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int RunStateSnapshot(const Flags& flags) {
  auto decisions = IntFlag(flags, "decisions", 100'000, 1);
  auto dir = flags.Get("dir");
  const std::string format = flags.Get("format").value_or("lines");
  if (format != "lines" && format != "document") {
    std::fprintf(stderr, "snapshot: --format: expected lines or document, got '%s'\n", format.c_str());
    return 2;
  }
  if (!decisions.ok() || !dir) {
    std::fprintf(stderr, "snapshot: %s\n",
                 !decisions.ok() ? decisions.status().message().c_str() : "--dir DIR is required");
    return 2;
  }
  auto leader = OpenStore(*dir + "/leader.db");
  auto member = OpenStore(*dir + "/member.db");
  for (const auto* opened : {&leader, &member}) {
    if (!opened->ok()) {
      std::fprintf(stderr, "snapshot: %s\n", opened->status().ToString().c_str());
      return 1;
    }
  }
  Status s = (*leader)->Begin();
  coordinator::DecisionStore store(**leader);
  for (int64_t i = 0; s.ok() && i < *decisions; ++i) s = store.InsertDecision(Transfer(i));
  if (s.ok()) s = (*leader)->Commit();
  if (!s.ok()) {
    std::fprintf(stderr, "snapshot: filling the store: %s\n", s.ToString().c_str());
    return 1;
  }
  const int64_t base_kib = PeakRssKibAndReset();

  auto t0 = std::chrono::steady_clock::now();
  Result<std::string> bytes = format == "lines" ? coordinator::SnapshotStateMachine(**leader)
                                                : coordinator::SnapshotStateMachineAsOneDocument(**leader);
  const double serialize_s = SecondsSince(t0);
  const int64_t serialize_peak_kib = PeakRssKibAndReset();
  if (!bytes.ok()) {
    std::fprintf(stderr, "snapshot: serialize: %s\n", bytes.status().ToString().c_str());
    return 1;
  }
  t0 = std::chrono::steady_clock::now();
  s = (*member)->Begin();
  if (s.ok()) s = coordinator::RestoreStateMachine(**member, *bytes);
  if (s.ok()) s = (*member)->Commit();
  const double restore_s = SecondsSince(t0);
  const int64_t restore_peak_kib = PeakRssKibAndReset();
  if (!s.ok()) {
    std::fprintf(stderr, "snapshot: restore: %s\n", s.ToString().c_str());
    return 1;
  }
  const double mib = 1024.0;
  const nlohmann::json out = {{"format", format},
                              {"decisions", *decisions},
                              {"bytes", bytes->size()},
                              {"serialize_s", serialize_s},
                              {"restore_s", restore_s},
                              {"base_rss_mib", base_kib / mib},
                              {"serialize_peak_rss_mib", serialize_peak_kib / mib},
                              {"restore_peak_rss_mib", restore_peak_kib / mib}};
  if (flags.Has("json")) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("%s, %lld decisions: %.1f MiB of snapshot; serialize %.2f s, peak RSS %.0f MiB; restore %.2f s, "
                "peak RSS %.0f MiB (%.0f MiB before)\n",
                format.c_str(), static_cast<long long>(*decisions), static_cast<double>(bytes->size()) / (1 << 20), serialize_s,
                serialize_peak_kib / mib, restore_s, restore_peak_kib / mib, base_kib / mib);
  }
  return 0;
}

}  // namespace commitd::bench
