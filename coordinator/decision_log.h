// DecisionLog: where the coordinator makes decisions durable.
//
// The first implementation is SqliteDecisionLog (one SQLite file, group commit
// on a storage thread); a Raft-replicated one comes later behind this interface.
//
// Thread: every method is called on the io thread; every callback runs on the
// io thread. Appends complete in the order they were made.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/types.h"

namespace commitd::coordinator {

struct RecoveredLog {
  std::vector<DecisionRecord> unfinished;  // decided, not every participant acknowledged
  std::vector<RegistryEntry> registry;
  uint64_t heuristic_decisions = 0;  // decisions an operator forced (DecisionRecord::heuristic)
  // A single coordinator's log only (a group leaves it 0; its leader's Raft
  // term is the incarnation): the durable counter this process's txids
  // carry, incremented at open.
  uint64_t incarnation = 0;
  // The log's identity: a single coordinator's is created with decisions.db
  // ("" for a log created before identities existed); a group's by its first
  // leader (CreateIdentity), "" until then.
  std::string log_id;
  // The secret abort keys are derived from (common/abort_key.h); "" for a log
  // without one (abort deliveries then carry no key).
  std::string abort_secret;
};

struct ListFilter {
  std::optional<Outcome> outcome;  // nullopt: any
  bool unfinished_only = false;
  std::size_t limit = 100;
};

// A record without an Idempotency-Key is stored without its reply (null).
inline void DropUnreadReply(DecisionRecord& record) {
  if (!ReplyIsRead(record)) record.reply = nullptr;
}

class DecisionLog {
 public:
  virtual ~DecisionLog() = default;

  // Called once before serving: what must be resumed.
  virtual Result<RecoveredLog> Recover() = 0;

  // Makes the decision durable. The first decision for a txid wins: if one is
  // already recorded, done gets Conflict and the stored record is unchanged.
  virtual void AppendDecision(DecisionRecord record, std::function<void(Status)> done) = 0;
  // As AppendDecision (done still only once durable), for a decision nobody
  // waits on: it may wait to share the log's next write or sync.
  virtual void AppendDecisionWithNextWrite(DecisionRecord record, std::function<void(Status)> done) {
    AppendDecision(std::move(record), std::move(done));
  }
  // Marks a decided transaction finished (every participant acked).
  virtual void MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) = 0;
  // Adds or replaces a registry entry. An entry with an empty url removes the name.
  virtual void PutParticipant(RegistryEntry entry, std::function<void(Status)> done) = 0;
  // Removes a registry entry (durably, like PutParticipant).
  void RemoveParticipant(std::string name, std::function<void(Status)> done) {
    PutParticipant(RegistryEntry{std::move(name), std::string(), 0}, std::move(done));
  }

  // Completes once every append made before it (finished marks included)
  // has completed, so that Recover then holds each of them that was
  // recorded. A group's log appends an empty entry for it, and fails it as it
  // fails an append.
  virtual void Barrier(std::function<void(Status)> done) = 0;

  // Reads (also finished transactions).
  virtual void FindDecision(std::string txid,
                            std::function<void(Result<std::optional<DecisionRecord>>)> done) = 0;
  virtual void FindByIdempotencyKey(std::string key,
                                    std::function<void(Result<std::optional<DecisionRecord>>)> done) = 0;
  // Newest first.
  virtual void ListDecisions(ListFilter filter, std::function<void(Result<std::vector<DecisionRecord>>)> done) = 0;

  // A group's log: makes its identity durable in the replicated state; the
  // first one applied wins (done: Ok, or Conflict when another was first).
  // A single coordinator's log has its identity from the moment it is opened.
  virtual void CreateIdentity(std::string log_id, std::string abort_secret, std::function<void(Status)> done) {
    (void)log_id;
    (void)abort_secret;
    done(Status::InvalidArgument("this decision log got its identity when it was opened"));
  }
  // Retention (DecisionStore::ForgetFinishedBefore): deletes up to `limit`
  // finished decisions older than cutoff_ms, and lets go of up to `limit`
  // remembered Idempotency-Keys forgotten before keys_cutoff_ms; done gets
  // how many decisions. One bounded job on the storage queue, between client
  // batches.
  virtual void ForgetFinished(int64_t cutoff_ms, int64_t keys_cutoff_ms, std::size_t limit,
                              std::function<void(Result<std::size_t>)> done) = 0;
  // For a txid or Idempotency-Key with no record: whether its record was deleted by retention.
  virtual void TxidForgotten(std::string txid, std::function<void(Result<bool>)> done) = 0;
  virtual void KeyForgotten(std::string key, std::function<void(Result<bool>)> done) = 0;
};

}  // namespace commitd::coordinator
