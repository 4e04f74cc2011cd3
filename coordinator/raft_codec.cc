#include "coordinator/raft_codec.h"

#include <cstdint>

#include "common/byte_codec.h"
#include "common/json_text.h"
#include "common/json_parse.h"

namespace commitd::coordinator {
namespace {

using nlohmann::json;

// An integer member. get<int64_t>() alone would also convert a float, which
// is undefined behaviour out of int64_t's range (1e300).
int64_t IntegerAt(const json& object, const char* key) {
  const json& value = object.at(key);
  if (!value.is_number_integer()) {
    throw json::type_error::create(302, std::string(key) + " must be an integer, but is " + value.type_name(), &value);
  }
  return value.get<int64_t>();
}

}  // namespace

json RecordToJson(const DecisionRecord& r) {
  return {{"txid", r.txid},
          {"protocol", wire::ProtocolName(r.protocol)},
          {"outcome", OutcomeName(r.outcome)},
          {"participants", r.participants},
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
    // The log refuses to read back a record with any other txid (see DecisionStore).
    if (!wire::IsValidTxid(r.txid)) return Status::InvalidArgument("record with an invalid txid");
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
    r.created_ms = IntegerAt(j, "created_ms");
    r.decided_ms = IntegerAt(j, "decided_ms");
    r.finished = j.at("finished").get<bool>();
    r.finished_ms = IntegerAt(j, "finished_ms");
    r.heuristic = j.at("heuristic").get<bool>();
    return r;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("decision record: ") + e.what());
  }
}

Result<RegistryEntry> RegistryEntryFromJson(const json& j) {
  try {
    return RegistryEntry{j.at("name").get<std::string>(), j.at("url").get<std::string>(), IntegerAt(j, "updated_ms")};
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("registry entry: ") + e.what());
  }
}

namespace {

// Format 2 (binary): kFormat, an Op, then the command's fields in the order
// below. Format 1 was a JSON object; such entries (from raft.db files written
// before) still decode: a JSON object starts with '{', never with kFormat.
constexpr uint8_t kFormat = 2;
enum Op : uint8_t { kDecide = 1, kFinish = 2, kParticipant = 3, kFinishMany = 4, kMember = 5, kIdentity = 6, kForgetFinished = 7,
              kForgetFinishedAndKeys = 8 };

uint8_t OutcomeCode(Outcome o) {
  switch (o) {
    case Outcome::kPending: return 0;
    case Outcome::kCommitted: return 1;
    case Outcome::kAborted: return 2;
  }
  return 2;
}

struct CommandWriter {
  bytes::Writer& w;
  void operator()(const command::Decide& d) const {
    const DecisionRecord& r = d.record;
    w.U8(kDecide);
    w.Bytes(r.txid);
    w.U8(r.protocol == wire::Protocol::k3pc ? 1 : 0);
    w.U8(OutcomeCode(r.outcome));
    w.U32(static_cast<uint32_t>(r.participants.size()));
    for (const auto& p : r.participants) {
      w.Bytes(p.name);
      w.Bytes(p.url);
    }
    w.Bytes(r.reason);
    w.Bytes(r.idempotency_key);
    // No reply (null) is empty; a JSON text is never empty.
    w.Bytes(r.reply.is_null() ? std::string() : DumpJson(r.reply));
    w.I64(r.created_ms);
    w.I64(r.decided_ms);
    w.Bool(r.finished);
    w.I64(r.finished_ms);
    w.Bool(r.heuristic);
  }
  void operator()(const command::Finish& f) const {
    w.U8(kFinish);
    w.Bytes(f.txid);
    w.I64(f.finished_ms);
  }
  void operator()(const command::PutParticipant& p) const {
    w.U8(kParticipant);
    w.Bytes(p.entry.name);
    w.Bytes(p.entry.url);
    w.I64(p.entry.updated_ms);
  }
  void operator()(const command::FinishMany& many) const {
    w.U8(kFinishMany);
    w.U32(static_cast<uint32_t>(many.marks.size()));
    for (const auto& f : many.marks) {
      w.Bytes(f.txid);
      w.I64(f.finished_ms);
    }
  }
  void operator()(const command::SetMember& m) const {
    w.U8(kMember);
    w.Bytes(m.id);
    w.Bytes(m.url);
  }
  void operator()(const command::SetIdentity& i) const {
    w.U8(kIdentity);
    w.Bytes(i.log_id);
    w.Bytes(i.abort_secret);
  }
  void operator()(const command::ForgetFinished& f) const {
    w.U8(kForgetFinishedAndKeys);
    w.I64(f.cutoff_ms);
    w.U32(f.limit);
    w.I64(f.keys_cutoff_ms);
  }
};

Result<Command> DecodeDecide(bytes::Reader& r) {
  DecisionRecord d;
  d.txid = r.Bytes();
  if (r.ok() && !wire::IsValidTxid(d.txid)) return Status::Corruption("raft entry: invalid txid");
  const uint8_t protocol = r.U8();
  if (protocol > 1) return Status::Corruption("raft entry: bad protocol");
  d.protocol = protocol == 1 ? wire::Protocol::k3pc : wire::Protocol::k2pc;
  switch (r.U8()) {
    case 0: d.outcome = Outcome::kPending; break;
    case 1: d.outcome = Outcome::kCommitted; break;
    case 2: d.outcome = Outcome::kAborted; break;
    default: return Status::Corruption("raft entry: bad outcome");
  }
  const uint32_t n = r.U32();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    ParticipantRef p;
    p.name = r.Bytes();
    p.url = r.Bytes();
    d.participants.push_back(std::move(p));
  }
  d.reason = r.Bytes();
  d.idempotency_key = r.Bytes();
  const std::string_view reply = r.BytesView();
  if (!reply.empty()) {
    d.reply = ParseJson(reply);
    if (d.reply.is_discarded()) return Status::Corruption("raft entry: reply is not JSON");
  }
  d.created_ms = r.I64();
  d.decided_ms = r.I64();
  d.finished = r.Bool();
  d.finished_ms = r.I64();
  d.heuristic = r.Bool();
  return Command(command::Decide{std::move(d)});
}

