// PgPool: a PostgreSQL participant's connections, driven without blocking
// from the thread that runs their executor (the agent's event thread). Jobs
// are coroutines; they start in submission order as connections free up,
// several at once. A job's connection is opened on first use and opened
// again after it broke, so PostgreSQL restarting costs the jobs that ran
// while it was down, not the agent. Opening one blocks (libpq's connect
// and the session's setup), so it runs on threads of the pool's own, one
// per connection: a server that does not answer delays each job by one
// connect timeout, not by one per job queued before it.
//
// Thread: Submit() and WhenIdle() on the executor's thread, where the jobs
// run; the connecting threads only open connections and hand them over.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/status.h"
#include "participant/pg_connection.h"

namespace commitd::participant::pg {

class PgPool;

// A pooled connection as a job sees it.
class PgLink {
 public:
  // The open connection, opening it first if needed (then the pool's setup
  // runs on it); Unavailable with the reason when PostgreSQL cannot be reached.
  Awaitable<Result<PgConnection*>> Get();
  // Closes the connection if a statement found it broken.
  void DropIfBroken(const PgResult& r);
  void DropIfBroken();

 private:
  friend class PgPool;
  explicit PgLink(PgPool& pool) : pool_(pool) {}
  PgPool& pool_;
  std::unique_ptr<PgConnection> conn_;
};

class PgPool {
 public:
  // Returns the job's coroutine, which must own what it uses (a coroutine
  // taking its arguments by value; not a lambda coroutine with captures,
  // which would outlive the lambda).
  using Job = std::function<Awaitable<void>(PgLink&)>;
  // Runs on every new connection (session settings), on a connecting
  // thread; a failure closes it.
  using Setup = std::function<Status(PgConnection&)>;

  PgPool(boost::asio::any_io_executor executor, std::string dsn, std::string application_name,
         std::size_t connections, Setup setup);
  // Only once idle (WhenIdle): a running job would resume on a pool gone.
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  void Submit(Job job);
  // Runs `idle` on the executor once every job submitted so far has ended.
  void WhenIdle(std::function<void()> idle);

 private:
  friend class PgLink;
  void StartJobs();
  void JobEnded(PgLink& link);
  // Opens a connection and runs the setup on a connecting thread.
  Awaitable<Result<std::unique_ptr<PgConnection>>> Open();

  boost::asio::any_io_executor executor_;
  const std::string dsn_;
  const std::string application_name_;
  const Setup setup_;
  std::deque<Job> queue_;
  std::vector<std::unique_ptr<PgLink>> links_;
  std::vector<PgLink*> free_;
  std::size_t running_ = 0;
  std::vector<std::function<void()>> idle_waiters_;
  boost::asio::thread_pool connecting_;  // last: joined first
};

}  // namespace commitd::participant::pg
