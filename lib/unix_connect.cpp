// create_unix_connection's core (asyncio unix_events.create_unix_connection): argument checks
// and the connect to a Unix stream socket path.
#include <sys/socket.h>

#include <string>
#include <utility>

#include "asyncuv/detail/connect.hpp"
#include "asyncuv/detail/ssl_protocol.hpp"
#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/sock_ops.hpp"

namespace asyncuv::detail {

Task<Socket> open_unix_connection_socket(EventLoop& loop, std::optional<std::string> path,
                                         UnixConnectionOptions options) {
  if (options.ssl) {
    if (!options.server_hostname) {
      throw ValueError("you have to pass server_hostname when using ssl");
    }
    check_tls_timeouts(options.ssl_handshake_timeout, options.ssl_shutdown_timeout);
  } else {
    if (options.server_hostname) throw ValueError("server_hostname is only meaningful with ssl");
    if (options.ssl_handshake_timeout) {
      throw ValueError("ssl_handshake_timeout is only meaningful with ssl");
    }
    if (options.ssl_shutdown_timeout) {
      throw ValueError("ssl_shutdown_timeout is only meaningful with ssl");
    }
  }

  if (path) {
    if (options.sock) throw ValueError("path and sock can not be specified at the same time");
    const SockAddr address = SockAddr::unix_path(*path);
    Socket sock(AF_UNIX, SOCK_STREAM, 0);
    co_await loop.sock_connect(sock, address);  // on failure the socket closes on the way out
    co_return std::move(sock);
  }
  if (!options.sock) throw ValueError("no path and sock were specified");
  if (options.sock->family() != AF_UNIX || options.sock->type() != SOCK_STREAM) {
    throw ValueError("A UNIX Domain Stream Socket was expected, got " +
                     describe_socket(*options.sock));
  }
  Socket sock = std::move(*options.sock);
  sock.setblocking(false);
  co_return std::move(sock);
}

}  // namespace asyncuv::detail
