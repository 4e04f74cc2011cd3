#include "coordinator/raft_codec.h"

namespace commitd::coordinator {
namespace {

using nlohmann::json;

}  // namespace

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
