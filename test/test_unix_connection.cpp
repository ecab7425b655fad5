// loop.create_unix_connection(): connecting to Unix stream sockets (paths and Linux's abstract
// namespace), the sock= form, argument errors and connect failures.
#include "connect_test_support.hpp"
#include "temp_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

using namespace connect_test;
using asyncuv::Transport;
using asyncuv::UnixConnectionOptions;
using stream_test::Recorder;
using stream_test::run_until;

using test_support::TempDir;

namespace {

using Made = std::pair<std::shared_ptr<Transport>, std::shared_ptr<Recorder>>;

/// A listening Unix stream socket at `path`.
Socket unix_listener(const std::string& path) {
  Socket sock(AF_UNIX, SOCK_STREAM);
  sock.bind(SockAddr::unix_path(path));
  sock.listen(10);
  return sock;
}

/// Connects with create_unix_connection to `server` (listening at `path`), then checks data
/// both ways and closes.
void check_connection(EventLoop& loop, Socket& server, const std::string& path) {
  Made made;
  std::optional<Socket> accepted;
  bool made_before_return = false;
  auto body = [&]() -> Task<void> {
    auto accepting = loop.sock_accept(server);
    made = co_await loop.create_unix_connection(recorder_factory(), path);
    made_before_return = made.second->made;
    auto result = co_await accepting;
    accepted.emplace(std::move(result.first));
  };
  run_task(loop, body());
  CHECK(made_before_return);
  auto peername = made.first->get_extra_info<SockAddr>("peername");
  REQUIRE(peername);
  CHECK(peername->family() == AF_UNIX);
  CHECK(peername->host() == path);

  made.first->write("to server");
  std::string got;
  run_until(loop, [&] {
    stream_test::drain_fd(accepted->fileno(), got);
    return got == "to server";
  });
  REQUIRE(::write(accepted->fileno(), "to client", 9) == 9);
  run_until(loop, [&] { return made.second->received == "to client"; });
  made.first->close();
  run_until(loop, [&] { return made.second->lost; });
  CHECK(made.second->events == std::vector<std::string>{"made", "data", "lost"});
}

}  // namespace

TEST_CASE("create_unix_connection connects to a socket path", "[connect][unix]") {
  EventLoop loop;
  TempDir dir;
  Socket server = unix_listener(dir.file("sock"));
  check_connection(loop, server, dir.file("sock"));
}

TEST_CASE("create_unix_connection connects to an abstract socket", "[connect][unix]") {
  EventLoop loop;
  const std::string path = std::string(1, '\0') + "asyncuv-test-" + std::to_string(::getpid());
  Socket server = unix_listener(path);
  check_connection(loop, server, path);
}

TEST_CASE("create_unix_connection over sock= takes the connected socket", "[connect][unix]") {
  EventLoop loop;
  auto [mine, peer] = Socket::socketpair(AF_UNIX, SOCK_STREAM);
  const int fd = mine.fileno();
  UnixConnectionOptions options;
  options.sock = std::move(mine);
  Made made = run_task(loop, loop.create_unix_connection(recorder_factory(), std::move(options)));
  CHECK(made.second->made);
  CHECK(std::any_cast<int>(made.first->get_extra_info("socket")) == fd);
  REQUIRE(::write(peer.fileno(), "hi", 2) == 2);
  run_until(loop, [&] { return made.second->received == "hi"; });
  made.first->close();
  run_until(loop, [&] { return made.second->lost; });
}

TEST_CASE("create_unix_connection argument errors", "[connect][unix]") {
  EventLoop loop;
  const int fds_before = count_fds();
  auto fails_with = [&](Task<Made> coro, const std::string& message) {
    std::exception_ptr error = failure_of(loop, std::move(coro));
    REQUIRE(stream_test::holds<asyncuv::ValueError>(error));
    CHECK(stream_test::what(error) == message);
  };
  SECTION("path and sock together") {
    UnixConnectionOptions options;
    options.sock = Socket(AF_UNIX, SOCK_STREAM);
    fails_with(loop.create_unix_connection(recorder_factory(), "/nonexistent", std::move(options)),
               "path and sock can not be specified at the same time");
  }
  SECTION("neither path nor sock") {
    fails_with(loop.create_unix_connection(recorder_factory(), UnixConnectionOptions{}),
               "no path and sock were specified");
  }
  SECTION("a sock that is not AF_UNIX / SOCK_STREAM") {
    for (auto [family, type] : {std::pair{AF_INET, SOCK_STREAM}, std::pair{AF_UNIX, SOCK_DGRAM}}) {
      Socket wrong(family, type);
      const std::string expected = "A UNIX Domain Stream Socket was expected, got " +
                                   asyncuv::detail::describe_socket(wrong);
      UnixConnectionOptions options;
      options.sock = std::move(wrong);
      fails_with(loop.create_unix_connection(recorder_factory(), std::move(options)), expected);
    }
  }
  SECTION("TLS arguments without ssl, ssl without server_hostname") {
    UnixConnectionOptions hostname;
    hostname.server_hostname = "example.com";
    fails_with(loop.create_unix_connection(recorder_factory(), "/nonexistent", std::move(hostname)),
               "server_hostname is only meaningful with ssl");
    UnixConnectionOptions handshake;
    handshake.ssl_handshake_timeout = 1.0;
    fails_with(
        loop.create_unix_connection(recorder_factory(), "/nonexistent", std::move(handshake)),
        "ssl_handshake_timeout is only meaningful with ssl");
    UnixConnectionOptions shutdown;
    shutdown.ssl_shutdown_timeout = 1.0;
    fails_with(loop.create_unix_connection(recorder_factory(), "/nonexistent", std::move(shutdown)),
               "ssl_shutdown_timeout is only meaningful with ssl");
    UnixConnectionOptions tls;
    tls.ssl = ssl_for_checks();
    fails_with(loop.create_unix_connection(recorder_factory(), "/nonexistent", std::move(tls)),
               "you have to pass server_hostname when using ssl");
  }
  CHECK(count_fds() == fds_before);
}

TEST_CASE("create_unix_connection to a missing or dead socket fails as the OS says",
          "[connect][unix]") {
  EventLoop loop;
  TempDir dir;
  const int fds_before = count_fds();
  auto error = failure_of(loop, loop.create_unix_connection(recorder_factory(), dir.file("sock")));
  REQUIRE(stream_test::holds<asyncuv::FileNotFoundError>(error));
  CHECK(stream_test::what(error) == "[Errno 2] No such file or directory");
  CHECK(count_fds() == fds_before);

  {
    // A socket file nobody listens on any more.
    Socket gone(AF_UNIX, SOCK_STREAM);
    gone.bind(SockAddr::unix_path(dir.file("sock")));
  }
  error = failure_of(loop, loop.create_unix_connection(recorder_factory(), dir.file("sock")));
  REQUIRE(stream_test::holds<asyncuv::ConnectionRefusedError>(error));
  CHECK(stream_test::what(error) == "[Errno 111] Connection refused");
  CHECK(count_fds() == fds_before);
}
