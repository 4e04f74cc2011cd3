// commitctl inspect: what a stopped coordinator's decision log and stopped
// agents' databases hold, read from the files.
#include <cstdio>

#include "coordinator/decision_store.h"
#include "tools/commitctl/commands.h"
#include "tools/commitctl/group_files.h"
#include "tools/commitctl/offline_files.h"

namespace commitd::commitctl {
namespace {

using coordinator::DecisionRecord;
using coordinator::DecisionStore;
using coordinator::Outcome;

std::string Participants(const DecisionRecord& r) {
  std::string out;
  for (const auto& p : r.participants) out += (out.empty() ? "" : ",") + p.name;
  return out;
}

void PrintDecisionRow(const DecisionRecord& r, int64_t now) {
  std::printf("  %-40s %-9s %-10s decided %s ago  %s%s\n", r.txid.c_str(),
              std::string(coordinator::OutcomeName(r.outcome)).c_str(), r.finished ? "finished" : "UNFINISHED",
              FormatAge(now - r.decided_ms).c_str(), Participants(r).c_str(), r.heuristic ? "  [heuristic]" : "");
}

// Fills *out; true when something is in doubt (an unfinished decision).
Result<bool> InspectStore(sqlite::Database& db, const std::string& path, std::size_t limit, bool print,
                          nlohmann::json* out);

// A group member: its Raft position, then its state machine like a decisions.db.
Result<bool> InspectGroupMember(const std::string& data_dir, std::size_t limit, bool print, nlohmann::json* out) {
  auto member = OpenGroupMember(data_dir);
  if (!member.ok()) return member.status();
  std::vector<GroupMemberFiles> one;
  one.push_back(std::move(member).value());
  const GroupMemberFiles& m = one.front();
  auto in_tail = DecisionsInTails(one);
  if (!in_tail.ok()) return in_tail.status();
  nlohmann::json tail = nlohmann::json::array();
  for (const auto& [txid, entries] : *in_tail) {
    for (const auto& e : entries) {
      tail.push_back({{"txid", txid}, {"index", e.index}, {"term", e.term}, {"outcome", coordinator::OutcomeName(e.outcome)}});
    }
  }
  if (print) {
    std::printf("group member %s: term %llu, applied %llu (term %llu), log ends at %llu (term %llu), %zu voter(s); "
                "%zu entr%s after the applied index (not known to be committed), %zu of them decisions\n",
                m.path.c_str(), static_cast<unsigned long long>(m.term), static_cast<unsigned long long>(m.applied),
                static_cast<unsigned long long>(m.applied_term), static_cast<unsigned long long>(m.last_index),
                static_cast<unsigned long long>(m.last_term), m.membership.voters.size(), m.tail.size(),
                m.tail.size() == 1 ? "y" : "ies", tail.size());
    for (const auto& t : tail) {
      std::printf("  log %-8s %-40s %-9s (term %s; committed only if a majority has it)\n",
                  t["index"].dump().c_str(), t["txid"].get<std::string>().c_str(),
                  t["outcome"].get<std::string>().c_str(), t["term"].dump().c_str());
    }
  }
  auto doubt = InspectStore(*m.db, m.path, limit, print, out);
  if (!doubt.ok()) return doubt;
  (*out)["group"] = {{"term", m.term},
                     {"applied", m.applied},
                     {"applied_term", m.applied_term},
                     {"last_index", m.last_index},
                     {"last_term", m.last_term},
                     {"voters", m.membership.voters.size()},
                     {"tail_entries", m.tail.size()},
                     {"tail_decisions", tail}};
  return *doubt || !tail.empty();
}

Result<bool> InspectDecisionLog(const std::string& data_dir, std::size_t limit, bool print, nlohmann::json* out) {
  if (IsGroupMemberDir(data_dir)) return InspectGroupMember(data_dir, limit, print, out);
  auto db = OpenDecisionLog(data_dir, /*read_only=*/true);
  if (!db.ok()) return db.status();
  return InspectStore(**db, (*db)->path(), limit, print, out);
}

Result<bool> InspectStore(sqlite::Database& db, const std::string& path, std::size_t limit, bool print,
                          nlohmann::json* out) {
  DecisionStore store(db);
  auto total = store.Count(std::nullopt, false);
  auto committed = store.Count(Outcome::kCommitted, false);
  auto heuristic = store.Count(std::nullopt, true);
  auto recovered = store.Recover();
  coordinator::ListFilter filter;
  filter.limit = limit;
  auto recent = store.List(filter);
  for (const Status* s : {&total.status(), &committed.status(), &heuristic.status(), &recovered.status(),
                          &recent.status()}) {
    if (!s->ok()) return Status(s->code(), path + ": " + s->message());
  }
  const int64_t now = WallNowMs();
  nlohmann::json unfinished = nlohmann::json::array();
  for (const auto& r : recovered->unfinished) unfinished.push_back(DecisionToJson(r));
  nlohmann::json newest = nlohmann::json::array();
  for (const auto& r : *recent) newest.push_back(DecisionToJson(r));
  nlohmann::json registry = nlohmann::json::array();
  for (const auto& e : recovered->registry) {
    registry.push_back({{"name", e.name}, {"url", e.url}, {"updated_ms", e.updated_ms}});
  }
  *out = {{"path", path},
          {"decisions", *total},
          {"committed", *committed},
          {"aborted", *total - *committed},
          {"heuristic", *heuristic},
          {"unfinished", unfinished},
          {"recent", newest},
          {"registry", registry}};
  if (print) {
    std::printf("decision log %s: %lld decisions (%lld committed, %lld aborted), %zu unfinished, %lld heuristic\n",
                path.c_str(), static_cast<long long>(*total), static_cast<long long>(*committed),
                static_cast<long long>(*total - *committed), recovered->unfinished.size(),
                static_cast<long long>(*heuristic));
    if (!recovered->unfinished.empty()) {
      std::printf("unfinished (decided, not acknowledged by every participant; commitd redelivers them on start):\n");
      for (const auto& r : recovered->unfinished) PrintDecisionRow(r, now);
    }
    if (!recent->empty()) {
      std::printf("newest %zu decision(s):\n", recent->size());
      for (const auto& r : *recent) PrintDecisionRow(r, now);
    }
    std::printf("registry (%zu participant(s)):\n", recovered->registry.size());
    for (const auto& e : recovered->registry) std::printf("  %-12s %s\n", e.name.c_str(), e.url.c_str());
  }
  return !recovered->unfinished.empty();
}

// Fills *out; true when something is in doubt (a prepared record).
Result<bool> InspectParticipantDb(const std::string& path, bool print, nlohmann::json* out) {
  auto file = OpenParticipantDb(path);
  if (!file.ok()) return file.status();
  auto records = file->rm->LoadPrepared();
  if (!records.ok()) return Status(records.status().code(), path + ": " + records.status().message());
  auto outcomes = file->rm->LoadOutcomes();
  if (!outcomes.ok()) return Status(outcomes.status().code(), path + ": " + outcomes.status().message());
  std::size_t committed = 0;
  for (const auto& [txid, outcome] : *outcomes) committed += outcome == "committed" ? 1 : 0;
  const int64_t now = WallNowMs();
  nlohmann::json prepared = nlohmann::json::array();
  for (const auto& r : *records) prepared.push_back(PreparedToJson(r, now));
  *out = {{"path", path},
          {"prepared", prepared},
          {"remembered_outcomes", {{"committed", committed}, {"aborted", outcomes->size() - committed}}}};
  if (print) {
    std::printf("participant database %s: %zu prepared, %zu remembered outcome(s) (%zu committed, %zu aborted)\n",
                path.c_str(), records->size(), outcomes->size(), committed, outcomes->size() - committed);
    if (!records->empty()) {
      std::printf("  %-40s %-5s %-9s %-8s %-22s %-28s %s\n", "TXID", "PROTO", "STATE", "AGE", "DEADLINE",
                  "COORDINATOR", "LAST ERROR");
    }
    for (const auto& r : *records) {
      std::string deadline = r.deadline_ms > now ? "in " + FormatAge(r.deadline_ms - now)
                                                 : "passed " + FormatAge(now - r.deadline_ms) + " ago";
      std::printf("  %-40s %-5s %-9s %-8s %-22s %-28s %s\n", r.txid.c_str(), r.protocol.c_str(), r.state.c_str(),
                  FormatAge(now - r.created_ms).c_str(), deadline.c_str(), r.coordinator.c_str(),
                  r.last_error.c_str());
    }
  }
  return !records->empty();
}

}  // namespace

int RunInspect(Context& ctx) {
  const auto data_dir = ctx.flags->Get("data-dir");
  const auto dbs = ctx.flags->GetAll("participant-db");
  if ((!data_dir && dbs.empty()) || !ctx.args.empty()) {
    PrintError("inspect needs --data-dir DIR and/or --participant-db FILE (see commitctl inspect --help)");
    return kExitUsage;
  }
  std::size_t limit = 20;
  if (auto text = ctx.flags->Get("limit")) {
    try {
      limit = static_cast<std::size_t>(std::stoul(*text));
    } catch (const std::exception&) {
      PrintError("--limit: expected a number >= 0, got '" + *text + "'");
      return kExitUsage;
    }
  }
  nlohmann::json report = nlohmann::json::object();
  bool in_doubt = false;
  if (data_dir) {
    nlohmann::json log;
    auto doubt = InspectDecisionLog(*data_dir, limit, !ctx.json, &log);
    if (!doubt.ok()) {
      PrintError(doubt.status().message());
      return kExitTrouble;
    }
    in_doubt |= *doubt;
    report["decision_log"] = log;
  }
  report["participant_dbs"] = nlohmann::json::array();
  for (const std::string& path : dbs) {
    nlohmann::json one;
    auto doubt = InspectParticipantDb(path, !ctx.json, &one);
    if (!doubt.ok()) {
      PrintError(doubt.status().message());
      return kExitTrouble;
    }
    in_doubt |= *doubt;
    report["participant_dbs"].push_back(one);
  }
  report["in_doubt"] = in_doubt;
  if (ctx.json) {
    PrintJson(report);
  } else if (in_doubt) {
    std::printf("next: `commitctl recover --data-dir DIR --participant-db FILE...` settles prepared records from the "
                "decision log while the services are stopped, or start the services and they settle them\n");
  }
  return in_doubt ? kExitTrouble : kExitOk;
}

}  // namespace commitd::commitctl
