// The loop's low-level socket operations (asyncio's loop.sock_*), on real loopback TCP and UDP
// sockets and AF_UNIX socket pairs, driven by coroutines. CPython's counterparts are in
// Lib/test/test_asyncio/test_sock_lowlevel.py and test_selector_events.py.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/detail/fd_watchers.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>
#include "byte_compare.hpp"

using asyncuv::EventLoop;
using asyncuv::Future;
using asyncuv::SockAddr;
using asyncuv::Socket;
using asyncuv::Task;

namespace sock_test {

/// Runs `body` with asyncuv::run; a watchdog (wait_for) fails it with TimeoutError after
/// `limit` seconds instead of hanging the suite.
void run_test(Task<void> body, bool debug = false, double limit = 60.0) {
  asyncuv::run(asyncuv::wait_for(std::move(body), limit), debug);
}

/// A TCP socket listening on 127.0.0.1, on a port the system picked.
Socket listener(int backlog = 100) {
  Socket s;
  s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  s.bind(SockAddr::parse("127.0.0.1", 0));
  s.listen(backlog);
  return s;
}

/// A connected loopback TCP pair (client, accepted), made with sock_connect and sock_accept.
Task<std::pair<Socket, Socket>> tcp_pair() {
  EventLoop& loop = asyncuv::get_running_loop();
  Socket server = listener();
  Socket client;
  Future<void> connecting = loop.sock_connect(client, server.getsockname());
  auto [conn, peer] = co_await loop.sock_accept(server);
  co_await connecting;
  CHECK(peer == client.getsockname());
  co_return std::pair<Socket, Socket>(std::move(client), std::move(conn));
}

/// Byte i of the test pattern (not periodic over any small power of two).
char pattern_byte(std::size_t i) {
  return static_cast<char>((i * 131 + (i >> 11) + (i >> 19)) & 0xff);
}

std::string pattern(std::size_t n, std::size_t from = 0) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    out[i] = pattern_byte(from + i);
  return out;
}

/// Receives until end of stream.
Task<std::string> recv_all(int fd, std::size_t chunk = 65536) {
  EventLoop& loop = asyncuv::get_running_loop();
  std::string out;
  for (;;) {
    std::string data = co_await loop.sock_recv(fd, chunk);
    if (data.empty()) break;
    out += data;
  }
  co_return out;
}

/// Receives exactly `n` bytes (fewer only at end of stream).
Task<std::string> recv_exactly(int fd, std::size_t n) {
  EventLoop& loop = asyncuv::get_running_loop();
  std::string out;
  while (out.size() < n) {
    std::string data = co_await loop.sock_recv(fd, n - out.size());
    if (data.empty()) break;
    out += data;
  }
  co_return out;
}

/// True if awaiting `aw` throws E (the awaited value is dropped). Keeps co_await out of the
/// Catch assertion macros.
template <class E, class A>
Task<bool> fails_with(A aw) {
  try {
    co_await std::move(aw);
  } catch (const E&) {
    co_return true;
  } catch (...) {
    co_return false;
  }
  co_return false;
}

/// Makes `sock`'s next close reset the connection (SO_LINGER with a zero timeout).
void linger_zero(Socket& sock) {
  linger l{1, 0};
  REQUIRE(::setsockopt(sock.fileno(), SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0);
}

/// Small fixed socket buffers, so that large transfers cannot complete in one call.
void small_buffers(Socket& sender, Socket& receiver) {
  sender.setsockopt(SOL_SOCKET, SO_SNDBUF, 32 * 1024);
  receiver.setsockopt(SOL_SOCKET, SO_RCVBUF, 32 * 1024);
}

/// How many fds the loop watches (0 once every operation has finished).
std::size_t watched(EventLoop& loop) {
  auto* w = loop.find_service<asyncuv::detail::FdWatchers>();
  return w == nullptr ? 0 : w->watched_count();
}

/// A temporary file (already unlinked) holding `content`; the position is left at 0.
int temp_file(const std::string& content) {
  char path[] = "/tmp/asyncuv_sock_test_XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::unlink(path);
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    REQUIRE(n > 0);
    done += static_cast<std::size_t>(n);
  }
  REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
  return fd;
}

off_t file_position(int fd) {
  return ::lseek(fd, 0, SEEK_CUR);
}

}  // namespace sock_test

using namespace sock_test;

TEST_CASE("sock_*: echo round trip over loopback TCP", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [client, server] = co_await tcp_pair();
    co_await loop.sock_sendall(client, "hello, echo");
    std::string got = co_await loop.sock_recv(server, 1024);
    CHECK(got == "hello, echo");
    co_await loop.sock_sendall(server, got);
    std::string back = co_await recv_exactly(client.fileno(), got.size());
    CHECK(back == "hello, echo");
    // End of stream: "".
    server.shutdown(SHUT_WR);
    std::string eof = co_await loop.sock_recv(client, 1024);
    CHECK(eof.empty());
    CHECK(watched(loop) == 0);
  };
  run_test(body());
}

