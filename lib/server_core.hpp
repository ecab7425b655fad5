// The state behind asyncuv::Server (asyncio's base_events.Server plus the accept loop of
// selector_events): listening sockets, the accepted connections, wait_closed() waiters.
// Internal to lib/server.cpp (not installed).
//
// Ownership: the loop's fd watcher of each listening socket (a persistent add_reader handle)
// and the one-second retry timer after EMFILE hold a std::shared_ptr to the core, so a serving
// server lives on when every Server reference is dropped. Accepted transports hold it too (as
// their ConnectionTracker) and the core holds them until they detach; that cycle ends when a
// connection is lost or the loop closes. OpenServers (a LoopService) holds weak references
// and closes the listening sockets of every server still open when the loop closes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "asyncuv/detail/loop_service.hpp"
#include "asyncuv/detail/ssl_protocol.hpp"
#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/handle.hpp"
#include "asyncuv/server.hpp"
#include "asyncuv/socket.hpp"

namespace asyncuv::detail {

class ServerCore final : public ConnectionTracker, public std::enable_shared_from_this<ServerCore> {
 public:
  /// asyncio's ACCEPT_RETRY_DELAY: the pause after accept() ran out of descriptors.
  static constexpr double accept_retry_delay = 1.0;

  ServerCore(EventLoop& loop, std::vector<Socket> sockets, ServerSetup setup);
  ~ServerCore() override;
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;

  EventLoop& loop() const noexcept { return loop_; }
  bool is_serving() const noexcept { return serving_; }
  /// Views of the listening sockets (empty once closed).
  std::vector<TransportSocket> socket_views() const;
  bool closed() const noexcept { return closed_; }
  /// How many accepted connections are still attached.
  std::size_t client_count() const noexcept { return clients_.size(); }

  /// listen(backlog) on every socket.
  void listen();
  /// asyncio Server._start_serving: listen() on every socket, then watches each. Idempotent;
  /// nothing happens once closed.
  void start_serving();
  /// asyncio Server.close (see Server::close).
  void close();
  /// Closes (abort: aborts) every attached transport, iterating over a copy.
  void close_clients(bool abort);

  /// serve_forever's first half: RuntimeError when already awaited or closed, else starts
  /// serving and returns the future it waits on (cancelled by close()).
  Future<void> begin_serve_forever();
  /// serve_forever's "finally": forgets that future.
  void end_serve_forever() noexcept { serving_forever_ = Future<void>(); }
  /// wait_closed: an empty future when the server is closed and every connection is gone,
  /// else a new waiter completed once both hold.
  Future<void> closed_waiter();

  /// "<Server sockets=(<Socket fd=6 family=2 type=1 proto=6 laddr=127.0.0.1:8888>,)>".
  std::string repr() const;

  /// The loop closes with this server open: closes the listening sockets (and unlinks the
  /// Unix socket file) without scheduling anything.
  void loop_closed() noexcept;

  // ConnectionTracker
  void attach(std::shared_ptr<Transport> transport) override;
  void detach(Transport* transport) override;

 private:
  /// add_reader on listening socket `index`.
  void watch(std::size_t index);
  /// The reader: accepts up to `backlog` pending connections of socket `index`.
  void accept_ready(std::size_t index);
  /// Wraps accepted descriptor `fd` in a transport with a new protocol.
  void connection_accepted(int fd);
  /// Makes accepted socket `conn` the server side of a TLS connection for `protocol`. A failed
  /// handshake goes to the exception handler in debug mode only, as asyncio.
  void accept_tls(Socket conn, const std::shared_ptr<BaseProtocol>& protocol);
  /// EMFILE & co.: stops watching socket `index`, retries in accept_retry_delay seconds and
  /// tells the exception handler.
  void pause_accepting(std::size_t index, int err);
  void resume_accepting(std::size_t index);
  /// asyncio Server._wakeup: completes every wait_closed() waiter, once.
  void wakeup();
  /// Unlinks the Unix socket file if it is still the one the server made.
  void cleanup_socket_file() noexcept;

  EventLoop& loop_;
  void close_sockets() noexcept;

  std::vector<std::shared_ptr<Socket>> sockets_;
  std::vector<TimerHandle> retry_;  // per socket: the pending resume after EMFILE
  ProtocolFactory factory_;
  int backlog_;
  bool keep_alive_;
  std::string cleanup_path_;
  unsigned long long cleanup_dev_;
  unsigned long long cleanup_ino_;
  TlsSetup tls_;  // tls_.context set: accepted connections are TLS server sides

  bool serving_ = false;
  bool closed_ = false;  // asyncio: _sockets is None
  bool woken_ = false;   // asyncio: _waiters is None
  std::unordered_map<Transport*, std::shared_ptr<Transport>> clients_;
  std::vector<Future<void>> waiters_;
  Future<void> serving_forever_;
};

/// The loop's servers, so that loop.close() can close their listening sockets.
class OpenServers final : public LoopService {
 public:
  explicit OpenServers(EventLoop&) {}
  ~OpenServers() override = default;

  /// Closes every server still open (ServerCore::loop_closed).
  void close() noexcept override;

  void add(const std::shared_ptr<ServerCore>& server);

 private:
  std::vector<std::weak_ptr<ServerCore>> servers_;
  std::size_t prune_at_ = 16;
};

}  // namespace asyncuv::detail
