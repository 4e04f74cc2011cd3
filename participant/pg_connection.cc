#include "participant/pg_connection.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include <boost/asio/async_result.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace commitd::participant::pg {
namespace {

std::string Trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// libpq's view of text parameters: pointers into params (which must outlive it); NULL for nullopt.
std::vector<const char*> ParamValues(const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return values;
}

// PostgreSQL's to_char of a backend_start in UTC: "YYYY-MM-DDTHH:MM:SS.ffffffZ", digits elsewhere.
bool IsBackendStartText(std::string_view t) {
  constexpr std::string_view kShape = "0000-00-00T00:00:00.000000Z";
  if (t.size() != kShape.size()) return false;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const bool digit = t[i] >= '0' && t[i] <= '9';
    if (kShape[i] == '0' ? !digit : t[i] != kShape[i]) return false;
  }
  return true;
}

}  // namespace

PgResult::PgResult(PGresult* r, std::string connection_error) : result_(r) {
  if (!r) {
    connection_lost_ = true;
    connection_error_ = std::move(connection_error);
    return;
  }
  if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    // No SQLSTATE: libpq's own error (the connection went away). Class 08:
    // connection exceptions; 57P01-57P03: the server is shutting down or restarting.
    std::string_view s = state ? state : "";
    connection_lost_ = s.empty() || s.substr(0, 2) == "08" || s == "57P01" || s == "57P02" || s == "57P03";
    if (connection_lost_) connection_error_ = connection_error.empty() ? Trimmed(PQresultErrorMessage(r)) : connection_error;
  }
}

