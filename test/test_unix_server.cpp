// loop.create_unix_server(): socket files (stale ones removed, cleanup_socket), abstract
// names, the sock= form, argument errors and loop.close().
#include "server_test_support.hpp"
#include "temp_dir.hpp"

#include <sys/un.h>

#include <cstdlib>

using namespace server_test;
using asyncuv::UnixServerOptions;
using Catch::Matchers::Message;

using test_support::TempDir;

namespace {

enum class Kind { missing, socket, other };

Kind file_kind(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Kind::missing;
  return S_ISSOCK(st.st_mode) ? Kind::socket : Kind::other;
}

/// A unique abstract socket name ('\0' first).
std::string abstract_name() {
  static int counter = 0;
  return std::string(1, '\0') + "asyncuv-test-" + std::to_string(::getpid()) + "-" +
         std::to_string(++counter);
}

/// Connects to the server, exchanges one message with the Recorder it got, closes.
void exchange(EventLoop& loop, Recorders& r, const SockAddr& address) {
  Socket client = connect_to(address);
  std::size_t index = r.made.size();
  run_until(loop, [&] { return r.made.size() == index + 1 && r.made[index]->made; });
  auto proto = r.made[index];
  REQUIRE(::write(client.fileno(), "hi", 2) == 2);
  run_until(loop, [&] { return proto->received == "hi"; });
  proto->transport->write("there");
  std::string got;
  read_while_running(loop, client.fileno(), got, 5);
  CHECK(got == "there");
  client.close();
  run_until(loop, [&] { return proto->lost; });
}

}  // namespace

TEST_CASE("create_unix_server on a path: serves, and close() removes the socket file", "[server]") {
  TempDir dir;
  const std::string path = dir.file("s.sock");
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_unix_server(r.factory(), path));
  REQUIRE(server->sockets().size() == 1);
  const asyncuv::TransportSocket sock = server->sockets()[0];
  CHECK(sock.family() == AF_UNIX);
  CHECK(sock.type() == SOCK_STREAM);
  CHECK(sock.getsockname().host() == path);
  CHECK(server->is_serving());
  CHECK(file_kind(path) == Kind::socket);
  CHECK(server->repr() == "<Server sockets=(<Socket fd=" + std::to_string(sock.fileno()) +
                              " family=1 type=1 proto=0 laddr=" + path + ">,)>");
  exchange(loop, r, SockAddr::unix_path(path));
  server->close();
  CHECK(file_kind(path) == Kind::missing);
  run_task(loop, server->wait_closed());
}

TEST_CASE("create_unix_server with cleanup_socket=false leaves the file", "[server]") {
  TempDir dir;
  const std::string path = dir.file("keep.sock");
  Recorders r;
  EventLoop loop;
  UnixServerOptions options;
  options.cleanup_socket = false;
  auto server = run_task(loop, loop.create_unix_server(r.factory(), path, std::move(options)));
  server->close();
  CHECK(file_kind(path) == Kind::socket);
  CHECK(connect_error(SockAddr::unix_path(path)) == ECONNREFUSED);
}

TEST_CASE("create_unix_server removes a stale socket file first", "[server]") {
  TempDir dir;
  const std::string path = dir.file("stale.sock");
  {
    Socket old(AF_UNIX, SOCK_STREAM);
    old.bind(SockAddr::unix_path(path));
  }  // closed: the file stays behind
  REQUIRE(file_kind(path) == Kind::socket);
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_unix_server(r.factory(), path));
  exchange(loop, r, SockAddr::unix_path(path));
  server->close();
  CHECK(file_kind(path) == Kind::missing);
}

TEST_CASE("create_unix_server on a file that is not a socket: OSError(EADDRINUSE)", "[server]") {
  TempDir dir;
  const std::string path = dir.file("plain'file");
  {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
  }
  Recorders r;
  EventLoop loop;
  const int before = open_fd_count();
  try {
    (void)run_task(loop, loop.create_unix_server(r.factory(), path));
    FAIL("bound over a regular file");
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EADDRINUSE);
    // Python's repr of a str holding a single quote uses double quotes.
    CHECK(e.strerror() == "Address \"" + path + "\" is already in use");
  }
  CHECK(open_fd_count() == before);
  CHECK(file_kind(path) == Kind::other);  // not removed
}

