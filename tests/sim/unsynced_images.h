// UnsyncedImages: what a node's database file may hold after a power loss.
// SQLite's recovery keeps a prefix of the transactions committed since the
// last fsync (the valid frames at the head of the WAL), so the file's image
// before each batch committed without an fsync is kept, from the last sync
// on; a power loss writes back the one that ends the prefix it keeps.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/sqlite_db.h"
#include "common/status.h"

namespace commitd::sim {

class UnsyncedImages {
 public:
  // Before a batch that commits without an fsync.
  Status CaptureBefore(sqlite::Database& db);
  // That batch did not commit after all.
  void DropLast() { images_.pop_back(); }
  // An fsync covered every batch so far.
  void Clear() { images_.clear(); }
  // Batches committed since the last fsync.
  std::size_t batches() const { return images_.size(); }
  // The database is closed: its file keeps the first `kept` (<= batches())
  // of them. Nothing is unsynced afterwards (what recovery found is on disk).
  Status Restore(const std::string& path, std::size_t kept);

 private:
  std::vector<std::string> images_;  // [i]: the file before unsynced batch i
};

}  // namespace commitd::sim
