// Raft frames between coordinator group members (POST /v1/raft):
// DecodeRaftMessages, and EncodeRaftMessages of what it accepts.
#include <string>

#include "coordinator/raft_wire.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace commitd;
  using fuzz::Require;
  Result<std::vector<raft::Message>> messages = coordinator::DecodeRaftMessages(fuzz::Text(data, size));
  if (!messages.ok()) {
    Require(messages.status().code() == StatusCode::kInvalidArgument, "a bad frame is InvalidArgument");
    return 0;
  }
  // Encoding is a fixed point after one decode (flags read as any non-zero
  // byte are written as 1, a membership in its canonical order).
  const std::string encoded = coordinator::EncodeRaftMessages(*messages);
  Result<std::vector<raft::Message>> again = coordinator::DecodeRaftMessages(encoded);
  Require(again.ok(), "an encoded frame decodes");
  Require(again->size() == messages->size(), "an encoded frame keeps every message");
  Require(coordinator::EncodeRaftMessages(*again) == encoded, "a frame round-trips");
  return 0;
}
