#include "common/tls.h"

#include <openssl/ssl.h>

namespace commitd::tls {
namespace {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

Status FileError(const std::string& what, const std::string& path, const error_code& ec) {
  return Status::InvalidArgument(what + " " + path + ": " + ec.message());
}

Context NewContext(ssl::context::method method) {
  auto ctx = std::make_shared<ssl::context>(method);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  return ctx;
}

}  // namespace

Result<Context> ServerContext(const ServerFiles& files) {
  if (files.cert.empty() || files.key.empty()) {
    return Status::InvalidArgument("TLS: a server needs both a certificate and a key");
  }
  Context ctx = NewContext(ssl::context::tls_server);
  error_code ec;
  ctx->use_certificate_chain_file(files.cert, ec);
  if (ec) return FileError("TLS certificate", files.cert, ec);
  ctx->use_private_key_file(files.key, ssl::context::pem, ec);
  if (ec) return FileError("TLS key", files.key, ec);
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return Status::InvalidArgument("TLS key " + files.key + " does not match certificate " + files.cert);
  }
  if (files.require_client_cert) {
    if (files.client_ca.empty()) {
      return Status::InvalidArgument("TLS: requiring client certificates needs a CA to verify them (--tls-ca)");
    }
    ctx->load_verify_file(files.client_ca, ec);
    if (ec) return FileError("TLS CA", files.client_ca, ec);
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    if (ec) return Status::InvalidArgument("TLS: " + ec.message());
  }
  return ctx;
}

Result<Context> ClientContext(const ClientFiles& files) {
  Context ctx = NewContext(ssl::context::tls_client);
  error_code ec;
  if (files.ca.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status::InvalidArgument("TLS: the system's CA certificates: " + ec.message());
  } else {
    ctx->load_verify_file(files.ca, ec);
    if (ec) return FileError("TLS CA", files.ca, ec);
  }
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (ec) return Status::InvalidArgument("TLS: " + ec.message());
  if (files.client_cert.empty() != files.client_key.empty()) {
    return Status::InvalidArgument("TLS: a client certificate needs its key, and a key its certificate");
  }
  if (!files.client_cert.empty()) {
    ctx->use_certificate_chain_file(files.client_cert, ec);
    if (ec) return FileError("TLS client certificate", files.client_cert, ec);
    ctx->use_private_key_file(files.client_key, ssl::context::pem, ec);
    if (ec) return FileError("TLS client key", files.client_key, ec);
  }
  return ctx;
}

}  // namespace commitd::tls
