// UncertainGids: the gids whose PREPARE TRANSACTION may have taken effect
// without the agent hearing so (the connection was lost, or a cancel ended
// the statement), each with the server process that ran it, until they are
// rolled back (docs/participant.md, "The PostgreSQL backend").
//
// Thread: any; RollBack runs on the pool's thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "participant/pg_connection.h"
#include "participant/pg_pool.h"

namespace commitd::participant::pg {

class UncertainGids {
 public:
  // `running`: the server process that ran the statement, if it may still
  // be running it; nullopt when the statement is known to be over.
  void Add(std::string gid, std::optional<Backend> running);
  // Rolls back every gid. One PostgreSQL does not know is kept while the
  // process that ran its PREPARE TRANSACTION was alive just before the
  // rollback: the statement may still be running there and take effect
  // later. A process with that pid but another start is a later one. A
  // process recorded on another cluster than the link's session's (or one
  // the session did not read: PgConnection::ReadBackend) cannot be looked for
  // from there: its gid is kept.
  // A gid stays listed while a retry works on it, and a retry running at
  // the same time leaves it to that one.
  Awaitable<void> RollBack(PgLink& link);
  // The gids still to roll back.
  std::vector<std::string> Gids() const;
  // gid is still to roll back: a PREPARE TRANSACTION of it now could be
  // rolled back by a retry meant for the earlier one.
  bool Contains(const std::string& gid) const;

 private:
  struct Entry {
    uint64_t id = 0;  // tells apart two entries of one gid
    std::string gid;
    std::optional<Backend> running;
    bool in_retry = false;
  };
  mutable std::mutex mu_;
  uint64_t next_id_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace commitd::participant::pg
