// loop.sock_connect (asyncio selector_events): a non-blocking connect(2) completed when the
// socket becomes writable, and the host/port form that resolves names with loop.getaddrinfo.
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "asyncuv/detail/sock_wait.hpp"
#include "asyncuv/dns.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/sock_ops.hpp"

namespace asyncuv {

namespace {

/// The address as Python prints the tuple: ('127.0.0.1', 80), ('::1', 80, 0, 0) or '/path'.
std::string address_repr(const SockAddr& a) {
  switch (a.family()) {
    case AF_INET:
      return "('" + a.host() + "', " + std::to_string(a.port()) + ")";
    case AF_INET6:
      return "('" + a.host() + "', " + std::to_string(a.port()) + ", " +
             std::to_string(a.flowinfo()) + ", " + std::to_string(a.scope_id()) + ")";
    default:
      return "'" + a.host() + "'";
  }
}

bool connect_in_progress(int err) noexcept {
  return err == EINPROGRESS || err == EALREADY || err == EINTR || detail::would_block(err);
}

struct ConnectStep {
  int fd;
  SockAddr address;
  bool started = false;

  bool operator()(Future<void>& fut) {
    if (!started) {
      started = true;
      if (::connect(fd, address.get(), address.size()) == 0) {
        fut.set_result();
        return true;
      }
      int err = errno;
      if (connect_in_progress(err)) return false;  // completes when the socket is writable
      fut.set_exception(make_os_error(err));
      return true;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) {
      fut.set_result();
      return true;
    }
    if (connect_in_progress(err)) return false;
    fut.set_exception(
        make_os_error_with_message(err, "Connect call failed " + address_repr(address)));
    return true;
  }
};

int socket_option(int fd, int name) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, SOL_SOCKET, name, &value, &len) != 0) throw_os_error(errno);
  return value;
}

/// Connects to the first address getaddrinfo gave, once it is there.
struct ConnectResolved {
  EventLoop* loop;
  int fd;
  Future<void> fut;

  void operator()(Future<std::vector<AddrInfo>> infos) {
    if (infos.cancelled()) {
      if (!fut.done()) fut.cancel();
      return;
    }
    std::exception_ptr error = infos.exception();
    if (fut.done()) return;  // cancelled while resolving
    if (error) {
      fut.set_exception(std::move(error));
      return;
    }
    const std::vector<AddrInfo>& list = infos.result();
    if (list.empty()) {
      fut.set_exception(OSError("getaddrinfo() returned empty list"));
      return;
    }
    Future<void> connecting;
    try {
      connecting = loop->sock_connect(fd, list.front().address);
    } catch (...) {
      fut.set_exception(std::current_exception());
      return;
    }
    detail::sock_follow(connecting, fut);
  }
};

}  // namespace

Future<void> EventLoop::sock_connect(SocketRef sock, const SockAddr& address) {
  detail::sock_check(*this, sock.fileno());
  return detail::sock_op<void>(*this, sock.fileno(), UV_WRITABLE,
                               ConnectStep{sock.fileno(), address});
}

Future<void> EventLoop::sock_connect(SocketRef sock, std::string_view host, std::uint16_t port) {
  int fd = sock.fileno();
  detail::sock_check(*this, fd);
  int family = socket_option(fd, SO_DOMAIN);
  if (family != AF_INET && family != AF_INET6) {
    throw ValueError("sock_connect(host, port) needs an AF_INET or AF_INET6 socket");
  }
  // A numeric address of the socket's family needs no resolver (asyncio's _ipaddr_info).
  std::optional<SockAddr> numeric;
  try {
    numeric = SockAddr::parse(host, port);
  } catch (const ValueError&) {
  }
  if (numeric && numeric->family() == family) return sock_connect(sock, *numeric);

  Future<std::vector<AddrInfo>> resolving =
      getaddrinfo(host, port, family, socket_option(fd, SO_TYPE), socket_option(fd, SO_PROTOCOL));
  Future<void> fut = create_future<void>();
  resolving.add_done_callback(ConnectResolved{this, fd, fut});
  std::weak_ptr<Future<std::vector<AddrInfo>>::State> weak = resolving.state();
  fut.add_done_callback([weak](Future<void> f) {
    if (f.cancelled()) detail::cancel_weak<std::vector<AddrInfo>>(weak);
  });
  return fut;
}

}  // namespace asyncuv
