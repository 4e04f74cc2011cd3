// commitctl log dump: a stopped coordinator's decision log as JSON lines; for
// a group member, its state machine and then the log entries after it.
#include <cstdio>

#include "common/json_text.h"
#include "coordinator/decision_store.h"
#include "tools/commitctl/commands.h"
#include "tools/commitctl/group_files.h"
#include "tools/commitctl/offline_files.h"

namespace commitd::commitctl {
namespace {

void PrintLine(const nlohmann::json& line) {
  std::printf("%s\n", DumpJson(line).c_str());
}

nlohmann::json CommandJson(const coordinator::Command& c) {
  using namespace coordinator::command;
  if (const auto* d = std::get_if<Decide>(&c)) {
    nlohmann::json j = DecisionToJson(d->record);
    j["op"] = "decide";
    return j;
  }
  if (const auto* f = std::get_if<Finish>(&c)) return {{"op", "finish"}, {"txid", f->txid}, {"finished_ms", f->finished_ms}};
  if (const auto* many = std::get_if<FinishMany>(&c)) {
    nlohmann::json marks = nlohmann::json::array();
    for (const auto& f : many->marks) marks.push_back({{"txid", f.txid}, {"finished_ms", f.finished_ms}});
    return {{"op", "finish_many"}, {"marks", marks}};
  }
  if (const auto* p = std::get_if<PutParticipant>(&c)) {
    return {{"op", "participant"}, {"name", p->entry.name}, {"url", p->entry.url}};
  }
  if (const auto* m = std::get_if<SetMember>(&c)) return {{"op", "member"}, {"id", m->id}, {"url", m->url}};
  const auto& forget = std::get<ForgetFinished>(c);
  return {{"op", "forget_finished"}, {"cutoff_ms", forget.cutoff_ms}, {"limit", forget.limit}};
}

// Decisions oldest first, then the registry.
Status DumpStore(sqlite::Database& db, bool committed_marker) {
  coordinator::DecisionStore store(db);
  Status s = store.ForEach([committed_marker](const coordinator::DecisionRecord& r) {
    nlohmann::json line = DecisionToJson(r);
    line["type"] = "decision";
    line["reply"] = r.reply;
    if (committed_marker) line["committed"] = true;
    PrintLine(line);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  auto registry = store.Registry();
  if (!registry.ok()) return registry.status();
  for (const auto& e : *registry) {
    PrintLine({{"type", "participant"}, {"name", e.name}, {"url", e.url}, {"updated_ms", e.updated_ms}});
  }
  return Status::Ok();
}

int DumpGroupMember(const std::string& data_dir) {
  auto m = OpenGroupMember(data_dir);
  if (!m.ok()) {
    PrintError(m.status().message());
    return kExitTrouble;
  }
  PrintLine({{"type", "member"},
             {"path", m->path},
             {"term", m->term},
             {"applied", m->applied},
             {"applied_term", m->applied_term},
             {"last_index", m->last_index},
             {"last_term", m->last_term},
             {"voters", m->membership.voters.size()}});
  if (Status s = DumpStore(*m->db, /*committed_marker=*/true); !s.ok()) {
    PrintError(m->path + ": " + s.message());
    return kExitTrouble;
  }
  for (const raft::Entry& e : m->tail) {
    nlohmann::json line = {{"type", "entry"}, {"index", e.index}, {"term", e.term}, {"committed", "unknown"}};
    if (e.type == raft::EntryType::kNormal) {
      auto command = coordinator::DecodeCommand(e.data);
      if (!command.ok()) {
        PrintError(m->path + ": log entry " + std::to_string(e.index) + ": " + command.status().message());
        return kExitTrouble;
      }
      line["command"] = CommandJson(*command);
    } else {
      line["command"] = {{"op", e.type == raft::EntryType::kConfig ? "config" : "noop"}};
      if (e.type == raft::EntryType::kConfig) line["command"]["membership"] = e.data;
    }
    PrintLine(line);
  }
  return kExitOk;
}

}  // namespace

int RunLogDump(Context& ctx) {
  const auto data_dir = ctx.flags->Get("data-dir");
  if (!data_dir || !ctx.args.empty()) {
    PrintError("log dump needs --data-dir DIR (see commitctl log dump --help)");
    return kExitUsage;
  }
  if (IsGroupMemberDir(*data_dir)) return DumpGroupMember(*data_dir);
  auto db = OpenDecisionLog(*data_dir, /*read_only=*/true);
  if (!db.ok()) {
    PrintError(db.status().message());
    return kExitTrouble;
  }
  if (Status s = DumpStore(**db, /*committed_marker=*/false); !s.ok()) {
    PrintError((*db)->path() + ": " + s.message());
    return kExitTrouble;
  }
  return kExitOk;
}

}  // namespace commitd::commitctl
