// Datagram endpoints (asyncio base_events.create_datagram_endpoint and selector_events'
// _SelectorDatagramTransport): UDP over libuv's uv_udp_t, AF_UNIX datagram sockets over the
// socket itself.
//
//   asyncuv::DatagramEndpointOptions options{.local_addr = {{"127.0.0.1", 9999}}};
//   auto factory = [] { return std::make_shared<EchoProtocol>(); };
//   auto [transport, protocol] =
//       co_await loop.create_datagram_endpoint(factory, std::move(options));
//
// GCC 12 caveat: GCC 12 destroys an aggregate temporary written inside a co_await expression
// twice; DatagramEndpointOptions is an aggregate holding strings, so build it in a named
// variable first, as above, rather than as a braced argument of the co_await-ed call.
//
// create_datagram_endpoint (CPython 3.13):
//  - options.sock: an existing SOCK_DGRAM socket is used as is (made non-blocking); together
//    with any other option it is a ValueError("socket modifier keyword arguments can not be
//    used when sock is specified. (local_addr=('127.0.0.1', 0), ...)"); a socket of another
//    type is ValueError("A datagram socket was expected, got <Socket ...>").
//  - No address and no family: ValueError("unexpected address family"); a family alone opens
//    an unbound socket of that family.
//  - family AF_UNIX (or local_path / remote_path with family 0): local_path is bound (a stale
//    socket file there is removed first; a name starting with '\0' is in Linux's abstract
//    namespace), remote_path connected. local_addr / remote_addr with AF_UNIX are a
//    TypeError("string is expected"), a path with another family TypeError("2-tuple is
//    expected").
//  - Otherwise local_addr and remote_addr are resolved with loop.getaddrinfo (SOCK_DGRAM, the
//    family, proto and flags given) and paired by (family, proto) in the order the results come;
//    pairs missing a side are dropped (none left: ValueError("can not get address
//    information")). Each pair is tried in turn on a new socket: SO_REUSEPORT (reuse_port; a
//    ValueError when the system refuses it), SO_BROADCAST (allow_broadcast), bind to the local
//    address, connect to the remote one (not with allow_broadcast: the remote address then
//    only becomes sendto()'s default). If every pair fails, the first OSError is rethrown.
//    asyncio's reuse_address is not offered (SO_REUSEADDR lets other sockets take over a UDP
//    port), and asyncuv keeps the socket's SO_REUSEADDR as it was.
//  - The pair is returned once connection_made() ran; cancelling before that closes the
//    transport.
//
// The transport (asyncuv::DatagramTransport; see <asyncuv/detail/datagram_transport.hpp>):
//  - datagram_received(data, addr) for every datagram, empty ones too; error_received(exc) for
//    OS errors while receiving or sending (ConnectionRefusedError after an ICMP
//    port-unreachable on a connected endpoint, PermissionError for a broadcast without
//    allow_broadcast, ...); the transport stays open.
//  - sendto(data, addr): empty datagrams are sent (3.13). With a remote address, addr must be
//    empty or that address: ValueError("Invalid address: must be None or ('127.0.0.1', 9999)")
//    otherwise. Without an address on an endpoint that is not connected, the exception handler
//    gets "Fatal write error on datagram transport" (a TypeError) and connection_lost(exc)
//    follows. The datagram is sent at once when the socket takes it, else copied and queued;
//    get_write_buffer_size() counts the queue (payload + 8 bytes per datagram) and
//    pause_writing() / resume_writing() follow the water marks (64 KiB / 16 KiB by default).
//  - close(): receiving stops, the queue is sent, then connection_lost(nullptr); abort() drops
//    the queue. sendto() afterwards drops the datagram (asyncio logs "socket.send() raised
//    exception." from the 5th).
//  - Exceptions thrown by datagram_received() or error_received() reach the exception handler
//    with "transport" and "protocol" in the context; the transport stays open.
//  - get_extra_info("sockname") / ("peername"): SockAddr (peername only when connected);
//    ("socket"): the fd (int).
//  - The transport keeps itself and its protocol alive until connection_lost() ran; closing
//    the loop closes open endpoints without calling their protocols again.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncuv/connection_options.hpp"
#include "asyncuv/detail/datagram_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/sockaddr.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv {

