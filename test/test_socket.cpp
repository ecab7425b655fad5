// asyncuv::Socket: the RAII socket the loop's sock_* operations take (Python's socket.socket).
#include <catch2/catch.hpp>

#include <asyncuv/socket.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <type_traits>
#include <utility>

#include <asyncuv/exceptions.hpp>

using asyncuv::SockAddr;
using asyncuv::Socket;

namespace {
bool fd_is_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}
bool fd_nonblocking(int fd) {
  return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}
bool fd_cloexec(int fd) {
  return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}
}  // namespace

TEST_CASE("Socket: a new socket is non-blocking, close-on-exec, and knows its kind", "[sock]") {
  Socket tcp;
  CHECK(tcp.fileno() >= 0);
  CHECK_FALSE(tcp.closed());
  CHECK(tcp.family() == AF_INET);
  CHECK(tcp.type() == SOCK_STREAM);
  CHECK(tcp.proto() == IPPROTO_TCP);
  CHECK(fd_nonblocking(tcp.fileno()));
  CHECK(fd_cloexec(tcp.fileno()));
  CHECK_FALSE(tcp.getblocking());

  Socket udp(AF_INET6, SOCK_DGRAM);
  CHECK(udp.family() == AF_INET6);
  CHECK(udp.type() == SOCK_DGRAM);
  CHECK(udp.proto() == IPPROTO_UDP);
}

TEST_CASE("Socket: close() releases the descriptor once; the destructor closes it", "[sock]") {
  int fd;
  {
    Socket s;
    fd = s.fileno();
    CHECK(fd_is_open(fd));
  }
  CHECK_FALSE(fd_is_open(fd));

  Socket s;
  fd = s.fileno();
  s.close();
  CHECK(s.closed());
  CHECK(s.fileno() == -1);
  CHECK_FALSE(fd_is_open(fd));
  s.close();  // twice is fine
  CHECK(s.closed());
}

TEST_CASE("Socket: moving transfers ownership; detach() gives the descriptor away", "[sock]") {
  Socket a(AF_INET, SOCK_DGRAM);
  int fd = a.fileno();
  Socket b(std::move(a));
  CHECK(a.closed());  // NOLINT: moved-from state is specified
  CHECK(b.fileno() == fd);
  CHECK(b.type() == SOCK_DGRAM);

  Socket c;
  int old = c.fileno();
  c = std::move(b);
  CHECK(c.fileno() == fd);
  CHECK_FALSE(fd_is_open(old));  // the socket c held before is closed

  int raw = c.detach();
  CHECK(raw == fd);
  CHECK(c.closed());
  CHECK(fd_is_open(raw));  // not closed by detach nor by c's destructor
  ::close(raw);
}

TEST_CASE("Socket: adopt() takes a descriptor and makes it non-blocking", "[sock]") {
  int raw = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(raw >= 0);
  CHECK_FALSE(fd_nonblocking(raw));
  Socket s = Socket::adopt(raw);
  CHECK(s.fileno() == raw);
  CHECK(fd_nonblocking(raw));
  CHECK(s.family() == AF_INET);
  CHECK(s.type() == SOCK_STREAM);
}

TEST_CASE("Socket: adopt() of a bad descriptor raises; the caller keeps the descriptor", "[sock]") {
  REQUIRE_THROWS_AS(Socket::adopt(-1), asyncuv::ValueError);
  REQUIRE_THROWS_WITH(Socket::adopt(-1), "negative file descriptor");

  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  try {
    (void)Socket::adopt(pipe_fds[0]);
    FAIL("adopting a pipe must throw");
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == ENOTSOCK);
  }
  CHECK(fd_is_open(pipe_fds[0]));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);

  try {
    (void)Socket::adopt(pipe_fds[0]);  // closed now
    FAIL("adopting a closed descriptor must throw");
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EBADF);
  }
}

