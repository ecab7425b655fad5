// Stream connections (asyncio base_events / selector_events / unix_events): the transport every
// TCP and Unix stream connection uses, loop.connect_accepted_socket(), loop.sendfile(),
// loop.create_connection() and loop.create_unix_connection().
//
// create_connection (CPython 3.13): the arguments are checked in asyncio's order (ValueError);
// host:port (and local_addr) are resolved with loop.getaddrinfo; the addresses are tried one
// after another, each on a new non-blocking socket (bound to a local address of the same
// family when local_addr is given), or with happy_eyeballs_delay raced as RFC 8305 Happy
// Eyeballs (the next attempt starts when the previous one failed or after the delay; the first
// to connect wins, the others are cancelled and their sockets closed), the addresses
// interleaved by family. When every attempt failed: one error is rethrown as is, several with
// the same text give the first, otherwise OSError("Multiple exceptions: e1, e2"); all_errors
// gives ExceptionGroup("create_connection failed", errors). Cancelling create_connection
// closes every socket it opened. The pair is returned once connection_made() ran.
//
// Semantics (as CPython's selector event loop, _SelectorSocketTransport):
//  - Order: connection_made(transport) (scheduled with call_soon) -> data_received()* ->
//    eof_received() -> connection_lost(nullptr), which comes last, exactly once. If
//    eof_received() returns false the transport closes itself; true keeps it half-open
//    (reading stops, writing goes on until close()). TCP sockets get TCP_NODELAY.
//  - write() never blocks: what the socket does not take at once is buffered.
//    get_write_buffer_size() counts the bytes not yet handed to the OS; above the high-water
//    mark (64 KiB by default, low = high / 4) the protocol's pause_writing() is called once,
//    and resume_writing() once the buffer is at or below the low-water mark.
//  - close() sends what is buffered first, then connection_lost(nullptr); writes after close()
//    with an empty buffer are dropped (a warning is logged from the 5th). abort() drops the
//    buffer at once. write_eof() half-closes once the buffer drained; write() afterwards
//    throws RuntimeError("Cannot call write() after write_eof()").
//  - A reset peer ends the connection with connection_lost(ConnectionResetError) (OS errors
//    are only logged in debug mode); an exception thrown by data_received(), eof_received(),
//    get_buffer() or buffer_updated() goes to the loop's exception handler ("Fatal error:
//    protocol.data_received() call failed.", with "transport" and "protocol" in the context)
//    and the connection is aborted with connection_lost(that exception).
//  - The transport keeps itself and its protocol alive until connection_lost() ran: dropping
//    every reference never loses data close() promised to send. Closing the loop closes the
//    sockets of open transports without calling their protocols again.
//  - get_extra_info("peername") / ("sockname"): SockAddr; ("socket"): the fd (int).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncuv/detail/connect.hpp"
#include "asyncuv/detail/ssl_protocol.hpp"
#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv {

namespace detail {
/// Logs "<socket> handled: (<transport>, <protocol>)" at debug level (debug mode only).
void log_connection_handled(EventLoop& loop, const std::shared_ptr<Transport>& transport);
}  // namespace detail

template <class F>
auto EventLoop::connect_accepted_socket(F protocol_factory, Socket sock)
    -> Task<std::pair<std::shared_ptr<Transport>, std::remove_cvref_t<std::invoke_result_t<F&>>>> {
  using ProtocolPtr = std::remove_cvref_t<std::invoke_result_t<F&>>;
  using P = typename ProtocolPtr::element_type;
  static_assert(std::is_same_v<ProtocolPtr, std::shared_ptr<P>>,
                "the protocol factory must return a std::shared_ptr");
  static_assert(std::is_base_of_v<Protocol, P> || std::is_base_of_v<BufferedProtocol, P>,
                "the protocol must be a Protocol or a BufferedProtocol");
  if (sock.type() != SOCK_STREAM) {
    throw ValueError("A Stream Socket was expected, got " + detail::describe_socket(sock));
  }
  ProtocolPtr protocol = protocol_factory();
  Future<void> waiter = create_future<void>();
  std::shared_ptr<Transport> transport =
      detail::make_socket_transport(*this, std::move(sock), protocol, {}, waiter);
  try {
    co_await waiter;
  } catch (...) {
    transport->close();
    throw;
  }
  detail::log_connection_handled(*this, transport);
  co_return std::pair<std::shared_ptr<Transport>, ProtocolPtr>(std::move(transport),
                                                               std::move(protocol));
}

