#include "participant/postgres_store.h"

#include "common/failpoint.h"
#include "common/log.h"
#include "participant/pg_gid.h"
#include "participant/pg_records.h"
#include "participant/user_statement.h"
#include "common/json_parse.h"

// g++ 12 reports -Wmismatched-new-delete for Asio's recycled coroutine frames
// (common/http_client.cc says why it is a false positive).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace commitd::participant {
namespace {

using pg::PgConnection;
using pg::PgLink;
using pg::PgResult;
using Params = std::vector<std::optional<std::string>>;

std::string Reason(const PgResult& r) {
  const std::string state = r.sqlstate();
  if (r.connection_lost()) return "PostgreSQL unavailable: " + r.error();
  if (state == pg::sqlstate::kLockNotAvailable) return "lock conflict: " + r.error();
  if (state == pg::sqlstate::kSerializationFailure) return "serialization failure: " + r.error();
  if (state == pg::sqlstate::kDeadlockDetected) return "deadlock: " + r.error();
  if (state == pg::sqlstate::kQueryCanceled) return "statement timeout: " + r.error();
  return pg::Describe(r);
}

// The row a pg::kFindOutcomeSql that ran found (nullopt: none).
Result<std::optional<StoredOutcome>> OutcomeRow(const PgResult& r, const std::string& txid) {
  if (r.rows() == 0) return std::optional<StoredOutcome>{};
  Result<Outcome> outcome = ParseStoredOutcome(r.value(0, 0), "_commitd_pg_finished", txid);
  if (!outcome.ok()) return outcome.status();
  return std::optional<StoredOutcome>{StoredOutcome{*outcome, std::strtoll(r.value(0, 1).c_str(), nullptr, 10)}};
}

// What a pg::kFindOutcomeSql answered: its row, or why it could not be read.
Result<std::optional<StoredOutcome>> OutcomeFrom(const PgResult& r, const std::string& txid) {
  if (!r.ok()) return Status::Unavailable(r.connection_lost() ? Reason(r) : "PostgreSQL: " + Reason(r));
  return OutcomeRow(r, txid);
}

// A JSON arg as a text parameter: PostgreSQL infers its type from the statement.
Result<std::optional<std::string>> TextOf(const nlohmann::json& v, const std::string& what) {
  if (v.is_null()) return std::optional<std::string>();
  if (v.is_string()) return std::optional<std::string>(v.get<std::string>());
  if (v.is_boolean()) return std::optional<std::string>(v.get<bool>() ? "1" : "0");
  if (v.is_number()) return std::optional<std::string>(v.dump());
  return Status::InvalidArgument(what + ": must be a string, number, boolean or null");
}

// A result value as JSON: numbers and booleans typed, NULL null, the rest text.
nlohmann::json JsonOf(const PgResult& r, int row, int col) {
  if (r.is_null(row, col)) return nullptr;
  std::string text = r.value(row, col);
  switch (r.column_type(col)) {
    case 16:  // bool
      return text == "t";
    case 20: case 21: case 23: case 26: case 700: case 701: case 1700: {  // int8 int2 int4 oid float4 float8 numeric
      auto parsed = ParseJson(text);
      if (!parsed.is_discarded() && parsed.is_number()) return parsed;
      return text;  // NaN, Infinity
    }
    default:
      return text;
  }
}

// Session settings of every pooled connection. The timeouts bound every
// statement the agent sends: a user statement, and also a metadata row or
// outcome that would otherwise wait for a row a prepared transaction holds.
Status SessionSetup(PgConnection& conn, const PostgresStoreOptions& o) {
  // Statements commit without waiting for their flush unless they ask for
  // it (ExecFlushed: a precommit, a tombstone); PREPARE TRANSACTION and
  // COMMIT PREPARED always flush (see the header).
  PgResult r = conn.Exec("SET synchronous_commit = off; SET statement_timeout = " +
                         std::to_string(o.statement_timeout_ms) + "; SET lock_timeout = " +
                         std::to_string(o.lock_timeout_ms));
  if (!r.ok()) return Status::Unavailable("PostgreSQL session setup: " + pg::Describe(r));
  // Kept by the session for UncertainGids: read now, not before each prepare.
  return conn.ReadBackend();
}

Status CheckServer(PgConnection& conn) {
  if (Status s = conn.ReadBackend(); !s.ok()) return s;
  PgResult r = conn.Exec("SHOW max_prepared_transactions");
  if (!r.ok()) return Status::Unavailable("PostgreSQL: " + pg::Describe(r));
  if (r.rows() == 1 && r.value(0, 0) == "0") {
    return Status::InvalidArgument(
        "PostgreSQL has max_prepared_transactions = 0, so it cannot prepare transactions: set it in "
        "postgresql.conf (at least the agent's pg_connections) and restart the server");
  }
  PgResult t = conn.Exec(pg::kSchema);
  if (!t.ok()) {
    return Status::InvalidArgument("PostgreSQL: cannot create the agent's tables (_commitd_pg_*): " +
                                   pg::Describe(t) + "; the role needs CREATE on the schema, or the tables made by its owner");
  }
  // Adding a column would wait for every prepared transaction that touched
  // the table (they hold its lock until resolved): the operator adds it.
  PgResult columns = conn.Exec(
      "SELECT count(*) FROM information_schema.columns WHERE table_name = '_commitd_pg_prepared' "
      "AND table_schema = current_schema() AND column_name IN ('abort_key', 'commit_check')");
  if (!columns.ok()) return Status::Unavailable("PostgreSQL: " + pg::Describe(columns));
  if (columns.value(0, 0) != "2") {
    return Status::InvalidArgument(
        "PostgreSQL: _commitd_pg_prepared lacks the columns abort_key and commit_check (made by an older "
        "commit-agent): once no commitd: transaction is prepared, run ALTER TABLE _commitd_pg_prepared ADD COLUMN IF "
        "NOT EXISTS abort_key text NOT NULL DEFAULT '', ADD COLUMN IF NOT EXISTS commit_check text NOT NULL DEFAULT ''");
  }
  PgResult own = conn.Exec(
      "SELECT has_table_privilege('_commitd_pg_prepared', 'SELECT,INSERT,UPDATE,DELETE') "
      "AND has_table_privilege('_commitd_pg_precommitted', 'SELECT,INSERT,DELETE') "
      "AND has_table_privilege('_commitd_pg_adopted', 'SELECT,INSERT,UPDATE,DELETE') "
      "AND has_table_privilege('_commitd_pg_finished', 'SELECT,INSERT,DELETE')");
  if (!own.ok() || own.value(0, 0) != "t") {
    return Status::InvalidArgument("PostgreSQL: the role may not read and write the agent's tables (_commitd_pg_*)");
  }
  return Status::Ok();
}

// Parses and plans a statement, then plans it with NULL parameters through
// EXPLAIN, which also checks the role's privileges on every table it names.
Status CheckStatement(PgConnection& conn, const std::string& where, const pg::TranslatedSql& sql) {
  PgResult begin = conn.Exec("BEGIN");
  if (!begin.ok()) return Status::Unavailable("PostgreSQL: " + pg::Describe(begin));
  Status status = Status::Ok();
  PgResult prepared = conn.Prepare("commitd_check", sql.sql);
  if (!prepared.ok()) {
    status = Status::InvalidArgument(where + ": " + pg::Describe(prepared));
  } else {
    std::string explain = "EXPLAIN EXECUTE commitd_check";
    if (!sql.names.empty()) {
      explain += "(";
      for (std::size_t i = 0; i < sql.names.size(); ++i) explain += i ? ", NULL" : "NULL";
      explain += ")";
    }
    PgResult planned = conn.Exec(explain);
    if (!planned.ok()) status = Status::InvalidArgument(where + ": " + pg::Describe(planned));
  }
  conn.Exec("ROLLBACK");
  conn.Exec("DEALLOCATE ALL");
  return status;
}

// Runs one statement (made for the connection: literals are quoted by it) in
// a transaction whose COMMIT waits for its WAL flush, which the session's
// default does not.
pg::Awaitable<Status> ExecFlushed(PgLink& link, std::function<std::string(PgConnection&)> statement) {
  Result<PgConnection*> got = co_await link.Get();
  if (!got.ok()) co_return got.status();
  PgResult r =
      co_await (*got)->ExecAsync("BEGIN; SET LOCAL synchronous_commit = on; " + statement(**got) + "; COMMIT");
  if (r.ok()) co_return Status::Ok();
  // The transaction may still be open on this session; a new one has none.
  if (!r.connection_lost() && (*got)->healthy()) co_await (*got)->ExecAsync("ROLLBACK");
  link.DropIfBroken(r);
  co_return Status::Unavailable("PostgreSQL: " + pg::Describe(r));
}

// ExecFlushed for a statement with parameters, in one round trip: the rows it changed.
pg::Awaitable<Result<int64_t>> ExecFlushedCounting(PgLink& link, pg::PipelinedStatement statement) {
  Result<PgConnection*> got = co_await link.Get();
  if (!got.ok()) co_return got.status();
  constexpr std::size_t kStatement = 2;
  const std::vector<pg::PipelinedStatement> steps{{"BEGIN", {}, /*reuse_plan=*/true},
                                                  {"SET LOCAL synchronous_commit = on", {}, /*reuse_plan=*/true},
                                                  std::move(statement),
                                                  {"COMMIT", {}, /*reuse_plan=*/true}};
  std::vector<PgResult> results = co_await (*got)->PipelineAsync(steps);
  for (const PgResult& r : results) {
    if (r.ok()) continue;
    if (!r.connection_lost() && (*got)->healthy()) co_await (*got)->ExecAsync("ROLLBACK");
    link.DropIfBroken(r);
    co_return Status::Unavailable("PostgreSQL: " + pg::Describe(r));
  }
  co_return results[kStatement].affected();
}

// The adoption of a prepared transaction ($6 its gid); nothing when
// PostgreSQL holds no such gid.
constexpr const char* kAdoptSql =
    "INSERT INTO _commitd_pg_adopted(agent, txid, log_id, abort_key, commit_check) "
    "SELECT $1, $2, $3, $4, $5 WHERE EXISTS "
    "(SELECT 1 FROM pg_prepared_xacts WHERE database = current_database() AND gid = $6) "
    "ON CONFLICT (agent, txid) DO UPDATE SET log_id = EXCLUDED.log_id, abort_key = EXCLUDED.abort_key, "
    "commit_check = EXCLUDED.commit_check";

}  // namespace

