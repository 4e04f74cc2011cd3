#include "common/wire.h"

#include <charconv>
#include <optional>
#include <set>
#include <string_view>

#include "common/hex.h"
#include "common/json_parse.h"
#include "common/json_scanner.h"
#include "common/json_syntax.h"
#include "common/json_text.h"

namespace commitd::wire {

namespace {

using nlohmann::json;

Status Invalid(const std::string& path, std::string_view what) {
  std::string m = path;
  m += ": ";
  m += what;
  return Status::InvalidArgument(std::move(m));
}

std::string Field(const std::string& where, std::string_view key) {
  if (where.empty()) return std::string(key);
  std::string path = where;
  path += '.';
  path += key;
  return path;
}

std::string Index(const std::string& where, std::size_t i) { return where + "[" + std::to_string(i) + "]"; }

constexpr std::size_t kMaxLogIdSize = 64;

// Every failure is InvalidArgument: a syntax error (parse_error), and also a
// number outside double's range such as 1e400 (out_of_range).
Result<json> ParseBody(std::string_view body) {
  Result<json> parsed = ParseJsonExplained(body);
  if (!parsed.ok()) return Status::InvalidArgument("body is not valid JSON: " + parsed.status().message());
  return parsed;
}

// `where` names the object in messages; "" for the top level, which is "body".
Status CheckObject(const json& value, const std::string& where) {
  if (value.is_object()) return Status::Ok();
  if (where.empty()) return Invalid("body", "must be a JSON object");
  return Invalid(where, "must be an object");
}

Status CheckKnownFields(const json& object, const std::string& where, std::initializer_list<std::string_view> known) {
  for (const auto& [key, unused] : object.items()) {
    bool found = false;
    for (std::string_view k : known) {
      if (key == k) {
        found = true;
        break;
      }
    }
    if (!found) return Invalid(where.empty() ? "body" : where, "unknown field \"" + key + "\"");
  }
  return Status::Ok();
}

bool IsScalar(const json& v) { return v.is_string() || v.is_number() || v.is_boolean() || v.is_null(); }

constexpr std::string_view kScalar = "must be a string, number, boolean or null";

Result<std::string> RequiredString(const json& object, const std::string& where, std::string_view key,
                                   bool non_empty) {
  std::string path = Field(where, key);
  auto it = object.find(key);
  if (it == object.end()) return Invalid(path, "is required");
  if (!it->is_string()) return Invalid(path, "must be a string");
  std::string s = it->get<std::string>();
  if (non_empty && s.empty()) return Invalid(path, "must be a non-empty string");
  return s;
}

Result<std::string> RequiredTxid(const json& object, const std::string& where) {
  Result<std::string> txid = RequiredString(object, where, "txid", false);
  if (!txid.ok()) return txid;
  if (!IsValidTxid(*txid)) return Invalid(Field(where, "txid"), "must be 1 to 128 characters of [A-Za-z0-9._:-]");
  return txid;
}

Status ParseProtocol(const json& value, const std::string& path, Protocol* out) {
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (s == "2pc") {
      *out = Protocol::k2pc;
      return Status::Ok();
    }
    if (s == "3pc") {
      *out = Protocol::k3pc;
      return Status::Ok();
    }
  }
  return Invalid(path, "must be \"2pc\" or \"3pc\"");
}

Result<int64_t> ParseTimeout(const json& value, const std::string& path) {
  bool ok = false;
  int64_t v = 0;
  if (value.is_number_unsigned()) {
    uint64_t u = value.get<uint64_t>();
    ok = u <= static_cast<uint64_t>(kMaxTimeoutMs);
    v = static_cast<int64_t>(u);
  } else if (value.is_number_integer()) {
    v = value.get<int64_t>();
    ok = true;
  }
  if (!ok || v < 1 || v > kMaxTimeoutMs) {
    return Invalid(path, "must be an integer between 1 and " + std::to_string(kMaxTimeoutMs));
  }
  return v;
}

// A non-empty array of at most `max` elements.
Status CheckList(const json& object, const std::string& where, std::string_view key, std::size_t max) {
  std::string path = Field(where, key);
  auto it = object.find(key);
  if (it == object.end()) return Invalid(path, "is required");
  if (!it->is_array() || it->empty()) return Invalid(path, "must be a non-empty array");
  if (it->size() > max) return Invalid(path, "must have at most " + std::to_string(max) + " entries");
  return Status::Ok();
}

Result<std::vector<Op>> ParseOps(const json& ops, const std::string& where) {
  std::vector<Op> out;
  out.reserve(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    Result<Op> op = ParseOp(ops[i], Index(where, i));
    if (!op.ok()) return op.status();
    out.push_back(std::move(op).value());
  }
  return out;
}

}  // namespace

std::string_view ProtocolName(Protocol p) { return p == Protocol::k3pc ? "3pc" : "2pc"; }

std::optional<AgentTxState> ParseAgentTxState(std::string_view name) {
  if (name == "preparing" || name == "executing" || name == "persisting") return AgentTxState::kPreparing;
  if (name == "prepared") return AgentTxState::kPrepared;
  if (name == "precommitting" || name == "precommitted") return AgentTxState::kPrecommitted;
  if (name == "committed" || name == "committing" || name == "conflict") return AgentTxState::kCommitted;
  if (name == "aborted" || name == "aborting") return AgentTxState::kAborted;
  if (name == "unknown") return AgentTxState::kUnknown;
  return std::nullopt;
}

