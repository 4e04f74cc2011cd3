#include "common/batching_client.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "common/http_batch.h"
#include "common/json_text.h"

namespace commitd::http {
namespace {

bool IsTraceparent(std::string_view name) {
  return name.size() == 11 && std::equal(name.begin(), name.end(), "traceparent", [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? a - 'A' + 'a' : a) == b;
         });
}

}  // namespace

BatchingClient::BatchingClient(Client& client, boost::asio::io_context& io, BatchingOptions options)
    : client_(client), io_(io), options_(std::move(options)), alive_(std::make_shared<bool>(true)) {}

BatchingClient::~BatchingClient() { *alive_ = false; }

void BatchingClient::Send(ClientRequest request, std::function<void(Result<Response>)> done) {
  std::string key = request.base_url;
  while (!key.empty() && key.back() == '/') key.pop_back();
  ++stats_.requests;
  Peer& peer = peers_[key];
  peer.queue.push_back(Pending{std::move(request), std::move(done)});
  if (peer.flush_posted) return;
  peer.flush_posted = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_), key = std::move(key)] {
    auto guard = alive.lock();
    if (!guard || !*guard) return;
    peers_[key].flush_posted = false;
    Flush(key);
  });
}

void BatchingClient::Flush(const std::string& peer_key) {
  Peer& peer = peers_[peer_key];
  if (peer.queue.empty() || peer.in_flight >= options_.max_in_flight) return;
  ++peer.in_flight;
  ++stats_.exchanges;
  std::weak_ptr<bool> alive = alive_;

  // How many queued requests fit in one exchange (at least one).
  std::size_t n = 0;
  std::size_t bytes = 0;
  while (n < peer.queue.size() && n < options_.max_batch) {
    bytes += peer.queue[n].request.body.size() + peer.queue[n].request.target.size() + 32;
    if (n > 0 && bytes > options_.max_batch_bytes) break;
    ++n;
  }

  if (n == 1) {
    Pending one = std::move(peer.queue.front());
    peer.queue.pop_front();
    client_.Send(std::move(one.request),
                 [this, alive, peer_key, done = std::move(one.done)](Result<Response> r) {
                   auto guard = alive.lock();
                   if (!guard || !*guard) return;
                   --peers_[peer_key].in_flight;
                   done(std::move(r));
                   Flush(peer_key);
                 });
    return;
  }

  std::vector<std::function<void(Result<Response>)>> dones;
  dones.reserve(n);
  ClientRequest batch;
  batch.base_url = peer.queue.front().request.base_url;
  batch.method = "POST";
  batch.target = options_.batch_target;
  // Shared headers (Authorization); a trace context is each request's own.
  for (const auto& header : peer.queue.front().request.headers) {
    if (!IsTraceparent(header.first)) batch.headers.push_back(header);
  }
  batch.headers.emplace_back("Content-Type", "application/json");
  batch.timeout = std::chrono::milliseconds(0);
  std::string body;
  body.reserve(bytes + 16);  // bytes: the estimate of the n requests counted above
  body += "{\"requests\":[";
  for (std::size_t i = 0; i < n; ++i) {
    Pending p = std::move(peer.queue.front());
    peer.queue.pop_front();
    if (i != 0) body += ',';
    body += "{\"method\":";
    AppendJsonString(&body, p.request.method);
    body += ",\"target\":";
    AppendJsonString(&body, p.request.target);
    if (!p.request.body.empty()) {
      body += ",\"body\":";
      body += p.request.body;  // already JSON
    }
    for (const auto& header : p.request.headers) {
      if (!IsTraceparent(header.first)) continue;
      body += ",\"traceparent\":";
      AppendJsonString(&body, header.second);
      break;
    }
    body += '}';
    batch.timeout = std::max(batch.timeout, p.request.timeout);
    dones.push_back(std::move(p.done));
  }
  body += "]}";
  batch.body = std::move(body);
  client_.Send(std::move(batch), [this, alive, peer_key, dones = std::move(dones)](Result<Response> r) {
    auto guard = alive.lock();
    if (!guard || !*guard) return;
    --peers_[peer_key].in_flight;
    std::vector<Result<Response>> results;
    results.reserve(dones.size());
    if (!r.ok()) {
      for (std::size_t i = 0; i < dones.size(); ++i) results.emplace_back(r.status());
    } else if (r->status != 200) {
      // The peer refused the batch as a whole: every request gets its answer.
      for (std::size_t i = 0; i < dones.size(); ++i) results.emplace_back(*r);
    } else {
      std::optional<std::vector<BatchPart>> parts = ParseBatch(r->body, "responses");
      const bool valid = parts && parts->size() == dones.size();
      for (std::size_t i = 0; i < dones.size(); ++i) {
        if (!valid) {
          results.emplace_back(Status::Internal("malformed batch response from " + peer_key));
          continue;
        }
        const BatchPart& part = (*parts)[i];
        Response sub;
        sub.status = 500;
        if (part.status) std::from_chars(part.status->data(), part.status->data() + part.status->size(), sub.status);
        if (part.body) {
          sub.body = std::string(*part.body);
          sub.body_checked_json = true;
        }
        results.emplace_back(std::move(sub));
      }
    }
    for (std::size_t i = 0; i < dones.size(); ++i) dones[i](std::move(results[i]));
    Flush(peer_key);
  });
}

}  // namespace commitd::http