TEST_CASE("create_unix_server on an abstract name", "[server]") {
  const std::string name = abstract_name();
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_unix_server(r.factory(), name));
  REQUIRE(server->sockets().size() == 1);
  CHECK(server->sockets()[0].getsockname().host() == name);
  exchange(loop, r, SockAddr::unix_path(name));
  server->close();
  CHECK(connect_error(SockAddr::unix_path(name)) == ECONNREFUSED);
  run_task(loop, server->wait_closed());
}

TEST_CASE("create_unix_server over a bound socket (sock=), cleaned up on close", "[server]") {
  TempDir dir;
  const std::string path = dir.file("given.sock");
  Socket sock(AF_UNIX, SOCK_STREAM);
  sock.bind(SockAddr::unix_path(path));
  const int fd = sock.fileno();
  Recorders r;
  EventLoop loop;
  UnixServerOptions options;
  options.sock = std::move(sock);
  auto server = run_task(loop, loop.create_unix_server(r.factory(), std::move(options)));
  REQUIRE(server->sockets().size() == 1);
  CHECK(server->sockets()[0].fileno() == fd);
  exchange(loop, r, SockAddr::unix_path(path));
  server->close();
  CHECK(file_kind(path) == Kind::missing);
}

TEST_CASE("close() leaves a file that replaced the server's socket file", "[server]") {
  TempDir dir;
  const std::string path = dir.file("replaced.sock");
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_unix_server(r.factory(), path));
  REQUIRE(::unlink(path.c_str()) == 0);
  {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
  }
  server->close();
  CHECK(file_kind(path) == Kind::other);
}

TEST_CASE("create_unix_server argument errors", "[server]") {
  Recorders r;
  EventLoop loop;
  UnixServerOptions options;
  SECTION("neither path nor sock") {
    REQUIRE_THROWS_MATCHES(run_task(loop, loop.create_unix_server(r.factory(), std::move(options))),
                           asyncuv::ValueError,
                           Message("path was not specified, and no sock specified"));
  }
  SECTION("path and sock") {
    options.sock = Socket(AF_UNIX, SOCK_STREAM);
    REQUIRE_THROWS_MATCHES(
        run_task(loop, loop.create_unix_server(r.factory(), abstract_name(), std::move(options))),
        asyncuv::ValueError, Message("path and sock can not be specified at the same time"));
  }
  SECTION("a socket that is not an AF_UNIX stream socket") {
    Socket tcp(AF_INET, SOCK_STREAM);
    std::string expected =
        "A UNIX Domain Stream Socket was expected, got <Socket fd=" + std::to_string(tcp.fileno()) +
        " family=2 type=1 proto=6>";
    options.sock = std::move(tcp);
    REQUIRE_THROWS_MATCHES(run_task(loop, loop.create_unix_server(r.factory(), std::move(options))),
                           asyncuv::ValueError, Message(expected));
  }
  SECTION("ssl_handshake_timeout without ssl") {
    options.ssl_handshake_timeout = 5.0;
    REQUIRE_THROWS_MATCHES(
        run_task(loop, loop.create_unix_server(r.factory(), abstract_name(), std::move(options))),
        asyncuv::ValueError, Message("ssl_handshake_timeout is only meaningful with ssl"));
  }
  SECTION("ssl_shutdown_timeout without ssl") {
    options.ssl_shutdown_timeout = 5.0;
    REQUIRE_THROWS_MATCHES(
        run_task(loop, loop.create_unix_server(r.factory(), abstract_name(), std::move(options))),
        asyncuv::ValueError, Message("ssl_shutdown_timeout is only meaningful with ssl"));
  }
  SECTION("a directory that does not exist") {
    REQUIRE_THROWS_AS(
        run_task(loop, loop.create_unix_server(r.factory(), "/nonexistent-asyncuv-dir/s.sock")),
        asyncuv::FileNotFoundError);
  }
}

TEST_CASE("closing the loop closes a Unix server and removes its socket file", "[server]") {
  TempDir dir;
  const std::string path = dir.file("loop-close.sock");
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_unix_server(r.factory(), path));
  const int listen_fd = server->sockets()[0].fileno();
  Socket client = connect_to(SockAddr::unix_path(path));
  run_until(loop, [&] { return r.made.size() == 1 && r.made[0]->made; });
  loop.close();
  CHECK_FALSE(fd_open(listen_fd));
  CHECK(file_kind(path) == Kind::missing);
  wait_fd(client.fileno(), POLLIN);
  std::string rest;
  CHECK(drain_fd(client.fileno(), rest));
}
