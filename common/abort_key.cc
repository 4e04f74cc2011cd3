#include "common/abort_key.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <string>

#include "common/hex.h"
#include "common/sha256.h"

namespace commitd {

namespace {

// HMAC-SHA256 with the algorithm looked up once and a context kept keyed
// per thread: OpenSSL's one-shot HMAC() looks the digest up in its provider
// table (under a lock) and allocates a context on every call, and a
// coordinator derives six keys per transaction.
// Thread: one instance per thread (thread_local in HmacHex).
class KeyedHmac {
 public:
  KeyedHmac() = default;
  KeyedHmac(const KeyedHmac&) = delete;
  KeyedHmac& operator=(const KeyedHmac&) = delete;
  ~KeyedHmac() { EVP_MAC_CTX_free(ctx_); }

  // False if OpenSSL failed (then nothing is cached).
  bool Mac(std::string_view secret, std::string_view message, unsigned char* out, std::size_t* length) {
    if (!Key(secret)) return false;
    if (EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1 &&
        EVP_MAC_final(ctx_, out, length, EVP_MAX_MD_SIZE) == 1) {
      return true;
    }
    Reset();
    return false;
  }

 private:
  // Starts a MAC with `secret`: the key already set is reused when it is the same.
  bool Key(std::string_view secret) {
    static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (hmac == nullptr) return false;
    if (ctx_ != nullptr && secret == secret_) {
      if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) == 1) return true;
      Reset();
      return false;
    }
    Reset();
    ctx_ = EVP_MAC_CTX_new(hmac);
    if (ctx_ == nullptr) return false;
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    if (EVP_MAC_init(ctx_, reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), params) != 1) {
      Reset();
      return false;
    }
    secret_.assign(secret);
    return true;
  }

  void Reset() {
    EVP_MAC_CTX_free(ctx_);
    ctx_ = nullptr;
    OPENSSL_cleanse(secret_.data(), secret_.size());
    secret_.clear();
  }

  EVP_MAC_CTX* ctx_ = nullptr;
  std::string secret_;  // the key ctx_ holds
};

std::string HmacHex(std::string_view secret, std::string_view message) {
  thread_local KeyedHmac keyed;
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t length = 0;
  if (keyed.Mac(secret, message, mac, &length)) return Hex(mac, length);
  unsigned int one_shot = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &one_shot);
  return Hex(mac, one_shot);
}

}  // namespace

std::string AbortKey(std::string_view secret, std::string_view txid) { return HmacHex(secret, txid); }

std::string CommitKey(std::string_view secret, std::string_view txid) {
  std::string message("commit", 6);
  message.push_back('\0');
  message.append(txid);
  return HmacHex(secret, message);
}

std::string CommitCheck(std::string_view commit_key) {
  const Sha256Digest digest = Sha256(commit_key);
  return Hex(digest.data(), digest.size());
}

bool CommitKeyMatches(std::string_view check, std::string_view given) {
  if (check.empty() || given.empty()) return false;
  return AbortKeyMatches(check, CommitCheck(given));
}

bool AbortKeyMatches(std::string_view expected, std::string_view given) {
  if (expected.empty() || expected.size() != given.size()) return false;
  return CRYPTO_memcmp(expected.data(), given.data(), expected.size()) == 0;
}

}  // namespace commitd
