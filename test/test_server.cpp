// loop.create_server(): scenarios 49 (listening sockets and their options) and 50 (argument
// and bind errors), accepting (an echo server with concurrent clients, a failing protocol
// factory) and the server's lifetime (unreferenced servers, loop.close()).
#include "server_test_support.hpp"

#include "log_capture.hpp"

#include <any>
#include <typeinfo>

using namespace server_test;
using asyncuv::ServerOptions;
using Catch::Matchers::Message;

namespace {

/// True if an IPv6 socket can be bound on ::1 here (CI hosts may disable IPv6).
bool ipv6_loopback() {
  if (!family_supported(AF_INET6)) return false;
  try {
    Socket probe(AF_INET6, SOCK_STREAM);
    probe.bind(SockAddr::ipv6("::1", 0));
    return true;
  } catch (const asyncuv::OSError&) {
    return false;
  }
}

/// Closes `server` and waits until it is closed.
void close_server(EventLoop& loop, const std::shared_ptr<Server>& server) {
  server->close();
  run_task(loop, server->wait_closed());
}

}  // namespace

TEST_CASE("49. create_server on 127.0.0.1 port 0: one listening socket, SO_REUSEADDR, backlog 100",
          "[server]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  REQUIRE(server->sockets().size() == 1);
  const asyncuv::TransportSocket sock = server->sockets()[0];
  CHECK(sock.family() == AF_INET);
  CHECK(sock.type() == SOCK_STREAM);
  CHECK(sock.getsockname().host() == "127.0.0.1");
  CHECK(sock.getsockname().port() != 0);
  CHECK(server->is_serving());
  CHECK(&server->get_loop() == &loop);
  CHECK(sockopt(sock.fileno(), SOL_SOCKET, SO_ACCEPTCONN) == 1);
  CHECK(sockopt(sock.fileno(), SOL_SOCKET, SO_REUSEADDR) != 0);
  CHECK(sockopt(sock.fileno(), SOL_SOCKET, SO_REUSEPORT) == 0);
  CHECK((::fcntl(sock.fileno(), F_GETFL) & O_NONBLOCK) != 0);  // non-blocking
  CHECK(listen_backlog(sock.fileno()) == 100);
  close_server(loop, server);
}

TEST_CASE("49. reuse_address=false, reuse_port and backlog reach the listening socket",
          "[server]") {
  Recorders r;
  EventLoop loop;
  ServerOptions options;
  options.backlog = 7;
  options.reuse_address = false;
  options.reuse_port = true;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0, std::move(options)));
  REQUIRE(server->sockets().size() == 1);
  int fd = server->sockets()[0].fileno();
  CHECK(sockopt(fd, SOL_SOCKET, SO_REUSEADDR) == 0);
  CHECK(sockopt(fd, SOL_SOCKET, SO_REUSEPORT) != 0);
  CHECK(listen_backlog(fd) == 7);
  close_server(loop, server);
}

TEST_CASE("49. accepted sockets get TCP_NODELAY; keep_alive sets SO_KEEPALIVE", "[server]") {
  for (bool keep_alive : {false, true}) {
    CAPTURE(keep_alive);
    Recorders r;
    EventLoop loop;
    ServerOptions options;
    options.keep_alive = keep_alive;
    auto server =
        run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0, std::move(options)));
    Socket client = connect_to(server->sockets()[0].getsockname());
    run_until(loop, [&] { return r.made.size() == 1 && r.made[0]->made; });
    auto proto = r.made[0];
    int fd = std::any_cast<int>(proto->transport->get_extra_info("socket"));
    CHECK(sockopt(fd, IPPROTO_TCP, TCP_NODELAY) != 0);
    CHECK((sockopt(fd, SOL_SOCKET, SO_KEEPALIVE) != 0) == keep_alive);
    auto peer = std::any_cast<SockAddr>(proto->transport->get_extra_info("peername"));
    CHECK(peer == client.getsockname());
    client.close();
    run_until(loop, [&] { return proto->lost; });
    close_server(loop, server);
  }
}