PostgresStore::PostgresStore(PostgresStoreOptions options, Procedures procedures, std::function<int64_t()> now_ms)
    : options_(std::move(options)), procedures_(std::move(procedures)), now_ms_(std::move(now_ms)) {}

PostgresStore::~PostgresStore() { pool_.reset(); }

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(PostgresStoreOptions options, Procedures procedures,
                                                           std::function<int64_t()> now_ms,
                                                           boost::asio::any_io_executor events) {
  if (Status s = pg::ValidateAgentName(options.agent); !s.ok()) return s;
  if (options.dsn.empty()) return Status::InvalidArgument("the PostgreSQL DSN is empty");
  std::unique_ptr<PostgresStore> store(
      new PostgresStore(std::move(options), std::move(procedures), std::move(now_ms)));
  const PostgresStoreOptions& o = store->options_;
  for (const std::string& name : store->procedures_.Names()) {
    const Procedure* proc = store->procedures_.Find(name);
    if (proc->callable) {
      return Status::InvalidArgument("procedure '" + name + "': C++ procedures run only on the SQLite backend");
    }
    auto& statements = store->translated_[name];
    for (std::size_t i = 0; i < proc->statements.size(); ++i) {
      const std::string where = "procedure '" + name + "' statement " + std::to_string(i + 1);
      if (Status s = pg::CheckStatementKind(proc->statements[i]); !s.ok()) {
        return Status::InvalidArgument(where + ": " + s.message());
      }
      auto translated = pg::TranslateNamedParameters(proc->statements[i]);
      if (!translated.ok()) return Status::InvalidArgument(where + ": " + translated.status().message());
      statements.push_back(std::move(translated).value());
    }
  }
  auto conn = PgConnection::Connect(o.dsn, "commitd:" + o.agent);
  if (!conn.ok()) return conn.status();
  if (Status s = CheckServer(**conn); !s.ok()) return s;
  for (const auto& [name, statements] : store->translated_) {
    for (std::size_t i = 0; i < statements.size(); ++i) {
      const std::string where = "procedure '" + name + "' statement " + std::to_string(i + 1);
      if (Status s = CheckStatement(**conn, where, statements[i]); !s.ok()) return s;
    }
  }
  store->pool_ = std::make_unique<pg::PgPool>(std::move(events), o.dsn, "commitd:" + o.agent,
                                              static_cast<std::size_t>(o.connections),
                                              [&o](PgConnection& conn) { return SessionSetup(conn, o); });
  return store;
}

