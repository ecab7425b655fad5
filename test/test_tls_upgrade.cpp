// TLS everywhere a stream connection is made: loop.start_tls() on both sides of a plain
// connection, Unix sockets, connect_accepted_socket(), and the streams API.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/ssl.hpp>
#include <asyncuv/tasks.hpp>

#include "temp_dir.hpp"
#include "test_tls_support.hpp"

using asyncuv::EventLoop;
using asyncuv::Transport;
using stream_test::holds;
using stream_test::Recorder;
using stream_test::run_until;
using stream_test::what;
using test_support::failure_of;
using test_support::run_task;
using namespace tls_test;
namespace ssl = asyncuv::ssl;

namespace {

/// A plain-text server protocol that answers "STARTTLS\n" with "OK\n" and upgrades to TLS
/// (server side), then echoes.
class StartTlsServer : public asyncuv::Protocol,
                       public std::enable_shared_from_this<StartTlsServer> {
 public:
  explicit StartTlsServer(std::shared_ptr<ssl::Context> context) : context_(std::move(context)) {}
  std::shared_ptr<Transport> transport;
  std::shared_ptr<Transport> tls;
  std::string received;
  bool lost = false;

  void connection_made(std::shared_ptr<Transport> t) override { transport = t; }
  void data_received(std::string_view data) override {
    received.append(data);
    if (tls) {
      tls->write(data);
      return;
    }
    if (received == "STARTTLS\n") {
      transport->write("OK\n");
      transport->pause_reading();  // nothing more until the TLS layer is in place
      upgrading_ = transport->get_loop().create_task(upgrade(shared_from_this()));
    }
  }
  void connection_lost(std::exception_ptr) override {
    lost = true;
    transport.reset();
    tls.reset();
  }

 private:
  static asyncuv::Task<void> upgrade(std::shared_ptr<StartTlsServer> self) {
    asyncuv::StartTlsOptions options;
    options.server_side = true;
    auto upgrading =
        self->transport->get_loop().start_tls(self->transport, self, self->context_, options);
    self->tls = co_await std::move(upgrading);
    self->received.clear();
  }
  std::shared_ptr<ssl::Context> context_;
  asyncuv::Task<void> upgrading_;
};

asyncuv::Task<std::shared_ptr<Transport>> client_start_tls(EventLoop* loop,
                                                           std::shared_ptr<Transport> transport,
                                                           std::shared_ptr<Recorder> protocol,
                                                           std::shared_ptr<ssl::Context> context) {
  asyncuv::StartTlsOptions options;
  options.server_hostname = "localhost";
  auto upgrading =
      loop->start_tls(std::move(transport), std::move(protocol), std::move(context), options);
  co_return co_await std::move(upgrading);
}

}  // namespace

TEST_CASE("TLS: start_tls upgrades a plain connection on both sides", "[tls]") {
  EventLoop loop;
  Certs certs;
  std::vector<std::shared_ptr<StartTlsServer>> servers;
  auto server_ctx = server_context(certs.server);
  auto factory = [&servers, server_ctx] {
    servers.push_back(std::make_shared<StartTlsServer>(server_ctx));
    return servers.back();
  };
  auto server = run_task(loop, loop.create_server(factory, "127.0.0.1", 0));
  const std::uint16_t port = server->sockets().at(0).getsockname().port();

  auto recorder_factory = [] { return std::make_shared<Recorder>(); };
  auto [plain, client_] =
      run_task(loop, loop.create_connection(recorder_factory, "127.0.0.1", port));
  auto& client = client_;  // a named reference: clang 14 cannot capture a binding
  plain->write("STARTTLS\n");
  run_until(loop, [&] { return client->received == "OK\n"; });
  std::shared_ptr<Transport> tls =
      run_task(loop, client_start_tls(&loop, plain, client, client_context(certs.ca)));
  REQUIRE(tls);
  CHECK(tls != plain);
  CHECK(tls->get_protocol() == client);
  CHECK(tls->get_extra_info<std::shared_ptr<ssl::SSLObject>>("ssl_object").has_value());
  CHECK(client->events == std::vector<std::string>{"made", "data"});  // no second connection_made

  tls->write("secret");
  run_until(loop, [&] { return client->received == "OK\nsecret"; });
  REQUIRE(servers.size() == 1);
  REQUIRE(servers[0]->tls);
  CHECK(servers[0]->tls->get_extra_info<std::shared_ptr<ssl::Context>>("sslcontext") ==
        std::optional<std::shared_ptr<ssl::Context>>(server_ctx));

  tls->close();
  run_until(loop, [&] { return client->lost && servers[0]->lost; });
  CHECK_FALSE(client->lost_exc);
  server->close();
  loop.close();
}

