#pragma once
// How a connection's read buffer is sized. Beast reads as much as the buffer
// has free room for (at least 512 bytes, at most 64 KiB per read), and the
// parser takes each piece out of the buffer into the body, so a buffer never
// grows past the room it started with: a 5-KiB body took eleven reads of 512
// bytes, each a system call and a trip through the reactor.

#include <algorithm>
#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>
#include <cstdint>

namespace commitd::http {

// Room for a header and a small body, made once per connection.
inline constexpr std::size_t kFirstReadBytes = 4096;
// Beast's largest single read; more room than this saves no read.
inline constexpr std::size_t kMaxReadBytes = 64 * 1024;

// Once the header is parsed: room for the rest of the announced body, up to
// kMaxReadBytes, so that it arrives in as few reads as the sender's writes
// allow. The cap keeps a length a peer announces, and never sends, from
// reserving memory.
template <class Parser>
void ReserveForBody(boost::beast::flat_buffer& buffer, const Parser& parser) {
  const auto remaining = parser.content_length_remaining();
  if (!remaining || parser.is_done()) return;
  const std::size_t wanted = static_cast<std::size_t>(std::min<std::uint64_t>(*remaining, kMaxReadBytes));
  // flat_buffer::reserve keeps what the buffer holds (a pipelined request's bytes).
  if (wanted > buffer.capacity()) buffer.reserve(wanted);
}

}  // namespace commitd::http
