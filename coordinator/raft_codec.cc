#include "coordinator/raft_codec.h"

namespace commitd::coordinator {
namespace {

using nlohmann::json;

std::string Hex(std::string_view bytes) {
  static const char* const kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

Result<std::string> Unhex(std::string_view text) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (text.size() % 2 != 0) return Status::InvalidArgument("hex: odd length");
  std::string out(text.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = digit(text[2 * i]), lo = digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("hex: bad digit");
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

json MetaToJson(const raft::SnapshotMeta& m) {
  return {{"index", m.index}, {"term", m.term}, {"membership", m.membership.Encode()}};
}

Status MetaFromJson(const json& j, raft::SnapshotMeta* m) {
  m->index = j.at("index").get<raft::Index>();
  m->term = j.at("term").get<raft::Term>();
  auto membership = raft::Membership::Decode(j.at("membership").get<std::string>());
  if (!membership) return Status::InvalidArgument("snapshot meta: bad membership");
  m->membership = *membership;
  return Status::Ok();
}

json EntryToJson(const raft::Entry& e) {
  return {{"t", e.term}, {"i", e.index}, {"k", static_cast<int>(e.type)}, {"d", e.data}};
}

raft::Entry EntryFromJson(const json& j) {
  raft::Entry e;
  e.term = j.at("t").get<raft::Term>();
  e.index = j.at("i").get<raft::Index>();
  e.type = static_cast<raft::EntryType>(j.at("k").get<int>());
  e.data = j.at("d").get<std::string>();
  return e;
}

struct BodyToJson {
  json operator()(const raft::RequestVote& m) const {
    return {{"type", "vote"}, {"last_index", m.last_log_index}, {"last_term", m.last_log_term},
            {"pre_vote", m.pre_vote}, {"transfer", m.leadership_transfer}};
  }
  json operator()(const raft::RequestVoteResponse& m) const {
    return {{"type", "vote_response"}, {"granted", m.granted}, {"pre_vote", m.pre_vote}};
  }
  json operator()(const raft::AppendEntries& m) const {
    json entries = json::array();
    for (const auto& e : m.entries) entries.push_back(EntryToJson(e));
    return {{"type", "append"},  {"prev_index", m.prev_index}, {"prev_term", m.prev_term},
            {"entries", entries}, {"commit", m.leader_commit}, {"read_round", m.read_round}};
  }
  json operator()(const raft::AppendEntriesResponse& m) const {
    return {{"type", "append_response"},       {"success", m.success},
            {"match", m.match_index},          {"rejected_prev", m.rejected_prev_index},
            {"conflict_term", m.conflict_term}, {"conflict_index", m.conflict_index},
            {"read_round", m.read_round}};
  }
  json operator()(const raft::InstallSnapshot& m) const {
    return {{"type", "snapshot"}, {"meta", MetaToJson(m.meta)}, {"offset", m.offset},
            {"chunk", Hex(m.chunk)},  {"done", m.done}};
  }
  json operator()(const raft::InstallSnapshotResponse& m) const {
    return {{"type", "snapshot_response"}, {"index", m.snapshot_index}, {"next", m.next_offset}, {"done", m.done}};
  }
  json operator()(const raft::TimeoutNow&) const { return {{"type", "timeout_now"}}; }
};

Result<raft::MessageBody> BodyFromJson(const json& j) {
  const std::string type = j.at("type").get<std::string>();
  if (type == "vote") {
    raft::RequestVote m;
    m.last_log_index = j.at("last_index").get<raft::Index>();
    m.last_log_term = j.at("last_term").get<raft::Term>();
    m.pre_vote = j.at("pre_vote").get<bool>();
    m.leadership_transfer = j.at("transfer").get<bool>();
    return raft::MessageBody(m);
  }
  if (type == "vote_response") {
    raft::RequestVoteResponse m;
    m.granted = j.at("granted").get<bool>();
    m.pre_vote = j.at("pre_vote").get<bool>();
    return raft::MessageBody(m);
  }
  if (type == "append") {
    raft::AppendEntries m;
    m.prev_index = j.at("prev_index").get<raft::Index>();
    m.prev_term = j.at("prev_term").get<raft::Term>();
    for (const auto& e : j.at("entries")) m.entries.push_back(EntryFromJson(e));
    m.leader_commit = j.at("commit").get<raft::Index>();
    m.read_round = j.at("read_round").get<uint64_t>();
    return raft::MessageBody(std::move(m));
  }
  if (type == "append_response") {
    raft::AppendEntriesResponse m;
    m.success = j.at("success").get<bool>();
    m.match_index = j.at("match").get<raft::Index>();
    m.rejected_prev_index = j.at("rejected_prev").get<raft::Index>();
    m.conflict_term = j.at("conflict_term").get<raft::Term>();
    m.conflict_index = j.at("conflict_index").get<raft::Index>();
    m.read_round = j.at("read_round").get<uint64_t>();
    return raft::MessageBody(m);
  }
  if (type == "snapshot") {
    raft::InstallSnapshot m;
    if (Status s = MetaFromJson(j.at("meta"), &m.meta); !s.ok()) return s;
    m.offset = j.at("offset").get<uint64_t>();
    auto chunk = Unhex(j.at("chunk").get<std::string>());
    if (!chunk.ok()) return chunk.status();
    m.chunk = std::move(chunk).value();
    m.done = j.at("done").get<bool>();
    return raft::MessageBody(std::move(m));
  }
  if (type == "snapshot_response") {
    raft::InstallSnapshotResponse m;
    m.snapshot_index = j.at("index").get<raft::Index>();
    m.next_offset = j.at("next").get<uint64_t>();
    m.done = j.at("done").get<bool>();
    return raft::MessageBody(m);
  }
  if (type == "timeout_now") return raft::MessageBody(raft::TimeoutNow{});
  return Status::InvalidArgument("unknown raft message type '" + type + "'");
}

}  // namespace

json RaftMessageToJson(const raft::Message& m) {
  json j = std::visit(BodyToJson{}, m.body);
  j["from"] = m.from;
  j["to"] = m.to;
  j["term"] = m.term;
  return j;
}

Result<raft::Message> RaftMessageFromJson(const json& j) {
  try {
    raft::Message m;
    m.from = j.at("from").get<raft::NodeId>();
    m.to = j.at("to").get<raft::NodeId>();
    m.term = j.at("term").get<raft::Term>();
    auto body = BodyFromJson(j);
    if (!body.ok()) return body.status();
    m.body = std::move(body).value();
    return m;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("raft message: ") + e.what());
  }
}

json RecordToJson(const DecisionRecord& r) {
  json participants = json::array();
  for (const auto& p : r.participants) participants.push_back({{"name", p.name}, {"url", p.url}});
  return {{"txid", r.txid},
          {"protocol", wire::ProtocolName(r.protocol)},
          {"outcome", OutcomeName(r.outcome)},
          {"participants", std::move(participants)},
          {"reason", r.reason},
          {"idempotency_key", r.idempotency_key},
          {"reply", r.reply},
          {"created_ms", r.created_ms},
          {"decided_ms", r.decided_ms},
          {"finished", r.finished},
          {"finished_ms", r.finished_ms},
          {"heuristic", r.heuristic}};
}

Result<DecisionRecord> RecordFromJson(const json& j) {
  try {
    DecisionRecord r;
    r.txid = j.at("txid").get<std::string>();
    r.protocol = j.at("protocol").get<std::string>() == "3pc" ? wire::Protocol::k3pc : wire::Protocol::k2pc;
    auto outcome = ParseOutcome(j.at("outcome").get<std::string>());
    if (!outcome) return Status::InvalidArgument("record " + r.txid + ": bad outcome");
    r.outcome = *outcome;
    for (const auto& p : j.at("participants")) {
      r.participants.push_back({p.at("name").get<std::string>(), p.at("url").get<std::string>()});
    }
    r.reason = j.at("reason").get<std::string>();
    r.idempotency_key = j.at("idempotency_key").get<std::string>();
    r.reply = j.at("reply");
    r.created_ms = j.at("created_ms").get<int64_t>();
    r.decided_ms = j.at("decided_ms").get<int64_t>();
    r.finished = j.at("finished").get<bool>();
    r.finished_ms = j.at("finished_ms").get<int64_t>();
    r.heuristic = j.at("heuristic").get<bool>();
    return r;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("decision record: ") + e.what());
  }
}

std::string EncodeCommand(const Command& c) {
  json j;
  if (const auto* d = std::get_if<command::Decide>(&c)) {
    j = {{"op", "decide"}, {"record", RecordToJson(d->record)}};
  } else if (const auto* f = std::get_if<command::Finish>(&c)) {
    j = {{"op", "finish"}, {"txid", f->txid}, {"finished_ms", f->finished_ms}};
  } else if (const auto* p = std::get_if<command::PutParticipant>(&c)) {
    j = {{"op", "participant"}, {"name", p->entry.name}, {"url", p->entry.url}, {"updated_ms", p->entry.updated_ms}};
  } else if (const auto* many = std::get_if<command::FinishMany>(&c)) {
    json marks = json::array();
    for (const auto& f : many->marks) marks.push_back({{"txid", f.txid}, {"finished_ms", f.finished_ms}});
    j = {{"op", "finish_many"}, {"marks", std::move(marks)}};
  } else if (const auto* m = std::get_if<command::SetMember>(&c)) {
    j = {{"op", "member"}, {"id", m->id}, {"url", m->url}};
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Command> DecodeCommand(std::string_view data) {
  json j = json::parse(data, nullptr, false);
  if (!j.is_object()) return Status::Corruption("raft entry is not a JSON object");
  try {
    const std::string op = j.at("op").get<std::string>();
    if (op == "decide") {
      auto r = RecordFromJson(j.at("record"));
      if (!r.ok()) return r.status();
      return Command(command::Decide{std::move(r).value()});
    }
    if (op == "finish") {
      return Command(command::Finish{j.at("txid").get<std::string>(), j.at("finished_ms").get<int64_t>()});
    }
    if (op == "participant") {
      return Command(command::PutParticipant{RegistryEntry{
          j.at("name").get<std::string>(), j.at("url").get<std::string>(), j.at("updated_ms").get<int64_t>()}});
    }
    if (op == "finish_many") {
      command::FinishMany many;
      for (const auto& f : j.at("marks")) {
        many.marks.push_back(command::Finish{f.at("txid").get<std::string>(), f.at("finished_ms").get<int64_t>()});
      }
      return Command(std::move(many));
    }
    if (op == "member")
      return Command(command::SetMember{j.at("id").get<std::string>(), j.at("url").get<std::string>()});
    return Status::Corruption("raft entry: unknown op '" + op + "'");
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("raft entry: ") + e.what());
  }
}

raft::NodeId NodeIdOf(std::string_view name) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h == raft::kNoNode ? 1 : h;
}

}  // namespace commitd::coordinator