bool PgResult::ok() const {
  if (!result_) return false;
  ExecStatusType s = PQresultStatus(result_.get());
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

std::string PgResult::sqlstate() const {
  if (!result_ || ok()) return "";
  const char* state = PQresultErrorField(result_.get(), PG_DIAG_SQLSTATE);
  return state ? state : "";
}

std::string PgResult::error() const {
  if (ok()) return "";
  if (!result_) return connection_error_.empty() ? "no result from PostgreSQL" : connection_error_;
  const char* primary = PQresultErrorField(result_.get(), PG_DIAG_MESSAGE_PRIMARY);
  std::string text = primary ? primary : Trimmed(PQresultErrorMessage(result_.get()));
  if (text.empty()) text = connection_error_;
  if (const char* detail = PQresultErrorField(result_.get(), PG_DIAG_MESSAGE_DETAIL)) {
    text += std::string(" (") + detail + ")";
  }
  return text;
}

int PgResult::rows() const { return result_ ? PQntuples(result_.get()) : 0; }
int PgResult::columns() const { return result_ ? PQnfields(result_.get()) : 0; }
std::string PgResult::column_name(int c) const { return PQfname(result_.get(), c); }
Oid PgResult::column_type(int c) const { return PQftype(result_.get(), c); }
bool PgResult::is_null(int r, int c) const { return PQgetisnull(result_.get(), r, c) != 0; }
std::string PgResult::value(int r, int c) const {
  return std::string(PQgetvalue(result_.get(), r, c), static_cast<std::size_t>(PQgetlength(result_.get(), r, c)));
}

std::string PgResult::command() const {
  if (!result_) return "";
  std::string status = PQcmdStatus(result_.get());
  return status.substr(0, status.find(' '));
}

int64_t PgResult::affected() const {
  if (!result_) return 0;
  const char* n = PQcmdTuples(result_.get());
  return (n && *n) ? std::strtoll(n, nullptr, 10) : 0;
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& dsn,
                                                            const std::string& application_name) {
  // expand_dbname=1: the dsn's keys replace those before it (defaults: a
  // connection to a server that went silent, without a reset, is found dead
  // by its keepalives within about 25 s); those after it replace the dsn's.
  // GSSAPI encryption is off: libpq may hold decrypted bytes of it that the
  // socket does not show, and the pool waits on the socket (TLS is fine:
  // what OpenSSL holds is asked for, NextResult).
  const char* keys[] = {"connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count", "dbname",
                        "application_name", "client_encoding", "gssencmode", nullptr};
  const char* values[] = {"5", "10", "5", "3", dsn.c_str(), application_name.c_str(), "UTF8", "disable", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  if (!conn) return Status::Unavailable("PostgreSQL: out of memory creating a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return Status::Unavailable("cannot connect to PostgreSQL: " + message);
  }
  // Notices and warnings (e.g. "relation already exists, skipping") are not errors: not printed.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() {
  socket_.reset();  // the duplicate: libpq closes its own
  PQfinish(conn_);
}

bool PgConnection::healthy() const { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }

Backend PgConnection::backend() const { return {PQbackendPID(conn_), backend_start_, cluster_}; }

Status PgConnection::ReadBackend() {
  PgResult r = Exec(
      "SELECT pg_backend_pid(), (SELECT to_char(backend_start AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM pg_stat_activity WHERE pid = pg_backend_pid())");
  if (r.connection_lost()) return Status::Unavailable("PostgreSQL: " + r.error());
  if (!r.ok() || r.rows() != 1) {
    return Status::Unavailable("PostgreSQL: cannot read the session's server process: " + r.error());
  }
  // A pooler (PgBouncer) answers the connection with a process id of its
  // own, and may run each transaction on another server process: a
  // statement whose outcome is lost could not be traced to its process.
  const std::string server_pid = r.value(0, 0);
  if (server_pid != std::to_string(PQbackendPID(conn_))) {
    return Status::InvalidArgument(
        "PostgreSQL: this session is served by process " + server_pid + ", but the connection names process " +
        std::to_string(PQbackendPID(conn_)) +
        ": a connection pooler (such as PgBouncer) stands between the agent and PostgreSQL. Connect the agent to "
        "PostgreSQL itself: a prepare whose answer is lost is settled by looking for its server process");
  }
  backend_start_.reset();
  if (!r.is_null(0, 1) && IsBackendStartText(r.value(0, 1))) backend_start_ = BackendStart{r.value(0, 1)};
  // Apart: a role refused the function (not so by default) still serves.
  PgResult cluster = Exec("SELECT system_identifier::text FROM pg_control_system()");
  if (cluster.connection_lost()) return Status::Unavailable("PostgreSQL: " + cluster.error());
  cluster_.reset();
  if (cluster.ok() && cluster.rows() == 1 && !cluster.is_null(0, 0)) cluster_ = cluster.value(0, 0);
  return Status::Ok();
}

std::string PgConnection::database() const {
  const char* db = PQdb(conn_);
  return db ? db : "";
}

PgResult PgConnection::Wrap(PGresult* r) { return PgResult(r, r ? "" : Trimmed(PQerrorMessage(conn_))); }

PgResult PgConnection::Exec(const std::string& sql) { return Wrap(PQexec(conn_, sql.c_str())); }

PgResult PgConnection::Exec(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
  const std::vector<const char*> values = ParamValues(params);
  return Wrap(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                           nullptr, 0));
}

std::string PgConnection::PlanName(const std::string& sql, bool* fresh) {
  auto [it, inserted] = plans_.try_emplace(sql);
  // A new name each time: a plan dropped after an error may still exist on the server.
  if (inserted) it->second = "commitd_" + std::to_string(next_plan_++);
  *fresh = inserted;
  return it->second;
}

std::vector<PgResult> PgConnection::Pipeline(const std::vector<PipelinedStatement>& statements) {
  return Wait(PipelineAsync(statements));
}

bool PgConnection::WatchSocket(const boost::asio::any_io_executor& executor) {
  if (socket_ && socket_->get_executor() == executor) return true;
  socket_.reset();
  if (PQsetnonblocking(conn_, 1) != 0) return false;
  const int fd = PQsocket(conn_);
  // Close-on-exec as libpq's own: a process embedding the agent may start others.
  const int watched = fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (watched < 0) return false;
  socket_.emplace(executor);
  boost::system::error_code error;
  socket_->assign(watched, error);
  if (error) {
    ::close(watched);
    socket_.reset();
    return false;
  }
  return true;
}

bool PgConnection::TlsHoldsInput() const {
  if (!PQsslInUse(conn_)) return false;
  auto* tls = static_cast<SSL*>(PQsslStruct(conn_, "OpenSSL"));
  return tls != nullptr && SSL_pending(tls) > 0;
}

namespace {

// Waits until the socket is ready for `wait`; false when the wait failed.
Awaitable<bool> Ready(boost::asio::posix::stream_descriptor& socket,
                      boost::asio::posix::stream_descriptor::wait_type wait) {
  boost::system::error_code error;
  co_await socket.async_wait(wait, boost::asio::redirect_error(boost::asio::use_awaitable, error));
  co_return !error;
}

// Waits until the socket can be read or written, whichever comes first.
Awaitable<bool> ReadableOrWritable(boost::asio::posix::stream_descriptor& socket) {
  using Socket = boost::asio::posix::stream_descriptor;
  // The first wait to end answers and cancels the other; the other's end
  // then finds the handler gone (and touches only the race).
  auto wait_both = [&socket](auto handler) {
    using Handler = decltype(handler);
    auto race = std::make_shared<std::optional<Handler>>(std::move(handler));
    auto finish = [race, &socket](const boost::system::error_code& error) {
      if (!*race) return;
      Handler answer = std::move(**race);
      race->reset();
      boost::system::error_code ignored;
      socket.cancel(ignored);
      std::move(answer)(!error);
    };
    socket.async_wait(Socket::wait_read, finish);
    socket.async_wait(Socket::wait_write, finish);
  };
  // Named, not a temporary of the co_await expression: g++ 12 destroys a closure there twice.
  const bool ready =
      co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(bool)>(wait_both,
                                                                                           boost::asio::use_awaitable);
  co_return ready;
}

}  // namespace

Awaitable<bool> PgConnection::Flush() {
  for (;;) {
    const int left = PQflush(conn_);
    if (left == 0) co_return true;
    if (left < 0) co_return false;
    // The server may be waiting for its answers to be read before it reads
    // more: whatever comes is taken in, so that neither side waits on the other.
    const bool ready = co_await ReadableOrWritable(*socket_);
    if (!ready) co_return false;
    if (PQconsumeInput(conn_) == 0) co_return false;
  }
}

Awaitable<PGresult*> PgConnection::NextResult() {
  while (PQisBusy(conn_)) {
    // Bytes OpenSSL has read off the socket but libpq has not taken make no
    // readiness of their own.
    bool ready = TlsHoldsInput();
    if (!ready) ready = co_await Ready(*socket_, boost::asio::posix::stream_descriptor::wait_read);
    if (!ready || PQconsumeInput(conn_) == 0) {
      broken_ = true;
      co_return nullptr;
    }
  }
  co_return PQgetResult(conn_);
}

Awaitable<PGresult*> PgConnection::StatementResult() {
  PGresult* r = co_await NextResult();
  if (!r) co_return nullptr;
  PGresult* end = co_await NextResult();
  if (end) {
    PQclear(end);
    PQclear(r);
    co_return nullptr;
  }
  co_return r;
}

Awaitable<PgResult> PgConnection::Collect() {
  const bool flushed = co_await Flush();
  if (!flushed) {
    broken_ = true;
    co_return Wrap(nullptr);
  }
  PgResult answer;
  bool any = false;
  for (;;) {
    PGresult* r = co_await NextResult();
    if (!r) break;
    PgResult result = Wrap(r);
    // The first failure stands: later statements of the string did not run.
    if (!any || answer.ok()) answer = std::move(result);
    any = true;
  }
  // Lost before the last result: what ran of the string is unknown.
  if (!any || broken_ || PQstatus(conn_) != CONNECTION_OK) {
    broken_ = true;
    co_return Wrap(nullptr);
  }
  co_return answer;
}

Awaitable<PgResult> PgConnection::ExecAsync(const std::string& sql) {
  const boost::asio::any_io_executor executor = co_await boost::asio::this_coro::executor;
  if (!WatchSocket(executor) || PQsendQuery(conn_, sql.c_str()) != 1) {
    broken_ = true;
    co_return Wrap(nullptr);
  }
  co_return co_await Collect();
}

Awaitable<PgResult> PgConnection::ExecAsync(const std::string& sql,
                                            const std::vector<std::optional<std::string>>& params) {
  const std::vector<const char*> values = ParamValues(params);
  const boost::asio::any_io_executor executor = co_await boost::asio::this_coro::executor;
  if (!WatchSocket(executor) ||
      PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                        nullptr, 0) != 1) {
    broken_ = true;
    co_return Wrap(nullptr);
  }
  co_return co_await Collect();
}

