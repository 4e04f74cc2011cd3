// The messages Raft nodes exchange. Every message carries the sender's term
// in its envelope, except that a PreVote request carries the term the sender
// would campaign in (its term + 1) and a granted PreVote response echoes it.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "raft/types.h"

namespace commitd::raft {

struct RequestVote {
  Index last_log_index = 0;
  Term last_log_term = 0;
  bool pre_vote = false;
  // Sent after a TimeoutNow: voters grant it even while they still hear from a leader.
  bool leadership_transfer = false;
};

struct RequestVoteResponse {
  bool granted = false;
  bool pre_vote = false;
};

struct AppendEntries {
  Index prev_index = 0;
  Term prev_term = 0;
  std::vector<Entry> entries;
  Index leader_commit = 0;
  uint64_t read_round = 0;  // the leader's latest ReadIndex round, echoed back
};

// On rejection the follower says where its log stops matching so the leader
// can skip a whole term per round trip: conflict_term is the term of the
// follower's entry at rejected_prev_index and conflict_index the first index
// the follower holds with that term; conflict_term 0 means the follower's log
// ends before rejected_prev_index and conflict_index is its last index + 1.
struct AppendEntriesResponse {
  bool success = false;
  Index match_index = 0;  // on success: the last index known to match the leader's log
  Index rejected_prev_index = 0;
  Term conflict_term = 0;
  Index conflict_index = 0;
  uint64_t read_round = 0;  // echoes AppendEntries::read_round: we still follow this leader in this term
};

// One chunk of a snapshot; chunks are sent one at a time, in order.
struct InstallSnapshot {
  SnapshotMeta meta;
  uint64_t offset = 0;
  std::string chunk;
  bool done = false;  // this chunk is the last one
};

struct InstallSnapshotResponse {
  Index snapshot_index = 0;
  uint64_t next_offset = 0;  // the offset the follower expects next
  bool done = false;         // the follower holds everything up to snapshot_index
};

// Leadership transfer: the leader tells a caught-up voter to campaign now.
struct TimeoutNow {};

using MessageBody = std::variant<RequestVote, RequestVoteResponse, AppendEntries, AppendEntriesResponse,
                                 InstallSnapshot, InstallSnapshotResponse, TimeoutNow>;

struct Message {
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;
  MessageBody body;
};

// One line for traces, e.g. "1->2 t3 AppendEntries prev=4/2 n=3 commit=4".
std::string Describe(const Message& message);

}  // namespace commitd::raft