bool IsValidTxid(std::string_view txid) {
  if (txid.empty() || txid.size() > 128) return false;
  for (char c : txid) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<Op> ParseOp(const json& value, const std::string& where) {
  if (Status s = CheckObject(value, where); !s.ok()) return s;
  if (Status s = CheckKnownFields(value, where, {"procedure", "args", "sql", "params"}); !s.ok()) return s;
  bool has_procedure = value.contains("procedure");
  bool has_sql = value.contains("sql");
  if (has_procedure == has_sql) return Invalid(where, "must have exactly one of \"procedure\" or \"sql\"");

  Op op;
  if (has_procedure) {
    if (value.contains("params")) return Invalid(Field(where, "params"), "only allowed with \"sql\"");
    Result<std::string> name = RequiredString(value, where, "procedure", true);
    if (!name.ok()) return name.status();
    op.procedure = std::move(name).value();
    if (auto it = value.find("args"); it != value.end()) {
      std::string path = Field(where, "args");
      if (!it->is_object()) return Invalid(path, "must be an object");
      for (const auto& [key, arg] : it->items()) {
        if (!IsScalar(arg)) return Invalid(Field(path, key), kScalar);
      }
      op.args = *it;
    }
  } else {
    if (value.contains("args")) return Invalid(Field(where, "args"), "only allowed with \"procedure\"");
    Result<std::string> sql = RequiredString(value, where, "sql", true);
    if (!sql.ok()) return sql.status();
    op.sql = std::move(sql).value();
    if (auto it = value.find("params"); it != value.end()) {
      std::string path = Field(where, "params");
      if (!it->is_array()) return Invalid(path, "must be an array");
      for (std::size_t i = 0; i < it->size(); ++i) {
        if (!IsScalar((*it)[i])) return Invalid(Index(path, i), kScalar);
      }
      op.params = *it;
    }
  }
  return op;
}

json OpToJson(const Op& op) {
  json j = json::object();
  // values_text is checked JSON whenever it is set: parsed without exceptions all the same.
  json values = op.values_text.empty() ? json(op.sql ? op.params : op.args)
                                       : json::parse(op.values_text, nullptr, /*allow_exceptions=*/false);
  if (op.sql.has_value()) {
    j["sql"] = *op.sql;
    j["params"] = std::move(values);
  } else {
    j["procedure"] = op.procedure.value_or("");
    j["args"] = std::move(values);
  }
  return j;
}

Result<TxRequest> ParseTxRequest(const json& body) {
  if (Status s = CheckObject(body, ""); !s.ok()) return s;
  if (Status s = CheckKnownFields(body, "", {"protocol", "timeout_ms", "branches"}); !s.ok()) return s;

  TxRequest req;
  if (auto it = body.find("protocol"); it != body.end()) {
    if (Status s = ParseProtocol(*it, "protocol", &req.protocol); !s.ok()) return s;
  }
  if (auto it = body.find("timeout_ms"); it != body.end()) {
    Result<int64_t> t = ParseTimeout(*it, "timeout_ms");
    if (!t.ok()) return t.status();
    req.timeout_ms = *t;
  }
  if (Status s = CheckList(body, "", "branches", kMaxBranches); !s.ok()) return s;

  const json& branches = body["branches"];
  std::set<std::string> seen;
  req.branches.reserve(branches.size());
  for (std::size_t i = 0; i < branches.size(); ++i) {
    std::string where = Index("branches", i);
    const json& b = branches[i];
    if (Status s = CheckObject(b, where); !s.ok()) return s;
    if (Status s = CheckKnownFields(b, where, {"participant", "ops"}); !s.ok()) return s;
    Result<std::string> participant = RequiredString(b, where, "participant", true);
    if (!participant.ok()) return participant.status();
    if (!seen.insert(*participant).second) {
      return Invalid(Field(where, "participant"), "'" + *participant + "' appears in more than one branch");
    }
    if (Status s = CheckList(b, where, "ops", kMaxOpsPerBranch); !s.ok()) return s;
    Result<std::vector<Op>> ops = ParseOps(b["ops"], Field(where, "ops"));
    if (!ops.ok()) return ops.status();
    req.branches.push_back(Branch{std::move(participant).value(), std::move(ops).value()});
  }
  return req;
}

Result<TxRequest> ParseTxRequestTree(std::string_view body) {
  Result<json> j = ParseBody(body);
  if (!j.ok()) return j.status();
  return ParseTxRequest(*j);
}

namespace {
// A key or check (abort_key, commit_key, commit_check): 1-128 lower-case hex
// digits (common/abort_key.h gives 64).
bool IsKey(std::string_view text) {
  return !text.empty() && text.size() <= 128 && IsLowerHex(text);
}

Result<std::string> KeyField(const json& value, const char* name) {
  if (!value.is_string() || !IsKey(value.get_ref<const std::string&>())) {
    return Status::InvalidArgument(std::string(name) + ": must be a string of 1 to 128 lower-case hex digits");
  }
  return value.get<std::string>();
}
Result<std::string> AbortKeyField(const json& value) { return KeyField(value, "abort_key"); }

// A decision log's identity: a string of at most kMaxLogIdSize characters.
Result<std::string> LogIdField(const json& value) {
  if (!value.is_string() || value.get_ref<const std::string&>().size() > kMaxLogIdSize) {
    return Invalid("log_id", "must be a string of at most " + std::to_string(kMaxLogIdSize) + " characters");
  }
  return value.get<std::string>();
}
}  // namespace

json ToJson(const PrepareRequest& r) {
  json ops = json::array();
  for (const Op& op : r.ops) ops.push_back(OpToJson(op));
  json out = {{"txid", r.txid},
              {"protocol", ProtocolName(r.protocol)},
              {"participant", r.participant},
              {"coordinator", r.coordinator},
              {"timeout_ms", r.timeout_ms},
              {"ops", std::move(ops)},
              {"participants", r.participants}};
  if (!r.log_id.empty()) out["log_id"] = r.log_id;  // absent: agents that predate it refuse unknown fields
  if (!r.abort_key.empty()) out["abort_key"] = r.abort_key;
  if (!r.commit_check.empty()) out["commit_check"] = r.commit_check;
  return out;
}

namespace {

// `"key":` then the string value. key: a member name of this protocol, which
// never needs escaping.
void AppendStringMember(std::string* out, std::string_view key, std::string_view value) {
  out->push_back('"');
  out->append(key);
  out->append("\":", 2);
  AppendJsonString(out, value);
}

// {"<key_name>": key, "txid": txid}, the key left out when "": commits,
// precommits and aborts, in nlohmann's (sorted) member order.
std::string KeyAndTxidText(std::string_view key_name, std::string_view key, std::string_view txid) {
  std::string out = "{";
  if (!key.empty()) {
    AppendStringMember(&out, key_name, key);
    out.push_back(',');
  }
  AppendStringMember(&out, "txid", txid);
  out.push_back('}');
  return out;
}

// An op's args (a procedure) or params (SQL): its values_text when set.
void AppendOpValues(std::string* out, const Op& op) {
  if (!op.values_text.empty()) {
    *out += op.values_text;
  } else {
    AppendJson(out, op.sql ? op.params : op.args);
  }
}

}  // namespace

void to_json(json& j, const ParticipantRef& p) { j = {{"name", p.name}, {"url", p.url}}; }

void AppendParticipants(std::string* out, const std::vector<ParticipantRef>& participants) {
  out->push_back('[');
  for (std::size_t i = 0; i < participants.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->push_back('{');
    AppendStringMember(out, "name", participants[i].name);
    out->push_back(',');
    AppendStringMember(out, "url", participants[i].url);
    out->push_back('}');
  }
  out->push_back(']');
}

std::string ParticipantsText(const std::vector<ParticipantRef>& participants) {
  std::string out;
  AppendParticipants(&out, participants);
  return out;
}

Result<std::vector<ParticipantRef>> ParseParticipants(std::string_view text) {
  const json j = ParseJson(text);
  if (j.is_discarded()) return Status::InvalidArgument("participants: not JSON");
  return ParticipantsOf(j);
}

Result<std::vector<ParticipantRef>> ParticipantsOf(const json& j) {
  if (!j.is_array()) return Status::InvalidArgument("participants: not an array");
  std::vector<ParticipantRef> out;
  out.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    const json& p = j[i];
    const auto name = p.is_object() ? p.find("name") : p.end();
    const auto url = p.is_object() ? p.find("url") : p.end();
    if (!p.is_object() || name == p.end() || url == p.end() || !name->is_string() || !url->is_string()) {
      return Status::InvalidArgument(Index("participants", i) + ": not an object with a string name and url");
    }
    out.push_back(ParticipantRef{name->get<std::string>(), url->get<std::string>()});
  }
  return out;
}

