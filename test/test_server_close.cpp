// Server.close() and friends: scenario 51 (close, serve_forever, start_serving=false,
// wait_closed, close_clients / abort_clients).
#include "byte_compare.hpp"
#include "server_test_support.hpp"

using namespace server_test;
using asyncuv::CancelledError;
using asyncuv::RuntimeError;
using Catch::Matchers::Message;

namespace {

/// Options for a server that does not accept until start_serving().
asyncuv::ServerOptions not_serving() {
  asyncuv::ServerOptions options;
  options.start_serving = false;
  return options;
}

/// Runs `loop` for about `seconds` (loop time).
void run_for(EventLoop& loop, double seconds) {
  bool done = false;
  auto timer = loop.call_later(seconds, [&] { done = true; });
  run_until(loop, [&] { return done; });
}

/// A loopback server with one accepted connection: (server, client socket, its protocol).
struct OneConnection {
  Recorders r;
  std::shared_ptr<Server> server;
  Socket client{AF_INET, SOCK_STREAM};
  std::shared_ptr<Recorder> proto;

  explicit OneConnection(EventLoop& loop) {
    server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
    client = connect_to(server->sockets()[0].getsockname());
    run_until(loop, [&] { return r.made.size() == 1 && r.made[0]->made; });
    proto = r.made[0];
  }
};

}  // namespace

TEST_CASE("51. close(): connects refused, not serving, no sockets; connections keep working",
          "[server]") {
  EventLoop loop;
  OneConnection c(loop);
  const SockAddr address = c.server->sockets()[0].getsockname();
  const int listen_fd = c.server->sockets()[0].fileno();
  c.proto->on_data = [](Recorder& p, std::string_view data) { p.transport->write(data); };

  c.server->close();
  CHECK_FALSE(c.server->is_serving());
  CHECK(c.server->sockets().empty());
  CHECK_FALSE(fd_open(listen_fd));
  CHECK(connect_error(address) == ECONNREFUSED);
  c.server->close();  // idempotent

  // The accepted connection still works both ways.
  REQUIRE(::write(c.client.fileno(), "ping", 4) == 4);
  std::string got;
  read_while_running(loop, c.client.fileno(), got, 4);
  CHECK(got == "ping");
  c.proto->transport->write("from the server");
  got.clear();
  read_while_running(loop, c.client.fileno(), got, 15);
  CHECK(got == "from the server");
  CHECK(c.proto->received == "ping");

  c.client.close();
  run_task(loop, c.server->wait_closed());
  CHECK(c.proto->lost);
  CHECK(c.proto->lost_exc == nullptr);
}

TEST_CASE("51. serve_forever(): RuntimeError when already awaited or closed", "[server]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  auto forever = loop.create_task(server->serve_forever());
  const std::string again =
      "server " + server->repr() + " is already being awaited on serve_forever()";
  REQUIRE_THROWS_MATCHES(run_task(loop, server->serve_forever()), RuntimeError, Message(again));
  CHECK_FALSE(forever.done());

  // close() ends the serve_forever() in progress with a cancellation.
  server->close();
  run_until(loop, [&] { return forever.done(); });
  CHECK(forever.cancelled());

  REQUIRE_THROWS_MATCHES(run_task(loop, server->serve_forever()), RuntimeError,
                         Message("server <Server sockets=()> is closed"));
}

TEST_CASE("51. serve_forever() cancelled closes the server and waits for its connections",
          "[server]") {
  EventLoop loop;
  OneConnection c(loop);
  auto forever = loop.create_task(c.server->serve_forever());
  run_iterations(loop, 2);
  CHECK(c.server->is_serving());

  forever.cancel();
  run_for(loop, 0.05);
  CHECK_FALSE(c.server->is_serving());
  CHECK(c.server->sockets().empty());
  CHECK_FALSE(forever.done());  // wait_closed(): the connection is still open

  c.client.close();
  run_until(loop, [&] { return forever.done(); });
  CHECK(forever.cancelled());
  CHECK(c.proto->lost);
  // serve_forever() is no longer awaited: the error is now that the server is closed.
  REQUIRE_THROWS_MATCHES(run_task(loop, c.server->serve_forever()), RuntimeError,
                         Message("server <Server sockets=()> is closed"));
}

TEST_CASE("51. start_serving=false binds but refuses connections until start_serving()",
          "[server]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0, not_serving()));
  CHECK_FALSE(server->is_serving());
  REQUIRE(server->sockets().size() == 1);
  const SockAddr address = server->sockets()[0].getsockname();
  CHECK(address.port() != 0);  // bound
  CHECK(sockopt(server->sockets()[0].fileno(), SOL_SOCKET, SO_ACCEPTCONN) == 0);
  CHECK(connect_error(address) == ECONNREFUSED);  // not listening yet, as asyncio
  CHECK(r.made.empty());

  run_task(loop, server->start_serving());
  CHECK(server->is_serving());
  CHECK(sockopt(server->sockets()[0].fileno(), SOL_SOCKET, SO_ACCEPTCONN) == 1);
  Socket client = connect_to(address);
  run_until(loop, [&] { return r.made.size() == 1 && r.made[0]->made; });
  run_task(loop, server->start_serving());  // already serving: nothing happens
  CHECK(r.made.size() == 1);

  server->close();
  run_task(loop, server->start_serving());  // closed: nothing happens
  CHECK_FALSE(server->is_serving());
  client.close();
  run_task(loop, server->wait_closed());
}

