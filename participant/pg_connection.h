// A small RAII wrapper of libpq: one connection (PgConnection) and one
// result (PgResult). Statements run with text parameters and text results.
// A connection runs statements blocking (Exec, Pipeline: at start, offline
// tools) or as coroutines on an Asio executor (ExecAsync, PipelineAsync:
// the agent's pool, which must not block its event thread).
//
// Thread: a connection is used by one thread at a time (the agent's event
// thread, or the thread that opened it), and by one operation at a time.
#pragma once

#include <libpq-fe.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without including it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/run_blocking.h"
#include "common/status.h"

namespace commitd::participant::pg {

template <typename T>
using Awaitable = boost::asio::awaitable<T>;

// Some SQLSTATEs the participant tells apart (PostgreSQL, Appendix A).
namespace sqlstate {
constexpr std::string_view kSerializationFailure = "40001";
constexpr std::string_view kDeadlockDetected = "40P01";
constexpr std::string_view kLockNotAvailable = "55P03";
constexpr std::string_view kQueryCanceled = "57014";  // statement_timeout
constexpr std::string_view kUndefinedObject = "42704";  // e.g. no prepared transaction with that gid
constexpr std::string_view kInsufficientPrivilege = "42501";
constexpr std::string_view kUndefinedTable = "42P01";
constexpr std::string_view kUndefinedColumn = "42703";
constexpr std::string_view kFeatureNotSupported = "0A000";  // e.g. "cached plan must not change result type"
}  // namespace sqlstate

class PgResult {
 public:
  PgResult() = default;
  // Takes ownership of r (may be null: the connection failed).
  PgResult(PGresult* r, std::string connection_error);

  // The statement succeeded (a command or rows).
  bool ok() const;
  // No result at all, or a connection-class error: the server may not have
  // seen (or finished) the statement.
  bool connection_lost() const { return connection_lost_; }
  // "" when ok or connection_lost.
  std::string sqlstate() const;
  // PostgreSQL's primary message (and detail), or libpq's.
  std::string error() const;

  int rows() const;
  int columns() const;
  std::string column_name(int c) const;
  Oid column_type(int c) const;
  bool is_null(int r, int c) const;
  std::string value(int r, int c) const;
  // "UPDATE 1" -> "UPDATE"; rows affected by INSERT/UPDATE/DELETE/MERGE (0 for others).
  std::string command() const;
  int64_t affected() const;

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> result_;
  bool connection_lost_ = false;
  std::string connection_error_;
};

// When PostgreSQL started a server process (pg_stat_activity.backend_start),
// as UTC text in ISO 8601 ("2025-01-02T03:04:05.678901Z"): PostgreSQL reads
// it back as the same instant whatever a session's DateStyle and TimeZone.
struct BackendStart {
  std::string utc;
};

// A server process. PostgreSQL reuses the pid of one that ended; its start
// tells a later process with that pid apart (unknown: the pid alone). Its
// cluster (pg_control_system's system_identifier, which a physical replica
// shares with its primary) tells whether a session of another connection
// can look for it at all: a multi-host DSN may connect elsewhere.
struct Backend {
  int pid = 0;
  std::optional<BackendStart> start;
  std::optional<std::string> cluster;
};

// One statement of a pipeline (PgConnection::Pipeline).
struct PipelinedStatement {
  std::string sql;
  std::vector<std::optional<std::string>> params;  // $1..$n, text; nullopt is NULL
  // Parsed and planned once per connection (a named prepared statement),
  // then only bound and run: for the agent's fixed statements and the
  // procedures', never for raw SQL (one name each would pile up).
  bool reuse_plan = false;
};

class PgConnection {
 public:
  // Connects with `dsn` (a libpq conninfo string or URI); `application_name`
  // names the agent's sessions in pg_stat_activity. Unavailable with libpq's
  // message when the server cannot be reached or refuses the login.
  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& dsn, const std::string& application_name);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  bool healthy() const;
  std::string database() const;  // the database connected to
  // The server process serving this session, its start as ReadBackend
  // found it; pid 0 once the connection is lost, so read it before a
  // statement whose outcome may be uncertain.
  Backend backend() const;
  // Reads this session's server process for backend(): when PostgreSQL
  // started it, left unknown when pg_stat_activity does not tell it, and its
  // cluster's identifier, left unknown when the role may not read it.
  // Unavailable when the connection is lost; InvalidArgument when the
  // process serving the session is not the one the connection names (a
  // pooler in between).
  Status ReadBackend();
  // A statement without parameters.
  PgResult Exec(const std::string& sql);
  // A statement with text parameters ($1..$n); nullopt is NULL.
  PgResult Exec(const std::string& sql, const std::vector<std::optional<std::string>>& params);
  // Sends every statement (libpq's pipeline mode) before reading any
  // result, then one sync: one round trip. One result per statement, in
  // order; after an error the later statements are not run (not ok, no
  // SQLSTATE). Statements outside an explicit transaction share one implicit
  // transaction.
  // A pipeline that cannot be finished leaves the connection unhealthy.
  std::vector<PgResult> Pipeline(const std::vector<PipelinedStatement>& statements);

