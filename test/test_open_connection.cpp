// asyncio's open_connection / start_server and their Unix variants, end to end over
// loopback TCP and Unix sockets.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "byte_compare.hpp"
#include "log_capture.hpp"
#include "streams_test_support.hpp"
#include "temp_dir.hpp"

using namespace streams_test;
using asyncuv::Server;
using asyncuv::ServerOptions;
using stream_test::holds;
using stream_test::pattern;

using test_support::TempDir;

namespace {

/// The port a TCP server listens on.
std::uint16_t port_of(const std::shared_ptr<Server>& server) {
  return server->sockets().at(0).getsockname().port();
}

/// The server side of the echo tests: echoes every line until EOF, then closes.
Task<void> echo_lines(StreamReader reader, StreamWriter writer) {
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty()) break;
    writer.write(line);
    co_await writer.drain();
  }
  writer.close();
  co_await writer.wait_closed();
}

/// A client of echo_lines: sends `count` numbered lines tagged `tag`, checks each answer.
Task<int> echo_client(std::uint16_t port, std::string tag, int count) {
  auto opening = asyncuv::open_connection("127.0.0.1", port);
  auto [reader, writer] = co_await std::move(opening);
  int answered = 0;
  for (int i = 0; i < count; ++i) {
    std::string line = tag + " line " + std::to_string(i) + "\n";
    writer.write(line);
    co_await writer.drain();
    std::string answer = co_await reader.readline();
    if (answer == line) ++answered;
  }
  writer.close();
  co_await writer.wait_closed();
  co_return answered;
}

/// Closes `server` and waits until every connection it accepted is gone.
Task<void> shut(std::shared_ptr<Server> server) {
  server->close();
  co_await server->wait_closed();
}

}  // namespace

TEST_CASE("streams: open_connection and start_server: echo with readline, write, drain",
          "[streams]") {
  EventLoop loop;
  auto starting = asyncuv::start_server(echo_lines, "127.0.0.1", 0);
  std::shared_ptr<Server> server = run(loop, std::move(starting));
  REQUIRE(server->is_serving());
  CHECK(run(loop, echo_client(port_of(server), "solo", 20)) == 20);
  run(loop, shut(server));
}

TEST_CASE("streams: several clients at once", "[streams]") {
  EventLoop loop;
  auto server = run(loop, asyncuv::start_server(echo_lines, "127.0.0.1", 0));
  std::uint16_t port = port_of(server);
  std::vector<Task<int>> clients;
  for (int i = 0; i < 8; ++i)
    clients.push_back(loop.create_task(echo_client(port, "client" + std::to_string(i), 25)));
  for (auto& client : clients)
    CHECK(run(loop, client) == 25);
  run(loop, shut(server));
}

TEST_CASE("streams: megabytes through open_connection and start_server, every byte checked",
          "[streams]") {
  EventLoop loop;
  // The server reads everything (read(-1)), then sends it back reversed and closes.
  auto handler = [](StreamReader reader, StreamWriter writer) -> Task<void> {
    std::string all = co_await reader.read();
    std::string reply(all.rbegin(), all.rend());
    writer.write(reply);
    co_await writer.drain();
    writer.close();
    co_await writer.wait_closed();
  };
  auto server = run(loop, asyncuv::start_server(handler, "127.0.0.1", 0));
  const std::string data = pattern(6 * 1024 * 1024 + 3, 21);
  auto client = [](std::uint16_t port, std::string data) -> Task<std::string> {
    auto opening = asyncuv::open_connection("127.0.0.1", port);
    auto [reader, writer] = co_await std::move(opening);
    for (std::size_t at = 0; at < data.size(); at += 1 << 20) {
      writer.write(std::string_view(data).substr(at, 1 << 20));
      co_await writer.drain();
    }
    writer.write_eof();
    std::string reply = co_await reader.readexactly(static_cast<std::ptrdiff_t>(data.size()));
    std::string rest = co_await reader.read();
    writer.close();
    co_await writer.wait_closed();
    co_return reply + rest;
  };
  std::string reply = run(loop, client(port_of(server), data));
  REQUIRE(reply.size() == data.size());
  CHECK(test_support::byte_difference(reply, std::string(data.rbegin(), data.rend())) == "");
  run(loop, shut(server));
}