TEST_CASE("TLS: start_tls argument errors, and a failed upgrade closes the transport", "[tls]") {
  EventLoop loop;
  Certs certs;
  auto server = run_task(
      loop, loop.create_server([] { return std::make_shared<Recorder>(); }, "127.0.0.1", 0));
  const std::uint16_t port = server->sockets().at(0).getsockname().port();
  auto [plain, client] = run_task(
      loop, loop.create_connection([] { return std::make_shared<Recorder>(); }, "127.0.0.1", port));

  std::exception_ptr e = failure_of(loop, loop.start_tls(plain, client, nullptr));
  CHECK(holds<asyncuv::TypeError>(e));
  CHECK(what(e) == "sslcontext is expected to be an instance of ssl.SSLContext, got None");
  e = failure_of(loop, loop.start_tls(nullptr, client, client_context(certs.ca)));
  CHECK(holds<asyncuv::TypeError>(e));
  CHECK(what(e) == "transport None is not supported by start_tls()");

  // The peer never answers: the handshake times out and the transport is closed.
  asyncuv::StartTlsOptions options;
  options.server_hostname = "localhost";
  options.ssl_handshake_timeout = 0.2;
  e = failure_of(loop, loop.start_tls(plain, client, client_context(certs.ca), options));
  CHECK(holds<asyncuv::ConnectionAbortedError>(e));
  CHECK(what(e) == "SSL handshake is taking longer than 0.2 seconds: aborting the connection");
  CHECK(plain->is_closing());
  stream_test::run_iterations(loop, 3);
  // As asyncio: the handshake never completed, so the protocol is not told.
  CHECK_FALSE(client->lost);
  server->close();
  loop.close();
}

TEST_CASE("TLS over Unix sockets", "[tls]") {
  EventLoop loop;
  Certs certs;
  test_support::TempDir dir;
  const std::string path = dir.file("tls.sock");
  std::vector<std::shared_ptr<EchoServer>> peers;
  asyncuv::UnixServerOptions server_options;
  server_options.ssl = server_context(certs.server);
  auto server = run_task(loop, loop.create_unix_server(
                                   [&peers] {
                                     peers.push_back(std::make_shared<EchoServer>());
                                     return peers.back();
                                   },
                                   path, std::move(server_options)));

  asyncuv::UnixConnectionOptions missing;
  missing.ssl = client_context(certs.ca);
  std::exception_ptr e =
      failure_of(loop, loop.create_unix_connection([] { return std::make_shared<Recorder>(); },
                                                   path, std::move(missing)));
  CHECK(what(e) == "you have to pass server_hostname when using ssl");

  asyncuv::UnixConnectionOptions options;
  options.ssl = client_context(certs.ca);
  options.server_hostname = "localhost";
  auto [transport, client_] =
      run_task(loop, loop.create_unix_connection([] { return std::make_shared<Recorder>(); }, path,
                                                 std::move(options)));
  auto& client = client_;  // a named reference: clang 14 cannot capture a binding
  const std::string data = stream_test::pattern(1024 * 1024, 9);
  transport->write(data);
  run_until(loop, [&] { return client->received.size() == data.size(); });
  CHECK(client->received == data);
  REQUIRE(peers.size() == 1);
  CHECK(peers[0]->sni == std::optional<std::string>("localhost"));
  transport->close();
  run_until(loop, [&] { return client->lost && peers[0]->lost; });
  server->close();
  loop.close();
}