TEST_CASE("sock_*: AF_UNIX socketpair, binary data and the span overloads", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [a, b] = Socket::socketpair();
    std::string binary("\0\1\2\xff\0zero", 9);
    co_await loop.sock_sendall(a, binary);
    std::string got = co_await recv_exactly(b.fileno(), binary.size());
    CHECK(test_support::byte_difference(got, binary) == "");

    std::vector<std::byte> bytes{std::byte{1}, std::byte{0}, std::byte{254}};
    std::span<const std::byte> view(bytes);
    co_await loop.sock_sendall(b, view);
    std::vector<std::byte> in(8);
    std::size_t n = co_await loop.sock_recv_into(a, in);
    REQUIRE(n == 3);
    CHECK(in[0] == std::byte{1});
    CHECK(in[1] == std::byte{0});
    CHECK(in[2] == std::byte{254});

    // The raw-fd overloads are the same operations.
    co_await loop.sock_sendall(a.fileno(), "fd");
    std::string got1 = co_await loop.sock_recv(b.fileno(), 10);
    CHECK(got1 == "fd");
  };
  run_test(body());
}

TEST_CASE("sock_sendall: 8 MiB is partly sent at once, the rest as a slow peer reads", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [client, server] = co_await tcp_pair();
    small_buffers(client, server);
    constexpr std::size_t kSize = 8 * 1024 * 1024;
    std::string data = pattern(kSize);

    Future<void> sending = loop.sock_sendall(client, data);
    CHECK_FALSE(sending.done());  // only part fitted in the socket buffers
    // The data was copied: the caller's buffer may change now.
    data.assign(data.size(), 'x');

    // A slow reader: small reads, a loop iteration between each.
    std::size_t received = 0;
    std::size_t bad = 0;
    while (received < kSize) {
      std::string chunk = co_await loop.sock_recv(server, 4096);
      REQUIRE_FALSE(chunk.empty());
      for (std::size_t i = 0; i < chunk.size(); ++i) {
        if (chunk[i] != pattern_byte(received + i)) ++bad;
      }
      received += chunk.size();
      co_await asyncuv::sleep(0);
    }
    CHECK(received == kSize);
    CHECK(bad == 0);
    co_await sending;
    CHECK(sending.done());
    CHECK(watched(loop) == 0);
  };
  run_test(body());
}

TEST_CASE("sock_recv_into: fills the caller's buffer, waiting when nothing is there", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [client, server] = co_await tcp_pair();
    std::vector<std::byte> buf(16);
    Future<std::size_t> receiving = loop.sock_recv_into(server, buf);
    CHECK_FALSE(receiving.done());
    co_await loop.sock_sendall(client, "abcdef");
    std::size_t n = co_await receiving;
    REQUIRE(n == 6);
    CHECK(std::string(reinterpret_cast<const char*>(buf.data()), n) == "abcdef");

    // A span smaller than the data: only that much.
    co_await loop.sock_sendall(client, "0123456789");
    std::size_t m = co_await loop.sock_recv_into(server, std::span<std::byte>(buf).first(4));
    CHECK(m == 4);
    CHECK(std::string(reinterpret_cast<const char*>(buf.data()), 4) == "0123");
    std::string got2 = co_await loop.sock_recv(server, 100);
    CHECK(got2 == "456789");
  };
  run_test(body());
}

TEST_CASE("sock_sendto / sock_recvfrom / sock_recvfrom_into over UDP with addresses", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    Socket a(AF_INET, SOCK_DGRAM);
    Socket b(AF_INET, SOCK_DGRAM);
    a.bind(SockAddr::parse("127.0.0.1", 0));
    b.bind(SockAddr::parse("127.0.0.1", 0));

    Future<std::pair<std::string, SockAddr>> pending = loop.sock_recvfrom(b, 100);
    CHECK_FALSE(pending.done());
    std::size_t sent = co_await loop.sock_sendto(a, "datagram one", b.getsockname());
    CHECK(sent == 12);
    auto [data, from] = co_await pending;
    CHECK(data == "datagram one");
    CHECK(from == a.getsockname());
    CHECK(from.host() == "127.0.0.1");

    // Datagrams are truncated to the buffer size; the rest is discarded.
    std::vector<std::byte> out_bytes(5, std::byte{'x'});
    co_await loop.sock_sendto(b, std::span<const std::byte>(out_bytes), a.getsockname());
    auto [short_data, from2] = co_await loop.sock_recvfrom(a, 3);
    CHECK(short_data == "xxx");
    CHECK(from2 == b.getsockname());

    std::vector<std::byte> buf(32);
    Future<std::pair<std::size_t, SockAddr>> into = loop.sock_recvfrom_into(a, buf);
    co_await loop.sock_sendto(b, "into", a.getsockname());
    auto [n, from3] = co_await into;
    REQUIRE(n == 4);
    CHECK(std::string(reinterpret_cast<const char*>(buf.data()), n) == "into");
    CHECK(from3 == b.getsockname());

    // nbytes limits the read; more than the buffer is a ValueError.
    co_await loop.sock_sendto(b, "limited", a.getsockname());
    auto [m, from4] = co_await loop.sock_recvfrom_into(a, buf, 3);
    CHECK(m == 3);
    CHECK(from4 == b.getsockname());
    REQUIRE_THROWS_AS(loop.sock_recvfrom_into(a, std::span<std::byte>(buf).first(2), 3),
                      asyncuv::ValueError);
    REQUIRE_THROWS_WITH(loop.sock_recvfrom_into(a, std::span<std::byte>(buf).first(2), 3),
                        "nbytes is greater than the length of the buffer");

    // An empty datagram is a datagram.
    co_await loop.sock_sendto(a, "", b.getsockname());
    auto [empty, from5] = co_await loop.sock_recvfrom(b, 10);
    CHECK(empty.empty());
    CHECK(from5 == a.getsockname());
  };
  run_test(body());
}

