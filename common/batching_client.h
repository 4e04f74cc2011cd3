// Sends requests to peers through http::Client, coalescing the requests for
// one peer that queue up while earlier ones are in flight into a single
// POST <batch_target> (see common/http_batch.h).
//
// With little load every request goes out alone to its own target; under
// load a peer gets at most `max_in_flight` exchanges at a time, each carrying
// everything that queued meanwhile. Requests sent during one handler of the
// io thread leave together: Send queues, and the peer's queue is flushed once
// that handler has returned, so that a burst (the commits of every transfer
// one answer decided) takes one exchange and not every free one, which would
// leave the next prepares queued behind it. Each request's callback gets its
// own sub-response, exactly as if it had been sent alone.
//
// Thread: io thread only, like the Client it wraps (which must outlive it).
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/http_client.h"

namespace commitd::http {

struct BatchingOptions {
  std::string batch_target = "/v1/batch";
  // Exchanges per peer at once. Two keep a peer busy (one being answered,
  // the next filling); more only split the same messages into more, smaller
  // exchanges, each with its HTTP and thread hand-off costs on both sides
  // (docs/benchmarking.md, *What the storage and batching choices are worth*).
  std::size_t max_in_flight = 2;
  std::size_t max_batch = 256;       // requests per exchange
  // Bytes of request bodies per exchange; keep it below the peer's body limit
  // (max_body_bytes, 1 MiB by default). A single larger request goes alone.
  std::size_t max_batch_bytes = 512 * 1024;
};

class BatchingClient {
 public:
  // io: the io_context client runs on, where the flushes are posted.
  BatchingClient(Client& client, boost::asio::io_context& io, BatchingOptions options = {});
  ~BatchingClient();

  // request.body must be JSON (or empty). request.headers are sent with the
  // exchange that carries it; requests to one peer should share headers, but
  // for `traceparent`: in a batch, each request's goes in its own item.
  void Send(ClientRequest request, std::function<void(Result<Response>)> done);

  struct Stats {
    uint64_t requests = 0;
    uint64_t exchanges = 0;
  };
  Stats stats() const { return stats_; }

 private:
  struct Pending {
    ClientRequest request;
    std::function<void(Result<Response>)> done;
  };
  struct Peer {
    std::deque<Pending> queue;
    std::size_t in_flight = 0;
    bool flush_posted = false;
  };

  void Flush(const std::string& peer_key);

  Client& client_;
  boost::asio::io_context& io_;
  BatchingOptions options_;
  std::unordered_map<std::string, Peer> peers_;
  Stats stats_;
  // Callbacks check it so that none runs after this object is gone.
  std::shared_ptr<bool> alive_;
};

}  // namespace commitd::http