namespace {

asyncuv::Task<void> accepted_pair(EventLoop* loop, std::shared_ptr<ssl::Context> server_ctx,
                                  std::shared_ptr<ssl::Context> client_ctx,
                                  std::shared_ptr<EchoServer> echo, std::string* answer) {
  auto [a, b] = asyncuv::Socket::socketpair(AF_UNIX, SOCK_STREAM);
  asyncuv::AcceptedSocketOptions accepted;
  accepted.ssl = std::move(server_ctx);
  accepted.ssl_handshake_timeout = 10.0;
  auto echo_factory = [echo] { return echo; };
  auto serving =
      loop->create_task(loop->connect_accepted_socket(echo_factory, std::move(a), accepted));
  asyncuv::ConnectionOptions options;
  options.ssl = std::move(client_ctx);
  options.sock = std::move(b);
  options.server_hostname = "localhost";
  auto recorder_factory = [] { return std::make_shared<Recorder>(); };
  auto connecting = loop->create_connection(recorder_factory, std::move(options));
  auto [transport, client] = co_await std::move(connecting);
  auto served = co_await serving;
  transport->write("via an accepted socket");
  while (client->received.size() < 22)
    co_await asyncuv::sleep(0.002);
  *answer = client->received;
  transport->close();
  served.first->close();
}

}  // namespace

TEST_CASE("TLS: connect_accepted_socket with ssl is the server side", "[tls]") {
  EventLoop loop;
  Certs certs;
  auto echo = std::make_shared<EchoServer>();
  std::string answer;
  run_task(loop, accepted_pair(&loop, server_context(certs.server), client_context(certs.ca), echo,
                               &answer));
  CHECK(answer == "via an accepted socket");
  CHECK(echo->made);

  asyncuv::AcceptedSocketOptions plain;
  plain.ssl_shutdown_timeout = 1.0;
  auto [a, b] = asyncuv::Socket::socketpair(AF_UNIX, SOCK_STREAM);
  std::exception_ptr e =
      failure_of(loop, loop.connect_accepted_socket([] { return std::make_shared<Recorder>(); },
                                                    std::move(a), plain));
  CHECK(what(e) == "ssl_shutdown_timeout is only meaningful with ssl");
  loop.close();
}

namespace {

asyncuv::Task<void> stream_echo(asyncuv::StreamReader reader, asyncuv::StreamWriter writer) {
  std::string line = co_await reader.readline();
  writer.write("echo: " + line);
  co_await writer.drain();
  writer.close();
  co_await writer.wait_closed();
}

asyncuv::Task<std::string> stream_client(std::uint16_t port, std::shared_ptr<ssl::Context> ctx,
                                         bool* can_write_eof) {
  asyncuv::ConnectionOptions options;
  options.ssl = std::move(ctx);
  options.server_hostname = "localhost";
  auto [reader, writer] = co_await asyncuv::open_connection("127.0.0.1", port, std::move(options));
  *can_write_eof = writer.can_write_eof();
  writer.write("hello streams\n");
  std::string line = co_await reader.readline();
  std::string rest = co_await reader.read();  // the server closes: EOF
  writer.close();
  co_await writer.wait_closed();
  co_return line + rest;
}

asyncuv::Task<std::string> streams_over_tls(std::shared_ptr<ssl::Context> server_ctx,
                                            std::shared_ptr<ssl::Context> client_ctx,
                                            bool* can_write_eof) {
  asyncuv::ServerOptions options;
  options.ssl = std::move(server_ctx);
  auto server = co_await asyncuv::start_server(stream_echo, "127.0.0.1", 0, std::move(options));
  const std::uint16_t port = server->sockets().at(0).getsockname().port();
  std::string answer = co_await stream_client(port, std::move(client_ctx), can_write_eof);
  server->close();
  co_await server->wait_closed();
  co_return answer;
}

}  // namespace

TEST_CASE("TLS: open_connection and start_server with ssl", "[tls]") {
  EventLoop loop;
  Certs certs;
  bool can_write_eof = true;
  std::string answer = run_task(loop, streams_over_tls(server_context(certs.server),
                                                       client_context(certs.ca), &can_write_eof));
  CHECK(answer == "echo: hello streams\n");
  CHECK_FALSE(can_write_eof);
  loop.close();
}