TEST_CASE("sock_connect: a closed port gives ConnectionRefusedError", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    SockAddr closed_port;
    {
      Socket probe;
      probe.bind(SockAddr::parse("127.0.0.1", 0));
      closed_port = probe.getsockname();
    }  // closed without listening: nothing accepts on that port
    Socket client;
    try {
      co_await loop.sock_connect(client, closed_port);
      FAIL("connect to a closed port must fail");
    } catch (const asyncuv::ConnectionRefusedError& e) {
      CHECK(e.errnum() == ECONNREFUSED);
      std::string what = e.what();
      CHECK(what.rfind("[Errno " + std::to_string(ECONNREFUSED) + "]", 0) == 0);
    }
    CHECK(watched(loop) == 0);
  };
  run_test(body());
}

TEST_CASE("sock_connect: a host name is resolved with getaddrinfo (localhost)", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    Socket server = listener();
    Socket client;  // AF_INET: localhost resolves to 127.0.0.1
    Future<void> connecting = loop.sock_connect(client, "localhost", server.getsockname().port());
    auto [conn, peer] = co_await loop.sock_accept(server);
    co_await connecting;
    CHECK(client.getpeername() == server.getsockname());
    CHECK(peer == client.getsockname());
    co_await loop.sock_sendall(conn, "by name");
    std::string got3 = co_await recv_exactly(client.fileno(), 7);
    CHECK(got3 == "by name");

    // A numeric host needs no resolver: the connect starts at once.
    Socket second;
    Future<void> numeric = loop.sock_connect(second, "127.0.0.1", server.getsockname().port());
    auto [conn2, peer2] = co_await loop.sock_accept(server);
    co_await numeric;
    CHECK(peer2 == second.getsockname());

    // host/port needs an internet socket.
    auto [u1, u2] = Socket::socketpair();
    REQUIRE_THROWS_AS(loop.sock_connect(u1, "localhost", 80), asyncuv::ValueError);
  };
  run_test(body());
}

TEST_CASE("sock_connect by name: cancelling while resolving or connecting", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    Socket server = listener();
    Socket client;
    Future<void> connecting = loop.sock_connect(client, "localhost", server.getsockname().port());
    CHECK(connecting.cancel());
    bool failed1 = co_await fails_with<asyncuv::CancelledError>(connecting);
    CHECK(failed1);
    // Let the resolution (and anything it started) finish and be dropped.
    for (int i = 0; i < 50 && watched(loop) != 0; ++i)
      co_await asyncuv::sleep(0.01);
    co_await asyncuv::sleep(0.05);
    CHECK(watched(loop) == 0);
  };
  run_test(body());
}

TEST_CASE("sock_accept: several clients, each with its own address", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    Socket server = listener();
    constexpr int kClients = 5;
    std::vector<Socket> clients;
    std::vector<Future<void>> connects;
    for (int i = 0; i < kClients; ++i) {
      clients.emplace_back();
      connects.push_back(loop.sock_connect(clients.back(), server.getsockname()));
    }
    std::vector<Socket> accepted;
    std::vector<SockAddr> peers;
    for (int i = 0; i < kClients; ++i) {
      auto [conn, peer] = co_await loop.sock_accept(server);
      CHECK((::fcntl(conn.fileno(), F_GETFL) & O_NONBLOCK) != 0);
      CHECK((::fcntl(conn.fileno(), F_GETFD) & FD_CLOEXEC) != 0);
      CHECK(conn.family() == AF_INET);
      CHECK(conn.type() == SOCK_STREAM);
      CHECK(conn.getpeername() == peer);
      peers.push_back(peer);
      accepted.push_back(std::move(conn));
    }
    for (auto& c : connects)
      co_await c;
    for (int i = 0; i < kClients; ++i) {
      int matches = 0;
      for (const SockAddr& p : peers)
        matches += p == clients[i].getsockname() ? 1 : 0;
      CHECK(matches == 1);
    }
    // Each accepted socket talks to its own client.
    for (int i = 0; i < kClients; ++i) {
      std::string msg = "client " + std::to_string(i);
      co_await loop.sock_sendall(clients[i], msg);
    }
    for (auto& conn : accepted) {
      std::string got = co_await loop.sock_recv(conn, 100);
      int matches = 0;
      for (int i = 0; i < kClients; ++i) {
        if (conn.getpeername() == clients[i].getsockname()) {
          CHECK(got == "client " + std::to_string(i));
          ++matches;
        }
      }
      CHECK(matches == 1);
    }
  };
  run_test(body());
}

