#include "coordinator/sqlite_decision_log.h"

#include <boost/asio/post.hpp>
#include <future>

#include "coordinator/decision_store.h"

namespace commitd::coordinator {

namespace {

// Runs a read on the storage thread and posts its result to io.
template <class T>
void PostRead(BatchWriter& writer, boost::asio::any_io_executor io, std::function<T(sqlite::Database&)> read,
              std::function<void(T)> done) {
  writer.Read([io = std::move(io), read = std::move(read), done = std::move(done)](sqlite::Database& db) mutable {
    boost::asio::post(io, [done = std::move(done), result = read(db)]() mutable { done(std::move(result)); });
  });
}

}  // namespace

Result<std::unique_ptr<SqliteDecisionLog>> SqliteDecisionLog::Open(const std::string& path,
                                                                   boost::asio::any_io_executor io,
                                                                   std::size_t max_batch) {
  Result<std::unique_ptr<sqlite::Database>> db = sqlite::Database::Open(path);
  if (!db.ok()) return db.status();
  if (Status s = DecisionStore(**db).CreateSchema(); !s.ok()) return s;
  return std::unique_ptr<SqliteDecisionLog>(new SqliteDecisionLog(std::move(db).value(), std::move(io), max_batch));
}

SqliteDecisionLog::SqliteDecisionLog(std::unique_ptr<sqlite::Database> db, boost::asio::any_io_executor io,
                                     std::size_t max_batch)
    : io_(std::move(io)), db_(std::move(db)), writer_(std::make_unique<BatchWriter>(*db_, io_, max_batch)) {}

SqliteDecisionLog::~SqliteDecisionLog() {
  writer_.reset();  // drains queued writes and joins the storage thread
  db_.reset();
}

Result<RecoveredLog> SqliteDecisionLog::Recover() {
  // Blocking the io thread is fine here: it runs once, before serving, and
  // the storage thread never waits for the io thread.
  std::promise<Result<RecoveredLog>> promise;
  std::future<Result<RecoveredLog>> future = promise.get_future();
  writer_->Read([&promise](sqlite::Database& db) { promise.set_value(DecisionStore(db).Recover()); });
  return future.get();
}

void SqliteDecisionLog::AppendDecision(DecisionRecord record, std::function<void(Status)> done) {
  // Serializing the record happens on the storage thread, off the io thread.
  writer_->Submit(BatchWriter::Job{
      [record = std::move(record)](sqlite::Database& db) { return DecisionStore(db).InsertDecision(record); },
      std::move(done)});
}

void SqliteDecisionLog::MarkFinished(std::string txid, int64_t finished_ms, std::function<void(Status)> done) {
  writer_->Submit(BatchWriter::Job{[txid = std::move(txid), finished_ms](sqlite::Database& db) {
                                     return DecisionStore(db).MarkFinished(txid, finished_ms);
                                   },
                                   std::move(done)});
}

void SqliteDecisionLog::PutParticipant(RegistryEntry entry, std::function<void(Status)> done) {
  writer_->Submit(BatchWriter::Job{
      [entry = std::move(entry)](sqlite::Database& db) { return DecisionStore(db).PutParticipant(entry); },
      std::move(done)});
}

void SqliteDecisionLog::AddOwnUrl(std::string url, std::function<void(Status)> done) {
  writer_->Submit(BatchWriter::Job{
      [url = std::move(url)](sqlite::Database& db) { return DecisionStore(db).AddOwnUrl(url); }, std::move(done)});
}

void SqliteDecisionLog::FindDecision(std::string txid,
                                     std::function<void(Result<std::optional<DecisionRecord>>)> done) {
  PostRead<Result<std::optional<DecisionRecord>>>(
      *writer_, io_, [txid = std::move(txid)](sqlite::Database& db) { return DecisionStore(db).FindByTxid(txid); },
      std::move(done));
}

void SqliteDecisionLog::FindByIdempotencyKey(std::string key,
                                             std::function<void(Result<std::optional<DecisionRecord>>)> done) {
  PostRead<Result<std::optional<DecisionRecord>>>(
      *writer_, io_,
      [key = std::move(key)](sqlite::Database& db) { return DecisionStore(db).FindByIdempotencyKey(key); },
      std::move(done));
}

void SqliteDecisionLog::ListDecisions(ListFilter filter,
                                      std::function<void(Result<std::vector<DecisionRecord>>)> done) {
  PostRead<Result<std::vector<DecisionRecord>>>(
      *writer_, io_, [filter](sqlite::Database& db) { return DecisionStore(db).List(filter); }, std::move(done));
}

}  // namespace commitd::coordinator