Status PostgresStore::Validate(const std::vector<wire::Op>& ops) const {
  for (const wire::Op& op : ops) {
    if (op.is_raw()) {
      if (!options_.allow_raw_sql) return Status::InvalidArgument("raw SQL is not allowed on this agent");
      if (Status s = pg::CheckStatementKind(*op.sql); !s.ok()) return s;
    } else if (!op.procedure || !procedures_.Find(*op.procedure)) {
      return Status::InvalidArgument("unknown procedure '" + op.procedure.value_or("") + "'");
    }
  }
  return Status::Ok();
}

// Runs on the event thread before any work: ends sessions a previous run of
// this agent left (their transactions roll back; prepared ones stay), then
// reads the agent's prepared transactions.
Result<Store::Contents> PostgresStore::Load() {
  auto opened = PgConnection::Connect(options_.dsn, "commitd-load:" + options_.agent);
  if (!opened.ok()) return opened.status();
  PgConnection& conn = **opened;
  conn.Exec(
      "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
      "WHERE application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()",
      {"commitd:" + options_.agent});
  const int64_t now = now_ms_();
  if (Status s = pg::SettleOrphanMetadata(conn, options_.agent, now); !s.ok()) return s;
  auto records = pg::LoadPreparedRecords(conn, options_.agent, now);
  if (!records.ok()) return records.status();
  Contents contents;
  for (pg::PgPreparedRecord& p : *records) {
    if (!p.record.last_error.empty()) {
      // Prepared, but its metadata is gone (deleted by hand): the coordinators
      // of --coordinator are asked, never decided alone.
      log::Error("pg_prepared_without_metadata", {{"txid", p.record.txid}, {"error", p.record.last_error}});
    }
    if (p.record.state == "precommitted" || !p.record.adopted_by.empty()) side_rows_.insert(p.record.txid);
    contents.records.push_back(std::move(p.record));
  }
  return contents;
}

