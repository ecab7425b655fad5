// create_datagram_endpoint: scenarios 55 and 56 of asyncio-semantics.md over IPv4 and IPv6,
// the options (local_addr, remote_addr, family, reuse_port, allow_broadcast, sock) and
// asyncio's argument errors.
#include <asyncuv/tasks.hpp>

#include "datagram_test_support.hpp"
#include "log_capture.hpp"

using namespace datagram_test;
using asyncuv::Task;

namespace {

template <class T>
concept HasReuseAddress = requires(T options) {
  options.reuse_address;
};

}  // namespace

TEST_CASE("55. connection_made runs before create_datagram_endpoint returns; sendto to itself",
          "[udp]") {
  for (const std::string& host : loopback_hosts()) {
    CAPTURE(host);
    EventLoop loop;
    bool made_before_return = false;
    Endpoint ep;
    auto open = [&]() -> Task<void> {
      auto factory = [] { return std::make_shared<DgRecorder>(); };
      DatagramEndpointOptions options{.local_addr = {{host, 0}}};  // named: GCC 12 (see header)
      auto made = co_await loop.create_datagram_endpoint(factory, std::move(options));
      made_before_return = made.second->made;
      ep = made;
    };
    test_support::run_task(loop, open());
    auto [t, p_] = ep;
    auto& p = p_;  // a named reference: clang 14 cannot capture a binding
    CHECK(made_before_return);
    CHECK(p->transport == t);
    CHECK(p->events == std::vector<std::string>{"made"});

    SockAddr me = sockname(t);
    CHECK(me.host() == host);
    CHECK(me.port() != 0);
    CHECK_FALSE(t->get_extra_info<SockAddr>("peername"));

    t->sendto("hello", me);
    t->sendto("", me);  // an empty datagram is sent too (3.13)
    run_until(loop, [&] { return p->datagrams.size() == 2; });
    CHECK(p->datagrams[0].data == "hello");
    CHECK(p->datagrams[0].from == me);
    CHECK(p->datagrams[1].data.empty());
    CHECK(p->datagrams[1].from == me);
    CHECK(t->get_write_buffer_size() == 0);

    t->close();
    run_until(loop, [&] { return p->lost; });
    CHECK(p->lost_exc == nullptr);
    CHECK(p->events == std::vector<std::string>{"made", "datagram", "lost"});
  }
}

TEST_CASE("55. on a connected endpoint sendto(d, other_addr) raises ValueError", "[udp]") {
  for (const std::string& host : loopback_hosts()) {
    CAPTURE(host);
    EventLoop loop;
    auto [server, server_p_] = open_endpoint(loop, {.local_addr = {{host, 0}}});
    auto& server_p = server_p_;  // a named reference: clang 14 cannot capture a binding
    SockAddr server_addr = sockname(server);
    auto [client, client_p_] = open_endpoint(loop, {.remote_addr = {{host, server_addr.port()}}});
    auto& client_p = client_p_;  // a named reference: clang 14 cannot capture a binding

    auto peer = client->get_extra_info<SockAddr>("peername");
    REQUIRE(peer);
    CHECK(*peer == server_addr);

    std::string expected = host == "::1" ? "Invalid address: must be None or ('::1', " +
                                               std::to_string(server_addr.port()) + ", 0, 0)"
                                         : "Invalid address: must be None or ('127.0.0.1', " +
                                               std::to_string(server_addr.port()) + ")";
    SockAddr other = SockAddr::parse(host, static_cast<std::uint16_t>(server_addr.port() ^ 1));
    CHECK_THROWS_MATCHES(client->sendto("x", other), asyncuv::ValueError, Catch::Message(expected));

    client->sendto("one");               // no address: the peer
    client->sendto("two", server_addr);  // the peer's own address is fine
    client->sendto("");
    run_until(loop, [&] { return server_p->datagrams.size() == 3; });
    CHECK(server_p->datagrams[0].data == "one");
    CHECK(server_p->datagrams[1].data == "two");
    CHECK(server_p->datagrams[2].data.empty());
    CHECK(server_p->datagrams[0].from == sockname(client));

    // The server answers the client's address: the connected client receives it.
    server->sendto("reply", server_p->datagrams[0].from);
    run_until(loop, [&] { return client_p->datagrams.size() == 1; });
    CHECK(client_p->datagrams[0].data == "reply");
    CHECK(client_p->datagrams[0].from == server_addr);
    CHECK(client_p->errors.empty());

    client->close();
    server->close();
    run_until(loop, [&] { return client_p->lost && server_p->lost; });
  }
}

