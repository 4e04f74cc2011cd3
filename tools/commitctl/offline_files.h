// The files the offline commands read and change: a coordinator's
// <data-dir>/decisions.db and agents' databases, opened only when no service
// has them open.
//
// The lock: the connection sets PRAGMA locking_mode=EXCLUSIVE before it first
// reads the file, then runs BEGIN EXCLUSIVE. A running commitd or commit-agent
// keeps its file open in WAL mode, and a WAL connection holds a SHARED lock on
// the database file for as long as it is open (idle or not), so the EXCLUSIVE
// lock cannot be had while one runs: the open fails after a short busy
// timeout. Once had, exclusive locking mode keeps the lock until the
// connection closes, so a service started meanwhile cannot open the file.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/sqlite_db.h"
#include "common/status.h"
#include "coordinator/types.h"
#include "participant/resource_manager.h"

namespace commitd::commitctl {

// owner: what normally has the file open ("commitd", "commit-agent"), for
// the message. NotFound if the file does not exist (never creates one);
// Unavailable, saying to stop the service, if a process has it open.
Result<std::unique_ptr<sqlite::Database>> OpenOffline(const std::string& path, const std::string& owner);

// <data_dir>/decisions.db, opened as above; an old schema is upgraded.
// read_only: the result is an in-memory copy (an older schema is upgraded
// there), so inspecting a file never changes it — an older commitd could not
// open an upgraded file.
Result<std::unique_ptr<sqlite::Database>> OpenDecisionLog(const std::string& data_dir, bool read_only = false);

// An agent's database with the resource manager the agent uses on it (no
// procedures: enough to apply, discard and remember). rm goes before db.
struct ParticipantFile {
  std::string path;
  std::unique_ptr<sqlite::Database> db;
  std::unique_ptr<participant::ResourceManager> rm;
};

// Opened as above; InvalidArgument if the file holds no _commitd_ tables.
Result<ParticipantFile> OpenParticipantDb(const std::string& path);

nlohmann::json DecisionToJson(const coordinator::DecisionRecord& r);
nlohmann::json PreparedToJson(const participant::PreparedRecord& r, int64_t now_ms);

}  // namespace commitd::commitctl