namespace detail {

/// The TLS part of create_connection's options: the server name defaults to `host`.
inline TlsSetup client_tls_setup(const ConnectionOptions& options, const std::string& host) {
  TlsSetup tls;
  tls.context = options.ssl;
  tls.server_hostname = options.server_hostname.value_or(host);
  tls.handshake_timeout = options.ssl_handshake_timeout;
  tls.shutdown_timeout = options.ssl_shutdown_timeout;
  return tls;
}

/// The TLS part of create_unix_connection's options.
inline TlsSetup client_tls_setup(const UnixConnectionOptions& options) {
  TlsSetup tls;
  tls.context = options.ssl;
  tls.server_hostname = options.server_hostname.value_or(std::string());
  tls.handshake_timeout = options.ssl_handshake_timeout;
  tls.shutdown_timeout = options.ssl_shutdown_timeout;
  return tls;
}

/// Wraps connected stream socket `sock` in a transport with the protocol `protocol_factory()`
/// makes and returns both once connection_made() ran (asyncio _create_connection_transport);
/// if that fails, the transport is closed and the error rethrown. With tls.context, the
/// transport is a TLS connection and "connection made" means the handshake succeeded.
template <class F>
Task<std::pair<std::shared_ptr<Transport>, ProtocolPtrOf<F>>> create_connection_transport(
    EventLoop& loop, F protocol_factory, Socket sock, TlsSetup tls = {}) {
  using ProtocolPtr = ProtocolPtrOf<F>;
  using P = typename ProtocolPtr::element_type;
  static_assert(std::is_same_v<ProtocolPtr, std::shared_ptr<P>>,
                "the protocol factory must return a std::shared_ptr");
  static_assert(std::is_base_of_v<Protocol, P> || std::is_base_of_v<BufferedProtocol, P>,
                "the protocol must be a Protocol or a BufferedProtocol");
  ProtocolPtr protocol = protocol_factory();
  Future<void> waiter = loop.create_future<void>();
  std::shared_ptr<Transport> transport =
      tls.context ? make_ssl_connection(loop, std::move(sock), protocol, std::move(tls), waiter)
                  : make_socket_transport(loop, std::move(sock), protocol, {}, waiter);
  try {
    co_await waiter;
  } catch (...) {
    transport->close();
    throw;
  }
  co_return std::pair<std::shared_ptr<Transport>, ProtocolPtr>(std::move(transport),
                                                               std::move(protocol));
}

}  // namespace detail

template <class F>
auto EventLoop::connect_accepted_socket(F protocol_factory, Socket sock,
                                        AcceptedSocketOptions options)
    -> Task<std::pair<std::shared_ptr<Transport>, std::remove_cvref_t<std::invoke_result_t<F&>>>> {
  if (!options.ssl) {
    if (options.ssl_handshake_timeout) {
      throw ValueError("ssl_handshake_timeout is only meaningful with ssl");
    }
    if (options.ssl_shutdown_timeout) {
      throw ValueError("ssl_shutdown_timeout is only meaningful with ssl");
    }
    co_return co_await connect_accepted_socket(std::move(protocol_factory), std::move(sock));
  }
  if (sock.type() != SOCK_STREAM) {
    throw ValueError("A Stream Socket was expected, got " + detail::describe_socket(sock));
  }
  detail::check_tls_timeouts(options.ssl_handshake_timeout, options.ssl_shutdown_timeout);
  detail::TlsSetup tls;
  tls.context = std::move(options.ssl);
  tls.server_side = true;
  tls.handshake_timeout = options.ssl_handshake_timeout;
  tls.shutdown_timeout = options.ssl_shutdown_timeout;
  auto made = co_await detail::create_connection_transport(*this, std::move(protocol_factory),
                                                           std::move(sock), std::move(tls));
  co_return std::move(made);
}

template <class F>
auto EventLoop::create_connection(F protocol_factory, std::string host, std::uint16_t port,
                                  ConnectionOptions options)
    -> Task<std::pair<std::shared_ptr<Transport>, detail::ProtocolPtrOf<F>>> {
  detail::TlsSetup tls = detail::client_tls_setup(options, host);
  Task<Socket> connecting =
      detail::open_connection_socket(*this, std::optional<std::string>(host),
                                     std::optional<std::uint16_t>(port), std::move(options));
  Socket sock = co_await std::move(connecting);
  auto made = co_await detail::create_connection_transport(*this, std::move(protocol_factory),
                                                           std::move(sock), std::move(tls));
  detail::log_connection_made(*this, host, port, made.first);
  co_return std::move(made);
}

template <class F>
auto EventLoop::create_connection(F protocol_factory, ConnectionOptions options)
    -> Task<std::pair<std::shared_ptr<Transport>, detail::ProtocolPtrOf<F>>> {
  detail::TlsSetup tls = detail::client_tls_setup(options, std::string());
  Task<Socket> connecting =
      detail::open_connection_socket(*this, std::nullopt, std::nullopt, std::move(options));
  Socket sock = co_await std::move(connecting);
  co_return co_await detail::create_connection_transport(*this, std::move(protocol_factory),
                                                         std::move(sock), std::move(tls));
}

template <class F>
auto EventLoop::create_unix_connection(F protocol_factory, std::string path,
                                       UnixConnectionOptions options)
    -> Task<std::pair<std::shared_ptr<Transport>, detail::ProtocolPtrOf<F>>> {
  detail::TlsSetup tls = detail::client_tls_setup(options);
  Task<Socket> connecting = detail::open_unix_connection_socket(
      *this, std::optional<std::string>(std::move(path)), std::move(options));
  Socket sock = co_await std::move(connecting);
  co_return co_await detail::create_connection_transport(*this, std::move(protocol_factory),
                                                         std::move(sock), std::move(tls));
}

template <class F>
auto EventLoop::create_unix_connection(F protocol_factory, UnixConnectionOptions options)
    -> Task<std::pair<std::shared_ptr<Transport>, detail::ProtocolPtrOf<F>>> {
  detail::TlsSetup tls = detail::client_tls_setup(options);
  Task<Socket> connecting =
      detail::open_unix_connection_socket(*this, std::nullopt, std::move(options));
  Socket sock = co_await std::move(connecting);
  co_return co_await detail::create_connection_transport(*this, std::move(protocol_factory),
                                                         std::move(sock), std::move(tls));
}

}  // namespace asyncuv