/// The keyword arguments of loop.create_datagram_endpoint(), for designated initializers:
/// {.local_addr = {{"127.0.0.1", 0}}, .allow_broadcast = true}.
struct DatagramEndpointOptions {
  /// Binds the socket to this (host, port), resolved with getaddrinfo.
  std::optional<HostPort> local_addr{};
  /// Connects the socket to this (host, port); sendto() then takes no other address.
  std::optional<HostPort> remote_addr{};
  /// AF_UNIX: binds the socket to this path ('\0' first: abstract namespace; "": unbound).
  std::optional<std::string> local_path{};
  /// AF_UNIX: connects the socket to this path ("": not connected).
  std::optional<std::string> remote_path{};
  /// AF_INET, AF_INET6, AF_UNIX, or 0 (taken from the addresses; AF_UNIX with a path).
  int family = 0;
  /// getaddrinfo hints: the protocol (0: any).
  int proto = 0;
  /// getaddrinfo hints: AI_* flags.
  int flags = 0;
  /// SO_REUSEPORT: several sockets may bind the same address (the kernel spreads datagrams).
  bool reuse_port = false;
  /// SO_BROADCAST: datagrams may go to broadcast addresses. With remote_addr the socket is
  /// then not connected; remote_addr is only sendto()'s default and only allowed address.
  bool allow_broadcast = false;
  /// An existing datagram socket to use instead of addresses; the transport takes it.
  std::optional<Socket> sock{};
};

namespace detail {

/// What create_datagram_endpoint opens: the socket, its remote address (asyncio's r_addr) and,
/// for the debug log, the addresses as given.
struct DatagramSocket {
  Socket sock;
  std::optional<SockAddr> remote;
  std::string local_text;  // "('127.0.0.1', 0)", "'/path'" or "None"
  std::string remote_text;
};

/// Coroutine: create_datagram_endpoint's socket (asyncio's argument checks, resolution, and
/// the attempts; see the comment at the top of this file).
Task<DatagramSocket> open_datagram_socket(EventLoop& loop, DatagramEndpointOptions options);

/// Logs "Datagram endpoint local_addr=... remote_addr=... created: (<transport>, <protocol>)"
/// in debug mode, as asyncio does (at INFO with a local address, else at DEBUG).
void log_datagram_endpoint(EventLoop& loop, const DatagramSocket& opened,
                           const std::shared_ptr<DatagramTransport>& transport);

}  // namespace detail

template <class F>
auto EventLoop::create_datagram_endpoint(F protocol_factory, DatagramEndpointOptions options)
    -> Task<std::pair<std::shared_ptr<DatagramTransport>, detail::ProtocolPtrOf<F>>> {
  using ProtocolPtr = detail::ProtocolPtrOf<F>;
  using P = typename ProtocolPtr::element_type;
  static_assert(std::is_same_v<ProtocolPtr, std::shared_ptr<P>>,
                "the protocol factory must return a std::shared_ptr");
  static_assert(std::is_base_of_v<DatagramProtocol, P>, "the protocol must be a DatagramProtocol");
  Task<detail::DatagramSocket> opening = detail::open_datagram_socket(*this, std::move(options));
  detail::DatagramSocket opened = co_await std::move(opening);
  ProtocolPtr protocol = protocol_factory();
  Future<void> waiter = create_future<void>();
  std::shared_ptr<DatagramTransport> transport = detail::make_datagram_transport(
      *this, std::move(opened.sock), protocol, std::move(opened.remote), waiter);
  detail::log_datagram_endpoint(*this, opened, transport);
  try {
    co_await waiter;
  } catch (...) {
    transport->close();
    throw;
  }
  co_return std::pair<std::shared_ptr<DatagramTransport>, ProtocolPtr>(std::move(transport),
                                                                       std::move(protocol));
}

template <class F>
auto EventLoop::create_datagram_endpoint(F protocol_factory)
    -> Task<std::pair<std::shared_ptr<DatagramTransport>, detail::ProtocolPtrOf<F>>> {
  return create_datagram_endpoint(std::move(protocol_factory), DatagramEndpointOptions{});
}

}  // namespace asyncuv
