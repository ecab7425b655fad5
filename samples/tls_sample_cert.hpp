// The TLS samples' certificate: a self-signed certificate for "localhost" / 127.0.0.1 and its
// key (EC P-256), generated with OpenSSL into a directory on first use and reused afterwards.
//
//   std::string dir = tls_cert_dir(args.get("cert-dir"));   // "" : a per-user cache directory
//   auto [cert, key] = ensure_self_signed(dir);               // dir/cert.pem, dir/key.pem
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

/// `given`, or a per-user cache directory ($XDG_CACHE_HOME or ~/.cache, else /tmp) for the
/// samples' certificate. Created (mode 0700) when missing.
inline std::string tls_cert_dir(std::string given) {
  if (given.empty()) {
    if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache != nullptr && *cache != '\0') {
      given = std::string(cache) + "/asyncuv-tls";
    } else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
      given = std::string(home) + "/.cache/asyncuv-tls";
    } else {
      given = "/tmp/asyncuv-tls-" + std::to_string(::getuid());
    }
  }
  // mkdir -p
  for (std::size_t at = 1; at <= given.size(); ++at) {
    if (at == given.size() || given[at] == '/') {
      std::string part = given.substr(0, at);
      if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
        throw std::runtime_error("cannot create " + part);
      }
    }
  }
  return given;
}

/// dir/cert.pem and dir/key.pem, made (self-signed, valid one year) if either is missing.
inline std::pair<std::string, std::string> ensure_self_signed(const std::string& dir) {
  std::string cert_path = dir + "/cert.pem";
  std::string key_path = dir + "/key.pem";
  struct stat st {};
  if (::stat(cert_path.c_str(), &st) == 0 && ::stat(key_path.c_str(), &st) == 0) {
    return {cert_path, key_path};
  }
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* cert = X509_new();
  if (key == nullptr || cert == nullptr) throw std::runtime_error("OpenSSL: out of memory");
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), static_cast<long>(::time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  const std::pair<int, const char*> extensions[] = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"},
      {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
  };
  for (const auto& [nid, value] : extensions) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) throw std::runtime_error("OpenSSL: bad certificate extension");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert, key, EVP_sha256()) <= 0) throw std::runtime_error("OpenSSL: cannot sign");
  // The key is private: written with mode 0600.
  ::umask(077);
  FILE* k = std::fopen(key_path.c_str(), "w");
  FILE* c = std::fopen(cert_path.c_str(), "w");
  bool ok = k != nullptr && c != nullptr &&
            PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr) == 1 &&
            PEM_write_X509(c, cert) == 1;
  if (k != nullptr) std::fclose(k);
  if (c != nullptr) std::fclose(c);
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) throw std::runtime_error("cannot write the certificate into " + dir);
  return {cert_path, key_path};
}
