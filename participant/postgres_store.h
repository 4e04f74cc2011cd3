// PostgresStore: a participant's Store on a PostgreSQL database, using its
// native prepared transactions (docs/participant.md, "The PostgreSQL backend").
//
//  - Prepare: the prepared record's metadata (coordinator URL, log_id,
//    protocol, participants, deadline) is committed to _commitd_pg_prepared;
//    then, in one transaction on a pooled connection, the branch's procedures
//    run, that metadata row is deleted and a "committed" row is inserted into
//    _commitd_pg_finished, and the transaction ends in
//    PREPARE TRANSACTION 'commitd:<agent>:<txid>'. The vote is yes only once
//    that returned. COMMIT PREPARED thus makes the data, the outcome row and
//    the end of the record durable at once. The metadata row is committed
//    without waiting for its flush: PREPARE TRANSACTION flushes the WAL up to
//    itself, and so that earlier commit too, before the vote is sent.
//  - Commit: COMMIT PREPARED; a gid already gone is a commit done before
//    when _commitd_pg_finished says "committed".
//  - Abort: ROLLBACK PREPARED (a gid already gone is fine unless committed),
//    then the metadata row goes and "aborted" is remembered.
//  - Precommit (3PC): a row in _commitd_pg_precommitted, flushed.
//  - Adopt: a row in _commitd_pg_adopted with the adopting log and its
//    keys, flushed; Load takes the keys from it. (The metadata row cannot
//    be updated: the prepared transaction deleted it and holds its lock.)
//  - Tombstone (a no vote, an abort of a txid with no record here): an
//    "aborted" row of _commitd_pg_finished (a row already there is left as
//    it is), flushed; its aborts are answered with the row's outcome.
//  - Load: the agent's gids in pg_prepared_xacts, each with its metadata row;
//    a metadata row without a prepared transaction is a prepare that never
//    completed (or was rolled back): remembered as aborted.
// Statements other than raw SQL are planned once per session (named prepared
// statements, PgConnection::Pipeline). Row locks are PostgreSQL's: every
// statement waits at most pg_lock_timeout_ms for one, then fails (a prepare
// votes no); a deadlock or serialization failure is a no too. The
// engine's lock table stays empty (PrepareResult::lock_keys).
//
// Thread: the Node's event thread calls every method and runs every job:
// PgPool drives the connections without blocking, and each `done` runs on
// that thread once its job ends (never within the call that submitted it).
// Completions of different transactions may arrive in any order: the
// engine orders only the work of one transaction, and that it never submits
// twice at once.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "common/config.h"
#include "participant/pg_sql.h"
#include "participant/pg_uncertain_gids.h"
#include "participant/pg_pool.h"
#include "participant/procedures.h"
#include "participant/store.h"

namespace commitd::participant {

struct PostgresStoreOptions {
  std::string agent;  // the participant name: part of every gid
  std::string dsn;
  bool allow_raw_sql = false;
  int64_t connections = Config{}.pg_connections;
  int64_t lock_timeout_ms = Config{}.pg_lock_timeout_ms;
  int64_t statement_timeout_ms = Config{}.sql_statement_timeout_ms;
};

class PostgresStore final : public Store {
 public:
  // Connects and checks what an operator can get wrong, naming the cause:
  // a DSN that does not connect, max_prepared_transactions = 0, a role that
  // cannot create the agent's tables, a procedure statement whose table or
  // column is missing or that the role may not run. Creates the _commitd_pg_*
  // tables. `now_ms` stamps outcomes; `events` is the event thread's executor,
  // where the jobs run.
  static Result<std::unique_ptr<PostgresStore>> Open(PostgresStoreOptions options, Procedures procedures,
                                                     std::function<int64_t()> now_ms,
                                                     boost::asio::any_io_executor events);
  ~PostgresStore() override;

  Result<Contents> Load() override;
  Status Validate(const std::vector<wire::Op>& ops) const override;
  std::vector<std::string> ProcedureNames() const override { return procedures_.Names(); }