void PostgresStore::Prepare(action::Prepare prepare,
                            std::function<void(const std::string& txid, PrepareResult, Status)> done) {
  auto job = std::make_shared<action::Prepare>(std::move(prepare));
  const int64_t now = now_ms_();
  pool_->Submit([this, job, now, done = std::move(done)](PgLink& link) { return PrepareJob(link, job, now, done); });
}

pg::Awaitable<void> PostgresStore::PrepareJob(PgLink& link, std::shared_ptr<action::Prepare> prepare, int64_t now_ms,
                                              PrepareDone done) {
  PrepareResult result = co_await RunPrepare(link, prepare->ops, prepare->record, now_ms);
  done(prepare->record.txid, std::move(result), Status::Ok());
}

pg::Awaitable<PrepareResult> PostgresStore::Refuse(PgLink& link, const std::string& txid, PrepareResult no,
                                                   std::string reason) {
  no.reason = std::move(reason);
  Result<PgConnection*> c = co_await link.Get();
  if (c.ok()) {
    co_await (*c)->ExecAsync("ROLLBACK");
    const Params params{options_.agent, txid};
    co_await (*c)->ExecAsync("DELETE FROM _commitd_pg_prepared WHERE agent = $1 AND txid = $2", params);
  }
  co_return no;
}