TEST_CASE("56. connected to a closed port: each send gives error_received(ConnectionRefusedError)",
          "[udp]") {
  for (const std::string& host : loopback_hosts()) {
    CAPTURE(host);
    EventLoop loop;
    std::uint16_t port = closed_udp_port(host.c_str());
    auto [t, p_] = open_endpoint(loop, {.remote_addr = {{host, port}}});
    auto& p = p_;  // a named reference: clang 14 cannot capture a binding
    for (std::size_t round = 1; round <= 3; ++round) {
      CAPTURE(round);
      t->sendto("anyone there?");
      run_until(loop, [&] { return p->errors.size() == round; });
      CHECK(holds<asyncuv::ConnectionRefusedError>(p->errors.back()));
      CHECK_FALSE(t->is_closing());  // the transport stays open
    }
    run_iterations(loop, 3);
    CHECK_FALSE(p->lost);
    CHECK(p->errors.size() == 3);
    t->close();
    run_until(loop, [&] { return p->lost; });
    CHECK(p->lost_exc == nullptr);
  }
}

TEST_CASE("56. sendto without an address on an unconnected endpoint: fatal write error", "[udp]") {
  EventLoop loop;
  stream_test::HandlerLog handler;
  handler.install(loop);
  auto [t, p_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}});
  auto& p = p_;  // a named reference: clang 14 cannot capture a binding
  t->sendto("nowhere");
  CHECK(t->is_closing());
  run_until(loop, [&] { return p->lost; });
  REQUIRE(handler.contexts.size() == 1);
  const asyncuv::ExceptionContext& context = handler.contexts[0];
  CHECK(context.message() == "Fatal write error on datagram transport");
  CHECK(holds<asyncuv::TypeError>(context.exception()));
  CHECK(context.transport<DatagramTransport>() == t);
  CHECK(context.protocol<asyncuv::BaseProtocol>() == p);
  CHECK(holds<asyncuv::TypeError>(p->lost_exc));
  CHECK(p->lost_calls == 1);
  CHECK(p->events == std::vector<std::string>{"made", "lost"});
}

TEST_CASE("56. reuse_address is not offered and SO_REUSEADDR stays off", "[udp]") {
  static_assert(!HasReuseAddress<DatagramEndpointOptions>);
  EventLoop loop;
  auto [t, p_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}});
  auto& p = p_;  // a named reference: clang 14 cannot capture a binding
  CHECK(sockopt(fd_of(t), SOL_SOCKET, SO_REUSEADDR) == 0);
  // So a second socket cannot bind the same port.
  auto failure = endpoint_failure(loop, {.local_addr = {{"127.0.0.1", sockname(t).port()}}});
  REQUIRE(holds<asyncuv::OSError>(failure));
  try {
    std::rethrow_exception(failure);
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EADDRINUSE);
  }
  t->close();
  run_until(loop, [&] { return p->lost; });
}

TEST_CASE("allow_broadcast: off refuses broadcasts with PermissionError, on sets SO_BROADCAST",
          "[udp]") {
  EventLoop loop;
  SECTION("off: sendto 255.255.255.255 gives error_received(PermissionError)") {
    auto [t, p_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}});
    auto& p = p_;  // a named reference: clang 14 cannot capture a binding
    CHECK(sockopt(fd_of(t), SOL_SOCKET, SO_BROADCAST) == 0);
    // Refused by the kernel before anything leaves the host.
    t->sendto("to everyone", SockAddr::ipv4("255.255.255.255", 9));
    REQUIRE(p->errors.size() == 1);
    CHECK(holds<asyncuv::PermissionError>(p->errors[0]));
    CHECK_FALSE(t->is_closing());
    t->close();
    run_until(loop, [&] { return p->lost; });
  }
  SECTION("on: SO_BROADCAST is set") {
    auto [t, p_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}, .allow_broadcast = true});
    auto& p = p_;  // a named reference: clang 14 cannot capture a binding
    CHECK(sockopt(fd_of(t), SOL_SOCKET, SO_BROADCAST) != 0);
    t->close();
    run_until(loop, [&] { return p->lost; });
  }
  SECTION("on with remote_addr: not connected, the remote address is sendto's default") {
    auto [server, server_p_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}});
    auto& server_p = server_p_;  // a named reference: clang 14 cannot capture a binding
    SockAddr server_addr = sockname(server);
    auto [t, p_] = open_endpoint(
        loop, {.remote_addr = {{"127.0.0.1", server_addr.port()}}, .allow_broadcast = true});
    auto& p = p_;  // a named reference: clang 14 cannot capture a binding
    CHECK(sockopt(fd_of(t), SOL_SOCKET, SO_BROADCAST) != 0);
    CHECK_FALSE(t->get_extra_info<SockAddr>("peername"));
    t->sendto("default address");
    run_until(loop, [&] { return server_p->datagrams.size() == 1; });
    CHECK(server_p->datagrams[0].data == "default address");
    CHECK_THROWS_AS(t->sendto("x", SockAddr::ipv4("127.0.0.1", 9)), asyncuv::ValueError);
    t->close();
    server->close();
    run_until(loop, [&] { return p->lost && server_p->lost; });
  }
}

