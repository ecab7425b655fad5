// The non-template core of loop.create_connection() and loop.create_unix_connection()
// (asyncio base_events.create_connection / _connect_sock, unix_events.create_unix_connection):
// argument checks, name resolution, binding to local_addr and the connection attempts, one
// after another or raced as RFC 8305 Happy Eyeballs. Each returns a connected, non-blocking
// Socket; the templates in <asyncuv/stream_connections.hpp> wrap it in a transport.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asyncuv/connection_options.hpp"
#include "asyncuv/dns.hpp"
#include "asyncuv/durations.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv::detail {

/// What connect_to_addresses() needs: the resolved addresses and the attempt policy.
struct ConnectPlan {
  /// The remote addresses, in the order to try them (before interleaving).
  std::vector<AddrInfo> remote;
  /// The local addresses to bind to (only those of the remote address's family are used);
  /// unset: no bind.
  std::optional<std::vector<AddrInfo>> local;
  /// Unset: one attempt after another. Set: a staggered race (see staggered_race()).
  std::optional<Seconds> happy_eyeballs_delay;
  /// Interleaves `remote` by family first (interleave_addrinfos) when > 0.
  int interleave = 0;
  /// When every attempt fails: an ExceptionGroup of all errors instead of one OSError.
  bool all_errors = false;
};

/// Coroutine: connects a new stream socket to one of `plan.remote` (asyncio create_connection
/// after resolution): per attempt a non-blocking socket of the address's family, bound to a
/// local address if asked, connected with loop.sock_connect; a failed attempt closes its socket
/// at once. Every attempt failed: one error is rethrown as is, several with the same what()
/// give the first, otherwise OSError("Multiple exceptions: e1, e2"); with all_errors an
/// ExceptionGroup("create_connection failed", errors). Cancelling it cancels every attempt and
/// closes every socket. The addresses must be non-empty.
Task<Socket> connect_to_addresses(EventLoop& loop, ConnectPlan plan);

/// Coroutine: the socket for create_connection(). With a host or a port: checks the arguments
/// in asyncio's order, resolves `host`:`port` (and options.local_addr) with loop.getaddrinfo and
/// connects (connect_to_addresses). Without: takes options.sock, which must be a stream socket,
/// and makes it non-blocking. Throws ValueError with asyncio's messages on bad arguments,
/// OSError("getaddrinfo() returned empty list"), GaiError, or the connection errors.
Task<Socket> open_connection_socket(EventLoop& loop, std::optional<std::string> host,
                                    std::optional<std::uint16_t> port, ConnectionOptions options);

/// Coroutine: the socket for create_unix_connection(): a new AF_UNIX stream socket connected
/// to `path` ('\0' first: the abstract namespace), or options.sock (an AF_UNIX stream socket)
/// made non-blocking. ValueError with asyncio's messages on bad arguments; the OSError the
/// connect gives (FileNotFoundError, ConnectionRefusedError, ...).
Task<Socket> open_unix_connection_socket(EventLoop& loop, std::optional<std::string> path,
                                         UnixConnectionOptions options);

/// Logs "<Socket fd=N> connected to host:port: (<transport>, <protocol>)" at debug level (debug
/// mode only), as asyncio's create_connection does.
void log_connection_made(EventLoop& loop, const std::string& host, std::uint16_t port,
                         const std::shared_ptr<Transport>& transport);

}  // namespace asyncuv::detail
