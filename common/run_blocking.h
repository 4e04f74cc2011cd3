// RunBlocking: runs a coroutine to its end on `io`, which the calling thread
// runs meanwhile, for code that may block (start-up, offline tools) but
// shares a coroutine with the event-driven paths. `io` must not be run
// elsewhere; objects that keep I/O objects bound to it must not outlive it.
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace commitd {

template <typename T>
T RunBlocking(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  io.restart();
  std::exception_ptr failed;
  if constexpr (std::is_void_v<T>) {
    boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e) { failed = e; });
    io.run();
    if (failed) std::rethrow_exception(failed);
  } else {
    std::optional<T> out;
    boost::asio::co_spawn(
        io, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(task)); },
        [&](std::exception_ptr e) { failed = e; });
    io.run();
    if (failed) std::rethrow_exception(failed);
    return std::move(*out);
  }
}

}  // namespace commitd