  // The same without blocking: the awaiting coroutine's thread goes on with
  // other work while PostgreSQL answers. Arguments are read until the
  // operation ends. ExecAsync(sql) runs several statements separated by ';'
  // (the simple protocol) and answers the first failure or else the last
  // result, as Exec does.
  Awaitable<PgResult> ExecAsync(const std::string& sql);
  Awaitable<PgResult> ExecAsync(const std::string& sql, const std::vector<std::optional<std::string>>& params);
  Awaitable<std::vector<PgResult>> PipelineAsync(const std::vector<PipelinedStatement>& statements);
  // Runs an operation of this connection to its end, blocking, on an event
  // loop of the connection's own (offline tools: commitctl).
  template <typename T>
  T Wait(Awaitable<T> operation);
  // Parses and plans sql as the prepared statement `name` (checks tables and columns); outside Pipeline's plans.
  PgResult Prepare(const std::string& name, const std::string& sql);
  // A string as a SQL literal ('it''s').
  std::string Literal(std::string_view text);

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  PgResult Wrap(PGresult* r);
  // Non-blocking I/O on the awaiting coroutine's executor. Each false: the
  // connection is lost (and marked broken).
  bool WatchSocket(const boost::asio::any_io_executor& executor);
  Awaitable<bool> Flush();
  // TLS has decrypted bytes libpq has not taken in yet.
  bool TlsHoldsInput() const;
  // The next result once libpq has it whole (null: none left, or lost).
  Awaitable<PGresult*> NextResult();
  // In pipeline mode, one statement's result and the null that ends it
  // (null: either is missing, the connection lost or out of step).
  Awaitable<PGresult*> StatementResult();
  // The results of a statement sent with PQsendQuery*, until libpq's null.
  Awaitable<PgResult> Collect();
  // The name of sql's prepared statement on this session; `fresh` when it
  // must be sent first.
  std::string PlanName(const std::string& sql, bool* fresh);
  PGconn* conn_;
  bool broken_ = false;  // a pipeline was left unfinished
  std::optional<BackendStart> backend_start_;
  std::optional<std::string> cluster_;
  // sql -> name of its prepared statement on this session (reuse_plan).
  std::unordered_map<std::string, std::string> plans_;
  uint64_t next_plan_ = 0;
  // Wait's event loop, made on first use. Before socket_: the socket may be bound to it.
  std::unique_ptr<boost::asio::io_context> own_io_;
  // A duplicate of libpq's socket, watched by Asio: libpq may close its own
  // when the connection drops, and a number it frees can be reused at once.
  std::optional<boost::asio::posix::stream_descriptor> socket_;
};

template <typename T>
T PgConnection::Wait(Awaitable<T> operation) {
  if (!own_io_) own_io_ = std::make_unique<boost::asio::io_context>();
  return RunBlocking(*own_io_, std::move(operation));
}

// "SQLSTATE: message" of a failed result, for reasons and logs.
std::string Describe(const PgResult& r);

}  // namespace commitd::participant::pg
