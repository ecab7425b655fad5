// OpenSSL's error state as Python's ssl exceptions (CPython's _ssl.c PySSL_SetError and
// fill_and_set_sslerror, re-expressed): the class from SSL_get_error(), the text from the error
// queue as "[LIB: REASON] reason text", with the verification result for certificate errors.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <string>

#include "asyncuv/ssl_errors.hpp"
#include "ssl_internal.hpp"

namespace asyncuv::ssl::detail {

namespace {

/// Python's names for OpenSSL's libraries.
std::string library_name(unsigned long code) {
  switch (ERR_GET_LIB(code)) {
    case ERR_LIB_SSL:
      return "SSL";
    case ERR_LIB_X509:
      return "X509";
    case ERR_LIB_X509V3:
      return "X509V3";
    case ERR_LIB_PEM:
      return "PEM";
    case ERR_LIB_ASN1:
      return "ASN1";
    case ERR_LIB_EVP:
      return "EVP";
    case ERR_LIB_BIO:
      return "BIO";
    case ERR_LIB_SYS:
      return "SYS";
    case ERR_LIB_PKCS12:
      return "PKCS12";
    case ERR_LIB_RSA:
      return "RSA";
    case ERR_LIB_EC:
      return "EC";
    case ERR_LIB_CRYPTO:
      return "CRYPTO";
    default: {
      const char* name = ERR_lib_error_string(code);
      return name != nullptr ? name : "";
    }
  }
}

/// OpenSSL's reason text ("wrong version number"), "" when unknown.
std::string reason_text(unsigned long code) {
  const char* text = ERR_reason_error_string(code);
  return text != nullptr ? text : "";
}

/// The reason's mnemonic as Python prints it: OpenSSL's reason strings are the mnemonics in
/// lower case with spaces ("wrong version number" is SSL_R_WRONG_VERSION_NUMBER).
std::string reason_mnemonic(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    out +=
        c == ' ' || c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

/// Python's text for a verification failure: host name and IP mismatches get their own.
std::string verify_text(long verify_code, const std::string& server_hostname) {
  if (verify_code == X509_V_ERR_HOSTNAME_MISMATCH) {
    return "Hostname mismatch, certificate is not valid for '" + server_hostname + "'.";
  }
  if (verify_code == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return "IP address mismatch, certificate is not valid for '" + server_hostname + "'.";
  }
  return X509_verify_cert_error_string(verify_code);
}

/// An SSL_ERROR_SSL-class error for queue entry `code` on `ssl` (may be null).
std::exception_ptr from_code(SSL* ssl, unsigned long code, const std::string& server_hostname,
                             const char* fallback) {
  if (code == 0) {
    return std::make_exception_ptr(SSLError(1, fallback != nullptr ? fallback : "unknown error"));
  }
  const std::string library = library_name(code);
  const std::string text = reason_text(code);
  const std::string reason = reason_mnemonic(text);
  const int lib = ERR_GET_LIB(code);
  const int why = ERR_GET_REASON(code);
  std::string message = "[" + library + ": " + reason + "] " + text;
  if (lib == ERR_LIB_SSL && why == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long verify_code = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
    std::string verify_message = verify_text(verify_code, server_hostname);
    if (verify_code != X509_V_OK) message += ": " + verify_message;
    return std::make_exception_ptr(
        SSLCertVerificationError(message, verify_code, verify_message, library, reason));
  }
  if (lib == ERR_LIB_SSL && why == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    return std::make_exception_ptr(
        SSLEOFError(8, "[" + library + ": " + reason + "] EOF occurred in violation of protocol",
                    library, reason));
  }
  return std::make_exception_ptr(SSLError(1, message, library, reason));
}

}  // namespace

std::exception_ptr error_from_call(SSL* ssl, int ret, const std::string& server_hostname) {
  const int err = SSL_get_error(ssl, ret);
  const unsigned long code = ERR_peek_last_error();
  std::exception_ptr out;
  switch (err) {
    case SSL_ERROR_ZERO_RETURN:
      out = std::make_exception_ptr(
          SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF)"));
      break;
    case SSL_ERROR_WANT_READ:
      out = std::make_exception_ptr(SSLWantReadError(2, "The operation did not complete (read)"));
      break;
    case SSL_ERROR_WANT_WRITE:
      out = std::make_exception_ptr(SSLWantWriteError(3, "The operation did not complete (write)"));
      break;
    case SSL_ERROR_WANT_X509_LOOKUP:
      out = std::make_exception_ptr(SSLError(4, "The operation did not complete (X509 lookup)"));
      break;
    case SSL_ERROR_WANT_CONNECT:
      out = std::make_exception_ptr(SSLError(7, "The operation did not complete (connect)"));
      break;
    case SSL_ERROR_SYSCALL:
      if (code == 0) {
        out = ret == 0
                  ? std::make_exception_ptr(SSLEOFError(8, "EOF occurred in violation of protocol"))
                  : std::make_exception_ptr(SSLSyscallError(5, "Some I/O error occurred"));
      } else {
        out = from_code(ssl, code, server_hostname, nullptr);
      }
      break;
    default:
      out = from_code(ssl, code, server_hostname, "A failure in the SSL library occurred");
      break;
  }
  ERR_clear_error();
  return out;
}

std::exception_ptr error_from_queue(const char* fallback) {
  std::exception_ptr out = from_code(nullptr, ERR_peek_last_error(), {}, fallback);
  ERR_clear_error();
  return out;
}

void throw_from_queue(const char* fallback) {
  std::rethrow_exception(error_from_queue(fallback));
}

}  // namespace asyncuv::ssl::detail
