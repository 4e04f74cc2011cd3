#include "participant/pg_workers.h"

namespace commitd::participant::pg {

Result<PgConnection*> PgLink::Get() {
  if (conn_ && conn_->healthy()) return conn_.get();
  conn_.reset();
  auto opened = PgConnection::Connect(dsn_, application_name_);
  if (!opened.ok()) return opened.status();
  if (setup_) {
    if (Status s = setup_(**opened); !s.ok()) return s;
  }
  conn_ = std::move(opened).value();
  return conn_.get();
}

void PgLink::DropIfBroken(const PgResult& r) {
  if (r.connection_lost() || (conn_ && !conn_->healthy())) conn_.reset();
}

void PgLink::DropIfBroken() {
  if (conn_ && !conn_->healthy()) conn_.reset();
}

PgWorkers::PgWorkers(std::string dsn, std::string application_name, std::size_t threads,
                     std::function<Status(PgConnection&)> setup) {
  if (threads == 0) threads = 1;
  for (std::size_t i = 0; i < threads; ++i) {
    auto link = std::make_unique<PgLink>();
    link->dsn_ = dsn;
    link->application_name_ = application_name;
    link->setup_ = setup;
    links_.push_back(std::move(link));
  }
  for (auto& link : links_) threads_.emplace_back([this, l = link.get()] { Run(*l); });
}

PgWorkers::~PgWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  for (auto& t : threads_) t.join();
}

void PgWorkers::Submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  work_.notify_one();
}

void PgWorkers::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return queue_.empty() && running_ == 0; });
}

void PgWorkers::Run(PgLink& link) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    Job job = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    lock.unlock();
    job(link);
    lock.lock();
    --running_;
    if (queue_.empty() && running_ == 0) idle_.notify_all();
  }
}

}  // namespace commitd::participant::pg
