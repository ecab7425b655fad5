// Helpers shared by the server implementation files (lib/server*.cpp, lib/unix_server.cpp;
// not installed): Python-style text for error messages and the ssl argument checks.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "asyncuv/durations.hpp"
#include "asyncuv/sockaddr.hpp"
#include "asyncuv/socket.hpp"

namespace asyncuv::detail {

/// Python's repr() of a str: '/tmp/x', "it's", '\x00name'.
std::string py_str_repr(std::string_view text);

/// Python's repr() of a socket address: ('127.0.0.1', 8888), ('::1', 8888, 0, 0), or the
/// path's repr for AF_UNIX.
std::string py_address_repr(const SockAddr& address);

/// A listening socket in reprs and exception contexts:
/// "<Socket fd=6 family=2 type=1 proto=6 laddr=127.0.0.1:8888>".
std::string describe_listening_socket(const Socket& sock);

/// What Python's OSError(errnum, message) constructs: the subclass for `errnum`
/// (PermissionError for EACCES, ...) carrying `message` as its strerror.
std::exception_ptr os_error_with_message(int errnum, const std::string& message);

/// asyncio's checks of the TLS timeouts: ValueError("ssl_handshake_timeout is only meaningful
/// with ssl") (and the same for ssl_shutdown_timeout) when given without an ssl context.
void check_ssl_timeouts(bool has_ssl, const std::optional<Seconds>& handshake_timeout,
                        const std::optional<Seconds>& shutdown_timeout);

}  // namespace asyncuv::detail
