#include "common/abort_key.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "common/hex.h"

namespace commitd {
namespace {

std::string OneShotHmacHex(const std::string& secret, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length);
  return Hex(mac, length);
}

TEST_CASE("AbortKey is HMAC-SHA256 of the txid (RFC 4231 test case 2)") {
  CHECK(AbortKey("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("keys stay right when the secret changes between calls") {
  // The keyed context is reused for the same secret and keyed again for another.
  const std::string a(32, '\x01');
  const std::string b = "another secret, longer than one SHA-256 block of sixty-four bytes..........";
  for (int round = 0; round < 3; ++round) {
    for (const std::string& secret : {a, b, a, a, b}) {
      CHECK(AbortKey(secret, "c1-tx-" + std::to_string(round)) == OneShotHmacHex(secret, "c1-tx-" + std::to_string(round)));
      CHECK(CommitKey(secret, "c1-tx") == OneShotHmacHex(secret, std::string("commit\0c1-tx", 12)));
    }
  }
  CHECK(AbortKey(a, "t") != AbortKey(b, "t"));
  CHECK(AbortKey(a, "t") != CommitKey(a, "t"));
}

TEST_CASE("a commit check is the SHA-256 of the key, from any thread") {
  CHECK(CommitCheck("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::vector<std::string> checks(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < checks.size(); ++i) {
    threads.emplace_back([&checks, i] {
      for (int n = 0; n < 200; ++n) checks[i] = CommitCheck(CommitKey("secret " + std::to_string(i), "tx"));
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < checks.size(); ++i) {
    CHECK(checks[i] == CommitCheck(OneShotHmacHex("secret " + std::to_string(i), std::string("commit\0tx", 9))));
  }
}

TEST_CASE("a commit key matches its check only") {
  const std::string key = CommitKey("secret", "tx-1");
  const std::string check = CommitCheck(key);
  CHECK(CommitKeyMatches(check, key));
  CHECK_FALSE(CommitKeyMatches(check, CommitKey("secret", "tx-2")));
  CHECK_FALSE(CommitKeyMatches(check, ""));
  CHECK_FALSE(CommitKeyMatches("", key));
  CHECK_FALSE(AbortKeyMatches(AbortKey("secret", "tx-1"), AbortKey("secret", "tx-1").substr(1)));
}

}  // namespace
}  // namespace commitd
