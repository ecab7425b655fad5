// asyncuv::Server: what loop.create_server() and loop.create_unix_server() return (asyncio's
// base_events.Server).
//
// Semantics (CPython 3.13):
//  - A server listens on one or more sockets. While it serves, every readiness of a listening
//    socket accepts up to `backlog` pending connections; each gets a new protocol from the
//    factory and a stream transport (TCP_NODELAY on TCP, SO_KEEPALIVE with keep_alive), and
//    connection_made() is scheduled with call_soon.
//  - close() stops listening at once (the sockets are closed, sockets() is empty, is_serving()
//    false, new connects are refused) but leaves accepted connections open; close_clients()
//    closes them, abort_clients() aborts them. wait_closed() completes once the server is
//    closed AND every connection it accepted is gone (3.12.1+); awaited after that, it returns
//    at once.
//  - start_serving=false binds without listening (connects are refused) until start_serving(),
//    which calls listen() and starts accepting.
//    serve_forever() starts serving if needed and waits until cancelled, then closes the
//    server; RuntimeError if the server is closed or another serve_forever() is waiting.
//  - Running out of descriptors while accepting (EMFILE, ENFILE, ENOBUFS, ENOMEM) goes to the
//    exception handler ("socket.accept() out of system resource", with "exception" and
//    "socket"), accepting pauses for one second and then resumes. Other accept errors that the
//    peer caused (ECONNABORTED, EAGAIN, …) are ignored, as asyncio does.
//  - An exception from the protocol factory or the transport creation goes to the exception
//    handler ("Error on transport creation for incoming connection"); the accepted socket is
//    closed and the server goes on.
//  - Closing the loop closes every server's listening sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncuv/connection_options.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/transport_socket.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv {

class BaseProtocol;
class EventLoop;

namespace detail {
class ServerCore;
}

/// A listening server. Created by loop.create_server() / loop.create_unix_server() (and
/// start_server() / start_unix_server() for streams); handed out as std::shared_ptr<Server>.
/// An open server stays alive while it serves even if every reference is dropped; close() it
/// (or close the loop) to stop it.
class Server {
 public:
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The loop the server runs on.
  EventLoop& get_loop() const;

  /// True while the server accepts connections.
  bool is_serving() const;

  /// Views of the listening sockets (empty once closed), as asyncio's Server.sockets: a copy
  /// the caller may keep; a view kept past close() reads fileno() -1 (see TransportSocket).
  std::vector<TransportSocket> sockets() const;

  /// Stops listening: the listening sockets are closed and no new connection is accepted.
  /// Connections already accepted stay open. Idempotent.
  void close();

  /// Closes every connection accepted by this server (their buffered data is still sent).
  void close_clients();

  /// Aborts every connection accepted by this server (buffered data is dropped).
  void abort_clients();

  /// Coroutine: starts accepting (when created with start_serving=false). Does nothing if the
  /// server already serves or is closed.
  Task<void> start_serving();

  /// Coroutine: serves until cancelled; on cancellation the server is closed (and the
  /// cancellation propagates). RuntimeError("server ... is already being awaited on
  /// serve_forever()") when called twice, RuntimeError("server ... is closed") when closed.
  Task<void> serve_forever();

  /// Coroutine: waits until the server is closed and every connection it accepted is gone.
  Task<void> wait_closed();

  /// "<Server sockets=(<Socket fd=6 family=2 type=1 proto=6 laddr=127.0.0.1:8888>,)>".
  std::string repr() const;

  /// Used by the loop: wraps the core that does the work.
  explicit Server(std::shared_ptr<detail::ServerCore> core);

 private:
  std::shared_ptr<detail::ServerCore> core_;
};

