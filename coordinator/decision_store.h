// The tables of decisions.db (decisions, participants, meta) and the
// statements on them, run synchronously on one connection. SqliteDecisionLog
// runs them on its storage thread; commitctl runs them offline, on a file no
// commitd has open.
//
// Schema versions: 1 had no decisions.heuristic column; 2 adds it. Opening a
// version-1 file upgrades it in place (the column defaults to 0).
//
// Thread: whoever uses the connection; no locking of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"
#include "coordinator/decision_log.h"

namespace commitd::coordinator {

// What retention deleted, as far as later questions need it: per txid issuer
// (coordinator id, incarnation) the highest sequence of a deleted decision,
// and the Idempotency-Keys of deleted decisions (the first 8 bytes of their
// SHA-256, with the cutoff that deleted them).
struct ForgottenState {
  struct Issuer {
    std::string coordinator;
    int64_t incarnation = 0;
    int64_t max_sequence = 0;
  };
  struct Key {
    int64_t hash = 0;
    int64_t forgotten_ms = 0;
  };
  std::vector<Issuer> txids;
  std::vector<Key> keys;
  int64_t before_ms = 0;  // the newest cutoff that deleted anything (0: none)
};

// The first 8 bytes of the key's SHA-256, as stored in forgotten_keys.
int64_t KeyHash(const std::string& key);

class DecisionStore {
 public:
  // db must outlive the store.
  explicit DecisionStore(sqlite::Database& db) : db_(db) {}

  // Creates missing tables and upgrades an older schema. Corruption when the
  // file has a schema_version this build does not know.
  Status CreateSchema();

  // InsertDecision: Conflict if the txid (or its idempotency key) is taken;
  // the stored record is unchanged then. Exception: a decision (committed or
  // aborted) replaces its transaction's staging record (outcome pending, same
  // protocol).
  Status InsertDecision(const DecisionRecord& r);
  // Inserts r as a new row; *inserted false (and nothing changed) when its
  // txid or idempotency key is taken, where InsertDecision would explain the
  // conflict or replace a staging record.
  Status InsertNew(const DecisionRecord& r, bool* inserted);
  // Already finished is fine (the first time stays); NotFound if unknown, or
  // if only a staging record is there (it stays unfinished).
  Status MarkFinished(const std::string& txid, int64_t finished_ms);
  Status PutParticipant(const RegistryEntry& e);  // an empty url deletes the name
  // Adds url to the URLs this coordinator has served under (meta
  // 'coordinator_urls', a JSON array): what agents' records name it by.
  Status AddOwnUrl(const std::string& url);
  // Every URL AddOwnUrl recorded; empty for a log written before it existed.
  Result<std::vector<std::string>> OwnUrls();

  // The log's identity (meta 'log_id'): created with the log, sent with every
  // prepare and kept in the agent's prepared record, so that a coordinator
  // whose log was lost or replaced never presumes abort for a record written
  // under another log. Empty until SetLogId.
  Result<std::string> LogId();
  // Sets it once; Conflict if the log already has a different one.
  Status SetLogId(const std::string& log_id);
  // The secret abort keys are derived from (meta 'abort_secret',
  // common/abort_key.h), created with the identity and never sent anywhere.
  // Empty until SetAbortSecret.
  Result<std::string> AbortSecret();
  // Sets it once; Conflict if the log already has a different one.
  Status SetAbortSecret(const std::string& secret);
  // Both at once (a group's replicated identity): Conflict, and nothing
  // changed, if the log has another identity or secret.
  Status SetIdentity(const std::string& log_id, const std::string& abort_secret);
  // Increments and returns meta 'incarnation' (0 before the first call): the
  // durable counter that keeps a restarted coordinator's txids apart from its
  // earlier ones. Durable once the caller's transaction commits.
  Result<uint64_t> NextIncarnation();
  // PRAGMA quick_check: Corruption naming the file if the file is damaged.
  // Above kFullIntegrityCheckBytes every table but the decisions is checked
  // (the decisions' pages are checked as SQLite reads them), so that a start
  // does not read the whole history first.
  static constexpr int64_t kFullIntegrityCheckBytes = 64 << 20;
  Status CheckIntegrity();

  Result<std::optional<DecisionRecord>> FindByTxid(const std::string& txid);
  Result<std::optional<DecisionRecord>> FindByIdempotencyKey(const std::string& key);
  // Newest first.
  Result<std::vector<DecisionRecord>> List(const ListFilter& filter);
  Result<std::vector<RegistryEntry>> Registry();
  // Unfinished decisions (oldest first), the registry and the heuristic count.
  Result<RecoveredLog> Recover();
  // Every decision, oldest first, until fn returns an error (which is returned).
  Status ForEach(const std::function<Status(const DecisionRecord&)>& fn);
  Result<int64_t> Count(std::optional<Outcome> outcome, bool heuristic_only);

  // Retention: deletes up to `limit` finished decisions with finished_ms <
  // cutoff_ms, oldest first (deterministic: the same rows on every group
  // member with the same state), and remembers what they covered
  // (ForgottenState), all or nothing; lets go of up to `limit` remembered
  // keys forgotten before keys_cutoff_ms. Returns how many decisions were
  // deleted. Unfinished decisions are never deleted.
  Result<std::size_t> ForgetFinishedBefore(int64_t cutoff_ms, int64_t keys_cutoff_ms, std::size_t limit);
  // A txid in the issuer's format whose (coordinator, incarnation) had a
  // decision with this or a higher sequence deleted: if it had a record, the
  // record is gone. False for anything else.
  Result<bool> TxidForgotten(const std::string& txid);
  // The key belonged to a decision that was deleted, and is still remembered.
  Result<bool> KeyForgotten(const std::string& key);
  Result<ForgottenState> Forgotten();
  // Replaces what Forgotten() returns (a group member's snapshot).
  Status RestoreForgotten(const ForgottenState& state);

 private:
  Result<std::optional<DecisionRecord>> FindOne(const std::string& sql, const std::string& key);
  Status ExplainConflict(const DecisionRecord& r);
  // reply: r.reply as stored.
  Status ReplacePending(const DecisionRecord& r, const std::string& reply, bool* replaced);
  // InsertNew, with r.reply as stored.
  Status InsertRow(const DecisionRecord& r, const std::string& reply, bool* inserted);

  sqlite::Database& db_;
};

}  // namespace commitd::coordinator