TEST_CASE("49. an empty host listens on every interface: one IPv4 and one IPv6 socket",
          "[server]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "", 0));
  const bool v6 = family_supported(AF_INET6);
  REQUIRE(server->sockets().size() == (v6 ? 2u : 1u));
  int clients = 0;
  std::vector<Socket> connected;
  for (const asyncuv::TransportSocket& sock : server->sockets()) {
    SockAddr local = sock.getsockname();
    CHECK(local.port() != 0);
    if (sock.family() == AF_INET6) {
      CHECK(local.host() == "::");
      CHECK(sockopt(sock.fileno(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
      if (ipv6_loopback()) {
        connected.push_back(connect_to(SockAddr::ipv6("::1", local.port())));
        ++clients;
      }
    } else {
      REQUIRE(sock.family() == AF_INET);
      CHECK(local.host() == "0.0.0.0");
      connected.push_back(connect_to(SockAddr::ipv4("127.0.0.1", local.port())));
      ++clients;
    }
  }
  if (v6) {
    // Port 0: each socket got a port of its own, as in asyncio.
    CHECK(server->sockets()[0].family() != server->sockets()[1].family());
  }
  run_until(loop, [&] { return static_cast<int>(r.made.size()) == clients; });
  connected.clear();
  run_until(loop, [&] {
    return std::all_of(r.made.begin(), r.made.end(), [](auto& p) { return p->lost; });
  });
  close_server(loop, server);
}

TEST_CASE("49. several hosts: each is resolved and every distinct address bound once", "[server]") {
  Recorders r;
  EventLoop loop;
  const bool v6 = ipv6_loopback();
  std::vector<std::string> hosts = {"127.0.0.1", "127.0.0.1"};
  if (v6) hosts.push_back("::1");
  auto server = run_task(loop, loop.create_server(r.factory(), hosts, 0));
  REQUIRE(server->sockets().size() == (v6 ? 2u : 1u));
  CHECK(server->sockets()[0].getsockname().host() == "127.0.0.1");
  if (v6) CHECK(server->sockets()[1].getsockname().host() == "::1");
  for (std::size_t i = 0; i < server->sockets().size(); ++i) {
    Socket client = connect_to(server->sockets()[i].getsockname());
    run_until(loop, [&] { return r.made.size() == i + 1 && r.made[i]->made; });
  }
  CHECK(r.made.size() == server->sockets().size());
  close_server(loop, server);
  run_until(loop, [&] {
    return std::all_of(r.made.begin(), r.made.end(), [](auto& p) { return p->lost; });
  });
}

TEST_CASE("49. create_server over a bound socket (sock=)", "[server]") {
  Recorders r;
  EventLoop loop;
  Socket sock(AF_INET, SOCK_STREAM);
  sock.bind(SockAddr::ipv4("127.0.0.1", 0));
  const int fd = sock.fileno();
  ServerOptions options;
  options.sock = std::move(sock);
  options.backlog = 5;
  auto server = run_task(loop, loop.create_server(r.factory(), std::move(options)));
  REQUIRE(server->sockets().size() == 1);
  CHECK(server->sockets()[0].fileno() == fd);
  CHECK(listen_backlog(fd) == 5);
  Socket client = connect_to(server->sockets()[0].getsockname());
  run_until(loop, [&] { return r.made.size() == 1 && r.made[0]->made; });
  server->close();
  CHECK_FALSE(fd_open(fd));  // the server owned the socket
  client.close();
  run_task(loop, server->wait_closed());
  CHECK(r.made[0]->lost);
}

TEST_CASE("50. create_server argument errors", "[server]") {
  Recorders r;
  EventLoop loop;
  ServerOptions options;
  SECTION("neither host/port nor sock") {
    REQUIRE_THROWS_MATCHES(run_task(loop, loop.create_server(r.factory(), std::move(options))),
                           asyncuv::ValueError,
                           Message("Neither host/port nor sock were specified"));
  }
  SECTION("host/port and sock") {
    options.sock = Socket(AF_INET, SOCK_STREAM);
    REQUIRE_THROWS_MATCHES(
        run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0, std::move(options))),
        asyncuv::ValueError, Message("host/port and sock can not be specified at the same time"));
  }
  SECTION("ssl_handshake_timeout without ssl") {
    options.ssl_handshake_timeout = 1.0;
    REQUIRE_THROWS_MATCHES(
        run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0, std::move(options))),
        asyncuv::ValueError, Message("ssl_handshake_timeout is only meaningful with ssl"));
  }
  SECTION("ssl_shutdown_timeout without ssl (checked before the sock)") {
    options.ssl_shutdown_timeout = 2.0;
    REQUIRE_THROWS_MATCHES(run_task(loop, loop.create_server(r.factory(), std::move(options))),
                           asyncuv::ValueError,
                           Message("ssl_shutdown_timeout is only meaningful with ssl"));
  }
  SECTION("a socket that is not SOCK_STREAM") {
    Socket udp(AF_INET, SOCK_DGRAM);
    std::string expected =
        "A Stream Socket was expected, got <Socket fd=" + std::to_string(udp.fileno()) +
        " family=2 type=2 proto=17>";
    options.sock = std::move(udp);
    REQUIRE_THROWS_MATCHES(run_task(loop, loop.create_server(r.factory(), std::move(options))),
                           asyncuv::ValueError, Message(expected));
  }
  CHECK(r.made.empty());
}

