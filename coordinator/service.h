// The coordinator process: coordinator::Node (node.h) behind the HTTP API
// (docs/protocol.md), on a SQLite decision log or, with --peers, a Raft-replicated one.
//
// Thread: everything here runs on the one io thread that runs `io`; the
// decision log's storage thread only calls back through io.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/route_guard.h"
#include "common/tls.h"
#include "common/status.h"
#include "coordinator/replicated_decision_log.h"
#include "coordinator/types.h"

namespace commitd::coordinator {

struct ServiceOptions {
  std::string id = "c1";
  std::string listen = "127.0.0.1:7000";
  std::string data_dir;
  std::vector<RegistryEntry> participants;  // from --participant NAME=URL
  std::vector<GroupMember> peers;           // from --peers: a Raft group when more than one (self included)
  bool join = false;                        // --join: a new member of a running group, waiting to be added
  auth::RouteGuard guard;                   // who may call which route (kRoutes in service.cc)
  std::string peer_token;                   // bearer token sent to agents and members ("" for none)
  tls::Context server_tls;                  // set: serve HTTPS only
  tls::Context client_tls;                  // set: https:// agents and members, verified
  std::string version = "unknown";          // of this build: commitd_build_info on /metrics
  std::string commit = "unknown";
  Config config;
};

class Service {
 public:
  Service(boost::asio::io_context& io, ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Opens the decision log, resumes unfinished transactions, starts serving.
  Status Start();
  // Graceful stop: refuse new work, let undecided transactions finish (bounded
  // by their deadlines), then call `done` on the io thread.
  void Shutdown(std::function<void()> done);
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace commitd::coordinator