// Members in ToJson's (sorted) key order, as nlohmann's object writes them.
std::string PrepareRequestText(const PrepareRequest& r) {
  std::string out;
  out.reserve(512);
  out.push_back('{');
  if (!r.abort_key.empty()) {
    AppendStringMember(&out, "abort_key", r.abort_key);
    out.push_back(',');
  }
  if (!r.commit_check.empty()) {
    AppendStringMember(&out, "commit_check", r.commit_check);
    out.push_back(',');
  }
  AppendStringMember(&out, "coordinator", r.coordinator);
  if (!r.log_id.empty()) {
    out.push_back(',');
    AppendStringMember(&out, "log_id", r.log_id);
  }
  out += ",\"ops\":[";
  for (std::size_t i = 0; i < r.ops.size(); ++i) {
    const Op& op = r.ops[i];
    if (i > 0) out.push_back(',');
    if (op.sql.has_value()) {
      out += "{\"params\":";
      AppendOpValues(&out, op);
      out.push_back(',');
      AppendStringMember(&out, "sql", *op.sql);
    } else {
      out += "{\"args\":";
      AppendOpValues(&out, op);
      out.push_back(',');
      AppendStringMember(&out, "procedure", op.procedure.value_or(""));
    }
    out.push_back('}');
  }
  out += "],";
  AppendStringMember(&out, "participant", r.participant);
  out += ",\"participants\":";
  AppendParticipants(&out, r.participants);
  out.push_back(',');
  AppendStringMember(&out, "protocol", ProtocolName(r.protocol));
  out += ",\"timeout_ms\":";
  out += std::to_string(r.timeout_ms);
  out.push_back(',');
  AppendStringMember(&out, "txid", r.txid);
  out.push_back('}');
  return out;
}

