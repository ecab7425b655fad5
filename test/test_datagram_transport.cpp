// The datagram transport: 10,000 echoed datagrams, the send queue and asyncio's flow control
// (AF_UNIX and UDP), sending after close, close and abort with a queue, protocol exceptions,
// loop close with open endpoints, and AF_UNIX datagram endpoints (path and abstract name).
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asyncuv/tasks.hpp>

#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>

#include "datagram_test_support.hpp"
#include "log_capture.hpp"
#include "temp_dir.hpp"

using namespace datagram_test;
using asyncuv::Task;

namespace {

/// The payload of datagram number `n`: its number, then a pattern of a length that varies.
std::string numbered_payload(int n) {
  std::string out = std::to_string(n) + ":";
  out += stream_test::pattern(16 + static_cast<std::size_t>(n * 37 % 600),
                              static_cast<std::uint32_t>(n + 1));
  return out;
}

/// Reads every datagram waiting on non-blocking `fd` into `out`.
void drain_datagrams(int fd, std::vector<std::string>& out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) return;
    out.emplace_back(buf, static_cast<std::size_t>(n));
  }
}

/// A connected AF_UNIX datagram pair: (the transport's end with a small send buffer, the peer).
std::pair<Socket, Socket> unix_datagram_pair() {
  auto pair = Socket::socketpair(AF_UNIX, SOCK_DGRAM);
  pair.first.setsockopt(SOL_SOCKET, SO_SNDBUF, 16 * 1024);
  return pair;
}

/// Sends 2000-byte datagrams numbered from `next` until `stop()`; returns what was sent.
std::vector<std::string> send_until(const std::shared_ptr<DatagramTransport>& t, int& next,
                                    const std::function<bool()>& stop) {
  std::vector<std::string> sent;
  for (int guard = 0; guard < 100000 && !stop(); ++guard) {
    std::string data = std::to_string(next++) + ":" + std::string(2000, 'q');
    t->sendto(data);
    sent.push_back(std::move(data));
  }
  REQUIRE(stop());
  return sent;
}

/// An endpoint on an AF_UNIX datagram pair's first socket, with the peer socket.
struct UnixPairEndpoint {
  Endpoint ep;
  Socket peer;
};

UnixPairEndpoint unix_pair_endpoint(EventLoop& loop) {
  auto [mine, peer] = unix_datagram_pair();
  return {open_endpoint(loop, {.sock = std::move(mine)}), std::move(peer)};
}

}  // namespace

TEST_CASE("10,000 datagrams echoed, every payload checked", "[udp]") {
  constexpr int kTotal = 10000;
  constexpr int kWindow = 50;  // in flight at once: the kernel buffers never overflow
  EventLoop loop;
  auto [server_, server_p_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}});
  auto& server = server_;      // a named reference: clang 14 cannot capture a binding
  auto& server_p = server_p_;  // a named reference: clang 14 cannot capture a binding
  server_p->keep_datagrams = false;
  server_p->on_datagram = [&](DgRecorder&, std::string_view data, const SockAddr& from) {
    server->sendto(data, from);
  };
  auto [client_, client_p_] =
      open_endpoint(loop, {.remote_addr = {{"127.0.0.1", sockname(server).port()}}});
  auto& client = client_;      // a named reference: clang 14 cannot capture a binding
  auto& client_p = client_p_;  // a named reference: clang 14 cannot capture a binding
  client_p->keep_datagrams = false;

  int next = 0;
  int received = 0;
  std::set<int> seen;
  std::vector<std::string> mismatches;
  auto send_next = [&] { client->sendto(numbered_payload(next++)); };
  client_p->on_datagram = [&](DgRecorder&, std::string_view data, const SockAddr&) {
    std::size_t colon = data.find(':');
    int n = std::stoi(std::string(data.substr(0, colon)));
    if (data != numbered_payload(n) || !seen.insert(n).second) {
      mismatches.push_back(std::string(data.substr(0, 40)));
    }
    ++received;
    if (next < kTotal) send_next();
  };
  for (int i = 0; i < kWindow; ++i)
    send_next();
  run_until(
      loop, [&] { return received == kTotal || !mismatches.empty(); }, 120.0);
  CHECK(mismatches.empty());
  CHECK(received == kTotal);
  CHECK(seen.size() == static_cast<std::size_t>(kTotal));
  CHECK(*seen.begin() == 0);
  CHECK(*seen.rbegin() == kTotal - 1);
  CHECK(client_p->errors.empty());
  CHECK(server_p->errors.empty());
  client->close();
  server->close();
  run_until(loop, [&] { return client_p->lost && server_p->lost; });
}

