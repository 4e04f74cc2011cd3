#include "tests/sim/sync_queue.h"

namespace commitd::sim {

void SyncQueue::Submit(Job job) {
  queued_.push_back(std::move(job));
  if (sync_scheduled_) return;
  sync_scheduled_ = true;
  scheduler_.After(random_.Uniform(1, max_delay_ms_), node_, [this, epoch = epoch_] { Sync(epoch); });
}

void SyncQueue::Crash() {
  ++epoch_;
  if (!queued_.empty()) trace_.Add(scheduler_.now(), node_, "storage lost " + std::to_string(queued_.size()) + " unsynced job(s)");
  queued_.clear();
  completed_.clear();
  sync_scheduled_ = false;
  delivery_scheduled_ = false;
}

void SyncQueue::Sync(uint64_t epoch) {
  if (epoch != epoch_) return;
  sync_scheduled_ = false;
  std::vector<Job> batch(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
  queued_.clear();
  if (batch.empty()) return;
  ++syncs_;
  std::vector<Status> results = runner_(batch);
  std::string labels;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (i != 0) labels += ", ";
    labels += batch[i].label;
    if (!results[i].ok()) labels += " (" + results[i].ToString() + ")";
  }
  trace_.Add(scheduler_.now(), node_, "sync [" + labels + "]");
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].on_synced) batch[i].on_synced(results[i]);
    if (batch[i].done) completed_.emplace_back(std::move(batch[i].done), results[i]);
  }
  if (!completed_.empty() && !delivery_scheduled_) {
    delivery_scheduled_ = true;
    scheduler_.After(random_.Uniform(0, 2), node_, [this, epoch = epoch_] { Deliver(epoch); });
  }
}

void SyncQueue::Deliver(uint64_t epoch) {
  if (epoch != epoch_) return;
  delivery_scheduled_ = false;
  while (!completed_.empty() && epoch == epoch_) {
    auto [done, status] = std::move(completed_.front());
    completed_.pop_front();
    done(status);
  }
}

}  // namespace commitd::sim
