// loop.create_server(): resolving the hosts, creating, configuring and binding the listening
// sockets (asyncio base_events.create_server), and the helpers for its error messages.
#include <netdb.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "asyncuv/detail/ssl_protocol.hpp"
#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/dns.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/helpers.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/server.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/tasks.hpp"
#include "reuse_port.hpp"
#include "server_internal.hpp"

namespace asyncuv::detail {

// ---- Python-style text ----------------------------------------------------------------------

std::string py_str_repr(std::string_view text) {
  // Python prefers single quotes, and takes double ones when only the single quote occurs.
  const bool has_single = text.find('\'') != std::string_view::npos;
  const bool has_double = text.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    } else {
      out += c;  // UTF-8 bytes are printable characters in Python's str
    }
  }
  out += quote;
  return out;
}

std::string py_address_repr(const SockAddr& address) {
  switch (address.family()) {
    case AF_INET:
      return "(" + py_str_repr(address.host()) + ", " + std::to_string(address.port()) + ")";
    case AF_INET6:
      return "(" + py_str_repr(address.host()) + ", " + std::to_string(address.port()) + ", " +
             std::to_string(address.flowinfo()) + ", " + std::to_string(address.scope_id()) + ")";
    case AF_UNIX:
      return py_str_repr(address.host());
    default:
      return "None";
  }
}

std::string describe_listening_socket(const Socket& sock) {
  std::string text =
      "<Socket fd=" + std::to_string(sock.fileno()) + " family=" + std::to_string(sock.family()) +
      " type=" + std::to_string(sock.type()) + " proto=" + std::to_string(sock.proto());
  if (!sock.closed()) {
    try {
      SockAddr local = sock.getsockname();
      std::string laddr = local.to_string();
      if (!laddr.empty() && laddr.front() == '\0') laddr.front() = '@';  // abstract name
      if (!laddr.empty()) text += " laddr=" + laddr;
    } catch (const OSError&) {
      // No address to show.
    }
  }
  return text + ">";
}

std::exception_ptr os_error_with_message(int errnum, const std::string& message) {
  // The subclasses a bind() can meet; everything else is a plain OSError, as in Python.
  switch (errnum) {
    case EACCES:
    case EPERM:
      return std::make_exception_ptr(PermissionError(errnum, message));
    case ENOENT:
      return std::make_exception_ptr(FileNotFoundError(errnum, message));
    case ENOTDIR:
      return std::make_exception_ptr(NotADirectoryError(errnum, message));
    case EEXIST:
      return std::make_exception_ptr(FileExistsError(errnum, message));
    default:
      return std::make_exception_ptr(OSError(errnum, message));
  }
}

void check_ssl_timeouts(bool has_ssl, const std::optional<Seconds>& handshake_timeout,
                        const std::optional<Seconds>& shutdown_timeout) {
  if (handshake_timeout && !has_ssl) {
    throw ValueError("ssl_handshake_timeout is only meaningful with ssl");
  }
  if (shutdown_timeout && !has_ssl) {
    throw ValueError("ssl_shutdown_timeout is only meaningful with ssl");
  }
  if (has_ssl) check_tls_timeouts(handshake_timeout, shutdown_timeout);
}

namespace {

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

/// Python's repr of the list of addresses: [('127.0.0.1', 80), ('::1', 80, 0, 0)].
std::string address_list_repr(const std::vector<AddrInfo>& infos) {
  std::string out = "[";
  for (std::size_t i = 0; i < infos.size(); ++i) {
    if (i > 0) out += ", ";
    out += py_address_repr(infos[i].address);
  }
  return out + "]";
}

/// Cancels the resolutions already started when starting another one threw.
struct PendingResolutions {
  std::vector<Future<std::vector<AddrInfo>>> futures;
  bool armed = true;
  ~PendingResolutions() {
    if (!armed) return;
    for (auto& f : futures)
      f.cancel();
  }
};

/// asyncio _create_server_getaddrinfo for every host, gathered; duplicates removed, first
/// occurrence kept.
Task<std::vector<AddrInfo>> resolve_hosts(EventLoop* loop, std::vector<std::string> hosts,
                                          std::uint16_t port, int family, int flags) {
  PendingResolutions pending;
  for (const std::string& host : hosts) {
    pending.futures.push_back(loop->getaddrinfo(host, static_cast<int>(port), family, SOCK_STREAM,
                                                0, flags | AI_PASSIVE));
  }
  pending.armed = false;
  std::vector<std::vector<AddrInfo>> results;
  if (!pending.futures.empty()) results = co_await gather(std::move(pending.futures));

  std::vector<AddrInfo> infos;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].empty()) {
      const std::string shown = hosts[i].empty() ? "None" : py_str_repr(hosts[i]);
      throw OSError("getaddrinfo(" + shown + ") returned empty list");
    }
    for (AddrInfo& info : results[i]) {
      if (std::find(infos.begin(), infos.end(), info) == infos.end()) {
        infos.push_back(std::move(info));
      }
    }
  }
  co_return infos;
}

