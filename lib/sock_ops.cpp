// loop.sock_recv / sock_recv_into / sock_recvfrom / sock_recvfrom_into / sock_sendall /
// sock_sendto / sock_accept (asyncio selector_events), over non-blocking system calls retried
// through fd watchers. See include/asyncuv/sock_ops.hpp.
#include "asyncuv/sock_ops.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>

#include "asyncuv/detail/sock_wait.hpp"
#include "asyncuv/exceptions.hpp"

namespace asyncuv {

namespace detail {

void sock_check(EventLoop& loop, int fd) {
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  if (loop.get_debug()) {
    // A descriptor fcntl cannot read (closed) is left to the operation's own EBADF.
    int flags = ::fcntl(fd, F_GETFL);
    if (flags != -1 && (flags & O_NONBLOCK) == 0) {
      throw ValueError("the socket must be non-blocking");
    }
  }
}

}  // namespace detail

namespace {

using detail::fail_unless_blocked;
using detail::retry_eintr;

#ifdef MSG_NOSIGNAL
constexpr int kNoSigPipe = MSG_NOSIGNAL;  // a reset peer gives EPIPE, never SIGPIPE
#else
constexpr int kNoSigPipe = 0;  // the platform uses SO_NOSIGPIPE instead
#endif

std::string_view as_chars(std::span<const std::byte> data) noexcept {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

struct RecvStep {
  int fd;
  std::size_t nbytes;
  std::string buf;

  bool operator()(Future<std::string>& fut) {
    if (buf.size() != nbytes) buf.assign(nbytes, '\0');
    ssize_t n = retry_eintr([&] { return ::recv(fd, buf.data(), nbytes, 0); });
    if (n < 0) return fail_unless_blocked(fut, errno);
    buf.resize(static_cast<std::size_t>(n));
    fut.set_result(std::move(buf));
    return true;
  }
};

struct RecvIntoStep {
  int fd;
  std::span<std::byte> buf;

  bool operator()(Future<std::size_t>& fut) const {
    ssize_t n = retry_eintr([&] { return ::recv(fd, buf.data(), buf.size(), 0); });
    if (n < 0) return fail_unless_blocked(fut, errno);
    fut.set_result(static_cast<std::size_t>(n));
    return true;
  }
};

/// recvfrom(2) into `buf`: the byte count and the sender (empty for a connected stream).
ssize_t receive_from(int fd, void* buf, std::size_t len, SockAddr& from) {
  socklen_t addr_len = SockAddr::capacity();
  ssize_t n = retry_eintr([&] { return ::recvfrom(fd, buf, len, 0, from.data(), &addr_len); });
  if (n >= 0) from.set_size(addr_len);
  return n;
}

struct RecvFromStep {
  int fd;
  std::size_t bufsize;
  std::string buf;

  bool operator()(Future<std::pair<std::string, SockAddr>>& fut) {
    if (buf.size() != bufsize) buf.assign(bufsize, '\0');
    SockAddr from;
    ssize_t n = receive_from(fd, buf.data(), bufsize, from);
    if (n < 0) return fail_unless_blocked(fut, errno);
    buf.resize(static_cast<std::size_t>(n));
    fut.set_result({std::move(buf), from});
    return true;
  }
};

struct RecvFromIntoStep {
  int fd;
  std::span<std::byte> buf;

  bool operator()(Future<std::pair<std::size_t, SockAddr>>& fut) const {
    SockAddr from;
    ssize_t n = receive_from(fd, buf.data(), buf.size(), from);
    if (n < 0) return fail_unless_blocked(fut, errno);
    fut.set_result({static_cast<std::size_t>(n), from});
    return true;
  }
};

/// Sends what is left; the data is the caller's until own() copies the unsent rest.
struct SendAllStep {
  int fd;
  std::string_view borrowed;
  std::string owned;
  std::size_t pos = 0;
  bool is_owned = false;

  std::string_view data() const noexcept { return is_owned ? std::string_view(owned) : borrowed; }

  bool operator()(Future<void>& fut) {
    std::string_view rest = data().substr(pos);
    ssize_t n = retry_eintr([&] { return ::send(fd, rest.data(), rest.size(), kNoSigPipe); });
    if (n < 0) return fail_unless_blocked(fut, errno);
    pos += static_cast<std::size_t>(n);
    if (pos < data().size()) return false;
    fut.set_result();
    return true;
  }

  void own() {
    owned.assign(data().substr(pos));
    pos = 0;
    is_owned = true;
    borrowed = {};
  }
};

struct SendToStep {
  int fd;
  std::string_view borrowed;
  std::string owned;
  SockAddr address;
  bool is_owned = false;

  bool operator()(Future<std::size_t>& fut) {
    std::string_view data = is_owned ? std::string_view(owned) : borrowed;
    ssize_t n = retry_eintr([&] {
      return ::sendto(fd, data.data(), data.size(), kNoSigPipe, address.get(), address.size());
    });
    if (n < 0) return fail_unless_blocked(fut, errno);
    fut.set_result(static_cast<std::size_t>(n));
    return true;
  }

  void own() {
    owned.assign(borrowed);
    is_owned = true;
    borrowed = {};
  }
};

struct AcceptStep {
  int fd;

  bool operator()(Future<std::pair<Socket, SockAddr>>& fut) const {
    SockAddr peer;
    socklen_t len = SockAddr::capacity();
    int conn =
        retry_eintr([&] { return ::accept4(fd, peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC); });
    if (conn < 0) return fail_unless_blocked(fut, errno);
    peer.set_size(len);
    std::optional<Socket> sock;
    try {
      sock.emplace(Socket::adopt(conn));
    } catch (...) {
      ::close(conn);
      fut.set_exception(std::current_exception());
      return true;
    }
    fut.set_result({std::move(*sock), peer});
    return true;
  }
};

}  // namespace

Future<std::string> EventLoop::sock_recv(SocketRef sock, std::size_t nbytes) {
  detail::sock_check(*this, sock.fileno());
  return detail::sock_op<std::string>(*this, sock.fileno(), UV_READABLE,
                                      RecvStep{sock.fileno(), nbytes, {}});
}

Future<std::size_t> EventLoop::sock_recv_into(SocketRef sock, std::span<std::byte> buf) {
  detail::sock_check(*this, sock.fileno());
  return detail::sock_op<std::size_t>(*this, sock.fileno(), UV_READABLE,
                                      RecvIntoStep{sock.fileno(), buf});
}

Future<std::pair<std::string, SockAddr>> EventLoop::sock_recvfrom(SocketRef sock,
                                                                  std::size_t bufsize) {
  detail::sock_check(*this, sock.fileno());
  return detail::sock_op<std::pair<std::string, SockAddr>>(
      *this, sock.fileno(), UV_READABLE, RecvFromStep{sock.fileno(), bufsize, {}});
}

Future<std::pair<std::size_t, SockAddr>> EventLoop::sock_recvfrom_into(SocketRef sock,
                                                                       std::span<std::byte> buf,
                                                                       std::size_t nbytes) {
  detail::sock_check(*this, sock.fileno());
  if (nbytes > buf.size()) throw ValueError("nbytes is greater than the length of the buffer");
  if (nbytes == 0) nbytes = buf.size();
  return detail::sock_op<std::pair<std::size_t, SockAddr>>(
      *this, sock.fileno(), UV_READABLE, RecvFromIntoStep{sock.fileno(), buf.first(nbytes)});
}

Future<void> EventLoop::sock_sendall(SocketRef sock, std::string_view data) {
  detail::sock_check(*this, sock.fileno());
  return detail::sock_op<void>(*this, sock.fileno(), UV_WRITABLE,
                               SendAllStep{sock.fileno(), data, {}});
}

Future<void> EventLoop::sock_sendall(SocketRef sock, std::span<const std::byte> data) {
  return sock_sendall(sock, as_chars(data));
}

Future<std::size_t> EventLoop::sock_sendto(SocketRef sock, std::string_view data,
                                           const SockAddr& address) {
  detail::sock_check(*this, sock.fileno());
  return detail::sock_op<std::size_t>(*this, sock.fileno(), UV_WRITABLE,
                                      SendToStep{sock.fileno(), data, {}, address});
}

Future<std::size_t> EventLoop::sock_sendto(SocketRef sock, std::span<const std::byte> data,
                                           const SockAddr& address) {
  return sock_sendto(sock, as_chars(data), address);
}

Future<std::pair<Socket, SockAddr>> EventLoop::sock_accept(SocketRef sock) {
  detail::sock_check(*this, sock.fileno());
  return detail::sock_op<std::pair<Socket, SockAddr>>(*this, sock.fileno(), UV_READABLE,
                                                      AcceptStep{sock.fileno()});
}

}  // namespace asyncuv