pg::Awaitable<PrepareResult> PostgresStore::RunPrepare(PgLink& link, const std::vector<wire::Op>& ops,
                                                       const PreparedRecord& record, int64_t now_ms) {
  PrepareResult no;
  auto gid = pg::EncodeGid(options_.agent, record.txid);
  if (!gid.ok()) {
    no.reason = gid.status().message();
    no.earlier.kind = EarlierOutcome::Kind::kNone;  // never prepared here: a tombstone at most, and this is a no too
    co_return no;
  }
  co_await uncertain_.RollBack(link);
  if (uncertain_.Contains(*gid)) {
    // An earlier prepare of this txid lost its answer and may still take
    // effect: the retry that rolls it back would roll back this one too.
    no.reason = "an earlier PREPARE TRANSACTION of " + record.txid +
                " lost its answer and may still take effect; it is rolled back first";
    no.earlier = co_await ReadEarlier(link, record.txid);
    co_return no;
  }
  std::vector<OpStatements> planned;
  for (const wire::Op& op : ops) {
    auto statements = PlanOp(record.txid, op);
    if (!statements.ok()) {
      // A no only for a txid that did not finish here: that takes a read of its own.
      no.reason = statements.status().message();
      no.earlier = co_await ReadEarlier(link, record.txid);
      co_return no;
    }
    planned.push_back(std::move(statements).value());
  }
  Result<PgConnection*> got = co_await link.Get();
  if (!got.ok()) {
    no.earlier = {EarlierOutcome::Kind::kUnreadable, Outcome::kAborted,
                  Status::Unavailable("PostgreSQL unavailable: " + got.status().message())};
    co_return no;
  }
  PgConnection& conn = **got;
  const pg::Backend backend = conn.backend();

  // One round trip: the txid's remembered outcome, the metadata row in a
  // transaction of its own, then the transaction and every op's statements,
  // all before one sync (libpq sends at each sync, PostgreSQL answers at each).
  std::vector<pg::PipelinedStatement> pipeline;
  pipeline.push_back({pg::kFindOutcomeSql, {options_.agent, record.txid}, /*reuse_plan=*/true});
  pipeline.push_back({"BEGIN", {}, /*reuse_plan=*/true});
  pipeline.push_back(
      {"INSERT INTO _commitd_pg_prepared(agent, txid, protocol, coordinator, log_id, participants, created_ms, "
       "deadline_ms, abort_key, commit_check) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
       "ON CONFLICT (agent, txid) DO UPDATE SET protocol = EXCLUDED.protocol, coordinator = EXCLUDED.coordinator, "
       "log_id = EXCLUDED.log_id, participants = EXCLUDED.participants, created_ms = EXCLUDED.created_ms, "
       "deadline_ms = EXCLUDED.deadline_ms, abort_key = EXCLUDED.abort_key, commit_check = EXCLUDED.commit_check",
       {options_.agent, record.txid, record.protocol, record.coordinator, record.log_id, wire::ParticipantsText(record.participants),
        std::to_string(record.created_ms), std::to_string(record.deadline_ms), record.abort_key,
        record.commit_check},
       /*reuse_plan=*/true});
  pipeline.push_back({"COMMIT", {}, /*reuse_plan=*/true});
  pipeline.push_back({"BEGIN", {}, /*reuse_plan=*/true});
  constexpr std::size_t kFirstOpStatement = 5;
  for (const OpStatements& op : planned) {
    for (const OpStatements::Step& step : op.steps) {
      pipeline.push_back({step.sql->sql, step.params, /*reuse_plan=*/!op.raw});
    }
  }
  std::vector<PgResult> results = co_await conn.PipelineAsync(pipeline);
  no.earlier = EarlierOutcome::From(OutcomeFrom(results[0], record.txid));
  if (no.earlier.kind != EarlierOutcome::Kind::kNone) {
    link.DropIfBroken(results[0]);
    co_return co_await Refuse(link, record.txid, std::move(no), "");  // rolled back, metadata row deleted
  }
  for (std::size_t i = 1; i < kFirstOpStatement; ++i) {
    if (!results[i].ok()) {
      link.DropIfBroken(results[i]);
      co_return co_await Refuse(link, record.txid, std::move(no), Reason(results[i]));
    }
  }
  PrepareResult yes;
  yes.yes = true;
  yes.earlier = no.earlier;
  std::size_t next = kFirstOpStatement;
  for (const OpStatements& op : planned) {
    nlohmann::json rows = nlohmann::json::array();
    std::string reason = OpResults(op, results, next, &rows);
    next += op.steps.size();
    if (!reason.empty()) {
      for (const PgResult& r : results) link.DropIfBroken(r);
      co_return co_await Refuse(link, record.txid, std::move(no), std::move(reason));
    }
    yes.results.push_back(std::move(rows));
  }
  failpoint::CrashIf("agent.crash_before_prepare_durable");
  // The end of the metadata row and the "committed" outcome, taking effect
  // only if this transaction commits, then PREPARE TRANSACTION: one round trip.
  const std::vector<pg::PipelinedStatement> ending{
      {"WITH m AS (DELETE FROM _commitd_pg_prepared WHERE agent = $1 AND txid = $2) "
       "INSERT INTO _commitd_pg_finished(agent, txid, outcome, at_ms) VALUES ($1, $2, 'committed', $3)",
       {options_.agent, record.txid, std::to_string(now_ms)}, /*reuse_plan=*/true},
      {"PREPARE TRANSACTION " + conn.Literal(*gid), {}}};
  std::vector<PgResult> ended = co_await conn.PipelineAsync(ending);
  // The outcome row's failure, or else PREPARE TRANSACTION's result.
  const bool prepare_ran = ended[0].ok();
  PgResult prepared = std::move(ended[prepare_ran ? 1 : 0]);
  if (prepared.connection_lost()) {
    // It may or may not have been prepared, or may still be preparing on a
    // server process that has not noticed the loss: vote no, and roll it
    // back once it exists (UncertainGids gives up on it only once that
    // process is gone).
    uncertain_.Add(*gid, backend);
    no.reason = Reason(prepared);
    link.DropIfBroken(prepared);
    co_return no;
  }
  if (!prepared.ok()) {
    if (prepare_ran && prepared.sqlstate() == pg::sqlstate::kQueryCanceled) {
      // A cancel (its statement timeout) may end PREPARE TRANSACTION after
      // it took effect: rolled back too (the statement is over).
      uncertain_.Add(*gid, std::nullopt);
    }
    link.DropIfBroken(prepared);
    co_return co_await Refuse(link, record.txid, std::move(no), Reason(prepared));
  }
  if (prepared.command() != "PREPARE") {  // the transaction had failed: PostgreSQL rolled it back
    co_return co_await Refuse(link, record.txid, std::move(no),
                              "PostgreSQL rolled the transaction back instead of preparing it");
  }
  co_return yes;
}

