// asyncuv::TransportSocket: what Server::sockets() lists (asyncio's trsock.TransportSocket): a
// copyable view of a socket the loop owns. It shares the socket object with its owner, so a
// view kept after the server closed never reaches a reused descriptor: fileno() is -1 and the
// address and option calls fail with OSError(EBADF), as Python's do on a closed socket.
#pragma once

#include <memory>
#include <utility>

#include "asyncuv/sockaddr.hpp"
#include "asyncuv/socket.hpp"

namespace asyncuv {

/// A view of a socket owned by a server or a transport. Copies are cheap and refer to the same
/// socket; none of them keeps the descriptor open.
class TransportSocket {
 public:
  explicit TransportSocket(std::shared_ptr<Socket> sock) noexcept : sock_(std::move(sock)) {}

  /// The descriptor, or -1 once the owner closed the socket.
  int fileno() const noexcept { return sock_->fileno(); }
  int family() const noexcept { return sock_->family(); }
  int type() const noexcept { return sock_->type(); }
  int proto() const noexcept { return sock_->proto(); }
  SockAddr getsockname() const { return sock_->getsockname(); }
  SockAddr getpeername() const { return sock_->getpeername(); }
  int getsockopt(int level, int name) const { return sock_->getsockopt(level, name); }
  void setsockopt(int level, int name, int value) const { sock_->setsockopt(level, name, value); }

  /// Usable wherever a loop.sock_* operation takes a socket.
  operator SocketRef() const noexcept { return SocketRef(sock_->fileno()); }  // NOLINT

 private:
  std::shared_ptr<Socket> sock_;
};

}  // namespace asyncuv