TEST_CASE("50. a port in use: OSError(EADDRINUSE) with asyncio's message", "[server]") {
  Recorders r;
  EventLoop loop;
  auto expect_in_use = [&](const Socket& taken, const std::string& host,
                           const std::string& address_repr) {
    try {
      (void)run_task(loop, loop.create_server(r.factory(), host, taken.getsockname().port()));
      FAIL("create_server bound a port in use");
    } catch (const asyncuv::OSError& e) {
      CHECK(typeid(e) == typeid(asyncuv::OSError));
      CHECK(e.errnum() == EADDRINUSE);
      std::string message =
          "error while attempting to bind on address " + address_repr + ": address already in use";
      CHECK(e.strerror() == message);
      CHECK(std::string(e.what()) == "[Errno " + std::to_string(EADDRINUSE) + "] " + message);
    }
  };
  // A listening socket without SO_REUSEADDR holds the port whatever the new socket sets.
  Socket taken(AF_INET, SOCK_STREAM);
  taken.bind(SockAddr::ipv4("127.0.0.1", 0));
  taken.listen(1);
  const std::string port = std::to_string(taken.getsockname().port());
  expect_in_use(taken, "127.0.0.1", "('127.0.0.1', " + port + ")");
  if (ipv6_loopback()) {
    Socket taken6(AF_INET6, SOCK_STREAM);
    taken6.bind(SockAddr::ipv6("::1", 0));
    taken6.listen(1);
    expect_in_use(taken6, "::1",
                  "('::1', " + std::to_string(taken6.getsockname().port()) + ", 0, 0)");
  }
}

TEST_CASE("50. a bind failure closes the sockets already bound", "[server]") {
  Recorders r;
  EventLoop loop;
  Socket taken(AF_INET, SOCK_STREAM);
  taken.bind(SockAddr::ipv4("127.0.0.1", 0));
  taken.listen(1);
  const std::uint16_t port = taken.getsockname().port();
  const int before = open_fd_count();
  // 127.0.0.2:port binds (the taken socket holds 127.0.0.1 only), then 127.0.0.1 fails.
  std::vector<std::string> hosts = {"127.0.0.2", "127.0.0.1"};
  REQUIRE_THROWS_AS(run_task(loop, loop.create_server(r.factory(), hosts, port)), asyncuv::OSError);
  CHECK(open_fd_count() == before);
  // The socket bound to 127.0.0.2 is gone: the address is free again.
  Socket again(AF_INET, SOCK_STREAM);
  CHECK_NOTHROW(again.bind(SockAddr::ipv4("127.0.0.2", port)));
}

TEST_CASE("echo server: several concurrent clients, every byte checked", "[server]") {
  struct Echo : asyncuv::Protocol {
    std::shared_ptr<Transport> transport;
    void connection_made(std::shared_ptr<Transport> t) override { transport = std::move(t); }
    void data_received(std::string_view data) override { transport->write(data); }
    void connection_lost(std::exception_ptr) override { transport.reset(); }
  };
  EventLoop loop;
  auto server =
      run_task(loop, loop.create_server([] { return std::make_shared<Echo>(); }, "127.0.0.1", 0));
  const SockAddr address = server->sockets()[0].getsockname();

  constexpr int clients = 5;
  constexpr std::size_t size = 256 * 1024;
  std::vector<std::string> sent(clients);
  std::vector<std::string> received(clients);
  auto client = [](EventLoop* loop, SockAddr to, std::string payload,
                   std::string* got) -> Task<void> {
    Socket sock(AF_INET, SOCK_STREAM);
    co_await loop->sock_connect(sock, to);
    asyncuv::Future<void> sending = loop->sock_sendall(sock, payload);
    while (got->size() < payload.size()) {
      std::string chunk = co_await loop->sock_recv(sock, 65536);
      if (chunk.empty()) break;
      got->append(chunk);
    }
    co_await sending;
  };
  std::vector<Task<void>> tasks;
  for (int i = 0; i < clients; ++i) {
    sent[i] = pattern(size, static_cast<std::uint32_t>(i + 1));
    tasks.push_back(loop.create_task(client(&loop, address, sent[i], &received[i])));
  }
  auto all = [&]() -> Task<void> {
    auto done = asyncuv::gather(std::move(tasks));
    co_await done;
  };
  run_task(loop, all(), 60.0);
  for (int i = 0; i < clients; ++i) {
    CAPTURE(i);
    CHECK(received[i].size() == size);
    CHECK(received[i] == sent[i]);
  }
  server->close();
  run_task(loop, server->wait_closed());  // the clients closed their sockets: all detached
}

