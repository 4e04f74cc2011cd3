// Makes a WAL-mode SQLite database's committed transactions durable from
// outside SQLite: fdatasync() of its "-wal" file. With synchronous=NORMAL a
// COMMIT only write()s its frames; every frame written before Sync() starts is
// on disk when Sync() returns ok, which is what synchronous=FULL gives at each
// COMMIT. SQLite still syncs the WAL header on a WAL restart and around
// checkpoints itself.
//
// Thread: one thread at a time (the BatchWriter's sync thread); it shares no
// state with the SQLite connection, only the file.
#pragma once

#include <string>

#include "common/status.h"

namespace commitd::sqlite {

class WalSync {
 public:
  explicit WalSync(std::string db_path);
  ~WalSync();
  WalSync(const WalSync&) = delete;
  WalSync& operator=(const WalSync&) = delete;

  // fdatasync of the WAL file now at <db_path>-wal (reopened when it is a new
  // file); when there is none, of the database file itself.
  Status Sync();

 private:
  Status Reopen();

  const std::string db_path_;
  const std::string wal_path_;
  std::string open_path_;  // the file fd_ refers to
  int fd_ = -1;
};

}  // namespace commitd::sqlite
