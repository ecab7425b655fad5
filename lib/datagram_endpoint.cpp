// create_datagram_endpoint's core (asyncio base_events.create_datagram_endpoint): argument
// checks, resolution of local_addr / remote_addr into (family, proto) pairs, and the attempt
// on each pair. The template in <asyncuv/datagram.hpp> wraps the socket in a transport.
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "asyncuv/datagram.hpp"
#include "asyncuv/detail/datagram_transport.hpp"
#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/dns.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/sock_ops.hpp"
#include "reuse_port.hpp"
#include "stream_transport_internal.hpp"

namespace asyncuv::detail {

namespace {

/// One (family, proto) candidate with its local and remote address (asyncio's addr_pairs_info).
struct AddressPair {
  int family = 0;
  int proto = 0;
  std::optional<SockAddr> local;
  std::optional<SockAddr> remote;
};

std::string host_port_repr(const HostPort& a) {
  return "('" + a.first + "', " + std::to_string(a.second) + ")";
}

std::string path_repr(const std::string& path) {
  std::string shown = path;
  for (char& c : shown) {
    if (c == '\0') c = '@';
  }
  return "'" + shown + "'";
}

/// "local_addr=('127.0.0.1', 0), reuse_port=True": the options set besides sock, as asyncio
/// lists them.
std::string options_given(const DatagramEndpointOptions& o) {
  std::vector<std::string> given;
  if (o.local_addr) given.push_back("local_addr=" + host_port_repr(*o.local_addr));
  if (o.remote_addr) given.push_back("remote_addr=" + host_port_repr(*o.remote_addr));
  if (o.local_path) given.push_back("local_path=" + path_repr(*o.local_path));
  if (o.remote_path) given.push_back("remote_path=" + path_repr(*o.remote_path));
  if (o.family != 0) given.push_back("family=" + std::to_string(o.family));
  if (o.proto != 0) given.push_back("proto=" + std::to_string(o.proto));
  if (o.flags != 0) given.push_back("flags=" + std::to_string(o.flags));
  if (o.reuse_port) given.push_back("reuse_port=True");
  if (o.allow_broadcast) given.push_back("allow_broadcast=True");
  std::string out;
  for (const std::string& item : given) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

/// Removes a stale Unix socket file at `path` before binding there, as asyncio does.
void remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISSOCK(st.st_mode) && ::unlink(path.c_str()) == 0) return;
    if (!S_ISSOCK(st.st_mode)) return;
  } else if (errno == ENOENT) {
    return;
  }
  // The directory may only allow creating the socket.
  logger()->error("Unable to check or remove stale UNIX socket {}: {}", path_repr(path),
                  describe_exception(make_os_error(errno)));
}

/// Resolves `address` (SOCK_DGRAM) and records each result under its (family, proto) in
/// `pairs`, as local (`remote` false) or remote address; a later result of the same key
/// replaces an earlier one, as asyncio's dict does.
Task<void> resolve_into(EventLoop* loop, HostPort address, bool remote, int family, int proto,
                        int flags, std::vector<AddressPair>* pairs) {
  Future<std::vector<AddrInfo>> resolving = loop->getaddrinfo(
      address.first, static_cast<int>(address.second), family, SOCK_DGRAM, proto, flags);
  std::vector<AddrInfo> infos = co_await resolving;
  if (infos.empty()) throw OSError("getaddrinfo() returned empty list");
  for (const AddrInfo& info : infos) {
    AddressPair* pair = nullptr;
    for (AddressPair& p : *pairs) {
      if (p.family == info.family && p.proto == info.proto) pair = &p;
    }
    if (pair == nullptr) {
      pairs->push_back(AddressPair{info.family, info.proto, std::nullopt, std::nullopt});
      pair = &pairs->back();
    }
    (remote ? pair->remote : pair->local) = info.address;
  }
}

/// One attempt: a socket for `pair`, set up, bound and connected. OSErrors propagate; the
/// socket is closed on any failure.
Task<Socket> open_pair(EventLoop* loop, AddressPair pair, bool reuse_port, bool allow_broadcast) {
  Socket sock(pair.family, SOCK_DGRAM, pair.proto);
  if (reuse_port) set_reuseport(sock);
  if (allow_broadcast) sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1);
  if (pair.local) sock.bind(*pair.local);
  if (pair.remote && !allow_broadcast) co_await loop->sock_connect(sock, *pair.remote);
  co_return std::move(sock);
}

}  // namespace

