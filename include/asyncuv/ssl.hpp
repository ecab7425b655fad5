// TLS for asyncuv's stream connections (Python's ssl module as asyncio uses it, over OpenSSL).
//
// A ssl::Context (Python's ssl.SSLContext, wrapping an SSL_CTX) holds the settings: the
// certificates, the trust store, peer verification, ALPN, ciphers and protocol versions. Pass
// it as `ssl` to create_connection / create_server / create_unix_connection /
// create_unix_server / connect_accepted_socket / open_connection / start_server, or to
// loop.start_tls() to upgrade a live connection:
//
//   auto client = asyncuv::ssl::create_default_context();       // verifies, checks host names
//   asyncuv::ConnectionOptions options{.ssl = client};  // named first: README, g++ 12
//   auto [t, p] = co_await loop.create_connection(factory, "example.com", 443, std::move(options));
//   auto server = asyncuv::ssl::create_default_context(asyncuv::ssl::Purpose::CLIENT_AUTH);
//   server->load_cert_chain("cert.pem", "key.pem");  // then, for loop.create_server(), a
//   // named asyncuv::ServerOptions server_options{.ssl = server}, passed with std::move.
//
// The TLS transport (asyncio's sslproto) keeps the transport contract; see
// <asyncuv/detail/ssl_protocol.hpp>. Its get_extra_info() adds "sslcontext"
// (std::shared_ptr<ssl::Context>, from the start) and, once the handshake is done,
// "ssl_object" (std::shared_ptr<ssl::SSLObject>), "peercert" (ssl::PeerCert, absent when the
// peer sent none), "cipher" (ssl::CipherInfo) and "compression"
// (std::optional<std::string>, std::nullopt without compression).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncuv/ssl_errors.hpp"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX
struct ssl_st;      // OpenSSL's SSL

namespace asyncuv::ssl {

/// What a context made by create_default_context() is for (Python's ssl.Purpose).
enum class Purpose {
  SERVER_AUTH,  ///< a client context: it authenticates servers
  CLIENT_AUTH,  ///< a server context: it (optionally) authenticates clients
};

/// The side a Context serves (Python's PROTOCOL_TLS_CLIENT / PROTOCOL_TLS_SERVER).
enum class TlsProtocol { TLS_CLIENT, TLS_SERVER };

/// Peer verification (Python's ssl.VerifyMode).
enum class VerifyMode {
  CERT_NONE,      ///< no verification (a server does not ask for a client certificate)
  CERT_OPTIONAL,  ///< a server asks for a client certificate and verifies one if sent
  CERT_REQUIRED,  ///< the peer must present a valid certificate
};

/// TLS protocol versions (Python's ssl.TLSVersion).
enum class TLSVersion { MINIMUM_SUPPORTED, TLSv1, TLSv1_1, TLSv1_2, TLSv1_3, MAXIMUM_SUPPORTED };

/// Python's ssl.SSLContext over an OpenSSL SSL_CTX. Not thread-safe; share it between
/// connections of one thread (connections keep it alive through std::shared_ptr).
class Context {
 public:
  /// A context with Python 3.10+'s defaults for `protocol`: TLS 1.2 minimum, no compression,
  /// secure ciphers; a TLS_CLIENT context verifies the peer (CERT_REQUIRED) and checks host
  /// names, a TLS_SERVER context does neither. No CA is loaded (see load_default_certs()).
  /// Throws SSLError when OpenSSL cannot make one.
  explicit Context(TlsProtocol protocol);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// The side this context serves.
  TlsProtocol protocol() const noexcept { return protocol_; }

  /// Loads a certificate chain (PEM; `certfile` may hold the private key too) and its private
  /// key (`keyfile`, "" for certfile). `password` unlocks an encrypted key. Throws
  /// FileNotFoundError (errno set) for a missing file, SSLError for bad contents or a key that
  /// does not match the certificate.
  void load_cert_chain(const std::string& certfile, const std::string& keyfile = {},
                       const std::string& password = {});

  /// Trusts the CA certificates in `cafile` (PEM), the hashed directory `capath` and/or the
  /// PEM text `cadata` (Python's load_verify_locations). TypeError when all are empty;
  /// FileNotFoundError or SSLError as load_cert_chain.
  void load_verify_locations(const std::string& cafile = {}, const std::string& capath = {},
                             std::string_view cadata = {});

  /// Trusts the system's CA store (OpenSSL's default paths; SSL_CERT_FILE / SSL_CERT_DIR).
  void load_default_certs();

  /// Offers (client) or accepts (server) these ALPN protocols, in order of preference
  /// ("h2", "http/1.1"). ValueError for an empty or over-long (255 bytes) name.
  void set_alpn_protocols(const std::vector<std::string>& protocols);

  /// The cipher list for TLS 1.2 and below, in OpenSSL's syntax. SSLError("No cipher can be
  /// selected.") when nothing matches.
  void set_ciphers(const std::string& ciphers);

