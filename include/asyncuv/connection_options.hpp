// The keyword arguments of asyncio's create_connection / create_server and their Unix
// variants, as option structs for C++20 designated initializers, named before the co_await
// (g++ 12 destroys them twice written inline there; README, Supported compilers):
//   asyncuv::ServerOptions options{.reuse_port = true};
//   co_await loop.create_server(factory, "", 8888, std::move(options));
//
// Every field defaults to asyncio's default. The `ssl*` and `server_hostname` fields take part
// in argument checking as in asyncio (ValueError when given without `ssl`); TLS itself is
// <asyncuv/ssl.hpp>'s business.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "asyncuv/durations.hpp"
#include "asyncuv/socket.hpp"

namespace asyncuv {

namespace ssl {
class Context;
}

/// A (host, port) pair, as asyncio's local_addr tuples: {"127.0.0.1", 0}.
using HostPort = std::pair<std::string, std::uint16_t>;

/// The keyword arguments of loop.create_connection().
struct ConnectionOptions {
  /// TLS context: the connection is wrapped in TLS when set.
  std::shared_ptr<ssl::Context> ssl{};
  /// getaddrinfo hints: AF_INET, AF_INET6 or 0 (any).
  int family = 0;
  /// getaddrinfo hints: the protocol (0: any).
  int proto = 0;
  /// getaddrinfo hints: AI_* flags.
  int flags = 0;
  /// An already connected stream socket to use instead of host/port; the transport takes it.
  std::optional<Socket> sock{};
  /// Binds the socket to this address before connecting (resolved like the host).
  std::optional<HostPort> local_addr{};
  /// Name checked against the server's certificate (ssl only); "" disables the check.
  std::optional<std::string> server_hostname{};
  /// TLS handshake timeout (ssl only; 60 s by default).
  std::optional<Seconds> ssl_handshake_timeout{};
  /// TLS shutdown timeout (ssl only; 30 s by default).
  std::optional<Seconds> ssl_shutdown_timeout{};
  /// RFC 8305 Happy Eyeballs: start the next connection attempt after this delay while the
  /// previous ones are still trying (0.25 s is the RFC's recommendation). Unset: one at a time.
  std::optional<Seconds> happy_eyeballs_delay{};
  /// Reorders the addresses by family, interleaving them (1 when happy_eyeballs_delay is given
  /// and this is not): the first address of the first family, then `interleave` of the other.
  std::optional<int> interleave{};
  /// When every attempt fails: false raises the one error (or "Multiple exceptions: ..."),
  /// true raises an ExceptionGroup of all of them.
  bool all_errors = false;
};

/// The keyword arguments of loop.create_unix_connection().
struct UnixConnectionOptions {
  std::shared_ptr<ssl::Context> ssl{};
  /// An already connected AF_UNIX stream socket to use instead of a path.
  std::optional<Socket> sock{};
  std::optional<std::string> server_hostname{};
  std::optional<Seconds> ssl_handshake_timeout{};
  std::optional<Seconds> ssl_shutdown_timeout{};
};

/// The keyword arguments of loop.create_server().
struct ServerOptions {
  /// getaddrinfo hints: AF_INET, AF_INET6 or 0 (every family the host resolves to).
  int family = AF_UNSPEC;
  /// getaddrinfo hints: AI_* flags (AI_PASSIVE is always added).
  int flags = 0;
  /// A listening (or bound) stream socket to serve on instead of host/port.
  std::optional<Socket> sock{};
  /// The listen() queue length.
  int backlog = 100;
  std::shared_ptr<ssl::Context> ssl{};
  /// SO_REUSEADDR; unset means on (asyncio's default on Unix).
  std::optional<bool> reuse_address{};
  /// SO_REUSEPORT.
  bool reuse_port = false;
  /// SO_KEEPALIVE on every accepted connection.
  bool keep_alive = false;
  std::optional<Seconds> ssl_handshake_timeout{};
  std::optional<Seconds> ssl_shutdown_timeout{};
  /// Accept connections at once (true) or only after Server::start_serving() (false).
  bool start_serving = true;
};

/// The keyword arguments of loop.create_unix_server().
struct UnixServerOptions {
  /// A listening (or bound) AF_UNIX stream socket to serve on instead of a path.
  std::optional<Socket> sock{};
  int backlog = 100;
  std::shared_ptr<ssl::Context> ssl{};
  std::optional<Seconds> ssl_handshake_timeout{};
  std::optional<Seconds> ssl_shutdown_timeout{};
  bool start_serving = true;
  /// Remove the socket file when the server closes (if it is still the one the server made).
  bool cleanup_socket = true;
};

/// The keyword arguments of loop.start_tls().
struct StartTlsOptions {
  /// Upgrade as the TLS server (true) or client (false).
  bool server_side = false;
  /// Client side: the name sent as SNI and checked against the certificate; unset or "" for
  /// neither.
  std::optional<std::string> server_hostname{};
  /// TLS handshake timeout (60 s by default).
  std::optional<Seconds> ssl_handshake_timeout{};
  /// TLS shutdown timeout (30 s by default).
  std::optional<Seconds> ssl_shutdown_timeout{};
};

/// The keyword arguments of loop.connect_accepted_socket(): with `ssl`, the connection is the
/// server side of a TLS session.
struct AcceptedSocketOptions {
  std::shared_ptr<ssl::Context> ssl{};
  std::optional<Seconds> ssl_handshake_timeout{};
  std::optional<Seconds> ssl_shutdown_timeout{};
};

}  // namespace asyncuv
