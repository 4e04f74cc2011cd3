#include "coordinator/state_snapshot.h"

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "coordinator/decision_store.h"
#include "coordinator/raft_codec.h"
#include "coordinator/group_members.h"
#include "common/json_parse.h"

namespace commitd::coordinator {

Result<std::string> SnapshotStateMachine(sqlite::Database& db) {
  DecisionStore store(db);
  nlohmann::json decisions = nlohmann::json::array();
  Status s = store.ForEach([&decisions](const DecisionRecord& r) {
    decisions.push_back(RecordToJson(r));
    return Status::Ok();
  });
  if (!s.ok()) return s;
  auto registry = store.Registry();
  if (!registry.ok()) return registry.status();
  nlohmann::json participants = nlohmann::json::array();
  for (const auto& e : *registry) {
    if (e.url.empty()) continue;  // an empty URL means removed (PutParticipant)
    participants.push_back({{"name", e.name}, {"url", e.url}, {"updated_ms", e.updated_ms}});
  }
  nlohmann::json members = nlohmann::json::object();
  if (GroupMembersTable(db).Exists()) {
    auto urls = GroupMembersTable(db).Urls();
    if (!urls.ok()) return urls.status();
    for (const auto& [id, url] : *urls) members[id] = url;
  }
  auto log_id = store.LogId();
  if (!log_id.ok()) return log_id.status();
  auto abort_secret = store.AbortSecret();
  if (!abort_secret.ok()) return abort_secret.status();
  auto forgotten = store.Forgotten();
  if (!forgotten.ok()) return forgotten.status();
  nlohmann::json issuers = nlohmann::json::array();
  for (const auto& i : forgotten->txids) issuers.push_back({i.coordinator, i.incarnation, i.max_sequence});
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : forgotten->keys) keys.push_back({k.hash, k.forgotten_ms});
  nlohmann::json out = {{"version", 1},
                        {"decisions", std::move(decisions)},
                        {"participants", std::move(participants)},
                        {"members", std::move(members)},
                        {"forgotten",
                         {{"txids", std::move(issuers)},
                          {"keys", std::move(keys)},
                          {"before_ms", forgotten->before_ms}}}};
  // Absent from snapshots of a group without identity (and older ones).
  if (!log_id->empty()) out["log_id"] = *log_id;
  if (!abort_secret->empty()) out["abort_secret"] = *abort_secret;
  return DumpJson(out);
}

namespace {

// A snapshot without "forgotten" (taken before retention existed) forgot nothing.
ForgottenState ForgottenFromJson(const nlohmann::json& snapshot) {
  ForgottenState out;
  auto f = snapshot.find("forgotten");
  if (f == snapshot.end() || !f->is_object()) return out;
  for (const auto& i : f->value("txids", nlohmann::json::array())) {
    out.txids.push_back({i.at(0).get<std::string>(), i.at(1).get<int64_t>(), i.at(2).get<int64_t>()});
  }
  out.before_ms = f->value("before_ms", int64_t{0});
  // [hash, forgotten_ms]; a bare hash (a snapshot from before keys had a
  // time) counts as forgotten at before_ms, as the schema upgrade does.
  for (const auto& k : f->value("keys", nlohmann::json::array())) {
    if (k.is_array()) {
      out.keys.push_back({k.at(0).get<int64_t>(), k.at(1).get<int64_t>()});
    } else {
      out.keys.push_back({k.get<int64_t>(), out.before_ms});
    }
  }
  return out;
}

Status Restore(sqlite::Database& db, std::string_view snapshot) {
  auto j = ParseJson(snapshot);
  if (!j.is_object() || !j.contains("version") || j["version"] != 1 || !j.contains("decisions") ||
      !j["decisions"].is_array() || !j.contains("participants") || !j["participants"].is_array()) {
    return Status::Corruption("state machine snapshot: not a version-1 snapshot");
  }
  DecisionStore store(db);
  if (j.contains("log_id") || j.contains("abort_secret")) {
    if (!j.contains("log_id") || !j["log_id"].is_string() || !j.contains("abort_secret") ||
        !j["abort_secret"].is_string()) {
      return Status::Corruption("state machine snapshot: bad log identity");
    }
    // The snapshot of another group's log is never taken in.
    Status s = store.SetIdentity(j["log_id"].get<std::string>(), j["abort_secret"].get<std::string>());
    if (s.code() == StatusCode::kConflict || s.code() == StatusCode::kInvalidArgument) {
      return Status::Corruption("state machine snapshot: " + s.message());
    }
    if (!s.ok()) return s;
  }
  if (Status s = db.Exec("DELETE FROM decisions; DELETE FROM participants"); !s.ok()) return s;
  if (GroupMembersTable(db).Exists() && j.contains("members") && j["members"].is_object()) {
    if (Status s = db.Exec("DELETE FROM group_members"); !s.ok()) return s;
    for (const auto& [id, url] : j["members"].items()) {
      if (!url.is_string()) return Status::Corruption("state machine snapshot: bad member url");
      if (Status s = GroupMembersTable(db).SetUrl(id, url.get<std::string>()); !s.ok()) return s;
    }
  }
  for (const auto& d : j["decisions"]) {
    auto r = RecordFromJson(d);
    if (!r.ok()) return Status::Corruption("state machine snapshot: " + r.status().message());
    if (Status s = store.InsertDecision(*r); !s.ok()) return s;
  }
  for (const auto& p : j["participants"]) {
    auto e = RegistryEntryFromJson(p);
    if (!e.ok()) return Status::Corruption("state machine snapshot: " + e.status().message());
    if (Status s = store.PutParticipant(*e); !s.ok()) return s;
  }
  return store.RestoreForgotten(ForgottenFromJson(j));
}

}  // namespace

// The bytes come from another member: anything malformed is Corruption, never
// an exception.
Status RestoreStateMachine(sqlite::Database& db, std::string_view snapshot) {
  try {
    return Restore(db, snapshot);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("state machine snapshot: ") + e.what());
  }
}

}  // namespace commitd::coordinator
