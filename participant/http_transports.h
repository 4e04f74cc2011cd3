// The HTTP implementations of a participant Node's transports (agent ->
// coordinator, agent -> agent), over one http::Client. They turn status codes
// and parsed JSON bodies (docs/protocol.md) into typed answers and decide
// nothing.
//
// Thread: the io_context's thread.
#pragma once

#include <string>

#include "common/http_client.h"
#include "participant/coordinator_transport.h"
#include "participant/peer_transport.h"

namespace commitd::participant {

// GET /v1/transactions/{txid}[?participant=name], PUT /v1/participants/{name}, GET /v1/cluster.
class HttpCoordinatorTransport final : public CoordinatorTransport {
 public:
  // token: the bearer token sent with every request (empty: none).
  HttpCoordinatorTransport(http::Client& client, std::string token) : client_(client), token_(std::move(token)) {}
  void QueryDecision(DecisionQuery query, std::function<void(DecisionAnswer)> done) override;
  void Register(const std::string& coordinator_url, const std::string& name, const std::string& own_url,
                std::function<void(Status)> done) override;
  void GroupMembers(const std::string& coordinator_url,
                    std::function<void(Result<std::vector<std::string>>)> done) override;

 private:
  http::Client& client_;
  std::string token_;
};

// GET /v1/transactions/{txid}, POST /v1/precommit, /v1/commit, /v1/abort.
class HttpPeerTransport final : public PeerTransport {
 public:
  HttpPeerTransport(http::Client& client, std::string token, int64_t request_timeout_ms)
      : client_(client), token_(std::move(token)), request_timeout_ms_(request_timeout_ms) {}
  void Call(const wire::ParticipantRef& peer, action::PeerCall call, const std::string& txid,
            const std::string& key, std::function<void(PeerReply)> done) override;

 private:
  http::Client& client_;
  std::string token_;
  int64_t request_timeout_ms_;
};

// A coordinator's answer to GET /v1/transactions/{txid} as a DecisionAnswer.
DecisionAnswer DecisionAnswerOf(const Result<http::Response>& r);
// A coordinator's answer to GET /v1/cluster: its members' URLs.
Result<std::vector<std::string>> GroupMembersOf(const Result<http::Response>& r);
// A peer agent's answer to a termination call as a PeerReply.
PeerReply PeerReplyOf(const Result<http::Response>& r);

}  // namespace commitd::participant