TEST_CASE("a protocol factory that throws is reported and the server goes on", "[server]") {
  EventLoop loop;
  HandlerLog log;
  log.install(loop);
  int calls = 0;
  std::vector<std::shared_ptr<Recorder>> made;
  auto factory = [&]() -> std::shared_ptr<Recorder> {
    if (++calls == 1) throw asyncuv::ValueError("no protocol today");
    auto p = std::make_shared<Recorder>();
    made.push_back(p);
    return p;
  };
  auto server = run_task(loop, loop.create_server(factory, "127.0.0.1", 0));
  const SockAddr address = server->sockets()[0].getsockname();

  Socket first = connect_to(address);
  run_until(loop, [&] { return !log.contexts.empty(); });
  REQUIRE(log.contexts.size() == 1);
  const asyncuv::ExceptionContext& context = log.contexts[0];
  CHECK(context.message() == "Error on transport creation for incoming connection");
  CHECK(holds<asyncuv::ValueError>(context.exception()));
  CHECK(what(context.exception()) == "no protocol today");
  std::string rest;
  CHECK(read_to_end(loop, first.fileno(), rest) == 0);  // the accepted socket was closed
  CHECK(rest.empty());
  CHECK(server->is_serving());

  Socket second = connect_to(address);
  run_until(loop, [&] { return made.size() == 1 && made[0]->made; });
  CHECK(log.contexts.size() == 1);
  second.close();
  run_until(loop, [&] { return made[0]->lost; });
  close_server(loop, server);
}

TEST_CASE("a factory returning null: TypeError to the handler, with the socket closed",
          "[server]") {
  EventLoop loop;
  HandlerLog log;
  log.install(loop);
  auto server = run_task(
      loop, loop.create_server([] { return std::shared_ptr<Recorder>(); }, "127.0.0.1", 0));
  Socket client = connect_to(server->sockets()[0].getsockname());
  run_until(loop, [&] { return !log.contexts.empty(); });
  CHECK(log.contexts[0].message() == "Error on transport creation for incoming connection");
  CHECK(holds<asyncuv::TypeError>(log.contexts[0].exception()));
  std::string rest;
  CHECK(read_to_end(loop, client.fileno(), rest) == 0);
  close_server(loop, server);
}

TEST_CASE("repr() lists the listening sockets as a Python tuple", "[server]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  const asyncuv::TransportSocket sock = server->sockets()[0];
  CHECK(server->repr() == "<Server sockets=(<Socket fd=" + std::to_string(sock.fileno()) +
                              " family=2 type=1 proto=6 laddr=127.0.0.1:" +
                              std::to_string(sock.getsockname().port()) + ">,)>");
  server->close();
  CHECK(server->repr() == "<Server sockets=()>");
}

TEST_CASE("a server nobody references still serves until the loop closes it", "[server]") {
  Recorders r;
  EventLoop loop;
  SockAddr address;
  int listen_fd = -1;
  {
    auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
    address = server->sockets()[0].getsockname();
    listen_fd = server->sockets()[0].fileno();
  }  // every user reference dropped
  Socket client = connect_to(address);
  run_until(loop, [&] { return r.made.size() == 1 && r.made[0]->made; });
  r.made[0]->transport->write("hello");
  std::string got;
  read_while_running(loop, client.fileno(), got, 5);
  CHECK(got == "hello");

  loop.close();
  CHECK_FALSE(fd_open(listen_fd));
  // The accepted connection was closed with the loop too, without calling its protocol.
  wait_fd(client.fileno(), POLLIN);
  std::string rest;
  CHECK(drain_fd(client.fileno(), rest));
  CHECK_FALSE(r.made[0]->lost);
}

TEST_CASE("closing the loop with an open server and open connections closes every socket",
          "[server]") {
  test_support::LogCapture log;  // the wait_closed() task below is destroyed pending
  Recorders r;
  std::shared_ptr<Server> server;  // outlives the loop
  EventLoop loop;
  server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  const int listen_fd = server->sockets()[0].fileno();
  Socket a = connect_to(server->sockets()[0].getsockname());
  Socket b = connect_to(server->sockets()[0].getsockname());
  run_until(loop, [&] { return r.made.size() == 2 && r.made[1]->made; });
  auto pending = loop.create_task(server->wait_closed());
  run_iterations(loop, 2);
  CHECK_FALSE(pending.done());

  loop.close();
  CHECK_FALSE(server->is_serving());
  CHECK(server->sockets().empty());
  CHECK_FALSE(fd_open(listen_fd));
  for (Socket* client : {&a, &b}) {
    wait_fd(client->fileno(), POLLIN);
    std::string rest;
    CHECK(drain_fd(client->fileno(), rest));
  }
  server->close();  // harmless on a server the loop closed
  CHECK(server->repr() == "<Server sockets=()>");
}