TEST_CASE("streams: start_server with a plain callback and a custom limit", "[streams]") {
  EventLoop loop;
  std::vector<StreamPair> accepted;
  auto on_client = [&accepted](StreamReader reader, StreamWriter writer) {
    accepted.emplace_back(reader, writer);
  };
  auto server = run(loop, asyncuv::start_server(on_client, "127.0.0.1", 0, {}, 10));
  auto opening = asyncuv::open_connection("127.0.0.1", port_of(server), {}, 5);
  auto [reader, writer] = run(loop, std::move(opening));
  CHECK(reader.limit() == 5);
  stream_test::run_until(loop, [&] { return !accepted.empty(); });
  StreamReader server_reader = accepted[0].first;
  StreamWriter server_writer = accepted[0].second;
  CHECK(server_reader.limit() == 10);
  // The peer addresses match.
  auto client_local = writer.get_extra_info<asyncuv::SockAddr>("sockname");
  auto server_peer = server_writer.get_extra_info<asyncuv::SockAddr>("peername");
  REQUIRE(client_local.has_value());
  REQUIRE(server_peer.has_value());
  CHECK(client_local->port() == server_peer->port());
  writer.write("0123456789ab\n");
  CHECK_THROWS_AS(run(loop, server_reader.readline()), asyncuv::ValueError);  // > limit 10
  server_writer.write("short\n");
  CHECK(run(loop, reader.readline()) == "short\n");
  writer.close();
  run(loop, writer.wait_closed());
  CHECK(run(loop, server_reader.read()) == "");
  server_writer.close();
  accepted.clear();
  run(loop, shut(server));
}

TEST_CASE("streams: an exception from a client_connected_cb coroutine goes to the handler",
          "[streams]") {
  EventLoop loop;
  stream_test::HandlerLog handler;
  handler.install(loop);
  auto failing = [](StreamReader reader, StreamWriter) -> Task<void> {
    std::string line = co_await reader.readline();
    throw asyncuv::RuntimeError("bad request: " + line);
  };
  auto server = run(loop, asyncuv::start_server(failing, "127.0.0.1", 0));
  auto [reader, writer] = run(loop, asyncuv::open_connection("127.0.0.1", port_of(server)));
  writer.write("hello\n");
  CHECK(run(loop, reader.read()) == "");  // the server closed the connection
  REQUIRE(handler.contexts.size() == 1);
  CHECK(handler.contexts[0].message() == "Unhandled exception in client_connected_cb");
  CHECK(stream_test::what(handler.contexts[0].exception()) == "bad request: hello\n");
  CHECK(handler.contexts[0].transport<asyncuv::Transport>() != nullptr);
  writer.close();
  run(loop, writer.wait_closed());
  run(loop, shut(server));
}

TEST_CASE("streams: open_connection errors propagate", "[streams]") {
  EventLoop loop;
  // A port nothing listens on: bound, never listening.
  Socket placeholder(AF_INET, SOCK_STREAM);
  placeholder.bind(asyncuv::SockAddr::ipv4("127.0.0.1", 0));
  std::uint16_t port = placeholder.getsockname().port();
  std::exception_ptr e = failure_of(loop, asyncuv::open_connection("127.0.0.1", port));
  CHECK(holds<asyncuv::ConnectionRefusedError>(e));
  // Argument errors are create_connection's.
  asyncuv::ConnectionOptions both;
  both.sock = std::move(placeholder);
  e = failure_of(loop, asyncuv::open_connection("127.0.0.1", port, std::move(both)));
  CHECK(holds<asyncuv::ValueError>(e));
}

TEST_CASE("streams: open_connection over an already connected socket", "[streams]") {
  EventLoop loop;
  auto [mine, peer] = stream_test::tcp_pair();
  asyncuv::ConnectionOptions options;
  options.sock = std::move(mine);
  auto [reader, writer] = run(loop, asyncuv::open_connection(std::move(options)));
  REQUIRE(::write(peer.fileno(), "via sock\n", 9) == 9);
  CHECK(run(loop, reader.readline()) == "via sock\n");
  writer.close();
  run(loop, writer.wait_closed());
}

