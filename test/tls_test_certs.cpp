// Certificate generation for the TLS tests (see tls_test_certs.hpp).
#include "tls_test_certs.hpp"

#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <string>

namespace tls_test {

namespace {

struct Key {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  Key() { REQUIRE(pkey != nullptr); }
  ~Key() { EVP_PKEY_free(pkey); }
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
};

struct Cert {
  X509* x509 = X509_new();
  ~Cert() { X509_free(x509); }
  Cert() = default;
  Cert(const Cert&) = delete;
  Cert& operator=(const Cert&) = delete;
};

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  REQUIRE(ext != nullptr);
  REQUIRE(X509_add_ext(cert, ext, -1) == 1);
  X509_EXTENSION_free(ext);
}

struct Spec {
  std::string cn;
  std::string san;  // "" for none
  bool ca = false;
  const char* ext_key_usage = nullptr;
  long not_before = -86400;  // seconds from now
  long not_after = 86400 * 365;
};

long serial_counter = 1000;

/// Makes a certificate for `key` per `spec`, signed by (issuer, issuer_key), or self-signed.
void make_cert(Cert& out, const Key& key, const Spec& spec, X509* issuer, EVP_PKEY* issuer_key) {
  X509* cert = out.x509;
  REQUIRE(cert != nullptr);
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial_counter);
  X509_gmtime_adj(X509_getm_notBefore(cert), spec.not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert), spec.not_after);
  X509_set_pubkey(cert, key.pkey);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("asyncuv tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(signer));
  add_ext(cert, signer, NID_subject_key_identifier, "hash");
  add_ext(cert, signer, NID_authority_key_identifier, "keyid:always");
  if (spec.ca) {
    add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    if (spec.ext_key_usage != nullptr) add_ext(cert, signer, NID_ext_key_usage, spec.ext_key_usage);
  }
  if (!spec.san.empty()) add_ext(cert, signer, NID_subject_alt_name, spec.san.c_str());
  REQUIRE(X509_sign(cert, issuer_key != nullptr ? issuer_key : key.pkey, EVP_sha256()) > 0);
}

void write_cert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  REQUIRE(PEM_write_X509(f, cert) == 1);
  std::fclose(f);
}

void write_key(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  REQUIRE(PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  std::fclose(f);
}

CertFiles leaf(const test_support::TempDir& dir, const std::string& name, const Spec& spec,
               X509* issuer, EVP_PKEY* issuer_key) {
  Key key;
  Cert cert;
  make_cert(cert, key, spec, issuer, issuer_key);
  CertFiles files{dir.file(name + ".pem"), dir.file(name + ".key")};
  write_cert(files.cert, cert.x509);
  write_key(files.key, key.pkey);
  return files;
}

}  // namespace

Certs::Certs() {
  Key ca_key;
  Cert ca_cert;
  Spec ca_spec;
  ca_spec.cn = "asyncuv test CA";
  ca_spec.ca = true;
  make_cert(ca_cert, ca_key, ca_spec, nullptr, nullptr);
  ca = dir.file("ca.pem");
  write_cert(ca, ca_cert.x509);

  Spec s;
  s.cn = "localhost";
  s.san = "DNS:localhost,IP:127.0.0.1";
  s.ext_key_usage = "serverAuth";
  server = leaf(dir, "server", s, ca_cert.x509, ca_key.pkey);
  self_signed = leaf(dir, "self_signed", s, nullptr, nullptr);

  Spec e = s;
  e.not_before = -2 * 86400;
  e.not_after = -86400;
  expired = leaf(dir, "expired", e, ca_cert.x509, ca_key.pkey);

  Spec w = s;
  w.cn = "wrong.example";
  w.san = "DNS:wrong.example";
  wrong_host = leaf(dir, "wrong_host", w, ca_cert.x509, ca_key.pkey);

  Spec c;
  c.cn = "asyncuv test client";
  c.san = "DNS:client.example";
  c.ext_key_usage = "clientAuth";
  client = leaf(dir, "client", c, ca_cert.x509, ca_key.pkey);
}

std::shared_ptr<asyncuv::ssl::Context> server_context(const CertFiles& files) {
  auto context = asyncuv::ssl::create_default_context(asyncuv::ssl::Purpose::CLIENT_AUTH);
  context->load_cert_chain(files.cert, files.key);
  return context;
}

std::shared_ptr<asyncuv::ssl::Context> client_context(const std::string& cafile) {
  if (cafile.empty()) {
    // Trusts nothing: create_default_context() would load the system store.
    return std::make_shared<asyncuv::ssl::Context>(asyncuv::ssl::TlsProtocol::TLS_CLIENT);
  }
  return asyncuv::ssl::create_default_context(asyncuv::ssl::Purpose::SERVER_AUTH, cafile);
}

}  // namespace tls_test
