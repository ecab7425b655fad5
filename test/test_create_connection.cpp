// loop.create_connection(): scenarios 43, 49, 52 and 53 of asyncio-semantics.md (connecting,
// argument errors, connect failures and how they are reported).
#include "connect_test_support.hpp"

#include <netinet/tcp.h>

using namespace connect_test;
using asyncuv::ConnectionOptions;
using asyncuv::HostPort;
using asyncuv::Transport;
using stream_test::Recorder;
using stream_test::run_until;

namespace {

using Made = std::pair<std::shared_ptr<Transport>, std::shared_ptr<Recorder>>;

std::string what_of(const std::exception_ptr& e) {
  return stream_test::what(e);
}

/// Closes the transport and waits for connection_lost.
void close_connection(EventLoop& loop, const Made& made) {
  made.first->close();
  run_until(loop, [&] { return made.second->lost; });
}

}  // namespace

TEST_CASE("43. create_connection: connection_made ran before it returned, data both ways",
          "[connect]") {
  EventLoop loop;
  Socket server = listener();
  const SockAddr server_address = server.getsockname();
  Made made;
  std::optional<Socket> accepted;
  SockAddr accepted_peer;
  bool made_before_return = false;

  auto body = [&]() -> Task<void> {
    auto accepting = loop.sock_accept(server);
    made = co_await loop.create_connection(recorder_factory(), "127.0.0.1", server_address.port());
    made_before_return = made.second->made;
    auto [sock, peer] = co_await accepting;
    accepted.emplace(std::move(sock));
    accepted_peer = peer;
  };
  run_task(loop, body());
  CHECK(made_before_return);
  CHECK(made.second->events == std::vector<std::string>{"made"});
  CHECK(made.second->transport == made.first);

  auto peername = made.first->get_extra_info<SockAddr>("peername");
  auto sockname = made.first->get_extra_info<SockAddr>("sockname");
  REQUIRE(peername);
  REQUIRE(sockname);
  CHECK(*peername == server_address);
  CHECK(*sockname == accepted_peer);
  CHECK(sockname->host() == "127.0.0.1");

  // 49: the client socket has TCP_NODELAY.
  int fd = std::any_cast<int>(made.first->get_extra_info("socket"));
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0);
  CHECK(nodelay != 0);

  made.first->write("ping");
  std::string got;
  run_until(loop, [&] {
    stream_test::drain_fd(accepted->fileno(), got);
    return got == "ping";
  });
  REQUIRE(::write(accepted->fileno(), "pong", 4) == 4);
  run_until(loop, [&] { return made.second->received == "pong"; });
  close_connection(loop, made);
  CHECK(made.second->events == std::vector<std::string>{"made", "data", "lost"});
}

TEST_CASE("43. create_connection over sock= takes the connected socket", "[connect]") {
  EventLoop loop;
  auto [client, peer_] = stream_test::tcp_pair();
  auto& peer = peer_;  // a named reference: clang 14 cannot capture a binding
  const int client_fd = client.fileno();
  client.setblocking(true);  // made non-blocking by create_connection
  ConnectionOptions options;
  options.sock = std::move(client);
  Made made = run_task(loop, loop.create_connection(recorder_factory(), std::move(options)));
  CHECK(made.second->made);
  CHECK(std::any_cast<int>(made.first->get_extra_info("socket")) == client_fd);
  CHECK(made.first->get_extra_info<SockAddr>("peername") == peer.getsockname());
  made.first->write("over sock");
  std::string got;
  run_until(loop, [&] {
    stream_test::drain_fd(peer.fileno(), got);
    return got == "over sock";
  });
  close_connection(loop, made);
}