TEST_CASE("streams: open_unix_connection and start_unix_server on a temporary path", "[streams]") {
  EventLoop loop;
  TempDir dir;
  std::string path = dir.path + "/echo.sock";
  auto server = run(loop, asyncuv::start_unix_server(echo_lines, path));
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  auto client = [](std::string path) -> Task<std::string> {
    auto opening = asyncuv::open_unix_connection(path);
    auto [reader, writer] = co_await std::move(opening);
    writer.writelines({"one\n", "two\n"});
    co_await writer.drain();
    std::string first = co_await reader.readline();
    std::string second = co_await reader.readline();
    writer.write_eof();
    std::string rest = co_await reader.read();  // the server closes after our EOF
    writer.close();
    co_await writer.wait_closed();
    co_return first + second + "|" + rest;
  };
  CHECK(run(loop, client(path)) == "one\ntwo\n|");
  run(loop, shut(server));
  CHECK(::stat(path.c_str(), &st) != 0);  // cleanup_socket removed the file

  // The sock= forms.
  auto [a, b] = Socket::socketpair();
  asyncuv::UnixConnectionOptions options;
  options.sock = std::move(a);
  auto [reader, writer] = run(loop, asyncuv::open_unix_connection(std::move(options)));
  REQUIRE(::write(b.fileno(), "pair\n", 5) == 5);
  CHECK(run(loop, reader.readline()) == "pair\n");
  writer.close();
  run(loop, writer.wait_closed());
}

TEST_CASE("streams: start_server and start_unix_server over a given socket", "[streams]") {
  EventLoop loop;
  Socket listening(AF_INET, SOCK_STREAM);
  listening.bind(asyncuv::SockAddr::ipv4("127.0.0.1", 0));
  std::uint16_t port = listening.getsockname().port();
  ServerOptions options;
  options.sock = std::move(listening);
  auto server = run(loop, asyncuv::start_server(echo_lines, std::move(options)));
  CHECK(run(loop, echo_client(port, "sock", 3)) == 3);
  run(loop, shut(server));

  TempDir dir;
  std::string path = dir.path + "/s.sock";
  Socket unix_sock(AF_UNIX, SOCK_STREAM);
  unix_sock.bind(asyncuv::SockAddr::unix_path(path));
  asyncuv::UnixServerOptions unix_options;
  unix_options.sock = std::move(unix_sock);
  auto unix_server = run(loop, asyncuv::start_unix_server(echo_lines, std::move(unix_options)));
  auto client = [](std::string path) -> Task<std::string> {
    auto opening = asyncuv::open_unix_connection(path);
    auto [reader, writer] = co_await std::move(opening);
    writer.write("ping\n");
    std::string answer = co_await reader.readline();
    writer.close();
    co_await writer.wait_closed();
    co_return answer;
  };
  CHECK(run(loop, client(path)) == "ping\n");
  run(loop, shut(unix_server));
}

TEST_CASE("streams: loop.close() with open_connection streams still open", "[streams]") {
  test_support::LogCapture logs;
  std::optional<StreamPair> kept;
  {
    EventLoop loop;
    std::vector<StreamPair> accepted;
    auto on_client = [&accepted](StreamReader reader, StreamWriter writer) {
      accepted.emplace_back(reader, writer);
    };
    auto server = run(loop, asyncuv::start_server(on_client, "127.0.0.1", 0));
    kept = run(loop, asyncuv::open_connection("127.0.0.1", port_of(server)));
    stream_test::run_until(loop, [&] { return !accepted.empty(); });
    auto reading = loop.create_task(kept->first.readline());
    stream_test::run_iterations(loop, 2);
    loop.close();
    CHECK(kept->second.is_closing());
    CHECK(accepted[0].second.is_closing());
    CHECK_FALSE(server->is_serving());
  }
  kept.reset();
}