Result<PostgresStore::OpStatements> PostgresStore::PlanOp(const std::string& txid, const wire::Op& op) const {
  OpStatements out;
  if (op.is_raw()) {
    if (!options_.allow_raw_sql) return Status::InvalidArgument("raw SQL is not allowed on this agent");
    if (Status s = pg::CheckStatementKind(*op.sql); !s.ok()) return s;
    out.raw = std::make_unique<pg::TranslatedSql>();
    out.raw->sql = *op.sql;
    Params params;
    for (std::size_t i = 0; i < op.params.size(); ++i) {
      auto text = TextOf(op.params[i], "params[" + std::to_string(i) + "]");
      if (!text.ok()) return text.status();
      params.push_back(*text);
    }
    out.steps.push_back({out.raw.get(), std::move(params)});
    out.what = "raw SQL";
    return out;
  }
  const Procedure* proc = op.procedure ? procedures_.Find(*op.procedure) : nullptr;
  auto it = op.procedure ? translated_.find(*op.procedure) : translated_.end();
  if (!proc || it == translated_.end()) {
    return Status::InvalidArgument("unknown procedure '" + op.procedure.value_or("") + "'");
  }
  out.expect = proc->expect_changes;
  out.what = "procedure '" + proc->name + "'";
  for (const pg::TranslatedSql& sql : it->second) {
    Params params;
    for (const std::string& name : sql.names) {
      if (name == "txid") {
        params.push_back(txid);
        continue;
      }
      auto arg = op.args.find(name);
      if (arg == op.args.end()) return Status::InvalidArgument("missing argument '" + name + "'");
      auto text = TextOf(*arg, "args." + name);
      if (!text.ok()) return text.status();
      params.push_back(*text);
    }
    out.steps.push_back({&sql, std::move(params)});
  }
  return out;
}

