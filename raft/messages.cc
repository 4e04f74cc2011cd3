#include "raft/messages.h"

namespace commitd::raft {

namespace {

std::string Body(const RequestVote& m) {
  return std::string(m.pre_vote ? "PreVote" : "RequestVote") + " last=" + std::to_string(m.last_log_index) + "/" +
         std::to_string(m.last_log_term) + (m.leadership_transfer ? " transfer" : "");
}
std::string Body(const RequestVoteResponse& m) {
  return std::string(m.pre_vote ? "PreVoteResponse" : "RequestVoteResponse") + (m.granted ? " granted" : " rejected");
}
std::string Body(const AppendEntries& m) {
  return "AppendEntries prev=" + std::to_string(m.prev_index) + "/" + std::to_string(m.prev_term) +
         " n=" + std::to_string(m.entries.size()) + " commit=" + std::to_string(m.leader_commit);
}
std::string Body(const AppendEntriesResponse& m) {
  if (m.success) return "AppendEntriesResponse ok match=" + std::to_string(m.match_index);
  return "AppendEntriesResponse reject prev=" + std::to_string(m.rejected_prev_index) +
         " conflict=" + std::to_string(m.conflict_index) + "/" + std::to_string(m.conflict_term);
}
std::string Body(const InstallSnapshot& m) {
  return "InstallSnapshot " + std::to_string(m.meta.index) + "/" + std::to_string(m.meta.term) +
         " offset=" + std::to_string(m.offset) + " len=" + std::to_string(m.chunk.size()) + (m.done ? " done" : "");
}
std::string Body(const InstallSnapshotResponse& m) {
  return "InstallSnapshotResponse " + std::to_string(m.snapshot_index) + " next=" + std::to_string(m.next_offset) +
         (m.done ? " done" : "");
}
std::string Body(const TimeoutNow&) { return "TimeoutNow"; }

}  // namespace

std::string Describe(const Message& message) {
  return std::to_string(message.from) + "->" + std::to_string(message.to) + " t" + std::to_string(message.term) + " " +
         std::visit([](const auto& body) { return Body(body); }, message.body);
}

}  // namespace commitd::raft
