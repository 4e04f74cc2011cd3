// The inventory service's read API, straight from its SQLite file.
//
// StockReader holds its own read-only connection, separate from the agent's
// writing connection, and is used on the io thread. In WAL mode a reader
// never waits for the writer and sees only committed transactions: a
// reservation that is prepared but undecided lives in the agent's changeset,
// not in the stock table, so it is not visible here until it commits.
//
// Thread: io thread only.
#pragma once

#include <memory>
#include <string>

#include "common/http_server.h"
#include "common/sqlite_db.h"
#include "common/status.h"

namespace inventory {

class StockReader {
 public:
  static commitd::Result<std::unique_ptr<StockReader>> Open(const std::string& db_path);

  // GET /stock/{sku} -> {"sku","quantity"} or 404; GET /stock -> {"stock":[...]}.
  void Mount(commitd::http::Router& router);

 private:
  explicit StockReader(std::unique_ptr<commitd::sqlite::Database> db) : db_(std::move(db)) {}
  commitd::http::Response One(const std::string& sku);
  commitd::http::Response All();

  std::unique_ptr<commitd::sqlite::Database> db_;
};

}  // namespace inventory
