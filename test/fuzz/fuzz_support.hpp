// Helpers shared by the fuzz targets: quiet logging, running the loop until it has nothing
// ready, and a throw-away certificate for the TLS targets.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <asyncuv/asyncuv.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace fuzz_support {

/// Silences asyncuv's logger: the targets provoke errors on purpose, millions of times.
inline void quiet_logs() {
  spdlog::set_level(spdlog::level::off);
}

/// Runs `loop` for a few iterations: enough for every callback made ready by what the target
/// just did (a resolved future wakes its task one iteration later) to run.
inline void settle(asyncuv::EventLoop& loop, int iterations = 4) {
  for (int i = 0; i < iterations; ++i) {
    loop.stop();
    loop.run_forever();
  }
}

/// Aborts with `what` unless `ok` (a failed setup must not pass for a fuzzing result).
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz setup failed: %s\n", what);
    std::abort();
  }
}

/// A self-signed P-256 certificate for CN=localhost, written once as PEM files into a new
/// temporary directory (removed at exit).
struct SelfSigned {
  std::string dir;
  std::string cert;
  std::string key;

  SelfSigned() {
    char tmpl[] = "/tmp/asyncuv-fuzz-XXXXXX";
    require(::mkdtemp(tmpl) != nullptr, "mkdtemp");
    dir = tmpl;
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    require(pkey != nullptr, "keygen");
    X509* x509 = X509_new();
    X509_set_version(x509, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x509), 1);
    X509_gmtime_adj(X509_getm_notBefore(x509), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x509), 3600L * 24 * 365);
    X509_set_pubkey(x509, pkey);
    X509_NAME* name = X509_get_subject_name(x509);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x509, name);
    require(X509_sign(x509, pkey, EVP_sha256()) > 0, "sign");
    std::FILE* f = std::fopen(cert.c_str(), "w");
    require(f != nullptr && PEM_write_X509(f, x509) == 1, "write cert");
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    require(
        f != nullptr && PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "write key");
    std::fclose(f);
    X509_free(x509);
    EVP_PKEY_free(pkey);
  }
  ~SelfSigned() {
    std::remove(cert.c_str());
    std::remove(key.c_str());
    ::rmdir(dir.c_str());
  }
};

}  // namespace fuzz_support
