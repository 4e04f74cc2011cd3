#include "common/abort_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

namespace commitd {

namespace {

std::string Hex(const unsigned char* bytes, unsigned int length) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xF]);
  }
  return out;
}

std::string HmacHex(std::string_view secret, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length);
  return Hex(mac, length);
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
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(commit_key.data()), commit_key.size(), digest);
  return Hex(digest, SHA256_DIGEST_LENGTH);
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
