// The binary framing of Raft messages between coordinator group members
// (POST /v1/raft, application/octet-stream). JSON cost a quarter of a
// member's CPU under load (each entry's command escaped inside the message);
// this is fixed-width little-endian integers and length-prefixed bytes:
//   "RFT1" u32:count, then per message u64:from u64:to u64:term u8:kind body.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "raft/messages.h"

namespace commitd::raft {

std::string EncodeMessages(const std::vector<raft::Message>& messages);
// InvalidArgument when the bytes are not a well-formed frame.
Result<std::vector<raft::Message>> DecodeMessages(std::string_view bytes);

}  // namespace commitd::raft