Result<PrepareRequest> ParsePrepareRequestTree(std::string_view body) {
  Result<json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (Status s = CheckObject(j, ""); !s.ok()) return s;
  if (Status s = CheckKnownFields(
          j, "", {"txid", "protocol", "participant", "coordinator", "log_id", "abort_key", "commit_check", "timeout_ms",
                  "ops",
                  "participants"});
      !s.ok())
    return s;

  PrepareRequest r;
  Result<std::string> txid = RequiredTxid(j, "");
  if (!txid.ok()) return txid.status();
  r.txid = std::move(txid).value();
  if (auto it = j.find("protocol"); it != j.end()) {
    if (Status s = ParseProtocol(*it, "protocol", &r.protocol); !s.ok()) return s;
  }
  Result<std::string> participant = RequiredString(j, "", "participant", true);
  if (!participant.ok()) return participant.status();
  r.participant = std::move(participant).value();
  Result<std::string> coordinator = RequiredString(j, "", "coordinator", false);
  if (!coordinator.ok()) return coordinator.status();
  r.coordinator = std::move(coordinator).value();
  if (auto it = j.find("log_id"); it != j.end()) {
    Result<std::string> log_id = LogIdField(*it);
    if (!log_id.ok()) return log_id.status();
    r.log_id = std::move(log_id).value();
  }
  if (auto it = j.find("abort_key"); it != j.end()) {
    Result<std::string> key = AbortKeyField(*it);
    if (!key.ok()) return key.status();
    r.abort_key = std::move(key).value();
  }
  if (auto it = j.find("commit_check"); it != j.end()) {
    Result<std::string> check = KeyField(*it, "commit_check");
    if (!check.ok()) return check.status();
    r.commit_check = std::move(check).value();
  }
  auto timeout = j.find("timeout_ms");
  if (timeout == j.end()) return Invalid("timeout_ms", "is required");
  Result<int64_t> t = ParseTimeout(*timeout, "timeout_ms");
  if (!t.ok()) return t.status();
  r.timeout_ms = *t;
  if (Status s = CheckList(j, "", "ops", kMaxOpsPerBranch); !s.ok()) return s;
  Result<std::vector<Op>> ops = ParseOps(j["ops"], "ops");
  if (!ops.ok()) return ops.status();
  r.ops = std::move(ops).value();

  if (auto it = j.find("participants"); it != j.end()) {
    if (!it->is_array()) return Invalid("participants", "must be an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      std::string where = Index("participants", i);
      const json& p = (*it)[i];
      if (Status s = CheckObject(p, where); !s.ok()) return s;
      if (Status s = CheckKnownFields(p, where, {"name", "url"}); !s.ok()) return s;
      Result<std::string> name = RequiredString(p, where, "name", true);
      if (!name.ok()) return name.status();
      Result<std::string> url = RequiredString(p, where, "url", false);
      if (!url.ok()) return url.status();
      r.participants.push_back(ParticipantRef{std::move(name).value(), std::move(url).value()});
    }
  }
  return r;
}

