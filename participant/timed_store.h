// TimedStore: a Store that passes everything to another and records how long
// each commit and abort took to apply durably (queued, run and synced), for
// the agent's commitd_agent_apply_seconds{outcome}. The binary wraps its
// SqliteStore in one; the simulator does not (it has no wall clock).
//
// Thread: the Node's event thread (the histograms are lock-free).
#pragma once

#include <chrono>
#include <utility>

#include "common/metrics.h"
#include "participant/store.h"

namespace commitd::participant {

class TimedStore final : public Store {
 public:
  // Everything given outlives the store.
  TimedStore(Store& inner, metrics::Histogram& commit_seconds, metrics::Histogram& abort_seconds)
      : inner_(inner), commit_seconds_(commit_seconds), abort_seconds_(abort_seconds) {}

  Result<Contents> Load() override { return inner_.Load(); }
  Status Validate(const std::vector<wire::Op>& ops) const override { return inner_.Validate(ops); }
  std::vector<std::string> ProcedureNames() const override { return inner_.ProcedureNames(); }
  void Prepare(action::Prepare prepare,
               std::function<void(const std::string& txid, PrepareResult, Status)> done) override {
    inner_.Prepare(std::move(prepare), std::move(done));
  }
  void Commit(const std::string& txid, std::function<void(Status)> done) override {
    inner_.Commit(txid, Timed(commit_seconds_, std::move(done)));
  }
  void Abort(const std::string& txid, std::function<void(Status)> done) override {
    inner_.Abort(txid, Timed(abort_seconds_, std::move(done)));
  }
  void Precommit(const std::string& txid, std::function<void(Status)> done) override {
    inner_.Precommit(txid, std::move(done));
  }
  void Adopt(const std::string& txid, const Adoption& adoption, std::function<void(Status)> done) override {
    inner_.Adopt(txid, adoption, std::move(done));
  }
  void WriteTombstone(const std::string& txid, std::function<void(Result<Outcome>)> done) override {
    inner_.WriteTombstone(txid, std::move(done));
  }
  void ForgetOutcomesBefore(int64_t cutoff_ms) override { inner_.ForgetOutcomesBefore(cutoff_ms); }
  void FindOutcome(const std::string& txid,
                   std::function<void(Result<std::optional<StoredOutcome>>)> done) override {
    inner_.FindOutcome(txid, std::move(done));
  }

 private:
  // Only applications that succeeded are observed.
  static std::function<void(Status)> Timed(metrics::Histogram& h, std::function<void(Status)> done) {
    return [&h, start = std::chrono::steady_clock::now(), done = std::move(done)](Status s) {
      if (s.ok()) h.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      if (done) done(s);
    };
  }

  Store& inner_;
  metrics::Histogram& commit_seconds_;
  metrics::Histogram& abort_seconds_;
};

}  // namespace commitd::participant
