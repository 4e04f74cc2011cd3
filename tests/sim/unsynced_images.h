// UnsyncedImages: what a node's database file may hold after a power loss.
// SQLite's recovery keeps a prefix of the transactions committed since the
// last fsync (the valid frames at the head of the WAL), so the file's image
// before each batch committed without an fsync is kept, from the last sync
// on; a power loss writes back the one that ends the prefix it keeps.
//
// The simulated files keep their rollback journal in memory, so between
// batches the file holds exactly what was committed: an image is its bytes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"

namespace commitd::sim {

class UnsyncedImages {
 public:
  // Before a batch that commits without an fsync, outside any transaction.
  Status CaptureBefore(const std::string& path);
  // That batch wrote nothing after all.
  void DropLast() { --count_; }
  // An fsync covered every batch so far.
  void Clear() { count_ = 0; }
  // Batches committed since the last fsync.
  std::size_t batches() const { return count_; }
  // The database is closed: its file keeps the first `kept` (<= batches())
  // of them. Nothing is unsynced afterwards (what recovery found is on disk).
  Status Restore(const std::string& path, std::size_t kept);

 private:
  // [i] for i < count_: the file before unsynced batch i. The strings beyond
  // count_ keep their memory for the next captures (a run takes thousands).
  std::vector<std::string> images_;
  std::size_t count_ = 0;
};

}  // namespace commitd::sim