Awaitable<std::vector<PgResult>> PgConnection::PipelineAsync(const std::vector<PipelinedStatement>& statements) {
  std::vector<PgResult> out;
  out.reserve(statements.size());
  auto lost = [&] {
    const std::string error = Trimmed(PQerrorMessage(conn_));
    while (out.size() < statements.size()) out.emplace_back(nullptr, error.empty() ? "pipeline failed" : error);
    broken_ = true;
    plans_.clear();
    return std::move(out);
  };
  // Whether statement i was sent with its plan first.
  std::vector<bool> planned(statements.size(), false);
  const boost::asio::any_io_executor executor = co_await boost::asio::this_coro::executor;
  if (!WatchSocket(executor)) co_return lost();
  if (PQenterPipelineMode(conn_) != 1) co_return lost();
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const PipelinedStatement& s = statements[i];
    const std::vector<const char*> values = ParamValues(s.params);
    const int n = static_cast<int>(values.size());
    int sent = 0;
    if (s.reuse_plan) {
      bool fresh = false;
      const std::string name = PlanName(s.sql, &fresh);
      planned[i] = fresh;
      if (fresh && PQsendPrepare(conn_, name.c_str(), s.sql.c_str(), 0, nullptr) != 1) co_return lost();
      sent = PQsendQueryPrepared(conn_, name.c_str(), n, values.data(), nullptr, nullptr, 0);
    } else {
      sent = PQsendQueryParams(conn_, s.sql.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0);
    }
    if (sent != 1) co_return lost();
  }
  if (PQpipelineSync(conn_) != 1) co_return lost();
  const bool flushed = co_await Flush();
  if (!flushed) co_return lost();
  // Each statement: its plan's result and a null if sent with it, then its
  // result and a null; then the sync's PGRES_PIPELINE_SYNC result.
  for (std::size_t i = 0; i < statements.size(); ++i) {
    PgResult plan;
    if (planned[i]) {
      PGresult* p = co_await StatementResult();
      if (!p) co_return lost();
      plan = Wrap(p);
    }
    PGresult* r = co_await StatementResult();
    if (!r) co_return lost();
    PgResult result = Wrap(r);
    if (planned[i] && !plan.ok()) {
      // Not planned (a bad statement, or an earlier statement failed): planned again on next use.
      plans_.erase(statements[i].sql);
      if (!plan.sqlstate().empty() || plan.connection_lost()) result = std::move(plan);
    } else if (statements[i].reuse_plan && result.sqlstate() == sqlstate::kFeatureNotSupported) {
      // "cached plan must not change result type": a table changed under the plan.
      plans_.erase(statements[i].sql);
    }
    out.push_back(std::move(result));
  }
  PGresult* sync = co_await NextResult();
  const bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  if (!synced) co_return lost();
  if (PQexitPipelineMode(conn_) != 1) broken_ = true;
  co_return out;
}

PgResult PgConnection::Prepare(const std::string& name, const std::string& sql) {
  return Wrap(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr));
}

std::string PgConnection::Literal(std::string_view text) {
  char* quoted = PQescapeLiteral(conn_, text.data(), text.size());
  if (!quoted) return "''";
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

std::string Describe(const PgResult& r) {
  std::string state = r.sqlstate();
  return state.empty() ? r.error() : state + ": " + r.error();
}

}  // namespace commitd::participant::pg
