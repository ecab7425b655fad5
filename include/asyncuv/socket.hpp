// asyncuv::Socket: a small move-only owner of a non-blocking, close-on-exec socket, the C++
// counterpart of the socket.socket objects asyncio's loop.sock_* operations take.
#pragma once

#include <sys/socket.h>

#include <utility>

#include "asyncuv/sockaddr.hpp"

namespace asyncuv {

/// Owns one socket file descriptor and closes it on destruction. Sockets it creates are
/// non-blocking and close-on-exec, ready for the loop's sock_* operations. Errors from the OS
/// throw the OSError family (ConnectionRefusedError, PermissionError, …). Operations on a
/// closed socket fail with OSError(EBADF), as Python's do.
class Socket {
 public:
  /// A new socket: socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto).
  explicit Socket(int family = AF_INET, int type = SOCK_STREAM, int proto = 0);
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  /// Takes over `other`'s descriptor; `other` is left closed.
  Socket(Socket&& other) noexcept;
  /// Closes this socket, then takes over `other`'s descriptor.
  Socket& operator=(Socket&& other) noexcept;
  /// Closes the descriptor if the socket still owns one.
  ~Socket();

  /// Takes ownership of socket descriptor `fd` and makes it non-blocking. Throws
  /// ValueError("negative file descriptor") for fd < 0 and OSError (ENOTSOCK, EBADF) when `fd`
  /// is not an open socket; on a throw the caller keeps the descriptor.
  static Socket adopt(int fd);

  /// A pair of connected sockets (socketpair(2)), both non-blocking and close-on-exec.
  static std::pair<Socket, Socket> socketpair(int family = AF_UNIX, int type = SOCK_STREAM);

  /// The descriptor, or -1 once closed or detached.
  int fileno() const noexcept { return fd_; }
  /// Gives up ownership: returns the descriptor (-1 if closed) and leaves the socket closed
  /// without closing the descriptor.
  int detach() noexcept;
  /// Closes the descriptor; closing twice does nothing. Errors from close(2) are ignored: the
  /// descriptor is released either way.
  void close() noexcept;
  /// True once closed or detached.
  bool closed() const noexcept { return fd_ < 0; }

  /// The address family: AF_INET, AF_INET6, AF_UNIX, …
  int family() const noexcept { return family_; }
  /// The socket type without the SOCK_NONBLOCK / SOCK_CLOEXEC flags: SOCK_STREAM, SOCK_DGRAM…
  int type() const noexcept { return type_; }
  /// The protocol number (IPPROTO_TCP, IPPROTO_UDP, or 0).
  int proto() const noexcept { return proto_; }

  /// Binds to `address` (port 0 picks a free port; see getsockname()).
  void bind(const SockAddr& address);
  /// Starts listening for connections, with a queue of `backlog` pending ones.
  void listen(int backlog = 100);
  /// The address the socket is bound to.
  SockAddr getsockname() const;
  /// The address of the connected peer (OSError ENOTCONN when not connected).
  SockAddr getpeername() const;
  /// Sets an integer socket option: setsockopt(SOL_SOCKET, SO_REUSEADDR, 1).
  void setsockopt(int level, int name, int value);
  /// Reads an integer socket option.
  int getsockopt(int level, int name) const;
  /// Shuts down one or both directions: SHUT_RD, SHUT_WR or SHUT_RDWR.
  void shutdown(int how);
  /// Sets (true) or clears O_NONBLOCK. The loop's sock_* operations need a non-blocking socket.
  void setblocking(bool blocking);
  /// True when the descriptor is in blocking mode.
  bool getblocking() const;

 private:
  Socket(int fd, int family, int type, int proto) noexcept
      : fd_(fd), family_(family), type_(type), proto_(proto) {}

  int fd_ = -1;
  int family_ = AF_UNSPEC;
  int type_ = 0;
  int proto_ = 0;
};

/// The socket a loop.sock_* operation works on: a Socket (an lvalue: a temporary Socket does
/// not convert, since it would close under the operation) or a raw descriptor.
class SocketRef {
 public:
  /// The socket's descriptor as it is now (-1 if closed).
  SocketRef(const Socket& sock) noexcept : fd_(sock.fileno()) {}  // NOLINT: implicit on purpose
  /// A raw socket descriptor, owned by the caller.
  SocketRef(int fd) noexcept : fd_(fd) {}  // NOLINT: implicit on purpose
  SocketRef(Socket&&) = delete;
  SocketRef(const Socket&&) = delete;

  /// The descriptor the operation uses.
  int fileno() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace asyncuv