TEST_CASE("sock_recv: a peer reset gives ConnectionResetError", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [client, server] = co_await tcp_pair();
    Future<std::string> receiving = loop.sock_recv(client, 100);
    CHECK_FALSE(receiving.done());
    linger_zero(server);
    server.close();  // sends RST
    bool failed2 = co_await fails_with<asyncuv::ConnectionResetError>(receiving);
    CHECK(failed2);
    CHECK(watched(loop) == 0);
  };
  run_test(body());
}

TEST_CASE("sock_sendall to a reset peer: ConnectionResetError or BrokenPipeError, no SIGPIPE",
          "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [client, server] = co_await tcp_pair();
    linger_zero(server);
    server.close();
    co_await asyncuv::sleep(0.01);  // lets the RST arrive (the outcome is checked either way)
    // The first send may still be accepted locally; later ones fail. The process survives.
    int errors = 0;
    for (int i = 0; i < 20 && errors == 0; ++i) {
      try {
        co_await loop.sock_sendall(client, pattern(65536));
      } catch (const asyncuv::ConnectionResetError&) {
        ++errors;
      } catch (const asyncuv::BrokenPipeError&) {
        ++errors;
      }
    }
    CHECK(errors == 1);
    // A socket shut down for writing: EPIPE, still no SIGPIPE.
    auto [a, b] = Socket::socketpair();
    a.shutdown(SHUT_WR);
    bool failed3 = co_await fails_with<asyncuv::BrokenPipeError>(loop.sock_sendall(a, "x"));
    CHECK(failed3);
  };
  run_test(body());
}

TEST_CASE("sock_recv: cancelling leaves the socket usable; the data goes to the next recv",
          "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [a, b] = Socket::socketpair();

    // Cancelled, an iteration passes, then the next recv gets the data.
    Future<std::string> first = loop.sock_recv(a, 100);
    CHECK_FALSE(first.done());
    CHECK(first.cancel());
    co_await asyncuv::sleep(0);
    CHECK(watched(loop) == 0);
    co_await loop.sock_sendall(b, "after cancel");
    std::string got4 = co_await loop.sock_recv(a, 100);
    CHECK(got4 == "after cancel");

    // Cancelled and replaced at once, before the cancellation's callbacks ran: the new recv
    // keeps its watch.
    Future<std::string> second = loop.sock_recv(a, 100);
    second.cancel();
    Future<std::string> third = loop.sock_recv(a, 100);
    co_await asyncuv::sleep(0);
    co_await asyncuv::sleep(0);
    CHECK_FALSE(third.done());
    co_await loop.sock_sendall(b, "third");
    std::string got5 = co_await third;
    CHECK(got5 == "third");
    CHECK(second.cancelled());

    // Data arriving after the cancel and before the next recv is not lost.
    Future<std::string> fourth = loop.sock_recv(a, 100);
    fourth.cancel();
    co_await loop.sock_sendall(b, "kept");
    co_await asyncuv::sleep(0);
    co_await asyncuv::sleep(0);
    std::string got6 = co_await loop.sock_recv(a, 100);
    CHECK(got6 == "kept");
  };
  run_test(body());
}

namespace sock_test {
Task<std::string> recv_in_task(int fd) {
  co_return co_await asyncuv::get_running_loop().sock_recv(fd, 100);
}
Task<void> accept_in_task(int fd) {
  auto accepted = co_await asyncuv::get_running_loop().sock_accept(fd);
  (void)accepted;
}
}  // namespace sock_test

TEST_CASE("sock_recv / sock_accept: cancelling the awaiting task cancels the operation", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [a, b] = Socket::socketpair();
    Task<std::string> reader = loop.create_task(recv_in_task(a.fileno()));
    co_await asyncuv::sleep(0);
    CHECK(watched(loop) == 1);
    reader.cancel();
    bool failed4 = co_await fails_with<asyncuv::CancelledError>(reader);
    CHECK(failed4);
    co_await asyncuv::sleep(0);
    CHECK(watched(loop) == 0);
    co_await loop.sock_sendall(b, "still usable");
    std::string got7 = co_await loop.sock_recv(a, 100);
    CHECK(got7 == "still usable");

    Socket server = listener();
    Task<void> acceptor = loop.create_task(accept_in_task(server.fileno()));
    co_await asyncuv::sleep(0);
    acceptor.cancel();
    bool failed5 = co_await fails_with<asyncuv::CancelledError>(acceptor);
    CHECK(failed5);
    Socket client;
    Future<void> connecting = loop.sock_connect(client, server.getsockname());
    auto [conn, peer] = co_await loop.sock_accept(server);
    co_await connecting;
    CHECK(peer == client.getsockname());
  };
  run_test(body());
}