Task<DatagramSocket> open_datagram_socket(EventLoop& loop, DatagramEndpointOptions options) {
  std::string local_text = "None";
  std::string remote_text = "None";
  if (options.sock) {
    Socket& sock = *options.sock;
    if (sock.closed() || sock.type() != SOCK_DGRAM) {
      throw ValueError("A datagram socket was expected, got " + describe_socket(sock));
    }
    std::string problems = options_given(options);
    if (!problems.empty()) {
      throw ValueError(
          "socket modifier keyword arguments can not be used when sock is specified. (" + problems +
          ")");
    }
    sock.setblocking(false);
    // A connected socket only sends to its peer: sendto() refuses any other address.
    std::optional<SockAddr> peer;
    try {
      peer = sock.getpeername();
    } catch (const OSError&) {
    }
    co_return DatagramSocket{std::move(sock), std::move(peer), local_text, remote_text};
  }

  const bool has_addrs = options.local_addr || options.remote_addr;
  const bool has_paths = options.local_path || options.remote_path;
  int family = options.family;
  if (family == AF_UNSPEC && has_paths && !has_addrs) family = AF_UNIX;

  std::vector<AddressPair> pairs;
  if (!has_addrs && !has_paths) {
    if (family == 0) throw ValueError("unexpected address family");
    pairs.push_back(AddressPair{family, options.proto, std::nullopt, std::nullopt});
  } else if (family == AF_UNIX) {
    if (has_addrs) throw TypeError("string is expected");
    AddressPair pair{AF_UNIX, options.proto, std::nullopt, std::nullopt};
    // An empty path means no address, as an empty string is false for asyncio.
    if (options.local_path && !options.local_path->empty()) {
      if (options.local_path->front() != '\0') remove_stale_socket(*options.local_path);
      pair.local = SockAddr::unix_path(*options.local_path);
      local_text = path_repr(*options.local_path);
    }
    if (options.remote_path && !options.remote_path->empty()) {
      pair.remote = SockAddr::unix_path(*options.remote_path);
      remote_text = path_repr(*options.remote_path);
    }
    pairs.push_back(std::move(pair));
  } else {
    if (has_paths) throw TypeError("2-tuple is expected");
    if (options.local_addr) {
      local_text = host_port_repr(*options.local_addr);
      co_await resolve_into(&loop, *options.local_addr, false, family, options.proto, options.flags,
                            &pairs);
    }
    if (options.remote_addr) {
      remote_text = host_port_repr(*options.remote_addr);
      co_await resolve_into(&loop, *options.remote_addr, true, family, options.proto, options.flags,
                            &pairs);
    }
    // Each address given needs a result of the pair's (family, proto).
    std::erase_if(pairs, [&](const AddressPair& p) {
      return (options.local_addr && !p.local) || (options.remote_addr && !p.remote);
    });
    if (pairs.empty()) throw ValueError("can not get address information");
  }

  std::vector<std::exception_ptr> errors;
  for (const AddressPair& pair : pairs) {
    try {
      Task<Socket> opening = open_pair(&loop, pair, options.reuse_port, options.allow_broadcast);
      Socket sock = co_await std::move(opening);
      co_return DatagramSocket{std::move(sock), pair.remote, local_text, remote_text};
    } catch (const OSError&) {
      errors.push_back(std::current_exception());
    }
  }
  std::rethrow_exception(errors.front());
}

void log_datagram_endpoint(EventLoop& loop, const DatagramSocket& opened,
                           const std::shared_ptr<DatagramTransport>& transport) {
  if (!loop.get_debug()) return;
  auto* ours = dynamic_cast<DatagramEndpoint*>(transport.get());
  if (ours == nullptr) return;
  const std::string protocol = protocol_repr(ours->get_protocol().get());
  if (opened.local_text != "None") {
    logger()->info("Datagram endpoint local_addr={} remote_addr={} created: ({}, {})",
                   opened.local_text, opened.remote_text, ours->repr(), protocol);
  } else {
    logger()->debug("Datagram endpoint remote_addr={} created: ({}, {})", opened.remote_text,
                    ours->repr(), protocol);
  }
}

}  // namespace asyncuv::detail
