// commitctl log dump: a stopped coordinator's decision log as JSON lines.
#include <cstdio>

#include "coordinator/decision_store.h"
#include "tools/commitctl/commands.h"
#include "tools/commitctl/offline_files.h"

namespace commitd::commitctl {

int RunLogDump(Context& ctx) {
  const auto data_dir = ctx.flags->Get("data-dir");
  if (!data_dir || !ctx.args.empty()) {
    PrintError("log dump needs --data-dir DIR (see commitctl log dump --help)");
    return kExitUsage;
  }
  auto db = OpenDecisionLog(*data_dir, /*read_only=*/true);
  if (!db.ok()) {
    PrintError(db.status().message());
    return kExitTrouble;
  }
  coordinator::DecisionStore store(**db);
  Status s = store.ForEach([](const coordinator::DecisionRecord& r) {
    nlohmann::json line = DecisionToJson(r);
    line["type"] = "decision";
    line["reply"] = r.reply;
    std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return Status::Ok();
  });
  auto registry = store.Registry();
  if (s.ok() && !registry.ok()) s = registry.status();
  if (!s.ok()) {
    PrintError((*db)->path() + ": " + s.message());
    return kExitTrouble;
  }
  for (const auto& e : *registry) {
    nlohmann::json line = {{"type", "participant"}, {"name", e.name}, {"url", e.url}, {"updated_ms", e.updated_ms}};
    std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return kExitOk;
}

}  // namespace commitd::commitctl