  void Prepare(action::Prepare prepare,
               std::function<void(const std::string& txid, PrepareResult, Status)> done) override;
  void Commit(const std::string& txid, std::function<void(Status)> done) override;
  void Abort(const std::string& txid, std::function<void(Status)> done) override;
  void Precommit(const std::string& txid, std::function<void(Status)> done) override;
  void Adopt(const std::string& txid, const Adoption& adoption, std::function<void(Status)> done) override;
  void WriteTombstone(const std::string& txid, std::function<void(Result<Outcome>)> done) override;
  // Jobs run on several connections at once: unlike the SQLite store's, a
  // remembered outcome may still be in flight when a later job reads. The
  // engine's memory of recent outcomes covers that window.
  void FindOutcome(const std::string& txid,
                   std::function<void(Result<std::optional<StoredOutcome>>)> done) override;
  void ForgetOutcomesBefore(int64_t cutoff_ms) override;

  // Runs `idle` on the event thread once every job submitted so far has
  // ended (its `done` has run). The store may go only then.
  void WhenIdle(std::function<void()> idle);

 private:
  using PrepareDone = std::function<void(const std::string& txid, PrepareResult, Status)>;
  template <typename T>
  using Awaitable = pg::Awaitable<T>;

  PostgresStore(PostgresStoreOptions options, Procedures procedures, std::function<int64_t()> now_ms);

  // The pool's jobs: each owns its arguments and answers `done`.
  Awaitable<void> PrepareJob(pg::PgLink& link, std::shared_ptr<action::Prepare> prepare, int64_t now_ms,
                             PrepareDone done);
  // COMMIT PREPARED (side_rows: a 3PC or adoption row to remove too) or ROLLBACK PREPARED (remembered at now_ms).
  Awaitable<void> SettleJob(pg::PgLink& link, std::string txid, Outcome outcome, bool side_rows, int64_t now_ms,
                            std::function<void(Status)> done);
  Awaitable<void> PrecommitJob(pg::PgLink& link, std::string txid, std::function<void(Status)> done);
  Awaitable<void> AdoptJob(pg::PgLink& link, std::string txid, Adoption adoption, std::function<void(Status)> done);
  Awaitable<void> TombstoneJob(pg::PgLink& link, std::string txid, int64_t now_ms,
                               std::function<void(Result<Outcome>)> done);
  Awaitable<void> FindOutcomeJob(pg::PgLink& link, std::string txid,
                                 std::function<void(Result<std::optional<StoredOutcome>>)> done);
  Awaitable<void> ForgetOutcomesJob(pg::PgLink& link, int64_t cutoff_ms);

  Awaitable<PrepareResult> RunPrepare(pg::PgLink& link, const std::vector<wire::Op>& ops,
                                      const PreparedRecord& record, int64_t now_ms);
  // A no: the transaction rolled back and the metadata row deleted, on the
  // same connection unless it broke (then on a new one).
  Awaitable<PrepareResult> Refuse(pg::PgLink& link, const std::string& txid, PrepareResult no, std::string reason);
  // An op's statements with their parameters, checked before anything is sent.
  struct OpStatements {
    struct Step {
      const pg::TranslatedSql* sql;  // in translated_, or `raw`
      std::vector<std::optional<std::string>> params;
    };
    std::vector<Step> steps;
    std::optional<int64_t> expect;  // the procedure's expect_changes
    std::string what;               // "procedure 'debit'", "raw SQL"
    std::unique_ptr<pg::TranslatedSql> raw;
  };
  Result<OpStatements> PlanOp(const std::string& txid, const wire::Op& op) const;
  // Checks an op's results (from `first` in results) and collects its rows;
  // a non-empty return is the reason for a no.
  std::string OpResults(const OpStatements& op, const std::vector<pg::PgResult>& results, std::size_t first,
                        nlohmann::json* rows) const;
  // txid's row of _commitd_pg_finished (nullopt: none), on link's connection.
  Awaitable<Result<std::optional<StoredOutcome>>> ReadOutcome(pg::PgLink& link, const std::string& txid);
  // The same, as a prepare's earlier outcome.
  Awaitable<EarlierOutcome> ReadEarlier(pg::PgLink& link, const std::string& txid);

  PostgresStoreOptions options_;
  Procedures procedures_;
  std::map<std::string, std::vector<pg::TranslatedSql>> translated_;  // procedure name -> statements
  std::function<int64_t()> now_ms_;
  // Transactions with a _commitd_pg_precommitted or _commitd_pg_adopted row to remove at commit (event thread).
  std::unordered_set<std::string> side_rows_;
  pg::UncertainGids uncertain_;
  std::unique_ptr<pg::PgPool> pool_;  // last: its connecting threads end first
};

}  // namespace commitd::participant