TEST_CASE("flow control over the send queue (AF_UNIX datagrams)", "[udp]") {
  EventLoop loop;
  auto [ep, peer_] = unix_pair_endpoint(loop);
  auto& peer = peer_;  // a named reference: clang 14 cannot capture a binding
  auto [t_, p_] = ep;
  auto& t = t_;  // a named reference: clang 14 cannot capture a binding
  auto& p = p_;  // a named reference: clang 14 cannot capture a binding
  t->set_write_buffer_limits(16000);
  CHECK(t->get_write_buffer_limits() == std::pair<std::size_t, std::size_t>(4000, 16000));
  int next = 0;
  // The peer does not read: the socket fills, the rest is queued until the protocol pauses.
  std::vector<std::string> sent = send_until(t, next, [&] { return p->pauses == 1; });
  auto* endpoint = dynamic_cast<asyncuv::detail::DatagramEndpoint*>(t.get());
  REQUIRE(endpoint != nullptr);
  std::size_t queued = endpoint->queued_datagrams();
  REQUIRE(queued > 0);
  std::size_t expected_size = 0;
  for (std::size_t i = sent.size() - queued; i < sent.size(); ++i)
    expected_size += sent[i].size() + 8;  // payload + 8 bytes of header, as asyncio counts
  CHECK(t->get_write_buffer_size() == expected_size);
  CHECK(t->get_write_buffer_size() > 16000);
  CHECK(endpoint->protocol_paused());
  CHECK(p->resumes == 0);

  // The peer reads: the queue drains, resume_writing() once at the low-water mark.
  std::vector<std::string> got;
  run_until(loop, [&] {
    drain_datagrams(peer.fileno(), got);
    return t->get_write_buffer_size() == 0;
  });
  CHECK(p->resumes == 1);
  CHECK_FALSE(endpoint->protocol_paused());
  run_until(loop, [&] {
    drain_datagrams(peer.fileno(), got);
    return got.size() == sent.size();
  });
  CHECK(got == sent);  // every datagram, in order
  CHECK(p->events == std::vector<std::string>{"made", "pause", "resume"});
  CHECK(p->errors.empty());
  t->close();
  run_until(loop, [&] { return p->lost; });
}

TEST_CASE("flow control over libuv's UDP send queue (IPv6, small send buffer)", "[udp]") {
  if (!ipv6_available()) {
    WARN("IPv6 loopback (::1) is not available: test skipped");
    return;
  }
  EventLoop loop;
  auto [server, server_p_] = open_endpoint(loop, {.local_addr = {{"::1", 0}}});
  auto& server_p = server_p_;  // a named reference: clang 14 cannot capture a binding
  // A tiny send buffer and a 1280-byte path MTU: a 5000-byte datagram needs more fragment
  // buffers than the socket may allocate, so the kernel refuses it (ENOBUFS, which libuv
  // treats as "try later") until the send buffer grows. That makes the queue path
  // deterministic on loopback, where UDP sends otherwise never wait.
  Socket sock(AF_INET6, SOCK_DGRAM);
  sock.setsockopt(SOL_SOCKET, SO_SNDBUF, 1);
  sock.setsockopt(IPPROTO_IPV6, IPV6_MTU, 1280);
  sock.bind(SockAddr::ipv6("::1", 0));
  int fd = sock.fileno();
  auto [t_, p_] = open_endpoint(loop, {.sock = std::move(sock)});
  auto& t = t_;  // a named reference: clang 14 cannot capture a binding
  auto& p = p_;  // a named reference: clang 14 cannot capture a binding
  t->set_write_buffer_limits(20000);

  SockAddr to = sockname(server);
  std::vector<std::string> sent;
  for (int i = 0; p->pauses == 0 && i < 100; ++i) {
    sent.push_back(std::to_string(i) + ":" + std::string(5000, 'u'));
    t->sendto(sent.back(), to);
  }
  REQUIRE(p->pauses == 1);
  // The kernel refused every one of them: all are queued, each counted with 8 bytes of header.
  std::size_t expected_size = 0;
  for (const std::string& datagram : sent)
    expected_size += datagram.size() + 8;
  CHECK(t->get_write_buffer_size() == expected_size);
  CHECK(p->errors.empty());

  // A larger send buffer lets libuv's queue drain.
  int big = 1 << 20;
  REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big) == 0);
  run_until(loop, [&] { return p->resumes == 1 && t->get_write_buffer_size() == 0; });
  run_until(loop, [&] { return server_p->datagrams.size() == sent.size(); });
  for (std::size_t i = 0; i < sent.size(); ++i)
    CHECK(server_p->datagrams[i].data == sent[i]);
  CHECK(p->errors.empty());
  t->close();
  server->close();
  run_until(loop, [&] { return p->lost && server_p->lost; });
}