namespace detail {

/// Makes a protocol for each accepted connection: a Protocol or a BufferedProtocol.
using ProtocolFactory = std::function<std::shared_ptr<BaseProtocol>()>;

/// What create_server / create_unix_server need besides the listening sockets.
struct ServerSetup {
  ProtocolFactory protocol_factory;
  int backlog = 100;
  bool keep_alive = false;
  bool start_serving = true;
  /// AF_UNIX path to unlink when the server closes (create_unix_server with cleanup_socket),
  /// together with the (st_dev, st_ino) of the socket file it made.
  std::string cleanup_path;
  unsigned long long cleanup_dev = 0;
  unsigned long long cleanup_ino = 0;
  /// TLS: each accepted connection is the server side of a TLS session with this context.
  std::shared_ptr<ssl::Context> ssl;
  std::optional<Seconds> ssl_handshake_timeout;
  std::optional<Seconds> ssl_shutdown_timeout;
};

/// Creates a server over bound (not yet listening) `sockets`; with start_serving, calls
/// listen(backlog) on each and starts accepting (otherwise Server::start_serving() does).
/// RuntimeError("Event loop is closed") on a closed loop; the OSError listen() reports (the sockets
/// are then closed).
std::shared_ptr<Server> make_server(EventLoop& loop, std::vector<Socket> sockets,
                                    ServerSetup setup);

/// The body of loop.create_server(): with `hosts`, resolves each (an empty host: every
/// interface) and binds one socket per distinct address; without, serves on options.sock.
/// Checks the arguments as asyncio does (see EventLoop::create_server).
Task<std::shared_ptr<Server>> open_tcp_server(EventLoop* loop, ProtocolFactory factory,
                                              std::optional<std::vector<std::string>> hosts,
                                              std::uint16_t port, ServerOptions options);

/// The body of loop.create_unix_server(): binds `path` (removing a stale socket file first),
/// or serves on options.sock without one.
Task<std::shared_ptr<Server>> open_unix_server(EventLoop* loop, ProtocolFactory factory,
                                               std::optional<std::string> path,
                                               UnixServerOptions options);

/// True for std::shared_ptr<P> with P a Protocol or a BufferedProtocol.
template <class T>
struct is_protocol_ptr : std::false_type {};
template <class P>
struct is_protocol_ptr<std::shared_ptr<P>>
    : std::bool_constant<std::is_base_of_v<Protocol, P> || std::is_base_of_v<BufferedProtocol, P>> {
};

/// Checks at compile time that `factory` makes protocols, and type-erases it.
template <class F>
ProtocolFactory wrap_protocol_factory(F factory) {
  static_assert(std::is_invocable_v<F&>, "the protocol factory must be callable without arguments");
  static_assert(is_protocol_ptr<ProtocolPtrOf<F>>::value,
                "the protocol factory must return a std::shared_ptr to a Protocol or a "
                "BufferedProtocol");
  if constexpr (std::is_copy_constructible_v<F>) {
    return [f = std::move(factory)]() mutable -> std::shared_ptr<BaseProtocol> { return f(); };
  } else {
    // std::function needs a copyable callable: share a move-only factory.
    auto shared = std::make_shared<F>(std::move(factory));
    return [shared]() -> std::shared_ptr<BaseProtocol> { return (*shared)(); };
  }
}

}  // namespace detail

namespace detail {
template <class F>
using server_body_result_t =
    typename std::remove_cvref_t<std::invoke_result_t<F&, Server&>>::value_type;
}

/// `async with server: <body>`: runs body(*server) (a coroutine function taking Server&) inline
/// in the current task; when it ends -- returning, throwing or cancelled -- closes the server
/// and waits for wait_closed() (every accepted connection gone), then returns the body's
/// result or rethrows its exception. asyncio's Server.__aexit__ is close() + wait_closed().
///
///   auto body = [](asyncuv::Server& s) -> asyncuv::Task<void> { co_await s.serve_forever(); };
///   co_await asyncuv::async_with(server, body);
///
/// As for task_group(): on GCC 12, name a lambda whose captures are not trivially destructible
/// before the co_await (as above) instead of writing it inside the co_await expression.
template <class F>
Task<detail::server_body_result_t<F>> async_with(std::shared_ptr<Server> server, F body) {
  using R = detail::server_body_result_t<F>;
  if (!server) throw ValueError("async_with() needs a server, got nullptr");
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> result;
  try {
    if constexpr (std::is_void_v<R>) {
      co_await body(*server);
      result.emplace(true);
    } else {
      result.emplace(co_await body(*server));
    }
  } catch (...) {
    error = std::current_exception();
  }
  server->close();
  co_await server->wait_closed();
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<R>) co_return std::move(*result);
}

template <class F>
Task<std::shared_ptr<Server>> EventLoop::create_server(F protocol_factory, std::string host,
                                                       std::uint16_t port, ServerOptions options) {
  std::vector<std::string> hosts;
  hosts.push_back(std::move(host));
  return detail::open_tcp_server(this, detail::wrap_protocol_factory(std::move(protocol_factory)),
                                 std::move(hosts), port, std::move(options));
}

template <class F>
Task<std::shared_ptr<Server>> EventLoop::create_server(F protocol_factory,
                                                       std::vector<std::string> hosts,
                                                       std::uint16_t port, ServerOptions options) {
  return detail::open_tcp_server(this, detail::wrap_protocol_factory(std::move(protocol_factory)),
                                 std::move(hosts), port, std::move(options));
}

template <class F>
Task<std::shared_ptr<Server>> EventLoop::create_server(F protocol_factory, ServerOptions options) {
  return detail::open_tcp_server(this, detail::wrap_protocol_factory(std::move(protocol_factory)),
                                 std::nullopt, 0, std::move(options));
}

template <class F>
Task<std::shared_ptr<Server>> EventLoop::create_unix_server(F protocol_factory, std::string path,
                                                            UnixServerOptions options) {
  std::optional<std::string> given;
  if (!path.empty()) given = std::move(path);  // "" means no path, as None in asyncio
  return detail::open_unix_server(this, detail::wrap_protocol_factory(std::move(protocol_factory)),
                                  std::move(given), std::move(options));
}

template <class F>
Task<std::shared_ptr<Server>> EventLoop::create_unix_server(F protocol_factory,
                                                            UnixServerOptions options) {
  return detail::open_unix_server(this, detail::wrap_protocol_factory(std::move(protocol_factory)),
                                  std::nullopt, std::move(options));
}

}  // namespace asyncuv
