// asyncuv::ssl::Context (Python's ssl.SSLContext) and create_default_context().
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "asyncuv/exceptions.hpp"
#include "asyncuv/ssl.hpp"
#include "ssl_internal.hpp"

namespace asyncuv::ssl {

namespace {

/// Python's PY_SSL_DEFAULT_CIPHER_STRING.
constexpr const char* kDefaultCiphers =
    "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM";

/// FileNotFoundError & co. when `path` cannot be read, as Python reports errno for the
/// certificate loaders.
void check_readable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_os_error(errno);
}

int to_openssl_version(TLSVersion version) {
  switch (version) {
    case TLSVersion::TLSv1:
      return TLS1_VERSION;
    case TLSVersion::TLSv1_1:
      return TLS1_1_VERSION;
    case TLSVersion::TLSv1_2:
      return TLS1_2_VERSION;
    case TLSVersion::TLSv1_3:
      return TLS1_3_VERSION;
    case TLSVersion::MINIMUM_SUPPORTED:
    case TLSVersion::MAXIMUM_SUPPORTED:
      break;
  }
  return 0;  // OpenSSL: no bound
}

TLSVersion from_openssl_version(long version, TLSVersion unbounded) {
  switch (version) {
    case TLS1_VERSION:
      return TLSVersion::TLSv1;
    case TLS1_1_VERSION:
      return TLSVersion::TLSv1_1;
    case TLS1_2_VERSION:
      return TLSVersion::TLSv1_2;
    case TLS1_3_VERSION:
      return TLSVersion::TLSv1_3;
    default:
      return unbounded;
  }
}

/// The server's ALPN choice: the first of its own protocols the client offers.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const auto* context = static_cast<const Context*>(arg);
  const std::string& mine = context->alpn_wire();
  if (mine.empty()) return SSL_TLSEXT_ERR_NOACK;
  unsigned char* selected = nullptr;
  int rc =
      SSL_select_next_proto(&selected, outlen, reinterpret_cast<const unsigned char*>(mine.data()),
                            static_cast<unsigned>(mine.size()), in, inlen);
  if (rc != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

/// Hands load_cert_chain's password to OpenSSL.
int password_callback(char* buf, int size, int, void* userdata) {
  const auto* password = static_cast<const std::string*>(userdata);
  if (password == nullptr || password->size() > static_cast<std::size_t>(size)) return -1;
  std::memcpy(buf, password->data(), password->size());
  return static_cast<int>(password->size());
}

}  // namespace

Context::Context(TlsProtocol protocol) : protocol_(protocol) {
  ctx_ =
      SSL_CTX_new(protocol == TlsProtocol::TLS_CLIENT ? TLS_client_method() : TLS_server_method());
  if (ctx_ == nullptr) detail::throw_from_queue("SSL_CTX_new failed");
  std::uint64_t options =
      SSL_OP_ALL & ~static_cast<std::uint64_t>(SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS);
  options |= SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_COMPRESSION |
             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_DH_USE | SSL_OP_SINGLE_ECDH_USE;
  SSL_CTX_set_options(ctx_, options);
  // Python also sets SSL_MODE_RELEASE_BUFFERS; asyncuv keeps the record buffers, which spares
  // an allocation per record on busy connections.
  SSL_CTX_set_mode(ctx_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_AUTO_RETRY);
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(ctx_, kDefaultCiphers) != 1) {
    SSL_CTX_free(ctx_);
    detail::throw_from_queue("No cipher can be selected.");
  }
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx_);
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_TRUSTED_FIRST);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  SSL_CTX_set_alpn_select_cb(ctx_, &select_alpn, this);
  if (protocol == TlsProtocol::TLS_CLIENT) {
    set_verify_mode(VerifyMode::CERT_REQUIRED);
    check_hostname_ = true;
  } else {
    set_verify_mode(VerifyMode::CERT_NONE);
  }
}

Context::~Context() {
  SSL_CTX_free(ctx_);
}

void Context::load_cert_chain(const std::string& certfile, const std::string& keyfile,
                              const std::string& password) {
  const std::string& key = keyfile.empty() ? certfile : keyfile;
  check_readable(certfile);
  check_readable(key);
  SSL_CTX_set_default_passwd_cb(ctx_, &password_callback);
  SSL_CTX_set_default_passwd_cb_userdata(ctx_, const_cast<std::string*>(&password));
  struct Reset {
    SSL_CTX* ctx;
    ~Reset() {
      SSL_CTX_set_default_passwd_cb(ctx, nullptr);
      SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
    }
  } reset{ctx_};
  if (SSL_CTX_use_certificate_chain_file(ctx_, certfile.c_str()) != 1) {
    detail::throw_from_queue("cannot load the certificate chain");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    detail::throw_from_queue("cannot load the private key");
  }
  if (SSL_CTX_check_private_key(ctx_) != 1) {
    detail::throw_from_queue("the private key does not match the certificate");
  }
}