std::string PostgresStore::OpResults(const OpStatements& op, const std::vector<PgResult>& results,
                                     std::size_t first, nlohmann::json* rows) const {
  std::size_t returned = 0;
  for (std::size_t i = 0; i < op.steps.size(); ++i) {
    const PgResult& r = results[first + i];
    if (!r.ok()) return Reason(r);
    const std::string command = r.command();
    const bool writes = command == "INSERT" || command == "UPDATE" || command == "DELETE" || command == "MERGE";
    if (op.expect && writes && r.affected() != *op.expect) {
      return op.what + " expected " + std::to_string(*op.expect) + " changed row" + (*op.expect == 1 ? "" : "s") +
             ", got " + std::to_string(r.affected());
    }
    returned += static_cast<std::size_t>(r.rows());
    if (returned > kMaxResultRows) return op.what + " returned more than " + std::to_string(kMaxResultRows) + " rows";
    for (int row = 0; row < r.rows(); ++row) {
      nlohmann::json object = nlohmann::json::object();
      for (int c = 0; c < r.columns(); ++c) object[r.column_name(c)] = JsonOf(r, row, c);
      rows->push_back(std::move(object));
    }
  }
  return "";
}

void PostgresStore::Commit(const std::string& txid, std::function<void(Status)> done) {
  const bool side_rows = side_rows_.erase(txid) != 0;
  pool_->Submit([this, txid, side_rows, done = std::move(done)](PgLink& link) {
    return SettleJob(link, txid, Outcome::kCommitted, side_rows, 0, done);
  });
}

void PostgresStore::Abort(const std::string& txid, std::function<void(Status)> done) {
  const int64_t now = now_ms_();
  side_rows_.erase(txid);
  pool_->Submit([this, txid, now, done = std::move(done)](PgLink& link) {
    return SettleJob(link, txid, Outcome::kAborted, false, now, done);
  });
}

pg::Awaitable<void> PostgresStore::SettleJob(PgLink& link, std::string txid, Outcome outcome, bool side_rows,
                                             int64_t now_ms, std::function<void(Status)> done) {
  Result<PgConnection*> got = co_await link.Get();
  Status s = got.status();
  if (got.ok() && outcome == Outcome::kCommitted) {
    s = co_await pg::CommitPrepared(**got, options_.agent, txid, side_rows);
  } else if (got.ok()) {
    s = co_await pg::RollBackPrepared(**got, options_.agent, txid, now_ms);
  }
  done(s);
}

void PostgresStore::Precommit(const std::string& txid, std::function<void(Status)> done) {
  side_rows_.insert(txid);
  pool_->Submit([this, txid, done = std::move(done)](PgLink& link) { return PrecommitJob(link, txid, done); });
}

pg::Awaitable<void> PostgresStore::PrecommitJob(PgLink& link, std::string txid, std::function<void(Status)> done) {
  auto statement = [&](PgConnection& conn) {
    return "INSERT INTO _commitd_pg_precommitted(agent, txid) VALUES (" + conn.Literal(options_.agent) + ", " +
           conn.Literal(txid) + ") ON CONFLICT DO NOTHING";
  };
  Status s = co_await ExecFlushed(link, statement);
  done(s);
}

void PostgresStore::Adopt(const std::string& txid, const Adoption& adoption, std::function<void(Status)> done) {
  side_rows_.insert(txid);
  pool_->Submit([this, txid, adoption, done = std::move(done)](PgLink& link) {
    return AdoptJob(link, txid, adoption, done);
  });
}

pg::Awaitable<void> PostgresStore::AdoptJob(PgLink& link, std::string txid, Adoption adoption,
                                            std::function<void(Status)> done) {
  const Status absent = Status::NotFound("no prepared transaction '" + txid + "'");
  Result<std::string> gid = pg::EncodeGid(options_.agent, txid);
  if (!gid.ok()) {
    done(absent);  // a txid no gid can name was never prepared here
    co_return;
  }
  pg::PipelinedStatement upsert{
      kAdoptSql, {options_.agent, txid, adoption.log_id, adoption.abort_key, adoption.commit_check, *gid},
      /*reuse_plan=*/true};
  Result<int64_t> changed = co_await ExecFlushedCounting(link, std::move(upsert));
  done(changed.ok() && *changed == 0 ? absent : changed.status());
}