namespace {

// What a scalar token of checked text is, as the fast readers take it.
enum class ScalarToken { kString, kTrue, kFalse, kNull, kSigned, kUnsigned, kOther };

// kSigned: a negative integer that fits int64; kUnsigned: a non-negative one
// that fits uint64 (nlohmann's types for them); kOther for any other number,
// which the tree parsers read.
ScalarToken ClassifyScalar(std::string_view token, int64_t* as_signed = nullptr, uint64_t* as_unsigned = nullptr) {
  const char c = token.front();
  if (c == '"') return ScalarToken::kString;
  if (token == "true") return ScalarToken::kTrue;
  if (token == "false") return ScalarToken::kFalse;
  if (token == "null") return ScalarToken::kNull;
  if (c != '-' && (c < '0' || c > '9')) return ScalarToken::kOther;
  if (token.find_first_of(".eE") != std::string_view::npos) return ScalarToken::kOther;
  const char* end = token.data() + token.size();
  if (c == '-') {
    int64_t v = 0;
    auto [at, error] = std::from_chars(token.data(), end, v);
    if (error != std::errc() || at != end) return ScalarToken::kOther;
    if (as_signed != nullptr) *as_signed = v;
    return ScalarToken::kSigned;
  }
  uint64_t v = 0;
  auto [at, error] = std::from_chars(token.data(), end, v);
  if (error != std::errc() || at != end) return ScalarToken::kOther;
  if (as_unsigned != nullptr) *as_unsigned = v;
  return ScalarToken::kUnsigned;
}

// A scalar token as the JSON value nlohmann's parser makes of it (an integer
// keeps nlohmann's type: unsigned unless negative); nullopt for anything
// else, and for numbers it reads as floating point.
std::optional<json> ScalarOf(std::string_view token) {
  int64_t as_signed = 0;
  uint64_t as_unsigned = 0;
  switch (ClassifyScalar(token, &as_signed, &as_unsigned)) {
    case ScalarToken::kString: return json(JsonScanner::String(token));
    case ScalarToken::kTrue: return json(true);
    case ScalarToken::kFalse: return json(false);
    case ScalarToken::kNull: return json(nullptr);
    case ScalarToken::kSigned: return json(as_signed);
    case ScalarToken::kUnsigned: return json(as_unsigned);
    case ScalarToken::kOther: return std::nullopt;
  }
  return std::nullopt;
}

// A protocol token as coordinators and clients write it ("2pc" or "3pc",
// unescaped); false for anything else.
bool FastProtocol(std::string_view token, Protocol* out) {
  if (token != "\"2pc\"" && token != "\"3pc\"") return false;
  *out = token == "\"3pc\"" ? Protocol::k3pc : Protocol::k2pc;
  return true;
}

// A timeout token: a plain integer within 1..kMaxTimeoutMs; false for anything else.
bool FastTimeout(std::string_view token, int64_t* out) {
  const char* end = token.data() + token.size();
  auto [at, error] = std::from_chars(token.data(), end, *out);
  return error == std::errc() && at == end && token.front() != '-' && *out >= 1 && *out <= kMaxTimeoutMs;
}

// Reads each element of the array starting here into a new element of
// `out`; false once read_one finds one that is not the common case (the rest
// is skipped). read_one leaves an element whole or untouched.
template <class T, class ReadOne>
bool FastArray(JsonScanner& scan, std::vector<T>* out, ReadOne read_one) {
  bool ok = true;
  scan.Array([&](JsonScanner& a) {
    if (!ok || !read_one(a, &out->emplace_back())) {
      ok = false;
      a.Value();
    }
  });
  return ok;
}

// How a fast reader takes an op's args or params.
enum class OpValues {
  kRead,    // into Op::args or Op::params (an agent, which runs the op)
  kAsText,  // into Op::values_text (the coordinator, which passes them on)
};

// One op read straight from the text; false: not the common case.
bool FastOp(JsonScanner& scan, Op* op, OpValues values) {
  if (scan.Peek() != '{') return false;
  bool ok = true;
  bool has_args = false, has_params = false;
  // Each value checked; read into a JSON value unless kept as text.
  const auto read_value = [&](std::string_view token, auto&& take) {
    if (!ok) return;
    if (values == OpValues::kAsText) {
      ok = ClassifyScalar(token) != ScalarToken::kOther;
      return;
    }
    std::optional<json> value = ScalarOf(token);
    ok = value.has_value();
    if (ok) take(std::move(*value));
  };
  scan.Object([&](std::string_view key, JsonScanner& s) {
    if (ok && key == "args" && !has_args && s.Peek() == '{') {
      has_args = true;
      const std::string_view text = s.Walked([&](JsonScanner& object) {
        object.Object([&](std::string_view name, JsonScanner& a) {
          read_value(a.Value(), [&](json value) { op->args[std::string(name)] = std::move(value); });
        });
      });
      if (values == OpValues::kAsText) op->values_text = text;
      return;
    }
    if (ok && key == "params" && !has_params && s.Peek() == '[') {
      has_params = true;
      const std::string_view text = s.Walked([&](JsonScanner& array) {
        array.Array([&](JsonScanner& a) {
          read_value(a.Value(), [&](json value) { op->params.push_back(std::move(value)); });
        });
      });
      if (values == OpValues::kAsText) op->values_text = text;
      return;
    }
    const std::string_view token = s.Value();
    if (!ok || token.front() != '"') {
      ok = false;
    } else if (key == "procedure" && !op->procedure) {
      op->procedure = JsonScanner::String(token);
    } else if (key == "sql" && !op->sql) {
      op->sql = JsonScanner::String(token);
    } else {
      ok = false;
    }
  });
  if (!ok) return false;
  if (op->procedure) return !op->sql && !has_params && !op->procedure->empty();
  return op->sql && !has_args && !op->sql->empty();
}

bool FastParticipant(JsonScanner& scan, ParticipantRef* p) {
  if (scan.Peek() != '{') return false;
  bool ok = true, has_name = false, has_url = false;
  scan.Object([&](std::string_view key, JsonScanner& s) {
    const std::string_view token = s.Value();
    if (!ok || token.front() != '"') {
      ok = false;
    } else if (key == "name" && !has_name) {
      has_name = true;
      p->name = JsonScanner::String(token);
    } else if (key == "url" && !has_url) {
      has_url = true;
      p->url = JsonScanner::String(token);
    } else {
      ok = false;
    }
  });
  return ok && has_name && has_url && !p->name.empty();
}

// A member's bit in a set of the object's `members`; 0 for any other name.
template <std::size_t N>
constexpr unsigned MemberBit(const std::string_view (&members)[N], std::string_view name) {
  static_assert(N <= 32, "one bit per member in an unsigned");
  for (std::size_t i = 0; i < N; ++i) {
    if (members[i] == name) return 1u << i;
  }
  return 0;
}

constexpr std::string_view kPrepareMembers[] = {"txid",      "protocol",     "participant", "coordinator", "log_id",
                                                "abort_key", "commit_check", "timeout_ms",  "ops",         "participants"};

constexpr unsigned PrepareMemberBit(std::string_view name) { return MemberBit(kPrepareMembers, name); }

constexpr unsigned kRequiredPrepareMembers = PrepareMemberBit("txid") | PrepareMemberBit("participant") |
                                             PrepareMemberBit("coordinator") | PrepareMemberBit("timeout_ms") |
                                             PrepareMemberBit("ops");

// A prepare as coordinators send it, read straight from the text without
// building a JSON value. nullopt for anything else: a repeated member, a
// float, an escaped protocol name, any error. ParsePrepareRequestTree then
// answers, with its exact message; what this accepts, it accepts too and
// reads the same (agent_request_fuzz and wire_test compare them).
std::optional<PrepareRequest> FastPrepare(std::string_view body, BodySyntax syntax) {
  JsonScanner scan(body, syntax);
  if (scan.Peek() != '{') return std::nullopt;
  PrepareRequest r;
  bool ok = true;
  unsigned seen = 0;  // PrepareMemberBit of each member read
  scan.Object([&](std::string_view key, JsonScanner& s) {
    const unsigned bit = PrepareMemberBit(key);
    if (bit == 0 || (seen & bit) != 0) ok = false;
    seen |= bit;
    if (ok && key == "ops" && s.Peek() == '[') {
      if (!FastArray(s, &r.ops, [](JsonScanner& o, Op* op) { return FastOp(o, op, OpValues::kRead); })) ok = false;
      return;
    }
    if (ok && key == "participants" && s.Peek() == '[') {
      if (!FastArray(s, &r.participants, FastParticipant)) ok = false;
      return;
    }
    const std::string_view token = s.Value();
    if (!ok) return;
    if (key == "timeout_ms") {
      ok = FastTimeout(token, &r.timeout_ms);
      return;
    }
    if (key == "protocol") {
      ok = FastProtocol(token, &r.protocol);
      return;
    }
    if (token.front() != '"') {
      ok = false;
      return;
    }
    std::string value = JsonScanner::String(token);
    if (key == "txid") {
      ok = IsValidTxid(value);
      r.txid = std::move(value);
    } else if (key == "participant") {
      ok = !value.empty();
      r.participant = std::move(value);
    } else if (key == "coordinator") {
      r.coordinator = std::move(value);
    } else if (key == "log_id") {
      ok = value.size() <= kMaxLogIdSize;
      r.log_id = std::move(value);
    } else if (key == "abort_key") {
      ok = IsKey(value);
      r.abort_key = std::move(value);
    } else if (key == "commit_check") {
      ok = IsKey(value);
      r.commit_check = std::move(value);
    } else {
      ok = false;
    }
  });
  if (!scan.Finished() || !ok || (seen & kRequiredPrepareMembers) != kRequiredPrepareMembers || r.ops.empty() ||
      r.ops.size() > kMaxOpsPerBranch) {
    return std::nullopt;
  }
  return r;
}

// Room for a branch's ops as clients usually send them, so that reading
// them does not move each op as the vector grows.
constexpr std::size_t kOpsReserved = 4;

bool FastBranch(JsonScanner& scan, Branch* b) {
  if (scan.Peek() != '{') return false;
  bool ok = true, has_participant = false, has_ops = false;
  scan.Object([&](std::string_view key, JsonScanner& s) {
    if (ok && key == "ops" && !has_ops && s.Peek() == '[') {
      has_ops = true;
      b->ops.reserve(kOpsReserved);
      if (!FastArray(s, &b->ops, [](JsonScanner& o, Op* op) { return FastOp(o, op, OpValues::kAsText); })) ok = false;
      return;
    }
    const std::string_view token = s.Value();
    if (!ok || key != "participant" || has_participant || token.front() != '"') {
      ok = false;
      return;
    }
    has_participant = true;
    b->participant = JsonScanner::String(token);
  });
  return ok && has_participant && !b->participant.empty() && has_ops && !b->ops.empty() &&
         b->ops.size() <= kMaxOpsPerBranch;
}

// A transaction request as clients usually send it, read straight from the
// text; nullopt for anything else, as FastPrepare.
std::optional<TxRequest> FastTx(std::string_view body) {
  JsonScanner scan(body);
  if (scan.Peek() != '{') return std::nullopt;
  TxRequest req;
  bool ok = true, has_protocol = false, has_timeout = false, has_branches = false;
  scan.Object([&](std::string_view key, JsonScanner& s) {
    if (ok && key == "branches" && !has_branches && s.Peek() == '[') {
      has_branches = true;
      if (!FastArray(s, &req.branches, FastBranch)) ok = false;
      return;
    }
    const std::string_view token = s.Value();
    if (!ok) return;
    if (key == "protocol" && !has_protocol) {
      has_protocol = true;
      ok = FastProtocol(token, &req.protocol);
    } else if (key == "timeout_ms" && !has_timeout) {
      has_timeout = true;
      int64_t timeout = 0;
      ok = FastTimeout(token, &timeout);
      req.timeout_ms = timeout;
    } else {
      ok = false;
    }
  });
  if (!scan.Finished() || !ok || req.branches.empty() || req.branches.size() > kMaxBranches) return std::nullopt;
  for (std::size_t i = 0; i < req.branches.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (req.branches[i].participant == req.branches[j].participant) return std::nullopt;
    }
  }
  return req;
}

}  // namespace