void Context::load_verify_locations(const std::string& cafile, const std::string& capath,
                                    std::string_view cadata) {
  if (cafile.empty() && capath.empty() && cadata.empty()) {
    throw TypeError("cafile, capath and cadata cannot be all omitted");
  }
  if (!cafile.empty()) check_readable(cafile);
  if (!capath.empty()) check_readable(capath);
  if (!cafile.empty() || !capath.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_, cafile.empty() ? nullptr : cafile.c_str(),
                                      capath.empty() ? nullptr : capath.c_str()) != 1) {
      detail::throw_from_queue("cannot load the verify locations");
    }
  }
  if (!cadata.empty()) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(cadata.data(), static_cast<int>(cadata.size())), &BIO_free);
    if (!bio) detail::throw_from_queue("cannot read cadata");
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
    int loaded = 0;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      int rc = X509_STORE_add_cert(store, cert);
      X509_free(cert);
      if (rc != 1) detail::throw_from_queue("cannot add a certificate");
      ++loaded;
    }
    unsigned long last = ERR_peek_last_error();
    if (loaded > 0 && ERR_GET_LIB(last) == ERR_LIB_PEM &&
        ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
      ERR_clear_error();  // the end of the data
    } else if (last != 0 || loaded == 0) {
      detail::throw_from_queue("no certificate found in cadata");
    }
  }
}

void Context::load_default_certs() {
  if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
    detail::throw_from_queue("cannot load the default verify paths");
  }
}

void Context::set_alpn_protocols(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& name : protocols) {
    if (name.empty() || name.size() > 255) {
      throw ValueError("ALPN protocols must be 1 to 255 in length");
    }
    wire += static_cast<char>(name.size());
    wire += name;
  }
  // SSL_CTX_set_alpn_protos returns 0 on success.
  if (protocol_ == TlsProtocol::TLS_CLIENT &&
      SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size())) != 0) {
    detail::throw_from_queue("cannot set the ALPN protocols");
  }
  alpn_ = std::move(wire);
}

void Context::set_ciphers(const std::string& ciphers) {
  if (SSL_CTX_set_cipher_list(ctx_, ciphers.c_str()) != 1) {
    ERR_clear_error();
    throw SSLError(1, "No cipher can be selected.");
  }
}

void Context::set_check_hostname(bool enabled) {
  if (enabled && verify_mode_ == VerifyMode::CERT_NONE) set_verify_mode(VerifyMode::CERT_REQUIRED);
  check_hostname_ = enabled;
}

void Context::set_verify_mode(VerifyMode mode) {
  if (mode == VerifyMode::CERT_NONE && check_hostname_) {
    throw ValueError("Cannot set verify_mode to CERT_NONE when check_hostname is enabled.");
  }
  int flags = SSL_VERIFY_NONE;
  if (mode == VerifyMode::CERT_OPTIONAL) flags = SSL_VERIFY_PEER;
  if (mode == VerifyMode::CERT_REQUIRED) flags = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx_, flags, nullptr);
  verify_mode_ = mode;
}

TLSVersion Context::minimum_version() const {
  return from_openssl_version(SSL_CTX_get_min_proto_version(ctx_), TLSVersion::MINIMUM_SUPPORTED);
}

void Context::set_minimum_version(TLSVersion version) {
  if (version == TLSVersion::MAXIMUM_SUPPORTED) version = TLSVersion::TLSv1_3;
  if (SSL_CTX_set_min_proto_version(ctx_, to_openssl_version(version)) != 1) {
    detail::throw_from_queue("Unsupported TLS/SSL version");
  }
}

TLSVersion Context::maximum_version() const {
  return from_openssl_version(SSL_CTX_get_max_proto_version(ctx_), TLSVersion::MAXIMUM_SUPPORTED);
}

void Context::set_maximum_version(TLSVersion version) {
  if (version == TLSVersion::MINIMUM_SUPPORTED) version = TLSVersion::TLSv1;
  if (SSL_CTX_set_max_proto_version(ctx_, to_openssl_version(version)) != 1) {
    detail::throw_from_queue("Unsupported TLS/SSL version");
  }
}

std::uint64_t Context::options() const {
  return SSL_CTX_get_options(ctx_);
}

void Context::set_options(std::uint64_t options) {
  std::uint64_t current = SSL_CTX_get_options(ctx_);
  SSL_CTX_clear_options(ctx_, current & ~options);
  SSL_CTX_set_options(ctx_, options);
}

std::shared_ptr<Context> create_default_context(Purpose purpose, const std::string& cafile,
                                                const std::string& capath,
                                                std::string_view cadata) {
  auto context = std::make_shared<Context>(
      purpose == Purpose::SERVER_AUTH ? TlsProtocol::TLS_CLIENT : TlsProtocol::TLS_SERVER);
  if (!cafile.empty() || !capath.empty() || !cadata.empty()) {
    context->load_verify_locations(cafile, capath, cadata);
  } else if (context->verify_mode() != VerifyMode::CERT_NONE) {
    context->load_default_certs();
  }
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(context->native_handle()),
                              X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT);
  return context;
}

}  // namespace asyncuv::ssl
