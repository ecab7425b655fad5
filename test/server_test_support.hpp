// Test support for the server tests: running a coroutine with a watchdog, client sockets,
// reading socket options and the listen() backlog, counting descriptors.
#pragma once

#include "loop_support.hpp"
#include "stream_test_support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <sys/stat.h>

#include <asyncuv/server.hpp>

#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace server_test {

using namespace stream_test;
using asyncuv::Server;
using asyncuv::Task;

using test_support::run_task;

/// Makes a new Recorder per connection and keeps them all.
struct Recorders {
  std::vector<std::shared_ptr<Recorder>> made;
  /// The factory to give create_server (the Recorders must outlive the server's use of it).
  auto factory() {
    return [this] {
      auto p = std::make_shared<Recorder>();
      made.push_back(p);
      return p;
    };
  }
};

/// An integer socket option of descriptor `fd`.
inline int sockopt(int fd, int level, int name) {
  int value = 0;
  socklen_t len = sizeof value;
  REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
  return value;
}

/// A client socket connected to `address` (the kernel completes loopback connects to a
/// listening socket without the server accepting). Non-blocking.
inline Socket connect_to(const SockAddr& address) {
  Socket client(address.family(), SOCK_STREAM);
  int rc = ::connect(client.fileno(), address.get(), address.size());
  REQUIRE((rc == 0 || errno == EINPROGRESS));
  wait_fd(client.fileno(), POLLOUT);
  REQUIRE(sockopt(client.fileno(), SOL_SOCKET, SO_ERROR) == 0);
  return client;
}

/// The errno a connect to `address` fails with (0 if it succeeds).
inline int connect_error(const SockAddr& address) {
  Socket client(address.family(), SOCK_STREAM);
  if (::connect(client.fileno(), address.get(), address.size()) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  wait_fd(client.fileno(), POLLOUT);
  return sockopt(client.fileno(), SOL_SOCKET, SO_ERROR);
}

/// The backlog a listening TCP socket was given (what `ss -lnt` shows as Send-Q): asked from
/// the kernel through NETLINK_SOCK_DIAG, matching the socket by inode.
inline int listen_backlog(int fd) {
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  int family = sockopt(fd, SOL_SOCKET, SO_DOMAIN);
  int nl = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  REQUIRE(nl >= 0);
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_nl{nl};
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.request.sdiag_family = static_cast<std::uint8_t>(family);
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = 1u << TCP_LISTEN;
  REQUIRE(::send(nl, &message, sizeof message, 0) == static_cast<ssize_t>(sizeof message));
  alignas(nlmsghdr) char buffer[32768];
  for (;;) {
    ssize_t n = ::recv(nl, buffer, sizeof buffer, 0);
    REQUIRE(n > 0);
    int left = static_cast<int>(n);
    // NLMSG_OK compares the header's unsigned length with the signed `left` (clang warns).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, left);
         h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) return -1;
      REQUIRE(h->nlmsg_type != NLMSG_ERROR);
      auto* diag = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      if (diag->idiag_inode == st.st_ino) return static_cast<int>(diag->idiag_wqueue);
    }
#pragma GCC diagnostic pop
  }
}

/// How many descriptors the process has open (from /proc/self/fd, not counting the one used
/// to read it).
inline int open_fd_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  int count = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;
}

/// True while `fd` is an open descriptor.
inline bool fd_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

/// True if a socket of `family` can be made here (IPv6 may be disabled on a CI host).
inline bool family_supported(int family) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

/// Reads from non-blocking `fd` into `out` while running `loop`, until `out` has `size` bytes
/// or the peer closed; returns true on end of file.
inline bool read_while_running(EventLoop& loop, int fd, std::string& out, std::size_t size) {
  bool eof = false;
  run_until(loop, [&] {
    eof = drain_fd(fd, out);
    return eof || out.size() >= size;
  });
  return eof;
}

/// Reads `fd` until end of file or an error while running `loop`: 0 at EOF, else the errno.
inline int read_to_end(EventLoop& loop, int fd, std::string& out) {
  int result = -1;
  run_until(loop, [&] {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        out.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) {
        result = 0;
        return true;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      result = errno;
      return true;
    }
  });
  return result;
}

}  // namespace server_test
