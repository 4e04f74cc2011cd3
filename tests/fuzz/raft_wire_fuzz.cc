// Raft frames between coordinator group members (POST /v1/raft):
// raft::DecodeMessages, and raft::EncodeMessages of what it accepts.
#include <string>

#include "raft/wire.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace commitd;
  using fuzz::Require;
  Result<std::vector<raft::Message>> messages = raft::DecodeMessages(fuzz::Text(data, size));
  if (!messages.ok()) {
    Require(messages.status().code() == StatusCode::kInvalidArgument, "a bad frame is InvalidArgument");
    return 0;
  }
  // Encoding is a fixed point after one decode (flags read as any non-zero
  // byte are written as 1, a membership in its canonical order).
  const std::string encoded = raft::EncodeMessages(*messages);
  Result<std::vector<raft::Message>> again = raft::DecodeMessages(encoded);
  Require(again.ok(), "an encoded frame decodes");
  Require(again->size() == messages->size(), "an encoded frame keeps every message");
  Require(raft::EncodeMessages(*again) == encoded, "a frame round-trips");
  return 0;
}