TEST_CASE("43. create_connection binds to local_addr", "[connect]") {
  EventLoop loop;
  Socket server = listener();
  // A free local port: bound once to learn it, then released for create_connection.
  std::uint16_t local_port;
  {
    Socket probe = refusing();
    local_port = probe.getsockname().port();
  }
  ConnectionOptions options;
  options.local_addr = HostPort{"127.0.0.1", local_port};
  Made made;
  SockAddr accepted_peer;
  auto body = [&]() -> Task<void> {
    auto accepting = loop.sock_accept(server);
    made = co_await loop.create_connection(recorder_factory(), "127.0.0.1",
                                           server.getsockname().port(), std::move(options));
    auto accepted = co_await accepting;
    accepted_peer = accepted.second;
  };
  run_task(loop, body());
  auto sockname = made.first->get_extra_info<SockAddr>("sockname");
  REQUIRE(sockname);
  CHECK(sockname->host() == "127.0.0.1");
  CHECK(sockname->port() == local_port);
  CHECK(accepted_peer.port() == local_port);
  close_connection(loop, made);
}

TEST_CASE("43. create_connection with family=AF_INET6 connects to ::1", "[connect]") {
  EventLoop loop;
  std::optional<Socket> server;
  try {
    server.emplace(listener("::1"));
  } catch (const asyncuv::OSError& e) {
    CONNECT_TEST_SKIP("IPv6 loopback is not available: " << e.what());
  }
  ConnectionOptions options;
  options.family = AF_INET6;
  Made made =
      run_task(loop, loop.create_connection(recorder_factory(), "::1", server->getsockname().port(),
                                            std::move(options)));
  auto peername = made.first->get_extra_info<SockAddr>("peername");
  REQUIRE(peername);
  CHECK(peername->family() == AF_INET6);
  CHECK(*peername == server->getsockname());
  close_connection(loop, made);

  // An address of another family than asked for does not resolve.
  ConnectionOptions v4;
  v4.family = AF_INET;
  auto error =
      failure_of(loop, loop.create_connection(recorder_factory(), "::1",
                                              server->getsockname().port(), std::move(v4)));
  CHECK(stream_test::holds<asyncuv::GaiError>(error));
}

TEST_CASE("52. create_connection argument errors, in asyncio's order", "[connect]") {
  EventLoop loop;
  auto fails_with = [&](Task<Made> coro, const std::string& message) {
    std::exception_ptr error = failure_of(loop, std::move(coro));
    REQUIRE(stream_test::holds<asyncuv::ValueError>(error));
    CHECK(what_of(error) == message);
  };
  const int fds_before = count_fds();

  SECTION("server_hostname without ssl") {
    ConnectionOptions options;
    options.server_hostname = "example.com";
    options.sock = Socket();  // also host and sock together: the ssl check comes first
    fails_with(loop.create_connection(recorder_factory(), "127.0.0.1", 1, std::move(options)),
               "server_hostname is only meaningful with ssl");
  }
  SECTION("ssl without a host and without server_hostname") {
    ConnectionOptions options;
    options.ssl = ssl_for_checks();
    options.sock = Socket();
    fails_with(loop.create_connection(recorder_factory(), std::move(options)),
               "You must set server_hostname when using ssl without a host");
    ConnectionOptions empty_host;
    empty_host.ssl = ssl_for_checks();
    fails_with(loop.create_connection(recorder_factory(), "", 80, std::move(empty_host)),
               "You must set server_hostname when using ssl without a host");
  }
  SECTION("ssl_handshake_timeout without ssl") {
    ConnectionOptions options;
    options.ssl_handshake_timeout = 10.0;
    fails_with(loop.create_connection(recorder_factory(), "127.0.0.1", 1, std::move(options)),
               "ssl_handshake_timeout is only meaningful with ssl");
  }
  SECTION("ssl_shutdown_timeout without ssl") {
    ConnectionOptions options;
    options.ssl_shutdown_timeout = 10.0;
    fails_with(loop.create_connection(recorder_factory(), "127.0.0.1", 1, std::move(options)),
               "ssl_shutdown_timeout is only meaningful with ssl");
  }
  SECTION("host/port and sock together") {
    ConnectionOptions options;
    options.sock = Socket();
    fails_with(loop.create_connection(recorder_factory(), "127.0.0.1", 1, std::move(options)),
               "host/port and sock can not be specified at the same time");
  }
  SECTION("neither host/port nor sock") {
    fails_with(loop.create_connection(recorder_factory(), ConnectionOptions{}),
               "host and port was not specified and no sock specified");
  }
  SECTION("a sock that is not SOCK_STREAM") {
    Socket datagram(AF_INET, SOCK_DGRAM);
    const std::string expected =
        "A Stream Socket was expected, got " + asyncuv::detail::describe_socket(datagram);
    CHECK(expected.find(" type=2 ") != std::string::npos);
    ConnectionOptions options;
    options.sock = std::move(datagram);
    fails_with(loop.create_connection(recorder_factory(), std::move(options)), expected);
  }
  CHECK(count_fds() == fds_before);  // sockets given in the options were closed
}

