// Commands in the coordinator group's Raft log (raft.db entries, and entries
// received from the leader): DecodeCommand, binary format 2 and the JSON
// format 1, and EncodeCommand of what it accepts.
#include <string>

#include "coordinator/raft_codec.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace commitd;
  using fuzz::Require;
  Result<coordinator::Command> command = coordinator::DecodeCommand(fuzz::Text(data, size));
  if (!command.ok()) {
    Require(command.status().code() == StatusCode::kCorruption, "a bad entry is Corruption");
    return 0;
  }
  const std::string encoded = coordinator::EncodeCommand(*command);
  Result<coordinator::Command> again = coordinator::DecodeCommand(encoded);
  Require(again.ok(), "an encoded command decodes");
  Require(again->index() == command->index(), "an encoded command keeps its kind");
  Require(coordinator::EncodeCommand(*again) == encoded, "a command round-trips");
  if (const auto* decide = std::get_if<coordinator::command::Decide>(&*command)) {
    // The snapshot form of the same record.
    Result<coordinator::DecisionRecord> record =
        coordinator::RecordFromJson(nlohmann::json::parse(coordinator::RecordToJson(decide->record).dump(
            -1, ' ', false, nlohmann::json::error_handler_t::replace)));
    Require(record.ok(), "a decoded record's JSON form reads back");
  }
  return 0;
}