TEST_CASE("reuse_port lets two endpoints bind the same port", "[udp]") {
  EventLoop loop;
  auto [a, pa_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}, .reuse_port = true});
  auto& pa = pa_;  // a named reference: clang 14 cannot capture a binding
  CHECK(sockopt(fd_of(a), SOL_SOCKET, SO_REUSEPORT) != 0);
  std::uint16_t port = sockname(a).port();
  auto [b, pb_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", port}}, .reuse_port = true});
  auto& pb = pb_;  // a named reference: clang 14 cannot capture a binding
  CHECK(sockname(b).port() == port);
  CHECK(sockopt(fd_of(b), SOL_SOCKET, SO_REUSEPORT) != 0);
  a->close();
  b->close();
  run_until(loop, [&] { return pa->lost && pb->lost; });
}

TEST_CASE("local_addr binds, remote_addr connects, family alone opens an unbound socket", "[udp]") {
  EventLoop loop;
  auto [server_, server_p_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}});
  auto& server = server_;      // a named reference: clang 14 cannot capture a binding
  auto& server_p = server_p_;  // a named reference: clang 14 cannot capture a binding
  SockAddr server_addr = sockname(server);
  server_p->on_datagram = [&](DgRecorder&, std::string_view data, const SockAddr& from) {
    server->sendto(std::string("echo:") + std::string(data), from);
  };

  SECTION("local_addr and remote_addr together") {
    auto [t, p_] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}},
                                        .remote_addr = {{"127.0.0.1", server_addr.port()}}});
    auto& p = p_;  // a named reference: clang 14 cannot capture a binding
    CHECK(sockname(t).host() == "127.0.0.1");
    CHECK(*t->get_extra_info<SockAddr>("peername") == server_addr);
    t->sendto("a");
    run_until(loop, [&] { return p->datagrams.size() == 1; });
    CHECK(p->datagrams[0].data == "echo:a");
    t->close();
    run_until(loop, [&] { return p->lost; });
  }
  SECTION("a host name is resolved with getaddrinfo") {
    auto [t, p_] = open_endpoint(
        loop, {.remote_addr = {{"localhost", server_addr.port()}}, .family = AF_INET});
    auto& p = p_;  // a named reference: clang 14 cannot capture a binding
    CHECK(*t->get_extra_info<SockAddr>("peername") == server_addr);
    t->close();
    run_until(loop, [&] { return p->lost; });
  }
  SECTION("family only: unbound until the first sendto") {
    auto [t, p_] = open_endpoint(loop, {.family = AF_INET});
    auto& p = p_;  // a named reference: clang 14 cannot capture a binding
    t->sendto("b", server_addr);
    run_until(loop, [&] { return p->datagrams.size() == 1; });
    CHECK(p->datagrams[0].data == "echo:b");
    CHECK(p->datagrams[0].from == server_addr);
    t->close();
    run_until(loop, [&] { return p->lost; });
  }
  server->close();
  run_until(loop, [&] { return server_p->lost; });
}

TEST_CASE("sock= wraps an existing datagram socket", "[udp]") {
  EventLoop loop;
  Socket sock(AF_INET, SOCK_DGRAM);
  sock.bind(SockAddr::ipv4("127.0.0.1", 0));
  SockAddr address = sock.getsockname();
  int fd = sock.fileno();
  auto [t, p_] = open_endpoint(loop, {.sock = std::move(sock)});
  auto& p = p_;  // a named reference: clang 14 cannot capture a binding
  CHECK(fd_of(t) == fd);
  CHECK(sockname(t) == address);
  t->sendto("self", address);
  run_until(loop, [&] { return p->datagrams.size() == 1; });
  CHECK(p->datagrams[0].data == "self");
  t->close();
  run_until(loop, [&] { return p->lost; });
}

