// The exceptions of Python's ssl module, raised by asyncuv's TLS layer (<asyncuv/ssl.hpp>).
//
// As in Python, SSLError is an OSError whose errno is the OpenSSL SSL_ERROR_* code and whose
// text reads like Python's str(): "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed:
// self-signed certificate" (Python appends "(_ssl.c:NNNN)"; asyncuv does not). Because they are
// OSErrors, TLS failures of a connection are treated like socket errors: they end the
// connection (connection_lost(exc), or the exception of create_connection) and only reach the
// exception handler's debug log, as in asyncio.
#pragma once

#include <string>
#include <utility>

#include "asyncuv/exceptions.hpp"

namespace asyncuv {

/// Python's NotImplementedError (a RuntimeError): what TLS transports' write_eof() throws, as
/// asyncio's do.
class NotImplementedError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

namespace ssl {

/// Python's ssl.SSLError: an OSError from the TLS layer. errnum() is OpenSSL's SSL_ERROR_* code
/// (1 SSL, 2 WANT_READ, 3 WANT_WRITE, 5 SYSCALL, 6 ZERO_RETURN; 8 is Python's SSL_ERROR_EOF).
/// what() is the message alone (no "[Errno N]" prefix), as Python's str().
class SSLError : public OSError {
 public:
  /// An error with SSL_ERROR_* code `errnum`, text `message`, and OpenSSL's library and
  /// reason mnemonics ("SSL", "WRONG_VERSION_NUMBER") when known.
  SSLError(int errnum, const std::string& message, std::string library = {},
           std::string reason = {})
      : OSError(errnum, message), library_(std::move(library)), reason_(std::move(reason)) {}
  const char* what() const noexcept override { return strerror().c_str(); }
  /// The OpenSSL library of the error ("SSL", "X509", "PEM", ...), or "".
  const std::string& library() const noexcept { return library_; }
  /// The OpenSSL reason mnemonic ("CERTIFICATE_VERIFY_FAILED", ...), or "".
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string library_;
  std::string reason_;
};

/// The peer closed the TLS session with close_notify (SSL_ERROR_ZERO_RETURN).
class SSLZeroReturnError : public SSLError {
 public:
  using SSLError::SSLError;
};

/// The operation needs more data from the peer (SSL_ERROR_WANT_READ).
class SSLWantReadError : public SSLError {
 public:
  using SSLError::SSLError;
};

/// The operation needs to send data first (SSL_ERROR_WANT_WRITE).
class SSLWantWriteError : public SSLError {
 public:
  using SSLError::SSLError;
};

/// An I/O error below OpenSSL (SSL_ERROR_SYSCALL).
class SSLSyscallError : public SSLError {
 public:
  using SSLError::SSLError;
};

/// The connection ended in violation of the protocol: EOF without close_notify where the
/// protocol needs more (SSL_ERROR_EOF).
class SSLEOFError : public SSLError {
 public:
  using SSLError::SSLError;
};

/// Certificate verification failed (Python's ssl.SSLCertVerificationError, also known as
/// ssl.CertificateError). In Python it is also a ValueError; here it is only an SSLError.
class SSLCertVerificationError : public SSLError {
 public:
  /// `verify_code` is OpenSSL's X509_V_ERR_* value, `verify_message` its text.
  SSLCertVerificationError(const std::string& message, long verify_code, std::string verify_message,
                           std::string library = "SSL",
                           std::string reason = "CERTIFICATE_VERIFY_FAILED")
      : SSLError(1, message, std::move(library), std::move(reason)),
        verify_code_(verify_code),
        verify_message_(std::move(verify_message)) {}
  /// X509_V_ERR_* (e.g. 18 for a self-signed certificate, 62 for a host name mismatch).
  long verify_code() const noexcept { return verify_code_; }
  /// "self-signed certificate", "Hostname mismatch, certificate is not valid for 'x'.", ...
  const std::string& verify_message() const noexcept { return verify_message_; }

 private:
  long verify_code_;
  std::string verify_message_;
};

/// Python's alias.
using CertificateError = SSLCertVerificationError;

}  // namespace ssl
}  // namespace asyncuv
