#include "common/sha256.h"

#include <openssl/evp.h>

namespace commitd {
namespace {

// Thread: one per thread (thread_local in Sha256).
class DigestContext {
 public:
  DigestContext() : ctx_(EVP_MD_CTX_new()) {}
  ~DigestContext() { EVP_MD_CTX_free(ctx_); }
  DigestContext(const DigestContext&) = delete;
  DigestContext& operator=(const DigestContext&) = delete;

  bool Digest(std::string_view data, Sha256Digest* out) {
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    unsigned int size = 0;
    return ctx_ != nullptr && sha256 != nullptr && EVP_DigestInit_ex2(ctx_, sha256, nullptr) == 1 &&
           EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1 &&
           EVP_DigestFinal_ex(ctx_, out->data(), &size) == 1 && size == out->size();
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace

Sha256Digest Sha256(std::string_view data) {
  thread_local DigestContext context;
  Sha256Digest out{};
  if (context.Digest(data, &out)) return out;
  // OpenSSL fails here only when it cannot allocate: its one-shot call, or a
  // digest that matches nothing.
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha256(), nullptr) != 1 || size != out.size()) {
    out.fill(0xff);
  }
  return out;
}

}  // namespace commitd