TEST_CASE("create_datagram_endpoint argument errors (asyncio's types and messages)", "[udp]") {
  EventLoop loop;
  auto check_error = [&](DatagramEndpointOptions options, const std::string& message) {
    std::exception_ptr e = endpoint_failure(loop, std::move(options));
    CHECK(what(e) == message);
    return e;
  };

  SECTION("sock with socket modifiers") {
    Socket sock(AF_INET, SOCK_DGRAM);
    auto e = check_error({.local_addr = {{"127.0.0.1", 0}}, .sock = std::move(sock)},
                         "socket modifier keyword arguments can not be used when sock is "
                         "specified. (local_addr=('127.0.0.1', 0))");
    CHECK(holds<asyncuv::ValueError>(e));
    Socket other(AF_INET, SOCK_DGRAM);
    e = check_error(
        {.family = AF_INET, .reuse_port = true, .allow_broadcast = true, .sock = std::move(other)},
        "socket modifier keyword arguments can not be used when sock is "
        "specified. (family=2, reuse_port=True, allow_broadcast=True)");
    CHECK(holds<asyncuv::ValueError>(e));
  }
  SECTION("sock that is not a datagram socket") {
    Socket stream(AF_INET, SOCK_STREAM);
    std::string text =
        "A datagram socket was expected, got <Socket fd=" + std::to_string(stream.fileno()) +
        " family=2 type=1 proto=" + std::to_string(stream.proto()) + ">";
    auto e = check_error({.sock = std::move(stream)}, text);
    CHECK(holds<asyncuv::ValueError>(e));
  }
  SECTION("no address and no family") {
    auto no_options = [](EventLoop* l) -> Task<void> {
      auto factory = [] { return std::make_shared<DgRecorder>(); };
      co_await l->create_datagram_endpoint(factory);
    };
    std::exception_ptr e = test_support::failure_of(loop, no_options(&loop));
    CHECK(holds<asyncuv::ValueError>(e));
    CHECK(what(e) == "unexpected address family");
  }
  SECTION("AF_UNIX takes paths, the other families (host, port) pairs") {
    auto e =
        check_error({.local_addr = {{"127.0.0.1", 0}}, .family = AF_UNIX}, "string is expected");
    CHECK(holds<asyncuv::TypeError>(e));
    e = check_error({.local_path = "/tmp/x", .family = AF_INET}, "2-tuple is expected");
    CHECK(holds<asyncuv::TypeError>(e));
  }
  SECTION("no (family, proto) pair with both addresses") {
    if (!ipv6_available()) {
      WARN("IPv6 loopback (::1) is not available: case skipped");
      return;
    }
    auto e = check_error({.local_addr = {{"127.0.0.1", 0}}, .remote_addr = {{"::1", 9}}},
                         "can not get address information");
    CHECK(holds<asyncuv::ValueError>(e));
  }
  SECTION("every attempt failed: the first OSError") {
    // 203.0.113.7 (TEST-NET-3) is no address of this host: bind fails, nothing is sent.
    auto e = endpoint_failure(loop, {.local_addr = {{"203.0.113.7", 0}}});
    REQUIRE(holds<asyncuv::OSError>(e));
    try {
      std::rethrow_exception(e);
    } catch (const asyncuv::OSError& error) {
      CHECK(error.errnum() == EADDRNOTAVAIL);
    }
  }
  CHECK(loop.find_service<asyncuv::detail::DatagramTransports>() == nullptr);
}

TEST_CASE("set_protocol takes a DatagramProtocol; debug mode logs the new endpoint", "[udp]") {
  test_support::LogCapture log;
  EventLoop loop;
  loop.set_debug(true);
  auto [t, p] = open_endpoint(loop, {.local_addr = {{"127.0.0.1", 0}}});
  bool logged = false;
  for (const auto& record : log.records()) {
    if (record.text.rfind("Datagram endpoint local_addr=('127.0.0.1', 0) remote_addr=None "
                          "created: (<DatagramTransport fd=",
                          0) == 0) {
      logged = true;
    }
  }
  CHECK(logged);
  CHECK_THROWS_AS(t->set_protocol(std::make_shared<asyncuv::Protocol>()), asyncuv::TypeError);
  auto other = std::make_shared<DgRecorder>();
  t->set_protocol(other);
  CHECK(t->get_protocol() == other);
  t->sendto("to the new protocol", sockname(t));
  run_until(loop, [&] { return other->datagrams.size() == 1; });
  CHECK(p->datagrams.empty());
  t->close();
  run_until(loop, [&] { return other->lost; });
  CHECK_FALSE(p->lost);
}