  /// Host name checking on client connections. Turning it on with CERT_NONE switches
  /// verify_mode to CERT_REQUIRED, as Python.
  bool check_hostname() const noexcept { return check_hostname_; }
  void set_check_hostname(bool enabled);

  /// Peer verification. ValueError("Cannot set verify_mode to CERT_NONE when check_hostname
  /// is enabled.") as Python.
  VerifyMode verify_mode() const noexcept { return verify_mode_; }
  void set_verify_mode(VerifyMode mode);

  /// The lowest / highest protocol version allowed.
  TLSVersion minimum_version() const;
  void set_minimum_version(TLSVersion version);
  TLSVersion maximum_version() const;
  void set_maximum_version(TLSVersion version);

  /// OpenSSL's SSL_OP_* option bits (Python's context.options).
  std::uint64_t options() const;
  void set_options(std::uint64_t options);

  /// The ALPN protocols set with set_alpn_protocols(), in OpenSSL's wire format.
  const std::string& alpn_wire() const noexcept { return alpn_; }

  /// The SSL_CTX, for settings this class does not cover.
  ssl_ctx_st* native_handle() const noexcept { return ctx_; }

 private:
  ssl_ctx_st* ctx_ = nullptr;
  TlsProtocol protocol_;
  bool check_hostname_ = false;
  VerifyMode verify_mode_ = VerifyMode::CERT_NONE;
  std::string alpn_;
};

/// Python's ssl.create_default_context(): for SERVER_AUTH (the default) a client context with
/// peer verification and host name checking; for CLIENT_AUTH a server context. The trust store
/// is `cafile` / `capath` / `cadata` when given, else the system's. As Python 3.13, X.509
/// strict checking and partial chains are enabled.
std::shared_ptr<Context> create_default_context(Purpose purpose = Purpose::SERVER_AUTH,
                                                const std::string& cafile = {},
                                                const std::string& capath = {},
                                                std::string_view cadata = {});

/// get_extra_info("cipher"): Python's (name, protocol, secret bits) tuple.
struct CipherInfo {
  std::string name;      ///< "TLS_AES_256_GCM_SHA384"
  std::string protocol;  ///< "TLSv1.3"
  int secret_bits = 0;   ///< 256
};

/// get_extra_info("peercert"): the decoded peer certificate, as Python's getpeercert(). All
/// fields are empty when the certificate was not verified (CERT_NONE), as Python's {}.
struct PeerCert {
  /// Relative distinguished names, OpenSSL long names: {"commonName", "localhost"}.
  std::vector<std::pair<std::string, std::string>> subject;
  std::vector<std::pair<std::string, std::string>> issuer;
  int version = 0;            ///< 3 for X.509v3
  std::string serial_number;  ///< uppercase hex
  std::string not_before;     ///< "Jan  5 09:34:43 2018 GMT"
  std::string not_after;      ///< "Jan  5 09:34:43 2028 GMT"
  /// {"DNS", "localhost"}, {"IP Address", "127.0.0.1"}, {"email", ...}, {"URI", ...}.
  std::vector<std::pair<std::string, std::string>> subject_alt_name;
  /// The DER encoding (Python's getpeercert(binary_form=True)); set even when not verified.
  std::string der;
};

/// get_extra_info("ssl_object"): the TLS session of a connection (Python's ssl.SSLObject).
/// Keeps the OpenSSL session object alive; read-only.
class SSLObject {
 public:
  /// Wraps `ssl` (taking a reference: SSL_up_ref).
  SSLObject(ssl_st* ssl, bool server_side, std::optional<std::string> server_hostname);
  ~SSLObject();
  SSLObject(const SSLObject&) = delete;
  SSLObject& operator=(const SSLObject&) = delete;

  /// "TLSv1.3", "TLSv1.2", ...
  std::string version() const;
  /// The cipher in use, or nothing before the handshake.
  std::optional<CipherInfo> cipher() const;
  /// The compression method, or nothing (the normal case).
  std::optional<std::string> compression() const;
  /// The ALPN protocol both sides agreed on, or nothing.
  std::optional<std::string> selected_alpn_protocol() const;
  /// The peer's certificate, or nothing when it sent none.
  std::optional<PeerCert> getpeercert() const;
  /// True on the server side of the connection.
  bool server_side() const noexcept { return server_side_; }
  /// The name the client asked for: on the client side the server_hostname it used, on the
  /// server side the SNI name the client sent; nothing when none.
  std::optional<std::string> server_hostname() const;
  /// The SSL object, for what this class does not cover.
  ssl_st* native_handle() const noexcept { return ssl_; }

 private:
  ssl_st* ssl_;
  bool server_side_;
  std::optional<std::string> server_hostname_;
};

}  // namespace asyncuv::ssl
