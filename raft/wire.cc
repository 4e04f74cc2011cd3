#include "raft/wire.h"

#include <cstdint>
#include <cstring>

#include "common/byte_codec.h"

namespace commitd::raft {
namespace {

constexpr char kMagic[4] = {'R', 'F', 'T', '1'};
enum Kind : uint8_t { kVote, kVoteResponse, kAppend, kAppendResponse, kSnapshot, kSnapshotResponse, kTimeoutNow };

using bytes::Reader;
using bytes::Writer;

struct BodyWriter {
  Writer& w;
  void operator()(const RequestVote& m) const {
    w.U8(kVote);
    w.U64(m.last_log_index);
    w.U64(m.last_log_term);
    w.U8(m.pre_vote);
    w.U8(m.leadership_transfer);
  }
  void operator()(const RequestVoteResponse& m) const {
    w.U8(kVoteResponse);
    w.U8(m.granted);
    w.U8(m.pre_vote);
  }
  void operator()(const AppendEntries& m) const {
    w.U8(kAppend);
    w.U64(m.prev_index);
    w.U64(m.prev_term);
    w.U64(m.leader_commit);
    w.U64(m.read_round);
    w.U32(static_cast<uint32_t>(m.entries.size()));
    for (const auto& e : m.entries) {
      w.U64(e.term);
      w.U64(e.index);
      w.U8(static_cast<uint8_t>(e.type));
      w.Bytes(e.data);
    }
  }
  void operator()(const AppendEntriesResponse& m) const {
    w.U8(kAppendResponse);
    w.U8(m.success);
    w.U64(m.match_index);
    w.U64(m.rejected_prev_index);
    w.U64(m.conflict_term);
    w.U64(m.conflict_index);
    w.U64(m.read_round);
  }
  void operator()(const InstallSnapshot& m) const {
    w.U8(kSnapshot);
    w.U64(m.meta.index);
    w.U64(m.meta.term);
    w.Bytes(m.meta.membership.Encode());
    w.U64(m.offset);
    w.Bytes(m.chunk);
    w.U8(m.done);
  }
  void operator()(const InstallSnapshotResponse& m) const {
    w.U8(kSnapshotResponse);
    w.U64(m.snapshot_index);
    w.U64(m.next_offset);
    w.U8(m.done);
  }
  void operator()(const TimeoutNow&) const { w.U8(kTimeoutNow); }
};

// What a leader's log makes true of any append it sends: the entries follow
// prev_index one by one, their terms never go down, and a configuration entry
// holds a membership. An append breaking this is refused here, before the
// node (which relies on it) sees it.
Status CheckEntries(const AppendEntries& m) {
  Index index = m.prev_index;
  Term term = m.prev_term;
  for (const auto& e : m.entries) {
    if (e.index != index + 1) return Status::InvalidArgument("raft frame: append entries are not contiguous");
    if (e.term < term) return Status::InvalidArgument("raft frame: append entry terms go down");
    if (e.type == EntryType::kConfig && !Membership::Decode(e.data)) {
      return Status::InvalidArgument("raft frame: bad configuration entry");
    }
    index = e.index;
    term = e.term;
  }
  return Status::Ok();
}

Result<MessageBody> ReadBody(Reader& r) {
  switch (r.U8()) {
    case kVote: {
      RequestVote m;
      m.last_log_index = r.U64();
      m.last_log_term = r.U64();
      m.pre_vote = r.Bool();
      m.leadership_transfer = r.Bool();
      return MessageBody(m);
    }
    case kVoteResponse: {
      RequestVoteResponse m;
      m.granted = r.Bool();
      m.pre_vote = r.Bool();
      return MessageBody(m);
    }
    case kAppend: {
      AppendEntries m;
      m.prev_index = r.U64();
      m.prev_term = r.U64();
      m.leader_commit = r.U64();
      m.read_round = r.U64();
      const uint32_t n = r.U32();
      for (uint32_t i = 0; i < n && r.ok(); ++i) {
        Entry e;
        e.term = r.U64();
        e.index = r.U64();
        const uint8_t type = r.U8();
        if (type > static_cast<uint8_t>(EntryType::kNoop))
          return Status::InvalidArgument("raft frame: bad entry type");
        e.type = static_cast<EntryType>(type);
        e.data = r.Bytes();
        m.entries.push_back(std::move(e));
      }
      if (Status s = CheckEntries(m); !s.ok()) return s;
      return MessageBody(std::move(m));
    }
    case kAppendResponse: {
      AppendEntriesResponse m;
      m.success = r.Bool();
      m.match_index = r.U64();
      m.rejected_prev_index = r.U64();
      m.conflict_term = r.U64();
      m.conflict_index = r.U64();
      m.read_round = r.U64();
      return MessageBody(m);
    }
    case kSnapshot: {
      InstallSnapshot m;
      m.meta.index = r.U64();
      m.meta.term = r.U64();
      auto membership = Membership::Decode(r.Bytes());
      if (!membership) return Status::InvalidArgument("raft frame: bad membership");
      m.meta.membership = *membership;
      m.offset = r.U64();
      m.chunk = r.Bytes();
      m.done = r.Bool();
      return MessageBody(std::move(m));
    }
    case kSnapshotResponse: {
      InstallSnapshotResponse m;
      m.snapshot_index = r.U64();
      m.next_offset = r.U64();
      m.done = r.Bool();
      return MessageBody(m);
    }
    case kTimeoutNow:
      return MessageBody(TimeoutNow{});
    default:
      return Status::InvalidArgument("raft frame: unknown message kind");
  }
}

}  // namespace

std::string EncodeMessages(const std::vector<Message>& messages) {
  std::size_t size = sizeof kMagic + 4;
  for (const auto& m : messages) {
    size += 64;
    if (const auto* ae = std::get_if<AppendEntries>(&m.body)) {
      for (const auto& e : ae->entries) size += 21 + e.data.size();
    } else if (const auto* is = std::get_if<InstallSnapshot>(&m.body)) {
      size += 64 + is->chunk.size();
    }
  }
  std::string out;
  out.reserve(size);
  out.append(kMagic, sizeof kMagic);
  Writer w(out);
  w.U32(static_cast<uint32_t>(messages.size()));
  for (const auto& m : messages) {
    w.U64(m.from);
    w.U64(m.to);
    w.U64(m.term);
    std::visit(BodyWriter{w}, m.body);
  }
  return out;
}

Result<std::vector<Message>> DecodeMessages(std::string_view bytes) {
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return Status::InvalidArgument("raft frame: not an RFT1 frame");
  }
  Reader r(bytes.substr(sizeof kMagic));
  const uint32_t count = r.U32();
  std::vector<Message> out;
  for (uint32_t i = 0; i < count && r.ok(); ++i) {
    Message m;
    m.from = r.U64();
    m.to = r.U64();
    m.term = r.U64();
    auto body = ReadBody(r);
    if (!body.ok()) return body.status();
    m.body = std::move(body).value();
    out.push_back(std::move(m));
  }
  if (!r.ok() || !r.done()) return Status::InvalidArgument("raft frame: truncated or with trailing bytes");
  return out;
}

}  // namespace commitd::raft