Result<TxRequest> ParseTxRequest(std::string_view body) {
  if (std::optional<TxRequest> fast = FastTx(body)) return std::move(*fast);
  return ParseTxRequestTree(body);
}

Result<PrepareRequest> ParsePrepareRequest(std::string_view body, BodySyntax syntax) {
  if (std::optional<PrepareRequest> fast = FastPrepare(body, syntax)) return std::move(*fast);
  return ParsePrepareRequestTree(body);
}

json ToJson(const Vote& v) {
  json j = {{"txid", v.txid}, {"vote", v.yes ? "yes" : "no"}, {"reason", v.reason}, {"results", v.results}};
  if (!v.yes && v.no_code == VoteNoCode::kLockConflict) j["code"] = "lock_conflict";
  return j;
}

// Members in ToJson's (sorted) key order.
std::string VoteText(const Vote& v) {
  std::string out = "{";
  if (!v.yes && v.no_code == VoteNoCode::kLockConflict) out += "\"code\":\"lock_conflict\",";
  AppendStringMember(&out, "reason", v.reason);
  out += ",\"results\":";
  AppendJson(&out, v.results);
  out.push_back(',');
  AppendStringMember(&out, "txid", v.txid);
  out += v.yes ? ",\"vote\":\"yes\"}" : ",\"vote\":\"no\"}";
  return out;
}

