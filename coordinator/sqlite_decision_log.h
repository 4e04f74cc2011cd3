// DecisionLog on one SQLite file (<data-dir>/decisions.db), WAL + synchronous=FULL,
// every append group-committed by a BatchWriter on its storage thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "common/batch_writer.h"
#include "common/sqlite_db.h"
#include "coordinator/decision_log.h"

namespace commitd::coordinator {

class SqliteDecisionLog final : public DecisionLog {
 public:
  // Opens or creates the file and its tables. io: where callbacks run.
  static Result<std::unique_ptr<SqliteDecisionLog>> Open(const std::string& path, boost::asio::any_io_executor io,
                                                         std::size_t max_batch = 1024);
  ~SqliteDecisionLog() override;

  Result<RecoveredLog> Recover() override;
  void AppendDecision(DecisionRecord record, std::function<void(Status)> done) override;
  void MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) override;
  void PutParticipant(RegistryEntry entry, std::function<void(Status)> done) override;
  void FindDecision(std::string txid, std::function<void(Result<std::optional<DecisionRecord>>)> done) override;
  void FindByIdempotencyKey(std::string key,
                            std::function<void(Result<std::optional<DecisionRecord>>)> done) override;
  void ListDecisions(ListFilter filter, std::function<void(Result<std::vector<DecisionRecord>>)> done) override;

  BatchWriter::Stats writer_stats() const { return writer_->stats(); }
  // Records the URL this coordinator serves under (see DecisionStore::AddOwnUrl).
  void AddOwnUrl(std::string url, std::function<void(Status)> done);

 private:
  SqliteDecisionLog(std::unique_ptr<sqlite::Database> db, boost::asio::any_io_executor io, std::size_t max_batch);

  boost::asio::any_io_executor io_;
  std::unique_ptr<sqlite::Database> db_;    // owned; used only by the writer's storage thread after Open
  std::unique_ptr<BatchWriter> writer_;
};

}  // namespace commitd::coordinator
