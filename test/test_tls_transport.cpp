// The TLS transport's contract (asyncio _SSLProtocolTransport): data both ways with every byte
// checked, clean shutdown with close_notify, a peer that closes without it, flow control in
// both directions, errors, BufferedProtocol, and closing the loop with open connections.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/ssl.hpp>
#include <asyncuv/tasks.hpp>

#include <stdexcept>

#include "test_tls_support.hpp"

using asyncuv::EventLoop;
using asyncuv::Transport;
using stream_test::HandlerLog;
using stream_test::holds;
using stream_test::pattern;
using stream_test::Recorder;
using stream_test::run_until;
using stream_test::what;
using test_support::run_task;
using namespace tls_test;

namespace {

constexpr std::size_t kMiB = 1024 * 1024;

struct Fixture {
  EventLoop loop;
  Certs certs;
  std::unique_ptr<TlsServer> server;
  Connection client;

  explicit Fixture(std::function<void(EchoServer&)> setup = {}) {
    server = start_echo_server(loop, server_context(certs.server), std::move(setup));
    client = run_task(loop, tls_connect(&loop, server->port, client_context(certs.ca)));
    run_until(loop, [&] { return server->peers.size() == 1 && server->peers[0]->made; });
  }
  EchoServer& peer() { return *server->peers.at(0); }
  Transport& transport() { return *client.first; }
  Recorder& recorder() { return *client.second; }
};

/// A BufferedProtocol that collects what it receives through small buffers.
class Collector : public asyncuv::BufferedProtocol {
 public:
  std::shared_ptr<Transport> transport;
  std::string received;
  bool lost = false;
  char buf[1000];
  void connection_made(std::shared_ptr<Transport> t) override { transport = t; }
  std::span<std::byte> get_buffer(std::ptrdiff_t) override {
    return {reinterpret_cast<std::byte*>(buf), sizeof buf};
  }
  void buffer_updated(std::size_t n) override { received.append(buf, n); }
  void connection_lost(std::exception_ptr) override {
    lost = true;
    transport.reset();
  }
};

}  // namespace

TEST_CASE("TLS: 8 MiB each way, every byte checked", "[tls]") {
  Fixture f;
  const std::string data = pattern(8 * kMiB, 7);
  // Several writes of different sizes, flow control ignored: everything is buffered.
  std::size_t at = 0;
  for (std::size_t chunk = 1; at < data.size(); chunk = chunk * 3 + 17) {
    std::size_t n = std::min(chunk, data.size() - at);
    f.transport().write(std::string_view(data).substr(at, n));
    at += n;
  }
  run_until(
      f.loop, [&] { return f.recorder().received.size() >= data.size(); }, 120);
  CHECK(f.peer().received.size() == data.size());
  CHECK(f.peer().received == data);
  CHECK(f.recorder().received.size() == data.size());
  CHECK(f.recorder().received == data);
  f.loop.close();
}

TEST_CASE("TLS: close() sends close_notify; both sides end cleanly", "[tls]") {
  Fixture f;
  CHECK_FALSE(f.transport().can_write_eof());
  CHECK_THROWS_AS(f.transport().write_eof(), asyncuv::NotImplementedError);
  f.transport().write("last words");
  f.transport().close();
  CHECK(f.transport().is_closing());
  f.transport().write("dropped");  // after close(): ignored, as asyncio
  run_until(f.loop, [&] { return f.recorder().lost && f.peer().lost; });
  CHECK(f.peer().received == "last words");
  CHECK(f.peer().eof);
  CHECK_FALSE(f.peer().lost_exc);
  INFO((f.recorder().lost_exc ? what(f.recorder().lost_exc) : std::string("none")));
  CHECK_FALSE(f.recorder().lost_exc);
  CHECK(f.recorder().events.front() == "made");
  CHECK(f.recorder().events.back() == "lost");
  CHECK(f.recorder().lost_calls == 1);
  f.loop.close();
}

TEST_CASE("TLS: a peer that closes without close_notify: eof_received, then connection_lost",
          "[tls]") {
  Fixture f([](EchoServer& peer) {
    peer.on_data = [](EchoServer& self, std::string_view) {
      // End the TCP stream under the TLS session: no close_notify.
      ::shutdown(fd_of(self.transport), SHUT_WR);
    };
  });
  f.transport().write("bye");
  run_until(f.loop, [&] { return f.recorder().lost; });
  CHECK(f.recorder().eof);
  CHECK_FALSE(f.recorder().lost_exc);
  CHECK(f.recorder().events == std::vector<std::string>{"made", "eof", "lost"});
  f.loop.close();
}

TEST_CASE("TLS: abort() drops buffered data; connection_lost(nullptr)", "[tls]") {
  Fixture f;
  f.transport().write(pattern(kMiB));
  f.transport().abort();
  CHECK(f.transport().is_closing());
  run_until(f.loop, [&] { return f.recorder().lost && f.peer().lost; });
  CHECK_FALSE(f.recorder().lost_exc);
  CHECK(f.peer().received.size() < kMiB);
  f.loop.close();
}

