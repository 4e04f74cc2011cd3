// The participant agent: the participant Engine, the SQLite ResourceManager
// on its storage thread, and the agent HTTP API (A.4), on a caller's io_context.
//
// A service embeds it by constructing an Agent on its own io_context (run by
// one thread) and calling Start(); commit-agent does exactly that.
//
// Thread: all methods and all callbacks run on the io_context's thread; the
// storage thread touches only the database.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace commitd::participant {

struct AgentOptions {
  std::string name;                       // the participant name coordinators use
  std::string listen = "127.0.0.1:7101";
  std::string db_path;
  std::string procedures_path;
  bool allow_raw_sql = false;
  std::vector<std::string> coordinators;  // URLs to register with and ask for decisions
  std::string token;                      // bearer token, sent and required when non-empty
  Config config;
};

class Agent {
 public:
  Agent(boost::asio::io_context& io, AgentOptions options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Opens the database, rebuilds locks from prepared records, starts serving.
  Status Start();
  // Stops accepting; in-flight storage work completes; then `done` runs.
  void Shutdown(std::function<void()> done);
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace commitd::participant
