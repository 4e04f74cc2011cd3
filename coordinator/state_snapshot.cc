#include "coordinator/state_snapshot.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "common/json_text.h"
#include "coordinator/decision_store.h"
#include "coordinator/raft_codec.h"
#include "coordinator/group_members.h"
#include "common/json_parse.h"

namespace commitd::coordinator {

namespace {

constexpr int kLineVersion = 2;

// Everything but the decisions: the header line of version 2, the whole of version 1 with them added.
Result<nlohmann::json> StateWithoutDecisions(sqlite::Database& db, int version) {
  DecisionStore store(db);
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
  nlohmann::json out = {{"version", version},
                        {"participants", std::move(participants)},
                        {"members", std::move(members)},
                        {"forgotten",
                         {{"txids", std::move(issuers)},
                          {"keys", std::move(keys)},
                          {"before_ms", forgotten->before_ms}}}};
  // Absent from snapshots of a group without identity (and older ones).
  if (!log_id->empty()) out["log_id"] = *log_id;
  if (!abort_secret->empty()) out["abort_secret"] = *abort_secret;
  return out;
}

}  // namespace

Result<std::string> SnapshotStateMachine(sqlite::Database& db) {
  auto header = StateWithoutDecisions(db, kLineVersion);
  if (!header.ok()) return header.status();
  std::string out = DumpJson(*header);
  out += '\n';
  int64_t count = 0;
  Status s = DecisionStore(db).ForEach([&out, &count](const DecisionRecord& r) {
    AppendJson(&out, RecordToJson(r));  // JSON text holds no raw newline
    out += '\n';
    ++count;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  AppendJson(&out, nlohmann::json{{"end", {{"decisions", count}}}});
  out += '\n';
  return out;
}

Result<std::string> SnapshotStateMachineAsOneDocument(sqlite::Database& db) {
  auto out = StateWithoutDecisions(db, 1);
  if (!out.ok()) return out.status();
  nlohmann::json decisions = nlohmann::json::array();
  Status s = DecisionStore(db).ForEach([&decisions](const DecisionRecord& r) {
    decisions.push_back(RecordToJson(r));
    return Status::Ok();
  });
  if (!s.ok()) return s;
  (*out)["decisions"] = std::move(decisions);
  return DumpJson(*out);
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

// The parts both versions share, from the header (version 2) or the whole
// document (version 1): the identity first (a snapshot of another group's log
// is never taken in), then the tables emptied and the members' URLs.
Status RestoreHeader(sqlite::Database& db, const nlohmann::json& j) {
  if (!j.contains("participants") || !j["participants"].is_array()) {
    return Status::Corruption("state machine snapshot: no participants");
  }
  DecisionStore store(db);
  if (j.contains("log_id") || j.contains("abort_secret")) {
    if (!j.contains("log_id") || !j["log_id"].is_string() || !j.contains("abort_secret") ||
        !j["abort_secret"].is_string()) {
      return Status::Corruption("state machine snapshot: bad log identity");
    }
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
  return Status::Ok();
}

Status RestoreDecision(DecisionStore& store, const nlohmann::json& d) {
  auto r = RecordFromJson(d);
  if (!r.ok()) return Status::Corruption("state machine snapshot: " + r.status().message());
  return store.InsertDecision(*r);
}

Status RestoreRegistryAndForgotten(sqlite::Database& db, const nlohmann::json& j) {
  DecisionStore store(db);
  for (const auto& p : j["participants"]) {
    auto e = RegistryEntryFromJson(p);
    if (!e.ok()) return Status::Corruption("state machine snapshot: " + e.status().message());
    if (Status s = store.PutParticipant(*e); !s.ok()) return s;
  }
  return store.RestoreForgotten(ForgottenFromJson(j));
}

Status RestoreOneDocument(sqlite::Database& db, const nlohmann::json& j) {
  if (!j.contains("decisions") || !j["decisions"].is_array()) {
    return Status::Corruption("state machine snapshot: not a version-1 snapshot");
  }
  if (Status s = RestoreHeader(db, j); !s.ok()) return s;
  DecisionStore store(db);
  for (const auto& d : j["decisions"]) {
    if (Status s = RestoreDecision(store, d); !s.ok()) return s;
  }
  return RestoreRegistryAndForgotten(db, j);
}

// The next line of *rest without its newline; nullopt when none is left.
std::optional<std::string_view> NextLine(std::string_view* rest) {
  if (rest->empty()) return std::nullopt;
  const std::size_t end = rest->find('\n');
  std::string_view line = rest->substr(0, end);
  rest->remove_prefix(end == std::string_view::npos ? rest->size() : end + 1);
  return line;
}

// Version 2, a line at a time: only one record's JSON is parsed at once.
Status RestoreLines(sqlite::Database& db, const nlohmann::json& header, std::string_view rest) {
  if (Status s = RestoreHeader(db, header); !s.ok()) return s;
  DecisionStore store(db);
  int64_t count = 0;
  while (std::optional<std::string_view> line = NextLine(&rest)) {
    const nlohmann::json j = ParseJson(*line);
    if (!j.is_object()) return Status::Corruption("state machine snapshot: a line is not a JSON object");
    auto end = j.find("end");
    if (end == j.end()) {
      if (Status s = RestoreDecision(store, j); !s.ok()) return s;
      ++count;
      continue;
    }
    if (!end->is_object() || end->value("decisions", int64_t{-1}) != count || !rest.empty()) {
      return Status::Corruption("state machine snapshot: its end does not match the " + std::to_string(count) +
                                " decisions read");
    }
    return RestoreRegistryAndForgotten(db, header);
  }
  return Status::Corruption("state machine snapshot: truncated after " + std::to_string(count) + " decisions");
}

Status Restore(sqlite::Database& db, std::string_view snapshot) {
  std::string_view rest = snapshot;
  const nlohmann::json first = ParseJson(NextLine(&rest).value_or(""));
  if (!first.is_object() || !first.contains("version")) {
    return Status::Corruption("state machine snapshot: no version");
  }
  if (first["version"] == 1 && rest.empty()) return RestoreOneDocument(db, first);
  if (first["version"] == kLineVersion) return RestoreLines(db, first, rest);
  return Status::Corruption("state machine snapshot: not a version-1 or version-2 snapshot");
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
