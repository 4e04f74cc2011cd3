// LockTable: which prepared transaction holds which lock key. No waiting: a
// key held by another transaction is a conflict, reported with the holder.
//
// Thread: pure data. The resource manager's table (storage thread) decides;
// the engine keeps a copy (io thread), updated from the storage completions,
// for listings (/v1/locks, metrics) and the simulator's checks.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace commitd::participant {

class LockTable {
 public:
  // Takes every key for txid, or none: the first key held by another
  // transaction is reported as its holder's txid. Keys txid already holds are fine.
  std::optional<std::string> TryAcquire(const std::string& txid, const std::vector<std::string>& keys);
  // The first key in keys held by a transaction other than txid, and its holder.
  std::optional<std::string> FirstHolder(const std::string& txid, const std::vector<std::string>& keys) const;
  // Releases every key txid holds.
  void Release(const std::string& txid);

  std::optional<std::string> Holder(const std::string& key) const;
  void Clear();
  std::size_t size() const { return holder_.size(); }
  // Every (key, holder), for checking a rebuilt table against the old one.
  std::unordered_map<std::string, std::string> Snapshot() const { return holder_; }

 private:
  std::unordered_map<std::string, std::string> holder_;               // key -> txid
  std::unordered_map<std::string, std::vector<std::string>> held_by_; // txid -> keys
};

}  // namespace commitd::participant
