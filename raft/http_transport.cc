#include "raft/http_transport.h"

#include <chrono>

#include "raft/wire.h"

namespace commitd::raft {
namespace {

constexpr int kMaxInFlightPerPeer = 4;
constexpr std::size_t kMaxQueuedPerPeer = 4096;
constexpr int64_t kRequestTimeoutMs = 1000;

http::Response FrameResponse(const std::vector<Message>& messages) {
  http::Response r;
  r.body = EncodeMessages(messages);
  r.content_type = "application/octet-stream";
  return r;
}

}  // namespace

HttpTransport::HttpTransport(boost::asio::io_context& io, std::string token,
                             std::function<void(std::vector<Message>, Reply)> receive, tls::Context tls)
    : token_(std::move(token)),
      receive_(std::move(receive)),
      client_(io, http::ClientOptions{.connect_timeout = std::chrono::milliseconds(300),
                                      .request_timeout = std::chrono::milliseconds(kRequestTimeoutMs),
                                      .tls = std::move(tls)}) {}

void HttpTransport::SetPeer(NodeId id, const std::string& url) { peers_[id].url = url; }

void HttpTransport::RemovePeer(NodeId id) { peers_.erase(id); }

void HttpTransport::OnRequest(const std::string& body, http::Responder respond) {
  auto messages = DecodeMessages(body);
  if (!messages.ok()) {
    respond(http::ErrorResponse(400, "raft", messages.status().message()));
    return;
  }
  if (stopped_) {
    respond(http::ErrorResponse(503, "raft", "stopping"));
    return;
  }
  receive_(std::move(messages).value(), [respond = std::move(respond)](Result<std::vector<Message>> replies) {
    if (!replies.ok()) {
      respond(http::ErrorResponse(503, "raft", replies.status().message()));
      return;
    }
    respond(FrameResponse(*replies));
  });
}

void HttpTransport::Send(NodeId to, std::vector<Message> messages) {
  auto peer = peers_.find(to);
  if (peer == peers_.end() || stopped_) return;
  PeerLink& link = peer->second;
  if (link.in_flight >= kMaxInFlightPerPeer) {
    for (auto& m : messages) {
      if (link.queued.size() >= kMaxQueuedPerPeer) break;
      link.queued.push_back(std::move(m));
    }
    return;
  }
  if (!link.queued.empty()) {
    for (auto& m : messages) link.queued.push_back(std::move(m));
    messages = std::move(link.queued);
    link.queued.clear();
  }
  if (messages.empty()) return;
  http::ClientRequest cr;
  cr.base_url = link.url;
  cr.method = "POST";
  cr.target = "/v1/raft";
  cr.body = EncodeMessages(messages);
  cr.headers.emplace_back("Content-Type", "application/octet-stream");
  cr.timeout = std::chrono::milliseconds(kRequestTimeoutMs);
  if (!token_.empty()) cr.headers.emplace_back("Authorization", "Bearer " + token_);
  ++link.in_flight;
  client_.Send(std::move(cr), [this, to](Result<http::Response> r) { OnResponse(to, std::move(r)); });
}

// The answer to a POST: the peer's replies to it (an RFT1 frame), if any.
void HttpTransport::OnResponse(NodeId to, Result<http::Response> response) {
  auto peer = peers_.find(to);
  if (peer != peers_.end()) --peer->second.in_flight;
  if (stopped_) return;
  if (response.ok() && response->status == 200) {
    auto messages = DecodeMessages(response->body);
    if (messages.ok()) receive_(std::move(messages).value(), {});
  }
  if (peer != peers_.end() && !peer->second.queued.empty()) Send(to, {});
}

}  // namespace commitd::raft
