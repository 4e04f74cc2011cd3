#include "participant/pg_pool.h"

#include <algorithm>
#include <optional>

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.h"

namespace commitd::participant::pg {
namespace {

// A pool has at least one connection, whatever it is asked for.
std::size_t PoolSize(std::size_t asked) { return std::max<std::size_t>(asked, 1); }

}  // namespace

Awaitable<Result<PgConnection*>> PgLink::Get() {
  if (conn_ && conn_->healthy()) co_return conn_.get();
  conn_.reset();
  Result<std::unique_ptr<PgConnection>> opened = co_await pool_.Open();
  if (!opened.ok()) co_return opened.status();
  conn_ = std::move(opened).value();
  co_return conn_.get();
}

void PgLink::DropIfBroken(const PgResult& r) {
  if (r.connection_lost() || (conn_ && !conn_->healthy())) conn_.reset();
}

void PgLink::DropIfBroken() {
  if (conn_ && !conn_->healthy()) conn_.reset();
}

PgPool::PgPool(boost::asio::any_io_executor executor, std::string dsn, std::string application_name,
               std::size_t connections, Setup setup)
    : executor_(std::move(executor)),
      dsn_(std::move(dsn)),
      application_name_(std::move(application_name)),
      setup_(std::move(setup)),
      connecting_(PoolSize(connections)) {
  for (std::size_t i = 0; i < PoolSize(connections); ++i) {
    links_.push_back(std::unique_ptr<PgLink>(new PgLink(*this)));
    free_.push_back(links_.back().get());
  }
}

PgPool::~PgPool() { connecting_.join(); }

void PgPool::Submit(Job job) {
  queue_.push_back(std::move(job));
  StartJobs();
}

void PgPool::WhenIdle(std::function<void()> idle) {
  if (queue_.empty() && running_ == 0) {
    boost::asio::post(executor_, std::move(idle));
    return;
  }
  idle_waiters_.push_back(std::move(idle));
}

void PgPool::StartJobs() {
  while (!queue_.empty() && !free_.empty()) {
    PgLink* link = free_.back();
    // Made before the books change: making it may throw (its frame).
    Awaitable<void> started = queue_.front()(*link);
    free_.pop_back();
    queue_.pop_front();
    ++running_;
    boost::asio::co_spawn(executor_, std::move(started), [this, link](std::exception_ptr failed) {
      JobEnded(*link);
      // A job answers its caller itself; one that threw left its caller
      // without an answer, which nothing here can give.
      if (failed) {
        log::Error("pg_job_failed");
        std::rethrow_exception(failed);
      }
    });
  }
}

void PgPool::JobEnded(PgLink& link) {
  // A connection a job left broken goes now, not at its next use: the
  // server then sees it close and ends what its session held.
  link.DropIfBroken();
  --running_;
  free_.push_back(&link);
  StartJobs();
  if (queue_.empty() && running_ == 0) {
    std::vector<std::function<void()>> waiters;
    waiters.swap(idle_waiters_);
    for (auto& idle : waiters) idle();
  }
}

Awaitable<Result<std::unique_ptr<PgConnection>>> PgPool::Open() {
  // Filled on a connecting thread, read here once its handler is posted back.
  auto opened = std::make_shared<std::optional<Result<std::unique_ptr<PgConnection>>>>();
  // Named, not a temporary of the co_await expression: g++ 12 destroys a
  // closure there twice, and this one holds a reference count.
  auto open_elsewhere = [this, opened](auto handler) {
    // The work guard keeps the executor's run() going while only a connecting thread has work.
    boost::asio::post(connecting_, [this, opened, handler = std::move(handler),
                                    work = boost::asio::make_work_guard(executor_)]() mutable {
      auto conn = PgConnection::Connect(dsn_, application_name_);
      if (conn.ok() && setup_) {
        if (Status s = setup_(**conn); !s.ok()) conn = s;
      }
      opened->emplace(std::move(conn));
      boost::asio::post(executor_, std::move(handler));
    });
  };
  co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void()>(open_elsewhere,
                                                                                      boost::asio::use_awaitable);
  co_return std::move(**opened);
}

}  // namespace commitd::participant::pg