namespace {

constexpr std::string_view kVoteMembers[] = {"txid", "vote", "reason", "results", "code"};

constexpr unsigned VoteMemberBit(std::string_view name) { return MemberBit(kVoteMembers, name); }

// A vote's results as agents write them: an array with one array of rows per
// op, most often empty ("[[]]"); anything with rows goes through nlohmann.
json ResultsOf(std::string_view token) {
  json results = json::array();
  JsonScanner scan(token, JsonSyntax::kChecked);
  bool rows = false;
  scan.Array([&](JsonScanner& op) {
    const std::string_view element = op.Value();
    if (element == "[]") {
      results.push_back(json::array());
    } else {
      rows = true;
    }
  });
  return rows ? json::parse(token) : results;
}

// A vote as agents write it, read straight from the text without building a
// JSON value. nullopt for anything else (a member it does not know, a
// repeated one, an error): ParseVoteTree then answers, with its exact
// message; what this accepts, it accepts too and reads the same
// (agent_request_fuzz and wire_test compare them).
std::optional<Vote> FastVote(std::string_view body, BodySyntax syntax) {
  JsonScanner scan(body, syntax);
  if (scan.Peek() != '{') return std::nullopt;
  Vote v;
  bool ok = true;
  bool lock_conflict = false;
  unsigned seen = 0;  // VoteMemberBit of each member read
  scan.Object([&](std::string_view key, JsonScanner& s) {
    const std::string_view token = s.Value();
    const unsigned bit = VoteMemberBit(key);
    if (!ok || bit == 0 || (seen & bit) != 0) {
      ok = false;
      return;
    }
    seen |= bit;
    if (key == "vote") {
      ok = token == "\"yes\"" || token == "\"no\"";
      v.yes = token == "\"yes\"";
    } else if (key == "results") {
      if (token.front() == '[') {
        v.results = ResultsOf(token);
      } else {
        ok = token == "null";
        v.results = nullptr;
      }
    } else if (token.front() != '"') {
      ok = key == "reason" && token == "null";
    } else if (key == "txid") {
      v.txid = JsonScanner::String(token);
      ok = IsValidTxid(v.txid);
    } else if (key == "reason") {
      v.reason = JsonScanner::String(token);
    } else {  // code
      lock_conflict = JsonScanner::String(token) == "lock_conflict";
    }
  });
  constexpr unsigned kRequired = VoteMemberBit("txid") | VoteMemberBit("vote");
  if (!scan.Finished() || !ok || (seen & kRequired) != kRequired) return std::nullopt;
  if (lock_conflict && !v.yes) v.no_code = VoteNoCode::kLockConflict;
  return v;
}

}  // namespace

Result<Vote> ParseVote(std::string_view body, BodySyntax syntax) {
  if (std::optional<Vote> fast = FastVote(body, syntax)) return std::move(*fast);
  return ParseVoteTree(body);
}

