// asyncuv::ssl::SSLObject (Python's ssl.SSLObject, read-only) and the decoding of a peer
// certificate into PeerCert (Python's getpeercert()).
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <string>

#include "asyncuv/ssl.hpp"

namespace asyncuv::ssl {

namespace {

std::string asn1_string_utf8(const ASN1_STRING* value) {
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, value);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::vector<std::pair<std::string, std::string>> decode_name(const X509_NAME* name) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    const char* long_name = nid != NID_undef ? OBJ_nid2ln(nid) : nullptr;
    out.emplace_back(long_name != nullptr ? long_name : "UNDEF",
                     asn1_string_utf8(X509_NAME_ENTRY_get_data(entry)));
  }
  return out;
}

std::string asn1_time_text(const ASN1_TIME* time) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || ASN1_TIME_print(bio.get(), time) != 1) return {};
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

/// Python's text for an IP address SAN: dotted IPv4, or eight uppercase hex groups.
std::string ip_text(const ASN1_OCTET_STRING* ip) {
  const unsigned char* p = ASN1_STRING_get0_data(ip);
  int len = ASN1_STRING_length(ip);
  char buf[64];
  if (len == 4) {
    std::snprintf(buf, sizeof buf, "%d.%d.%d.%d", p[0], p[1], p[2], p[3]);
    return buf;
  }
  if (len == 16) {
    std::string out;
    for (int i = 0; i < 16; i += 2) {
      std::snprintf(buf, sizeof buf, "%X", (p[i] << 8) | p[i + 1]);
      if (i > 0) out += ':';
      out += buf;
    }
    return out;
  }
  return "<invalid>";
}

std::vector<std::pair<std::string, std::string>> decode_san(X509* cert) {
  std::vector<std::pair<std::string, std::string>> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    switch (name->type) {
      case GEN_DNS:
        out.emplace_back("DNS", asn1_string_utf8(name->d.dNSName));
        break;
      case GEN_EMAIL:
        out.emplace_back("email", asn1_string_utf8(name->d.rfc822Name));
        break;
      case GEN_URI:
        out.emplace_back("URI", asn1_string_utf8(name->d.uniformResourceIdentifier));
        break;
      case GEN_IPADD:
        out.emplace_back("IP Address", ip_text(name->d.iPAddress));
        break;
      default:
        out.emplace_back("othername", "<unsupported>");
        break;
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

}  // namespace

SSLObject::SSLObject(ssl_st* ssl, bool server_side, std::optional<std::string> server_hostname)
    : ssl_(ssl), server_side_(server_side), server_hostname_(std::move(server_hostname)) {
  SSL_up_ref(ssl_);
}

SSLObject::~SSLObject() {
  SSL_free(ssl_);
}

std::string SSLObject::version() const {
  return SSL_get_version(ssl_);
}

std::optional<CipherInfo> SSLObject::cipher() const {
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
  if (cipher == nullptr) return std::nullopt;
  CipherInfo info;
  info.name = SSL_CIPHER_get_name(cipher);
  info.protocol = SSL_CIPHER_get_version(cipher);
  info.secret_bits = SSL_CIPHER_get_bits(cipher, nullptr);
  return info;
}

std::optional<std::string> SSLObject::compression() const {
  const COMP_METHOD* method = SSL_get_current_compression(ssl_);
  if (method == nullptr) return std::nullopt;
  const char* name = SSL_COMP_get_name(method);
  return std::string(name != nullptr ? name : "");
}

std::optional<std::string> SSLObject::selected_alpn_protocol() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  if (data == nullptr || len == 0) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::optional<PeerCert> SSLObject::getpeercert() const {
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return std::nullopt;
  std::unique_ptr<X509, decltype(&X509_free)> owner(cert, &X509_free);
  PeerCert out;
  int der_len = i2d_X509(cert, nullptr);
  if (der_len > 0) {
    out.der.resize(static_cast<std::size_t>(der_len));
    auto* p = reinterpret_cast<unsigned char*>(out.der.data());
    i2d_X509(cert, &p);
  }
  // As Python: an unverified certificate decodes to nothing (only the DER form is given).
  if ((SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) == 0) return out;
  out.subject = decode_name(X509_get_subject_name(cert));
  out.issuer = decode_name(X509_get_issuer_name(cert));
  out.version = static_cast<int>(X509_get_version(cert)) + 1;
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      out.serial_number = hex;
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  out.not_before = asn1_time_text(X509_get0_notBefore(cert));
  out.not_after = asn1_time_text(X509_get0_notAfter(cert));
  out.subject_alt_name = decode_san(cert);
  return out;
}

std::optional<std::string> SSLObject::server_hostname() const {
  if (!server_side_) return server_hostname_;
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return std::nullopt;
  return std::string(name);
}

}  // namespace asyncuv::ssl
