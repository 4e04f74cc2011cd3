// SHA-256 of a byte string, for token and key digests on hot paths.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace commitd {

using Sha256Digest = std::array<uint8_t, 32>;

// OpenSSL's digest, looked up once per process and run in a context kept per
// thread (its one-shot calls look the algorithm up under a lock and allocate
// on every call). Thread: any.
Sha256Digest Sha256(std::string_view data);

}  // namespace commitd
