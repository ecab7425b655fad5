// Test certificates for the TLS tests, generated at test time with OpenSSL's C API (nothing
// private is committed): a throwaway CA and, signed by it, a server certificate for
// "localhost" / 127.0.0.1, an expired one, one for the wrong host and a client certificate;
// plus a self-signed server certificate. EC P-256 keys; PEM files in a TempDir.
#pragma once

#include <asyncuv/ssl.hpp>

#include <memory>
#include <string>

#include "temp_dir.hpp"

namespace tls_test {

/// A certificate and its private key, as PEM files.
struct CertFiles {
  std::string cert;
  std::string key;
};

/// Every certificate the TLS tests use, in a fresh directory removed at the end of the test.
struct Certs {
  Certs();
  test_support::TempDir dir;
  std::string ca;         ///< the CA certificate (PEM)
  CertFiles server;       ///< CN=localhost, SAN DNS:localhost, IP:127.0.0.1 (by the CA)
  CertFiles expired;      ///< as server, expired yesterday
  CertFiles wrong_host;   ///< CN=wrong.example, SAN DNS:wrong.example (by the CA)
  CertFiles client;       ///< CN=asyncuv test client, clientAuth (by the CA)
  CertFiles self_signed;  ///< CN=localhost, self-signed
};

/// A server context (create_default_context(CLIENT_AUTH)) with `files` loaded.
std::shared_ptr<asyncuv::ssl::Context> server_context(const CertFiles& files);

/// A client context (create_default_context()) trusting `cafile` ("" : nothing trusted).
std::shared_ptr<asyncuv::ssl::Context> client_context(const std::string& cafile);

}  // namespace tls_test
