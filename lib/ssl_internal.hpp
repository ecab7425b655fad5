// Helpers shared by the TLS implementation files (lib/ssl_*.cpp, lib/start_tls.cpp; not
// installed): turning OpenSSL's error state into Python's ssl exceptions.
#pragma once

#include <openssl/ssl.h>

#include <exception>
#include <string>

namespace asyncuv::detail {
class SSLProtocol;
}

namespace asyncuv::ssl::detail {

/// The exception Python's _ssl module raises after an OpenSSL call on `ssl` returned `ret`:
/// SSL_get_error() picks the class (SSLWantReadError, SSLZeroReturnError, SSLEOFError,
/// SSLCertVerificationError, ...) and OpenSSL's error queue the text, e.g. "[SSL:
/// WRONG_VERSION_NUMBER] wrong version number". `server_hostname` completes the text of a
/// host name mismatch. Clears the error queue.
std::exception_ptr error_from_call(SSL* ssl, int ret, const std::string& server_hostname = {});

/// An SSLError from the newest entry of OpenSSL's error queue (or `fallback` as its text when
/// the queue is empty). Clears the queue.
std::exception_ptr error_from_queue(const char* fallback);

/// Throws error_from_queue(fallback).
[[noreturn]] void throw_from_queue(const char* fallback);

/// A BIO that reads ciphertext from `protocol`'s incoming buffer and appends what OpenSSL
/// writes to its outgoing buffer (SSLProtocol::bio_read / bio_write): memory BIOs without the
/// copies. Null if OpenSSL cannot allocate it.
BIO* make_protocol_bio(asyncuv::detail::SSLProtocol* protocol);

}  // namespace asyncuv::ssl::detail