TEST_CASE("sock_sendall: cancelling mid-way leaves a usable socket and a prefix sent", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [client, server] = co_await tcp_pair();
    small_buffers(client, server);
    constexpr std::size_t kSize = 4 * 1024 * 1024;
    Future<void> sending = loop.sock_sendall(client, pattern(kSize));
    REQUIRE_FALSE(sending.done());
    // The peer takes a little, then the rest of the transfer is cancelled.
    std::string got = co_await recv_exactly(server.fileno(), 100000);
    REQUIRE(got.size() == 100000);
    CHECK(sending.cancel());
    co_await asyncuv::sleep(0);
    CHECK(watched(loop) == 0);
    co_await loop.sock_sendall(client, "END");
    client.shutdown(SHUT_WR);
    got += co_await recv_all(server.fileno());
    REQUIRE(got.size() >= 100003);
    REQUIRE(got.size() < kSize + 3);
    CHECK(got.substr(got.size() - 3) == "END");
    std::size_t prefix = got.size() - 3;
    CHECK(got.substr(0, prefix) == pattern(prefix));
  };
  run_test(body());
}

TEST_CASE("sock_*: an fd number reused after an operation completed works", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    int reused = -1;
    for (int round = 0; round < 3; ++round) {
      auto [a, b] = Socket::socketpair();
      if (round > 0) CHECK(a.fileno() == reused);  // the lowest free numbers come back
      reused = a.fileno();
      Future<std::string> receiving = loop.sock_recv(a, 10);
      CHECK_FALSE(receiving.done());
      co_await loop.sock_sendall(b, "round " + std::to_string(round));
      std::string got8 = co_await receiving;
      CHECK(got8 == "round " + std::to_string(round));
      CHECK(watched(loop) == 0);  // the watch went with the operation
    }                             // both closed here, their numbers free again
  };
  run_test(body());
}

TEST_CASE("sock_*: a socket must be non-blocking in debug mode (ValueError)", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    REQUIRE(loop.get_debug());
    auto [a, b] = Socket::socketpair();
    a.setblocking(true);
    const char* msg = "the socket must be non-blocking";
    REQUIRE_THROWS_WITH(loop.sock_recv(a, 10), msg);
    REQUIRE_THROWS_AS(loop.sock_recv(a, 10), asyncuv::ValueError);
    std::vector<std::byte> buf(4);
    REQUIRE_THROWS_WITH(loop.sock_recv_into(a, buf), msg);
    REQUIRE_THROWS_WITH(loop.sock_recvfrom(a, 4), msg);
    REQUIRE_THROWS_WITH(loop.sock_recvfrom_into(a, buf), msg);
    REQUIRE_THROWS_WITH(loop.sock_sendall(a, "x"), msg);
    REQUIRE_THROWS_WITH(loop.sock_sendto(a, "x", SockAddr()), msg);
    REQUIRE_THROWS_WITH(loop.sock_connect(a, SockAddr::parse("127.0.0.1", 1)), msg);
    REQUIRE_THROWS_WITH(loop.sock_accept(a), msg);
    REQUIRE_THROWS_WITH(loop.sock_sendfile(a, 0), msg);
    a.setblocking(false);
    co_await loop.sock_sendall(a, "ok");
    std::string got9 = co_await loop.sock_recv(b, 10);
    CHECK(got9 == "ok");
  };
  run_test(body(), true);

  // Outside debug mode a blocking socket is not checked (asyncio neither).
  auto relaxed = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [a, b] = Socket::socketpair();
    a.setblocking(true);
    co_await loop.sock_sendall(b, "data");
    std::string got10 = co_await loop.sock_recv(a, 10);
    CHECK(got10 == "data");
  };
  run_test(relaxed(), false);
}