TEST_CASE("53. a refused port gives ConnectionRefusedError with asyncio's message", "[connect]") {
  EventLoop loop;
  Socket closed = refusing();
  const std::uint16_t port = closed.getsockname().port();
  const int fds_before = count_fds();
  auto error = failure_of(loop, loop.create_connection(recorder_factory(), "127.0.0.1", port));
  REQUIRE(stream_test::holds<asyncuv::ConnectionRefusedError>(error));
  // asyncio's exact text (53).
  CHECK(what_of(error) ==
        "[Errno 111] Connect call failed ('127.0.0.1', " + std::to_string(port) + ")");
  CHECK(count_fds() == fds_before);  // the attempt's socket was closed

  // all_errors: an ExceptionGroup even for one error.
  ConnectionOptions options;
  options.all_errors = true;
  error = failure_of(
      loop, loop.create_connection(recorder_factory(), "127.0.0.1", port, std::move(options)));
  REQUIRE(stream_test::holds<asyncuv::ExceptionGroup>(error));
  try {
    std::rethrow_exception(error);
  } catch (const asyncuv::ExceptionGroup& group) {
    CHECK(group.message() == "create_connection failed");
    REQUIRE(group.exceptions().size() == 1);
    CHECK(stream_test::holds<asyncuv::ConnectionRefusedError>(group.exceptions()[0]));
  }
  CHECK(count_fds() == fds_before);
}

TEST_CASE("53. an unresolvable host gives GaiError", "[connect]") {
  EventLoop loop;
  // RFC 6761: names under .invalid never resolve.
  auto error =
      failure_of(loop, loop.create_connection(recorder_factory(), "asyncuv-test.invalid", 80));
  CHECK(stream_test::holds<asyncuv::GaiError>(error));
}

TEST_CASE("53. a local_addr bind failure is reported as asyncio does", "[connect]") {
  EventLoop loop;
  Socket server = listener();
  Socket busy = refusing();  // holds the local port (no SO_REUSEADDR): bind gives EADDRINUSE
  const std::uint16_t busy_port = busy.getsockname().port();
  const int fds_before = count_fds();
  ConnectionOptions options;
  options.local_addr = HostPort{"127.0.0.1", busy_port};
  auto error =
      failure_of(loop, loop.create_connection(recorder_factory(), "127.0.0.1",
                                              server.getsockname().port(), std::move(options)));
  REQUIRE(stream_test::holds<asyncuv::OSError>(error));
  CHECK(what_of(error) == "[Errno 98] error while attempting to bind on address ('127.0.0.1', " +
                              std::to_string(busy_port) + "): address already in use");
  try {
    std::rethrow_exception(error);
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EADDRINUSE);
  }
  CHECK(count_fds() == fds_before);
}

