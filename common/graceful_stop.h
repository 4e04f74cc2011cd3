// Ending a process's io_context after a graceful shutdown.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>

namespace commitd {

// Stops `io` once responses already handed to the server had time to be
// written (io.stop() at once would drop them). Call on the io thread, after
// the server stopped accepting.
inline void StopAfterFlush(boost::asio::io_context& io,
                           std::chrono::milliseconds grace = std::chrono::milliseconds(200)) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io, grace);
  timer->async_wait([timer, &io](const boost::system::error_code&) { io.stop(); });
}

}  // namespace commitd