/// Creates, configures and binds one socket per address (asyncio's loop body). On any error
/// the sockets made so far are closed (they are owned by the vector being unwound).
std::vector<Socket> bind_sockets(EventLoop& loop, const std::vector<AddrInfo>& infos,
                                 const ServerOptions& options) {
  const bool reuse_address = options.reuse_address.value_or(true);
  std::vector<Socket> sockets;
  for (const AddrInfo& info : infos) {
    std::optional<Socket> made;
    try {
      made.emplace(info.family, info.type, info.proto);
    } catch (const OSError& e) {
      // A family/type/protocol combination the system does not support: skipped.
      if (loop.get_debug()) {
        logger()->warn("create_server() failed to create socket.socket({}, {}, {}): {}",
                       info.family, info.type, info.proto, e.what());
      }
      continue;
    }
    Socket& sock = *made;
    if (reuse_address) sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    if (options.reuse_port && (info.family == AF_INET || info.family == AF_INET6)) {
      set_reuseport(sock);
    }
    if (options.keep_alive) sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1);
    // No dual stack: an IPv6 socket listens to IPv6 only (an IPv4 socket is made as well).
    if (info.family == AF_INET6) sock.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1);
    if (::bind(sock.fileno(), info.address.get(), info.address.size()) != 0) {
      const int err = errno;
      std::string message = "error while attempting to bind on address " +
                            py_address_repr(info.address) + ": " + lowercase(std::strerror(err));
      if (err == EADDRNOTAVAIL) {
        // The family is not enabled on this host (bpo-30945): skipped.
        if (loop.get_debug()) logger()->warn("{}", message);
        continue;
      }
      std::rethrow_exception(os_error_with_message(err, message));
    }
    sockets.push_back(std::move(sock));
  }
  if (sockets.empty()) {
    throw OSError("could not bind on any address out of " + address_list_repr(infos));
  }
  return sockets;
}

}  // namespace

Task<std::shared_ptr<Server>> open_tcp_server(EventLoop* loop, ProtocolFactory factory,
                                              std::optional<std::vector<std::string>> hosts,
                                              std::uint16_t port, ServerOptions options) {
  check_ssl_timeouts(options.ssl != nullptr, options.ssl_handshake_timeout,
                     options.ssl_shutdown_timeout);
  std::vector<Socket> sockets;
  if (hosts) {
    if (options.sock) throw ValueError("host/port and sock can not be specified at the same time");
    std::vector<AddrInfo> infos =
        co_await resolve_hosts(loop, std::move(*hosts), port, options.family, options.flags);
    sockets = bind_sockets(*loop, infos, options);
  } else {
    if (!options.sock) throw ValueError("Neither host/port nor sock were specified");
    if (options.sock->type() != SOCK_STREAM) {
      throw ValueError("A Stream Socket was expected, got " + describe_socket(*options.sock));
    }
    sockets.push_back(std::move(*options.sock));
  }
  for (Socket& sock : sockets)
    sock.setblocking(false);

  ServerSetup setup;
  setup.protocol_factory = std::move(factory);
  setup.backlog = options.backlog;
  setup.keep_alive = options.keep_alive;
  setup.start_serving = options.start_serving;
  setup.ssl = std::move(options.ssl);
  setup.ssl_handshake_timeout = options.ssl_handshake_timeout;
  setup.ssl_shutdown_timeout = options.ssl_shutdown_timeout;
  std::shared_ptr<Server> server = make_server(*loop, std::move(sockets), std::move(setup));
  if (options.start_serving) {
    co_await sleep(0);  // as asyncio: one iteration, so that the watchers are in place
  }
  if (loop->get_debug()) logger()->info("{} is serving", server->repr());
  co_return server;
}

}  // namespace asyncuv::detail