void PostgresStore::WriteTombstone(const std::string& txid, std::function<void(Result<Outcome>)> done) {
  const int64_t now = now_ms_();
  pool_->Submit(
      [this, txid, now, done = std::move(done)](PgLink& link) { return TombstoneJob(link, txid, now, done); });
}

pg::Awaitable<void> PostgresStore::TombstoneJob(PgLink& link, std::string txid, int64_t now_ms,
                                                std::function<void(Result<Outcome>)> done) {
  // pg_current_xact_id() gives the transaction an id, so its COMMIT is
  // written and flushed even when the INSERT finds a row (which may itself
  // have been committed unflushed) and writes nothing.
  auto statement = [&](PgConnection& conn) {
    return "SELECT pg_current_xact_id(); INSERT INTO _commitd_pg_finished(agent, txid, outcome, at_ms) VALUES (" +
           conn.Literal(options_.agent) + ", " + conn.Literal(txid) + ", 'aborted', " + std::to_string(now_ms) +
           ") ON CONFLICT (agent, txid) DO NOTHING";
  };
  Status s = co_await ExecFlushed(link, statement);
  if (!s.ok()) {
    done(s);
    co_return;
  }
  Result<std::optional<StoredOutcome>> found = co_await ReadOutcome(link, txid);
  Result<Outcome> held = Status::Internal("the tombstone of " + txid + " was written but cannot be read");
  if (!found.ok()) {
    held = found.status();
  } else if (found->has_value()) {
    held = (*found)->outcome;
  }
  done(std::move(held));
}

pg::Awaitable<Result<std::optional<StoredOutcome>>> PostgresStore::ReadOutcome(PgLink& link,
                                                                              const std::string& txid) {
  Result<PgConnection*> got = co_await link.Get();
  if (!got.ok()) co_return Status::Unavailable("PostgreSQL unavailable: " + got.status().message());
  const Params params{options_.agent, txid};
  PgResult r = co_await (*got)->ExecAsync(pg::kFindOutcomeSql, params);
  link.DropIfBroken(r);
  co_return OutcomeFrom(r, txid);
}

pg::Awaitable<EarlierOutcome> PostgresStore::ReadEarlier(PgLink& link, const std::string& txid) {
  Result<std::optional<StoredOutcome>> read = co_await ReadOutcome(link, txid);
  co_return EarlierOutcome::From(read);
}

void PostgresStore::FindOutcome(const std::string& txid,
                                std::function<void(Result<std::optional<StoredOutcome>>)> done) {
  pool_->Submit([this, txid, done = std::move(done)](PgLink& link) { return FindOutcomeJob(link, txid, done); });
}

pg::Awaitable<void> PostgresStore::FindOutcomeJob(PgLink& link, std::string txid,
                                                  std::function<void(Result<std::optional<StoredOutcome>>)> done) {
  done(co_await ReadOutcome(link, txid));
}

void PostgresStore::ForgetOutcomesBefore(int64_t cutoff_ms) {
  pool_->Submit([this, cutoff_ms](PgLink& link) { return ForgetOutcomesJob(link, cutoff_ms); });
}

pg::Awaitable<void> PostgresStore::ForgetOutcomesJob(PgLink& link, int64_t cutoff_ms) {
  co_await uncertain_.RollBack(link);  // also when no prepare comes to do it
  Result<PgConnection*> got = co_await link.Get();
  if (!got.ok()) co_return;
  const Params params{options_.agent, std::to_string(cutoff_ms)};
  PgResult r =
      co_await (*got)->ExecAsync("DELETE FROM _commitd_pg_finished WHERE agent = $1 AND at_ms < $2", params);
  link.DropIfBroken(r);
}

void PostgresStore::WhenIdle(std::function<void()> idle) { pool_->WhenIdle(std::move(idle)); }

}  // namespace commitd::participant