TEST_CASE("sock_*: misuse and bad inputs", "[sock]") {
  SECTION("a closed loop: RuntimeError") {
    EventLoop loop;
    loop.close();
    auto [a, b] = Socket::socketpair();
    REQUIRE_THROWS_AS(loop.sock_recv(a, 10), asyncuv::RuntimeError);
    REQUIRE_THROWS_WITH(loop.sock_recv(a, 10), "Event loop is closed");
    REQUIRE_THROWS_WITH(loop.sock_sendall(a, "x"), "Event loop is closed");
    REQUIRE_THROWS_WITH(loop.sock_accept(a), "Event loop is closed");
    REQUIRE_THROWS_WITH(loop.sock_connect(a, SockAddr::parse("127.0.0.1", 1)),
                        "Event loop is closed");
    REQUIRE_THROWS_WITH(loop.sock_sendfile(a, 0), "Event loop is closed");
  }
  SECTION("39: an fd used by a transport: RuntimeError when the operation has to wait") {
    auto body = []() -> Task<void> {
      EventLoop& loop = asyncuv::get_running_loop();
      auto [a, b] = Socket::socketpair();
      auto& watchers = loop.service<asyncuv::detail::FdWatchers>();
      watchers.claim_for_transport(a.fileno(), "<FakeTransport>");
      std::string expected =
          "File descriptor " + std::to_string(a.fileno()) + " is used by transport <FakeTransport>";
      REQUIRE_THROWS_AS(loop.sock_recv(a, 10), asyncuv::RuntimeError);
      REQUIRE_THROWS_WITH(loop.sock_recv(a, 10), expected);
      Socket server = listener();
      watchers.claim_for_transport(server.fileno(), "<FakeServer>");
      REQUIRE_THROWS_WITH(loop.sock_accept(server), "File descriptor " +
                                                        std::to_string(server.fileno()) +
                                                        " is used by transport <FakeServer>");
      watchers.release_from_transport(server.fileno());
      // As in asyncio, only waiting is refused: a call that completes at once goes through.
      co_await loop.sock_sendall(b, "x");
      std::string got11 = co_await loop.sock_recv(a, 10);
      CHECK(got11 == "x");
      watchers.release_from_transport(a.fileno());
      Future<std::string> receiving = loop.sock_recv(a, 10);
      co_await loop.sock_sendall(b, "y");
      std::string got12 = co_await receiving;
      CHECK(got12 == "y");
    };
    run_test(body());
  }
  SECTION("a closed socket: the Future holds OSError(EBADF)") {
    auto body = []() -> Task<void> {
      EventLoop& loop = asyncuv::get_running_loop();
      Socket s;
      s.close();
      try {
        co_await loop.sock_recv(s, 10);
        FAIL("recv on a closed socket must fail");
      } catch (const asyncuv::OSError& e) {
        CHECK(e.errnum() == EBADF);
      }
      bool failed6 = co_await fails_with<asyncuv::OSError>(loop.sock_sendall(s, "x"));
      CHECK(failed6);
      bool failed7 = co_await fails_with<asyncuv::OSError>(loop.sock_accept(s));
      CHECK(failed7);
      bool failed8 = co_await fails_with<asyncuv::OSError>(
          loop.sock_connect(s, SockAddr::parse("127.0.0.1", 1)));
      CHECK(failed8);
    };
    run_test(body());
  }
  SECTION("accept on a socket that does not listen, send on an unconnected one") {
    auto body = []() -> Task<void> {
      EventLoop& loop = asyncuv::get_running_loop();
      Socket s;
      try {
        co_await loop.sock_accept(s);
        FAIL("accept must fail");
      } catch (const asyncuv::OSError& e) {
        CHECK(e.errnum() == EINVAL);
      }
      try {
        co_await loop.sock_sendall(s, "x");
        FAIL("send must fail");
      } catch (const asyncuv::OSError& e) {
        CHECK((e.errnum() == EPIPE || e.errnum() == ENOTCONN));
      }
    };
    run_test(body());
  }
}

TEST_CASE("sock_*: a loop closed with operations pending frees them", "[sock]") {
  auto [a, b] = Socket::socketpair();
  Socket server = listener();
  Future<std::string> receiving;
  Future<std::pair<Socket, SockAddr>> accepting;
  {
    EventLoop loop;
    receiving = loop.sock_recv(a, 10);
    accepting = loop.sock_accept(server);
    Future<void> sending = loop.sock_sendall(b, pattern(8 * 1024 * 1024));
    CHECK_FALSE(receiving.done());
    CHECK_FALSE(sending.done());
    loop.close();
  }
  // Still pending, as asyncio leaves them; nothing leaks (checked under ASan).
  CHECK_FALSE(receiving.done());
  CHECK_FALSE(accepting.done());
}

// ---- sock_sendfile ----------------------------------------------------------------------

namespace sock_test {
constexpr std::size_t kFileSize = 3 * 1024 * 1024;

/// Sends with sock_sendfile while receiving everything on `receiver` until `sender` is shut
/// down; returns (bytes sendfile reported, bytes received).
Task<std::pair<std::size_t, std::string>> sendfile_and_receive(Socket& sender, Socket& receiver,
                                                               int file, std::int64_t offset,
                                                               std::optional<std::int64_t> count,
                                                               bool fallback = true) {
  EventLoop& loop = asyncuv::get_running_loop();
  Task<std::string> reading = loop.create_task(recv_all(receiver.fileno()));
  std::size_t sent = co_await loop.sock_sendfile(sender, file, offset, count, fallback);
  sender.shutdown(SHUT_WR);
  std::string got = co_await reading;
  co_return std::pair<std::size_t, std::string>(sent, std::move(got));
}
}  // namespace sock_test

