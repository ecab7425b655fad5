// loop.create_unix_server() (asyncio unix_events.create_unix_server, CPython 3.13): binding the
// socket file (a stale socket file is removed first), and what cleanup_socket needs to unlink
// it when the server closes.
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exception_context.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/server.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/tasks.hpp"
#include "server_internal.hpp"

namespace asyncuv::detail {

namespace {

bool is_abstract(const std::string& path) {
  return !path.empty() && path.front() == '\0';
}

/// asyncio: a socket file left at `path` by an earlier server is removed; a missing file is
/// fine, other errors are logged (the directory may only allow creating the socket).
void remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return;  // bind() will report EADDRINUSE
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) return;
  } else if (errno == ENOENT) {
    return;
  }
  logger()->error("Unable to check or remove stale UNIX socket {}: {}", py_str_repr(path),
                  describe_exception(make_os_error(errno)));
}

/// A new AF_UNIX stream socket bound to `path`.
Socket bind_path(const std::string& path) {
  SockAddr address = SockAddr::unix_path(path);  // ValueError when too long
  Socket sock(AF_UNIX, SOCK_STREAM);
  if (!is_abstract(path)) remove_stale_socket(path);
  try {
    sock.bind(address);
  } catch (const OSError& e) {
    if (e.errnum() == EADDRINUSE) {
      // asyncio improves the message with the address.
      throw OSError(EADDRINUSE, "Address " + py_str_repr(path) + " is already in use");
    }
    throw;
  }
  return sock;
}

/// cleanup_socket: remembers the socket file `sock` is bound to (not for abstract or unnamed
/// sockets), so that close() unlinks it only if it is still that file.
void remember_socket_file(const Socket& sock, ServerSetup& setup) {
  std::string path = sock.getsockname().host();
  if (path.empty() || is_abstract(path)) return;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw_os_error(errno);
  }
  setup.cleanup_path = std::move(path);
  setup.cleanup_dev = static_cast<unsigned long long>(st.st_dev);
  setup.cleanup_ino = static_cast<unsigned long long>(st.st_ino);
}

}  // namespace

Task<std::shared_ptr<Server>> open_unix_server(EventLoop* loop, ProtocolFactory factory,
                                               std::optional<std::string> path,
                                               UnixServerOptions options) {
  check_ssl_timeouts(options.ssl != nullptr, options.ssl_handshake_timeout,
                     options.ssl_shutdown_timeout);
  std::optional<Socket> sock;
  if (path) {
    if (options.sock) throw ValueError("path and sock can not be specified at the same time");
    sock.emplace(bind_path(*path));
  } else {
    if (!options.sock) throw ValueError("path was not specified, and no sock specified");
    if (options.sock->family() != AF_UNIX || options.sock->type() != SOCK_STREAM) {
      throw ValueError("A UNIX Domain Stream Socket was expected, got " +
                       describe_socket(*options.sock));
    }
    sock.emplace(std::move(*options.sock));
  }

  ServerSetup setup;
  setup.protocol_factory = std::move(factory);
  setup.backlog = options.backlog;
  setup.start_serving = options.start_serving;
  setup.ssl = std::move(options.ssl);
  setup.ssl_handshake_timeout = options.ssl_handshake_timeout;
  setup.ssl_shutdown_timeout = options.ssl_shutdown_timeout;
  if (options.cleanup_socket) remember_socket_file(*sock, setup);
  sock->setblocking(false);

  std::vector<Socket> sockets;
  sockets.push_back(std::move(*sock));
  std::shared_ptr<Server> server = make_server(*loop, std::move(sockets), std::move(setup));
  if (options.start_serving) {
    co_await sleep(0);  // as asyncio: one iteration, so that the watcher is in place
  }
  co_return server;
}

}  // namespace asyncuv::detail
