// PgWorkers: the threads that run a PostgreSQL participant's statements, each
// with its own connection (the connection pool). Jobs run in submission order
// as workers free up, several at once; a job's connection is opened on first
// use and opened again after it broke, so PostgreSQL restarting costs the
// jobs that ran while it was down, not the agent.
//
// Thread: Submit() and Drain() from any thread (the Node's event thread);
// jobs run on the worker threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "participant/pg_connection.h"

namespace commitd::participant::pg {

// A worker's connection as a job sees it.
class PgLink {
 public:
  // The open connection, opening it first if needed (then `setup` runs on
  // it); Unavailable with the reason when PostgreSQL cannot be reached.
  Result<PgConnection*> Get();
  // Closes the connection if a statement found it broken.
  void DropIfBroken(const PgResult& r);
  void DropIfBroken();

 private:
  friend class PgWorkers;
  std::string dsn_;
  std::string application_name_;
  std::function<Status(PgConnection&)> setup_;
  std::unique_ptr<PgConnection> conn_;
};

class PgWorkers {
 public:
  using Job = std::function<void(PgLink&)>;
  // `setup` runs on every new connection (session settings); a failure closes it.
  PgWorkers(std::string dsn, std::string application_name, std::size_t threads,
            std::function<Status(PgConnection&)> setup);
  // Runs what is queued, then joins the threads.
  ~PgWorkers();
  PgWorkers(const PgWorkers&) = delete;
  PgWorkers& operator=(const PgWorkers&) = delete;

  void Submit(Job job);
  // Blocks until every job submitted so far has run.
  void Drain();

 private:
  void Run(PgLink& link);

  std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable idle_;
  std::deque<Job> queue_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::unique_ptr<PgLink>> links_;
  std::vector<std::thread> threads_;
};

}  // namespace commitd::participant::pg