TEST_CASE("TLS: pause_writing when the peer does not read, resume_writing when it does", "[tls]") {
  Fixture f([](EchoServer& peer) {
    peer.pause_on_made = true;
    peer.echo = false;
  });
  // A small kernel buffer, so that the TLS buffers have to fill.
  const int fd = fd_of(f.client.first);
  const int size = 64 * 1024;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  const std::string chunk = pattern(64 * 1024, 3);
  std::string sent;
  while (f.recorder().pauses == 0 && sent.size() < 64 * kMiB) {
    f.transport().write(chunk);
    sent += chunk;
  }
  REQUIRE(f.recorder().pauses == 1);
  CHECK(f.transport().get_write_buffer_size() >= 512 * 1024);
  CHECK(f.transport().get_write_buffer_limits() ==
        std::pair<std::size_t, std::size_t>(128 * 1024, 512 * 1024));
  CHECK(f.peer().received.empty());
  f.peer().transport->resume_reading();
  run_until(
      f.loop, [&] { return f.peer().received.size() == sent.size(); }, 60);
  CHECK(f.recorder().resumes == 1);
  CHECK(f.peer().received == sent);
  CHECK(f.transport().get_write_buffer_size() == 0);
  f.loop.close();
}

TEST_CASE("TLS: pause_reading stops data_received until resume_reading", "[tls]") {
  std::string sent;
  Fixture f([&sent](EchoServer& peer) {
    peer.on_data = [&sent](EchoServer& self, std::string_view) {
      // Write until the TLS layer pauses us: the client is not reading.
      const std::string chunk = pattern(64 * 1024, 11);
      while (self.pauses == 0 && sent.size() < 64 * kMiB) {
        self.transport->write(chunk);
        sent += chunk;
      }
    };
  });
  f.transport().pause_reading();
  CHECK_FALSE(f.transport().is_reading());
  f.transport().write("go");
  run_until(
      f.loop, [&] { return f.peer().pauses == 1; }, 60);
  stream_test::run_iterations(f.loop, 5);
  CHECK(f.recorder().received.empty());
  f.transport().resume_reading();
  CHECK(f.transport().is_reading());
  run_until(
      f.loop, [&] { return f.recorder().received.size() == sent.size(); }, 60);
  CHECK(f.recorder().received == sent);
  CHECK(f.peer().resumes == 1);
  f.loop.close();
}

TEST_CASE("TLS: an exception from data_received reaches the exception handler", "[tls]") {
  Fixture f;
  HandlerLog log;
  log.install(f.loop);
  f.recorder().on_data = [](Recorder&, std::string_view) { throw std::runtime_error("boom"); };
  f.transport().write("echo me");
  run_until(f.loop, [&] { return f.recorder().lost; });
  REQUIRE(log.contexts.size() == 1);
  CHECK(log.contexts[0].message() == "Fatal error on SSL protocol");
  CHECK(what(log.contexts[0].exception()) == "boom");
  CHECK(holds<std::runtime_error>(f.recorder().lost_exc));
  f.loop.close();
}

TEST_CASE("TLS: OS errors end the connection without reaching the exception handler", "[tls]") {
  Fixture f;
  HandlerLog log;
  log.install(f.loop);
  // The server resets the connection (SO_LINGER 0): the client sees ConnectionResetError.
  struct linger hard {
    1, 0
  };
  ::setsockopt(fd_of(f.peer().transport), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  f.peer().transport->abort();
  run_until(f.loop, [&] { return f.recorder().lost; });
  CHECK(log.contexts.empty());
  if (f.recorder().lost_exc) CHECK(holds<asyncuv::OSError>(f.recorder().lost_exc));
  f.loop.close();
}

TEST_CASE("TLS: a BufferedProtocol receives through its own buffers", "[tls]") {
  EventLoop loop;
  Certs certs;
  auto server = start_echo_server(loop, server_context(certs.server));
  auto factory = [] { return std::make_shared<Collector>(); };
  asyncuv::ConnectionOptions options;
  options.ssl = client_context(certs.ca);
  options.server_hostname = "localhost";
  auto [transport, collector_] = run_task(
      loop, loop.create_connection(factory, "127.0.0.1", server->port, std::move(options)));
  auto& collector = collector_;  // a named reference: clang 14 cannot capture a binding
  const std::string data = pattern(300 * 1000, 5);
  transport->write(data);
  run_until(loop, [&] { return collector->received.size() == data.size(); });
  CHECK(collector->received == data);
  loop.close();
}

TEST_CASE("TLS: closing the loop with open TLS connections frees everything", "[tls]") {
  EventLoop loop;
  Certs certs;
  auto server = start_echo_server(loop, server_context(certs.server));
  std::vector<Connection> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(run_task(loop, tls_connect(&loop, server->port, client_context(certs.ca))));
  }
  for (auto& c : clients)
    c.first->write(pattern(200 * 1000));
  // One more connection, in the middle of its handshake on the server side: it never sends a
  // ClientHello.
  asyncuv::Socket silent(AF_INET, SOCK_STREAM);
  silent.setblocking(true);
  const asyncuv::SockAddr address = asyncuv::SockAddr::ipv4("127.0.0.1", server->port);
  REQUIRE(::connect(silent.fileno(), address.get(), address.size()) == 0);
  run_until(loop, [&] { return server->peers.size() == 4; });
  loop.close();  // ASan: nothing may leak
  CHECK(loop.is_closed());
}