TEST_CASE("53. several different failures give OSError(\"Multiple exceptions: ...\")",
          "[connect]") {
  EventLoop loop;
  Socket busy = refusing();
  Socket closed = refusing();
  const std::uint16_t busy_port = busy.getsockname().port();
  const SockAddr v4 = closed.getsockname();
  const SockAddr v6 = SockAddr::ipv6("::1", v4.port());
  // Attempt 1 (IPv4) cannot bind to the busy local port; attempt 2 (IPv6) finds no local
  // address of its family.
  auto plan = [&](bool all_errors) {
    asyncuv::detail::ConnectPlan p;
    p.remote = {addr_info(v4), addr_info(v6)};
    p.local = std::vector<asyncuv::AddrInfo>{addr_info(SockAddr::ipv4("127.0.0.1", busy_port))};
    p.all_errors = all_errors;
    return p;
  };
  const std::string bind_error =
      "[Errno 98] error while attempting to bind on address "
      "('127.0.0.1', " +
      std::to_string(busy_port) + "): address already in use";
  const std::string family_error =
      "no matching local address with family=<AddressFamily.AF_INET6: 10> found";
  const int fds_before = count_fds();

  auto error = failure_of(loop, asyncuv::detail::connect_to_addresses(loop, plan(false)));
  REQUIRE(stream_test::holds<asyncuv::OSError>(error));
  CHECK(what_of(error) == "Multiple exceptions: " + bind_error + ", " + family_error);

  error = failure_of(loop, asyncuv::detail::connect_to_addresses(loop, plan(true)));
  REQUIRE(stream_test::holds<asyncuv::ExceptionGroup>(error));
  try {
    std::rethrow_exception(error);
  } catch (const asyncuv::ExceptionGroup& group) {
    CHECK(std::string(group.what()) == "create_connection failed (2 sub-exceptions)");
    REQUIRE(group.exceptions().size() == 2);
    CHECK(what_of(group.exceptions()[0]) == bind_error);
    CHECK(what_of(group.exceptions()[1]) == family_error);
  }
  CHECK(count_fds() == fds_before);
}

TEST_CASE("53. failures with the same text re-raise the first one as is", "[connect]") {
  EventLoop loop;
  Socket closed = refusing();
  const SockAddr address = closed.getsockname();
  asyncuv::detail::ConnectPlan plan;
  plan.remote = {addr_info(address), addr_info(address)};
  auto error = failure_of(loop, asyncuv::detail::connect_to_addresses(loop, std::move(plan)));
  REQUIRE(stream_test::holds<asyncuv::ConnectionRefusedError>(error));
  CHECK(what_of(error).rfind("[Errno 111] Connect call failed", 0) == 0);
}

TEST_CASE("53. addresses are tried in order until one connects", "[connect]") {
  EventLoop loop;
  Socket closed = refusing();
  Socket server = listener();
  asyncuv::detail::ConnectPlan plan;
  plan.remote = {addr_info(closed.getsockname()), addr_info(server.getsockname())};
  const int fds_before = count_fds();
  Socket sock = run_connect(loop, std::move(plan));
  CHECK(sock.getpeername() == server.getsockname());
  CHECK(count_fds() == fds_before + 1);  // only the connected socket is left
}

TEST_CASE("53. create_connection with happy_eyeballs_delay and a single address", "[connect]") {
  EventLoop loop;
  Socket server = listener();
  ConnectionOptions options;
  options.happy_eyeballs_delay = 0.25;
  Made made =
      run_task(loop, loop.create_connection(recorder_factory(), "127.0.0.1",
                                            server.getsockname().port(), std::move(options)));
  CHECK(made.second->made);
  CHECK(made.first->get_extra_info<SockAddr>("peername") == server.getsockname());
  close_connection(loop, made);
}

TEST_CASE("53. cancelling create_connection mid-connect closes its socket", "[connect]") {
  EventLoop loop;
  BlackHole hole;
  if (!hole.blocks(loop))
    CONNECT_TEST_SKIP("connects to a full accept queue are not black-holed here");
  const int fds_before = count_fds();
  auto task = loop.create_task(
      loop.create_connection(recorder_factory(), "127.0.0.1", hole.address.port()));
  loop.call_later(0.1, [task] { task.cancel(); });
  auto waiting = [&]() -> Task<void> {
    try {
      co_await task;
    } catch (const asyncuv::CancelledError&) {
    }
  };
  run_task(loop, waiting());
  CHECK(task.cancelled());
  CHECK(count_fds() == fds_before);
}