TEST_CASE("sock_sendfile: a 3 MiB file over TCP, every byte, file position as asyncio", "[sock]") {
  auto body = []() -> Task<void> {
    auto [client, server] = co_await tcp_pair();
    small_buffers(client, server);
    const std::string content = pattern(kFileSize);
    int file = temp_file(content);
    auto [sent, got] = co_await sendfile_and_receive(client, server, file, 0, std::nullopt);
    CHECK(sent == kFileSize);
    CHECK(got.size() == kFileSize);
    CHECK(test_support::byte_difference(got, content) == "");
    CHECK(file_position(file) == static_cast<off_t>(kFileSize));
    ::close(file);
  };
  run_test(body());
}

TEST_CASE("sock_sendfile: offset and count are honoured; the position ends after the slice",
          "[sock]") {
  auto body = []() -> Task<void> {
    const std::string content = pattern(kFileSize);
    int file = temp_file(content);
    {
      auto [client, server] = co_await tcp_pair();
      small_buffers(client, server);
      constexpr std::int64_t kOffset = 1000;
      constexpr std::int64_t kCount = 1024 * 1024 + 7;
      auto [sent, got] = co_await sendfile_and_receive(client, server, file, kOffset, kCount);
      CHECK(sent == static_cast<std::size_t>(kCount));
      CHECK(got == content.substr(kOffset, kCount));
      CHECK(file_position(file) == kOffset + kCount);
    }
    {
      // From an offset to the end: the file's current position does not matter.
      auto [client, server] = co_await tcp_pair();
      REQUIRE(::lseek(file, 5, SEEK_SET) == 5);
      auto [sent, got] = co_await sendfile_and_receive(client, server, file, 2000000, std::nullopt);
      CHECK(sent == kFileSize - 2000000);
      CHECK(got == content.substr(2000000));
      CHECK(file_position(file) == static_cast<off_t>(kFileSize));
    }
    {
      // A count past the end sends to the end; an offset past the end sends nothing and
      // leaves the position alone.
      auto [client, server] = co_await tcp_pair();
      auto [sent, got] = co_await sendfile_and_receive(client, server, file, kFileSize - 10, 100);
      CHECK(sent == 10);
      CHECK(got == content.substr(kFileSize - 10));
      REQUIRE(::lseek(file, 42, SEEK_SET) == 42);
      auto [client2, server2] = co_await tcp_pair();
      auto [none, nothing] =
          co_await sendfile_and_receive(client2, server2, file, kFileSize + 5, std::nullopt);
      CHECK(none == 0);
      CHECK(nothing.empty());
      CHECK(file_position(file) == 42);
    }
    {
      // An empty file: 0 at once.
      int empty = temp_file("");
      auto [client, server] = co_await tcp_pair();
      auto [sent, got] = co_await sendfile_and_receive(client, server, empty, 0, std::nullopt);
      CHECK(sent == 0);
      CHECK(got.empty());
      ::close(empty);
    }
    ::close(file);
  };
  run_test(body());
}

TEST_CASE("sock_sendfile over an AF_UNIX stream socket", "[sock]") {
  auto body = []() -> Task<void> {
    auto [a, b] = Socket::socketpair();
    const std::string content = pattern(kFileSize);
    int file = temp_file(content);
    auto [sent, got] = co_await sendfile_and_receive(a, b, file, 10, std::nullopt);
    CHECK(sent == kFileSize - 10);
    CHECK(got == content.substr(10));
    CHECK(file_position(file) == static_cast<off_t>(kFileSize));
    ::close(file);
  };
  run_test(body());
}