TEST_CASE("sendto after close is dropped, with a warning from the 5th", "[udp]") {
  test_support::LogCapture log;
  EventLoop loop;
  auto [server, server_p_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}});
  auto& server_p = server_p_;  // a named reference: clang 14 cannot capture a binding
  auto [t, p_] = open_endpoint(loop, {.remote_addr = {{"127.0.0.1", sockname(server).port()}}});
  auto& p = p_;  // a named reference: clang 14 cannot capture a binding
  t->close();
  CHECK(t->is_closing());
  for (int i = 0; i < 6; ++i)
    t->sendto("late");
  run_until(loop, [&] { return p->lost; });
  t->sendto("later still");
  run_iterations(loop, 3);
  CHECK(server_p->datagrams.empty());
  CHECK(p->lost_calls == 1);
  CHECK(p->lost_exc == nullptr);
  CHECK(t->get_write_buffer_size() == 0);
  int warnings = 0;
  for (const auto& record : log.records()) {
    if (record.text == "socket.send() raised exception.") ++warnings;
  }
  CHECK(warnings == 3);  // asyncio counts: the 5th, 6th and 7th dropped datagrams warn
  server->close();
  run_until(loop, [&] { return server_p->lost; });
}

TEST_CASE("close() sends the queue before connection_lost; abort() drops it", "[udp]") {
  EventLoop loop;
  auto [ep, peer_] = unix_pair_endpoint(loop);
  auto& peer = peer_;  // a named reference: clang 14 cannot capture a binding
  auto [t, p_] = ep;
  auto& p = p_;  // a named reference: clang 14 cannot capture a binding
  int next = 0;
  auto* endpoint = dynamic_cast<asyncuv::detail::DatagramEndpoint*>(t.get());
  REQUIRE(endpoint != nullptr);
  std::vector<std::string> sent =
      send_until(t, next, [&] { return endpoint->queued_datagrams() >= 3; });

  SECTION("close") {
    t->close();
    run_iterations(loop, 3);
    CHECK_FALSE(p->lost);  // the queue is still waiting for the peer
    std::vector<std::string> got;
    run_until(loop, [&] {
      drain_datagrams(peer.fileno(), got);
      return p->lost;
    });
    drain_datagrams(peer.fileno(), got);
    CHECK(got == sent);
    CHECK(p->lost_exc == nullptr);
  }
  SECTION("abort") {
    t->abort();
    CHECK(t->get_write_buffer_size() == 0);
    run_until(loop, [&] { return p->lost; });
    CHECK(p->lost_exc == nullptr);
    std::vector<std::string> got;
    drain_datagrams(peer.fileno(), got);
    CHECK(got.size() == sent.size() - 3);  // the queued ones were dropped
  }
  CHECK(endpoint->socket_closed());
}

TEST_CASE("exceptions from datagram_received and error_received reach the exception handler",
          "[udp]") {
  EventLoop loop;
  stream_test::HandlerLog handler;
  handler.install(loop);
  auto [t, p_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}});
  auto& p = p_;  // a named reference: clang 14 cannot capture a binding
  p->on_datagram = [](DgRecorder&, std::string_view data, const SockAddr&) {
    if (data == "boom") throw std::runtime_error("datagram boom");
  };
  p->on_error = [](DgRecorder&, std::exception_ptr) { throw std::runtime_error("error boom"); };
  SockAddr me = sockname(t);
  t->sendto("boom", me);
  t->sendto("fine", me);
  run_until(loop, [&] { return p->datagrams.size() == 2; });
  REQUIRE(handler.contexts.size() == 1);
  CHECK(handler.contexts[0].message() == "protocol.datagram_received() call failed.");
  CHECK(what(handler.contexts[0].exception()) == "datagram boom");
  CHECK(handler.contexts[0].transport<DatagramTransport>() == t);
  CHECK(handler.contexts[0].protocol<asyncuv::BaseProtocol>() == p);
  CHECK_FALSE(t->is_closing());  // the transport stays open

  t->sendto("x", SockAddr::ipv4("255.255.255.255", 9));  // EACCES: error_received throws
  REQUIRE(handler.contexts.size() == 2);
  CHECK(handler.contexts[1].message() == "protocol.error_received() call failed.");
  CHECK(what(handler.contexts[1].exception()) == "error boom");
  CHECK_FALSE(t->is_closing());
  t->close();
  run_until(loop, [&] { return p->lost; });
}