TEST_CASE("Socket: socketpair() gives two connected non-blocking sockets", "[sock]") {
  auto [a, b] = Socket::socketpair();
  CHECK(a.family() == AF_UNIX);
  CHECK(a.type() == SOCK_STREAM);
  CHECK(fd_nonblocking(a.fileno()));
  CHECK(fd_nonblocking(b.fileno()));
  CHECK(fd_cloexec(b.fileno()));
  REQUIRE(::send(a.fileno(), "hi", 2, 0) == 2);
  char buf[4] = {};
  REQUIRE(::recv(b.fileno(), buf, sizeof buf, 0) == 2);
  CHECK(std::string(buf, 2) == "hi");

  auto [d1, d2] = Socket::socketpair(AF_UNIX, SOCK_DGRAM);
  CHECK(d1.type() == SOCK_DGRAM);

  REQUIRE_THROWS_AS(Socket::socketpair(AF_INET, SOCK_STREAM), asyncuv::OSError);
}

TEST_CASE("Socket: bind, listen, getsockname, getpeername on loopback", "[sock]") {
  Socket server;
  server.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  CHECK(server.getsockopt(SOL_SOCKET, SO_REUSEADDR) != 0);
  server.bind(SockAddr::parse("127.0.0.1", 0));
  server.listen();
  SockAddr bound = server.getsockname();
  CHECK(bound.host() == "127.0.0.1");
  CHECK(bound.port() != 0);
  CHECK(server.getsockopt(SOL_SOCKET, SO_ACCEPTCONN) == 1);

  // Not connected: getpeername is ENOTCONN.
  try {
    (void)server.getpeername();
    FAIL("getpeername on a listening socket must throw");
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == ENOTCONN);
  }

  // Binding a second socket to the same port: EADDRINUSE.
  Socket other;
  try {
    other.bind(bound);
    FAIL("binding a used port must throw");
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EADDRINUSE);
  }
}

TEST_CASE("Socket: setsockopt/getsockopt, shutdown, setblocking", "[sock]") {
  Socket s;
  s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
  CHECK(s.getsockopt(IPPROTO_TCP, TCP_NODELAY) == 1);
  CHECK(s.getsockopt(SOL_SOCKET, SO_TYPE) == SOCK_STREAM);

  s.setblocking(true);
  CHECK(s.getblocking());
  CHECK_FALSE(fd_nonblocking(s.fileno()));
  s.setblocking(false);
  CHECK_FALSE(s.getblocking());

  // shutdown of an unconnected TCP socket is ENOTCONN.
  REQUIRE_THROWS_AS(s.shutdown(SHUT_RDWR), asyncuv::OSError);

  auto [a, b] = Socket::socketpair();
  a.shutdown(SHUT_WR);
  char c;
  CHECK(::recv(b.fileno(), &c, 1, 0) == 0);  // EOF
}

TEST_CASE("Socket: calls on a closed socket raise OSError(EBADF)", "[sock]") {
  Socket s;
  s.close();
  try {
    s.bind(SockAddr::parse("127.0.0.1", 0));
    FAIL("bind on a closed socket must throw");
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EBADF);
  }
  REQUIRE_THROWS_AS(s.listen(), asyncuv::OSError);
  REQUIRE_THROWS_AS(s.getsockname(), asyncuv::OSError);
  REQUIRE_THROWS_AS(s.getsockopt(SOL_SOCKET, SO_TYPE), asyncuv::OSError);
  REQUIRE_THROWS_AS(s.setblocking(false), asyncuv::OSError);
  REQUIRE_THROWS_AS(Socket(12345, SOCK_STREAM), asyncuv::OSError);  // bad family
}

TEST_CASE("SocketRef: a Socket lvalue or a raw fd, never a temporary Socket", "[sock]") {
  STATIC_REQUIRE(std::is_convertible_v<Socket&, asyncuv::SocketRef>);
  STATIC_REQUIRE(std::is_convertible_v<const Socket&, asyncuv::SocketRef>);
  STATIC_REQUIRE(std::is_convertible_v<int, asyncuv::SocketRef>);
  STATIC_REQUIRE_FALSE(std::is_convertible_v<Socket&&, asyncuv::SocketRef>);
  Socket s;
  const Socket& cs = s;
  CHECK(asyncuv::SocketRef(s).fileno() == s.fileno());
  CHECK(asyncuv::SocketRef(cs).fileno() == s.fileno());
  CHECK(asyncuv::SocketRef(7).fileno() == 7);
}