TEST_CASE("51. serve_forever() starts a server created with start_serving=false", "[server]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0, not_serving()));
  auto forever = loop.create_task(server->serve_forever());
  CHECK_FALSE(server->is_serving());
  run_until(loop, [&] { return server->is_serving(); });  // the task's first step listens
  Socket client = connect_to(server->sockets()[0].getsockname());
  run_until(loop, [&] { return r.made.size() == 1 && r.made[0]->made; });
  client.close();
  run_until(loop, [&] { return r.made[0]->lost; });
  forever.cancel();
  run_until(loop, [&] { return forever.done(); });
  CHECK(forever.cancelled());
  CHECK_FALSE(server->is_serving());
}

TEST_CASE("51. wait_closed() completes once closed and the last connection is gone", "[server]") {
  EventLoop loop;
  OneConnection c(loop);
  c.server->close();
  auto waiting = loop.create_task(c.server->wait_closed());
  run_for(loop, 0.05);
  CHECK_FALSE(waiting.done());  // closed, but a connection is still attached

  bool lost_first = false;
  c.proto->on_lost = [&](Recorder&) { lost_first = !waiting.done(); };
  c.client.close();
  run_until(loop, [&] { return waiting.done(); });
  CHECK(lost_first);  // completed only after the connection's connection_lost()
  waiting.result();

  // Afterwards wait_closed() returns at once, without a loop iteration.
  std::uint64_t before = 0;
  std::uint64_t after = 1;
  auto again = [&]() -> Task<void> {
    before = loop.iteration_count();
    co_await c.server->wait_closed();
    after = loop.iteration_count();
  };
  run_task(loop, again());
  CHECK(before == after);
}

TEST_CASE("51. wait_closed() on an open server without connections waits for close()", "[server]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  auto waiting = loop.create_task(server->wait_closed());
  run_for(loop, 0.05);
  CHECK_FALSE(waiting.done());  // 3.12.1: an open server is not closed
  server->close();
  run_until(loop, [&] { return waiting.done(); });
  waiting.result();
}

TEST_CASE("51. close_clients() closes every connection after sending what is buffered",
          "[server]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  // Small kernel buffers (inherited by the accepted sockets): most data stays in the
  // transports' buffers.
  const int listen_fd = server->sockets()[0].fileno();
  const int small = 64 * 1024;
  REQUIRE(::setsockopt(listen_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  REQUIRE(::setsockopt(listen_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
  std::vector<Socket> clients;
  for (int i = 0; i < 2; ++i) {
    Socket client(AF_INET, SOCK_STREAM);
    small_kernel_buffers(client);
    SockAddr address = server->sockets()[0].getsockname();
    int rc = ::connect(client.fileno(), address.get(), address.size());
    REQUIRE((rc == 0 || errno == EINPROGRESS));
    wait_fd(client.fileno(), POLLOUT);
    clients.push_back(std::move(client));
  }
  run_until(loop, [&] { return r.made.size() == 2 && r.made[0]->made && r.made[1]->made; });
  const std::string big = pattern(4 * 1024 * 1024);

  SECTION("close_clients: the peers get every byte, then EOF") {
    for (auto& p : r.made)
      p->transport->write(big);
    for (auto& p : r.made)
      CHECK(p->transport->get_write_buffer_size() > 0);
    server->close_clients();
    for (auto& p : r.made)
      CHECK(p->transport->is_closing());
    for (Socket& client : clients) {
      std::string got;
      CHECK(read_to_end(loop, client.fileno(), got) == 0);
      CHECK(got.size() == big.size());
      CHECK(test_support::byte_difference(got, big) == "");
    }
    run_until(loop, [&] { return r.made[0]->lost && r.made[1]->lost; });
    CHECK(r.made[0]->lost_exc == nullptr);
  }
  SECTION("abort_clients: the buffered data is dropped") {
    for (auto& p : r.made)
      p->transport->write(big);
    for (auto& p : r.made)
      CHECK(p->transport->get_write_buffer_size() > 0);
    server->abort_clients();
    for (Socket& client : clients) {
      std::string got;
      int end = read_to_end(loop, client.fileno(), got);
      CHECK((end == 0 || end == ECONNRESET));
      CHECK(got.size() < big.size());
      CHECK(got == big.substr(0, got.size()));
    }
    run_until(loop, [&] { return r.made[0]->lost && r.made[1]->lost; });
    CHECK(r.made[0]->lost_exc == nullptr);
  }
  CHECK(server->is_serving());  // only the connections were closed
  server->close();
  run_task(loop, server->wait_closed());
}