// Unknown fields are ignored: a vote is a reply, and newer agents may add to it.
Result<Vote> ParseVoteTree(std::string_view body) {
  Result<json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (Status s = CheckObject(j, ""); !s.ok()) return s;

  Vote v;
  Result<std::string> txid = RequiredTxid(j, "");
  if (!txid.ok()) return txid.status();
  v.txid = std::move(txid).value();
  auto vote = j.find("vote");
  if (vote == j.end()) return Invalid("vote", "is required");
  if (*vote == "yes") {
    v.yes = true;
  } else if (*vote == "no") {
    v.yes = false;
  } else {
    return Invalid("vote", "must be \"yes\" or \"no\"");
  }
  if (auto it = j.find("reason"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return Invalid("reason", "must be a string");
    v.reason = it->get<std::string>();
  }
  if (auto it = j.find("results"); it != j.end()) {
    if (!it->is_array() && !it->is_null()) return Invalid("results", "must be an array or null");
    v.results = *it;
  }
  // Any other code (from a newer agent) is a plain no.
  if (auto it = j.find("code"); it != j.end() && !v.yes && it->is_string() && *it == "lock_conflict") {
    v.no_code = VoteNoCode::kLockConflict;
  }
  return v;
}

json ToJson(const AbortRequest& r) {
  json out = {{"txid", r.txid}};
  if (!r.abort_key.empty()) out["abort_key"] = r.abort_key;
  return out;
}

std::string AbortRequestText(const AbortRequest& r) { return KeyAndTxidText("abort_key", r.abort_key, r.txid); }

Result<AbortRequest> ParseAbortRequest(std::string_view body) {
  Result<json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (Status s = CheckObject(j, ""); !s.ok()) return s;
  if (Status s = CheckKnownFields(j, "", {"txid", "abort_key"}); !s.ok()) return s;
  AbortRequest r;
  Result<std::string> txid = RequiredTxid(j, "");
  if (!txid.ok()) return txid.status();
  r.txid = std::move(txid).value();
  if (auto it = j.find("abort_key"); it != j.end()) {
    Result<std::string> key = AbortKeyField(*it);
    if (!key.ok()) return key.status();
    r.abort_key = std::move(key).value();
  }
  return r;
}

json ToJson(const AdoptRequest& r) {
  return {{"txid", r.txid}, {"log_id", r.log_id}, {"abort_key", r.abort_key}, {"commit_check", r.commit_check}};
}

Result<AdoptRequest> ParseAdoptRequest(std::string_view body) {
  Result<json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (Status s = CheckObject(j, ""); !s.ok()) return s;
  if (Status s = CheckKnownFields(j, "", {"txid", "log_id", "abort_key", "commit_check"}); !s.ok()) return s;
  AdoptRequest r;
  Result<std::string> txid = RequiredTxid(j, "");
  if (!txid.ok()) return txid.status();
  r.txid = std::move(txid).value();
  auto given = j.find("log_id");
  Result<std::string> log_id =
      given == j.end() ? Result<std::string>(Invalid("log_id", "required")) : LogIdField(*given);
  if (!log_id.ok()) return log_id.status();
  if (log_id->empty()) return Invalid("log_id", "must not be empty");
  r.log_id = std::move(log_id).value();
  for (auto [name, field] : {std::pair{"abort_key", &r.abort_key}, std::pair{"commit_check", &r.commit_check}}) {
    auto it = j.find(name);
    if (it == j.end()) return Invalid(name, "required");
    Result<std::string> key = KeyField(*it, name);
    if (!key.ok()) return key.status();
    *field = std::move(key).value();
  }
  return r;
}

Result<std::string> ParseTxidBody(std::string_view body) {
  Result<json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (Status s = CheckObject(j, ""); !s.ok()) return s;
  if (Status s = CheckKnownFields(j, "", {"txid"}); !s.ok()) return s;
  return RequiredTxid(j, "");
}

json ToJson(const CommitRequest& r) {
  json out = {{"txid", r.txid}};
  if (!r.commit_key.empty()) out["commit_key"] = r.commit_key;
  return out;
}

std::string CommitRequestText(const CommitRequest& r) { return KeyAndTxidText("commit_key", r.commit_key, r.txid); }

namespace {

// A commit (or precommit) as coordinators write it, read straight from the
// text; nullopt for anything else, as FastVote.
std::optional<CommitRequest> FastCommit(std::string_view body, BodySyntax syntax) {
  JsonScanner scan(body, syntax);
  if (scan.Peek() != '{') return std::nullopt;
  CommitRequest r;
  bool ok = true, has_txid = false, has_key = false;
  scan.Object([&](std::string_view key, JsonScanner& s) {
    const std::string_view token = s.Value();
    if (!ok || token.front() != '"') {
      ok = false;
    } else if (key == "txid" && !has_txid) {
      has_txid = true;
      r.txid = JsonScanner::String(token);
      ok = IsValidTxid(r.txid);
    } else if (key == "commit_key" && !has_key) {
      has_key = true;
      r.commit_key = JsonScanner::String(token);
      ok = IsKey(r.commit_key);
    } else {
      ok = false;
    }
  });
  if (!scan.Finished() || !ok || !has_txid) return std::nullopt;
  return r;
}

}  // namespace

Result<CommitRequest> ParseCommitRequest(std::string_view body, BodySyntax syntax) {
  if (std::optional<CommitRequest> fast = FastCommit(body, syntax)) return std::move(*fast);
  return ParseCommitRequestTree(body);
}

Result<CommitRequest> ParseCommitRequestTree(std::string_view body) {
  Result<json> parsed = ParseBody(body);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (Status s = CheckObject(j, ""); !s.ok()) return s;
  if (Status s = CheckKnownFields(j, "", {"txid", "commit_key"}); !s.ok()) return s;
  CommitRequest r;
  Result<std::string> txid = RequiredTxid(j, "");
  if (!txid.ok()) return txid.status();
  r.txid = std::move(txid).value();
  if (auto it = j.find("commit_key"); it != j.end()) {
    Result<std::string> key = KeyField(*it, "commit_key");
    if (!key.ok()) return key.status();
    r.commit_key = std::move(key).value();
  }
  return r;
}

}  // namespace commitd::wire
