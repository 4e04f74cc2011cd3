// The binary's raft::Transport: messages between coordinator group members
// as RFT1 frames (raft/wire.h) over HTTP, POST /v1/raft.
//
// A member's answers to a request ride that request's response (an append's
// acknowledgement needs no request of its own): the driver holds the
// response until the Ready holding them is durable (Driver::Receive's reply).
// At most kMaxInFlightPerPeer requests are out to a peer; later messages
// wait and go together with the next (past a cap they are dropped, as a
// network would: Raft tolerates the loss).
//
// Thread: the io thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/http_server.h"
#include "raft/transport.h"

namespace commitd::raft {

class HttpTransport final : public Transport {
 public:
  // receive: where incoming messages go (Driver::Receive). token: sent as a
  // bearer token to the other members ("" for none). tls: for https://
  // members (tls::ClientContext; unset: http:// only).
  HttpTransport(boost::asio::io_context& io, std::string token,
                std::function<void(std::vector<Message>, Reply)> receive, tls::Context tls = nullptr);

  void SetPeer(NodeId id, const std::string& url);
  void RemovePeer(NodeId id);
  void Send(NodeId to, std::vector<Message> messages) override;
  // POST /v1/raft: the body is an RFT1 frame; so is the answer (400 if the
  // frame is malformed, 503 while stopping).
  void OnRequest(const std::string& body, http::Responder respond);
  void Stop() { stopped_ = true; }

 private:
  struct PeerLink {
    std::string url;
    int in_flight = 0;
    std::vector<Message> queued;  // while kMaxInFlightPerPeer requests are out; sent with the next
  };
  void OnResponse(NodeId to, Result<http::Response> response);

  std::string token_;
  std::function<void(std::vector<Message>, Reply)> receive_;
  http::Client client_;
  std::map<NodeId, PeerLink> peers_;
  bool stopped_ = false;
};

}  // namespace commitd::raft
