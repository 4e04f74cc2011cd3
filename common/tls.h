// TLS contexts for the HTTP server and client (OpenSSL through Asio).
//
// Server: --tls-cert/--tls-key serve HTTPS; with --tls-require-client-cert a
// client must present a certificate signed by --tls-ca (mutual TLS).
// Client: https:// URLs are verified against --tls-ca (certificate chain and
// host name or IP address); --tls-client-cert/--tls-client-key are presented
// to servers that ask. Errors name the file.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "common/status.h"

namespace commitd::tls {

struct ServerFiles {
  std::string cert;        // PEM chain
  std::string key;         // PEM private key
  std::string client_ca;   // PEM CA bundle clients' certificates are verified against; with require_client_cert
  bool require_client_cert = false;
};

struct ClientFiles {
  std::string ca;           // PEM CA bundle servers are verified against (empty: the system's)
  std::string client_cert;  // optional, with client_key
  std::string client_key;
};

using Context = std::shared_ptr<boost::asio::ssl::context>;

Result<Context> ServerContext(const ServerFiles& files);
Result<Context> ClientContext(const ClientFiles& files);

}  // namespace commitd::tls