TEST_CASE("closing the loop closes open datagram endpoints without calling their protocols",
          "[udp]") {
  auto loop = std::make_unique<EventLoop>();
  auto [udp, udp_p] = open_endpoint(*loop, {.local_addr = {{"127.0.0.1", 0}}});
  auto [ep, peer] = unix_pair_endpoint(*loop);
  auto [unix_t, unix_p] = ep;
  int next = 0;
  auto* endpoint = dynamic_cast<asyncuv::detail::DatagramEndpoint*>(unix_t.get());
  REQUIRE(endpoint != nullptr);
  send_until(unix_t, next, [&] { return endpoint->queued_datagrams() >= 2; });
  auto* open = loop->find_service<asyncuv::detail::DatagramTransports>();
  REQUIRE(open != nullptr);
  CHECK(open->size() == 2);
  int udp_fd = fd_of(udp);
  int unix_fd = fd_of(unix_t);
  std::weak_ptr<DatagramTransport> weak_udp = udp;
  std::weak_ptr<DgRecorder> weak_p = udp_p;

  loop->close();
  CHECK(open->size() == 0);
  CHECK(::fcntl(udp_fd, F_GETFD) == -1);
  CHECK(::fcntl(unix_fd, F_GETFD) == -1);
  CHECK_FALSE(udp_p->lost);  // not called again once the loop is closed
  CHECK_FALSE(unix_p->lost);
  CHECK(udp->is_closing());
  unix_t->sendto("after the loop closed");  // dropped
  CHECK(unix_t->get_write_buffer_size() == 0);
  loop.reset();
  udp_p->transport.reset();
  unix_p->transport.reset();
  udp.reset();
  udp_p.reset();
  CHECK(weak_udp.expired());
  CHECK(weak_p.expired());
}

TEST_CASE("AF_UNIX datagram endpoints: a path and an abstract name", "[udp]") {
  test_support::TempDir dir;
  const std::string abstract_base =
      std::string(1, '\0') + "asyncuv-udp-test-" + std::to_string(::getpid());
  struct Names {
    std::string server;
    std::string client;
  };
  std::vector<Names> cases{{dir.file("server.sock"), dir.file("client.sock")},
                           {abstract_base + "-server", abstract_base + "-client"}};
  for (const Names& names : cases) {
    const bool abstract = names.server.front() == '\0';
    CAPTURE(abstract);
    EventLoop loop;
    auto [server_, server_p_] = open_endpoint(loop, {.local_path = names.server});
    auto& server = server_;      // a named reference: clang 14 cannot capture a binding
    auto& server_p = server_p_;  // a named reference: clang 14 cannot capture a binding
    server_p->on_datagram = [&](DgRecorder&, std::string_view data, const SockAddr& from) {
      server->sendto("pong:" + std::string(data), from);
    };
    auto [client, client_p_] = open_endpoint(
        loop, {.local_path = names.client, .remote_path = names.server, .family = AF_UNIX});
    auto& client_p = client_p_;  // a named reference: clang 14 cannot capture a binding
    CHECK(sockname(server) == SockAddr::unix_path(names.server));
    CHECK(*client->get_extra_info<SockAddr>("peername") == SockAddr::unix_path(names.server));

    client->sendto("ping");
    client->sendto("");
    run_until(loop, [&] { return client_p->datagrams.size() == 2; });
    REQUIRE(server_p->datagrams.size() == 2);
    CHECK(server_p->datagrams[0].data == "ping");
    CHECK(server_p->datagrams[0].from == SockAddr::unix_path(names.client));
    CHECK(server_p->datagrams[1].data.empty());
    CHECK(client_p->datagrams[0].data == "pong:ping");
    CHECK(client_p->datagrams[0].from == SockAddr::unix_path(names.server));
    CHECK(client_p->datagrams[1].data == "pong:");
    CHECK_THROWS_AS(client->sendto("x", SockAddr::unix_path(names.client)), asyncuv::ValueError);

    client->close();
    server->close();
    run_until(loop, [&] { return client_p->lost && server_p->lost; });
  }
}

TEST_CASE("AF_UNIX local_path: a stale socket file is replaced", "[udp]") {
  test_support::TempDir dir;
  const std::string path = dir.file("stale.sock");
  {
    Socket stale(AF_UNIX, SOCK_DGRAM);
    stale.bind(SockAddr::unix_path(path));
  }  // closed: the file stays behind
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  EventLoop loop;
  auto [t, p_] = open_endpoint(loop, {.local_path = path});
  auto& p = p_;  // a named reference: clang 14 cannot capture a binding
  CHECK(sockname(t) == SockAddr::unix_path(path));
  t->sendto("to myself", SockAddr::unix_path(path));
  run_until(loop, [&] { return p->datagrams.size() == 1; });
  CHECK(p->datagrams[0].data == "to myself");
  t->close();
  run_until(loop, [&] { return p->lost; });
}