Result<Command> DecodeBinary(bytes::Reader& r) {
  const uint8_t op = r.U8();
  switch (op) {
    case kDecide: return DecodeDecide(r);
    case kFinish: {
      command::Finish f;
      f.txid = r.Bytes();
      f.finished_ms = r.I64();
      return Command(std::move(f));
    }
    case kParticipant: {
      RegistryEntry e;
      e.name = r.Bytes();
      e.url = r.Bytes();
      e.updated_ms = r.I64();
      return Command(command::PutParticipant{std::move(e)});
    }
    case kFinishMany: {
      command::FinishMany many;
      const uint32_t n = r.U32();
      for (uint32_t i = 0; i < n && r.ok(); ++i) {
        command::Finish f;
        f.txid = r.Bytes();
        f.finished_ms = r.I64();
        many.marks.push_back(std::move(f));
      }
      return Command(std::move(many));
    }
    case kMember: {
      command::SetMember m;
      m.id = r.Bytes();
      m.url = r.Bytes();
      return Command(std::move(m));
    }
    case kIdentity: {
      command::SetIdentity i;
      i.log_id = r.Bytes();
      i.abort_secret = r.Bytes();
      return Command(std::move(i));
    }
    case kForgetFinished:  // written before remembered keys were let go: keeps every key
    case kForgetFinishedAndKeys: {
      command::ForgetFinished f;
      f.cutoff_ms = r.I64();
      f.limit = r.U32();
      if (op == kForgetFinishedAndKeys) f.keys_cutoff_ms = r.I64();
      return Command(f);
    }
    default:
      return Status::Corruption("raft entry: unknown op");
  }
}

// Format 1, as raft.db files written before format 2 hold it.
Result<Command> DecodeJson(std::string_view data) {
  json j = ParseJson(data);
  if (!j.is_object()) return Status::Corruption("raft entry is not a JSON object");
  try {
    const std::string op = j.at("op").get<std::string>();
    if (op == "decide") {
      auto r = RecordFromJson(j.at("record"));
      if (!r.ok()) return Status::Corruption("raft entry: " + r.status().message());
      return Command(command::Decide{std::move(r).value()});
    }
    if (op == "finish") {
      return Command(command::Finish{j.at("txid").get<std::string>(), IntegerAt(j, "finished_ms")});
    }
    if (op == "participant") {
      auto entry = RegistryEntryFromJson(j);
      if (!entry.ok()) return Status::Corruption("raft entry: " + entry.status().message());
      return Command(command::PutParticipant{std::move(entry).value()});
    }
    if (op == "finish_many") {
      command::FinishMany many;
      for (const auto& f : j.at("marks")) {
        many.marks.push_back(command::Finish{f.at("txid").get<std::string>(), IntegerAt(f, "finished_ms")});
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

}  // namespace

std::string EncodeCommand(const Command& c) {
  std::string out;
  out.reserve(256);
  bytes::Writer w(out);
  w.U8(kFormat);
  std::visit(CommandWriter{w}, c);
  return out;
}

Result<Command> DecodeCommand(std::string_view data) {
  if (!data.empty() && data[0] == '{') return DecodeJson(data);
  if (data.empty() || static_cast<uint8_t>(data[0]) != kFormat) {
    return Status::Corruption("raft entry: unknown command format");
  }
  bytes::Reader r(data.substr(1));
  auto command = DecodeBinary(r);
  if (!command.ok()) return command.status();
  if (!r.ok() || !r.done()) return Status::Corruption("raft entry: truncated or with trailing bytes");
  return command;
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