namespace sock_test {
/// A pipe whose read end holds `content` followed by end of file.
int pipe_with(const std::string& content) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(content.size() <= 60000);  // fits in the pipe buffer: no writer thread needed
  REQUIRE(::write(fds[1], content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  ::close(fds[1]);
  return fds[0];
}
}  // namespace sock_test

TEST_CASE("sock_sendfile: the fallback reads and sends a file sendfile(2) cannot take", "[sock]") {
  auto body = []() -> Task<void> {
    const std::string content = pattern(60000, 77);
    {
      int pipe_fd = pipe_with(content);
      auto [client, server] = co_await tcp_pair();
      auto [sent, got] = co_await sendfile_and_receive(client, server, pipe_fd, 0, std::nullopt);
      CHECK(sent == content.size());
      CHECK(test_support::byte_difference(got, content) == "");
      ::close(pipe_fd);
    }
    {
      // count is honoured by the fallback too.
      int pipe_fd = pipe_with(content);
      auto [client, server] = co_await tcp_pair();
      auto [sent, got] = co_await sendfile_and_receive(client, server, pipe_fd, 0, 1234);
      CHECK(sent == 1234);
      CHECK(got == content.substr(0, 1234));
      ::close(pipe_fd);
    }
    {
      // A non-seekable file cannot start at an offset.
      int pipe_fd = pipe_with(content);
      auto [client, server] = co_await tcp_pair();
      EventLoop& loop = asyncuv::get_running_loop();
      try {
        co_await loop.sock_sendfile(client, pipe_fd, 10);
        FAIL("an offset into a pipe must fail");
      } catch (const asyncuv::OSError& e) {
        CHECK(e.errnum() == ESPIPE);
      }
      ::close(pipe_fd);
    }
  };
  run_test(body());
}

TEST_CASE("sock_sendfile(fallback=false): SendfileNotAvailableError", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    int pipe_fd = pipe_with("data");
    auto [client, server] = co_await tcp_pair();
    bool failed9 = co_await fails_with<asyncuv::SendfileNotAvailableError>(
        loop.sock_sendfile(client, pipe_fd, 0, std::nullopt, false));
    CHECK(failed9);
    // A RuntimeError, as in asyncio; nothing was consumed from the pipe.
    bool failed10 = co_await fails_with<asyncuv::RuntimeError>(
        loop.sock_sendfile(client, pipe_fd, 0, std::nullopt, false));
    CHECK(failed10);
    char buf[8];
    CHECK(::read(pipe_fd, buf, sizeof buf) == 4);
    ::close(pipe_fd);
  };
  run_test(body());
}

TEST_CASE("sock_sendfile: bad arguments", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    int file = temp_file("abc");
    Socket udp(AF_INET, SOCK_DGRAM);
    REQUIRE_THROWS_AS(loop.sock_sendfile(udp, file), asyncuv::ValueError);
    REQUIRE_THROWS_WITH(loop.sock_sendfile(udp, file),
                        "only SOCK_STREAM type sockets are supported");
    auto [ud1, ud2] = Socket::socketpair(AF_UNIX, SOCK_DGRAM);
    REQUIRE_THROWS_AS(loop.sock_sendfile(ud1, file), asyncuv::ValueError);

    auto [a, b] = Socket::socketpair();
    REQUIRE_THROWS_WITH(loop.sock_sendfile(a, file, -1),
                        "offset must be a non-negative integer (got -1)");
    REQUIRE_THROWS_WITH(loop.sock_sendfile(a, file, 0, -5),
                        "count must be a positive integer (got -5)");
    // 70: asyncio refuses count=0 (None, here std::nullopt, means "to the end").
    REQUIRE_THROWS_AS(loop.sock_sendfile(a, file, 0, 0), asyncuv::ValueError);
    REQUIRE_THROWS_WITH(loop.sock_sendfile(a, file, 0, 0),
                        "count must be a positive integer (got 0)");
    REQUIRE_THROWS_WITH(loop.sock_sendfile(a, -1), "Invalid file descriptor: -1");
    ::close(file);
    co_return;
  };
  run_test(body());
}

TEST_CASE("sock_sendfile: a peer reset mid-transfer is an OSError, never SIGPIPE", "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [client, server] = co_await tcp_pair();
    small_buffers(client, server);
    int file = temp_file(pattern(kFileSize));
    Future<std::size_t> sending = loop.sock_sendfile(client, file);
    REQUIRE_FALSE(sending.done());
    std::string got = co_await recv_exactly(server.fileno(), 1000);
    CHECK(got.size() == 1000);
    linger_zero(server);
    server.close();
    try {
      co_await sending;
      FAIL("sendfile to a reset peer must fail");
    } catch (const asyncuv::ConnectionResetError&) {
    } catch (const asyncuv::BrokenPipeError&) {
    }
    // The position tells how much went out before the failure.
    off_t position = file_position(file);
    CHECK(position >= 1000);
    CHECK(position < static_cast<off_t>(kFileSize));
    ::close(file);
  };
  run_test(body());
}

TEST_CASE("sock_sendfile: cancelling mid-transfer; the position tells how much was sent",
          "[sock]") {
  auto body = []() -> Task<void> {
    EventLoop& loop = asyncuv::get_running_loop();
    auto [client, server] = co_await tcp_pair();
    small_buffers(client, server);
    const std::string content = pattern(kFileSize);
    int file = temp_file(content);
    Future<std::size_t> sending = loop.sock_sendfile(client, file, 100);
    REQUIRE_FALSE(sending.done());
    std::string got = co_await recv_exactly(server.fileno(), 50000);
    CHECK(sending.cancel());
    co_await asyncuv::sleep(0);
    CHECK(watched(loop) == 0);
    client.shutdown(SHUT_WR);
    got += co_await recv_all(server.fileno());
    CHECK(got == content.substr(100, got.size()));
    CHECK(file_position(file) == static_cast<off_t>(100 + got.size()));
    ::close(file);
  };
  run_test(body());
}
