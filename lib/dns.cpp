// EventLoop::getaddrinfo / getnameinfo: argument checks, asyncio's numeric-address shortcut,
// and the hand-over to the loop's DnsService (libuv's thread pool) for everything else.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asyncuv/detail/dns_service.hpp"
#include "asyncuv/dns.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"

namespace asyncuv {

namespace {

/// A port given as text: empty (None) is 0; digits up to 65535 are a number; anything else
/// (a service name such as "http") needs the real getaddrinfo.
std::optional<std::uint16_t> numeric_port(std::string_view port) {
  if (port.empty()) return 0;
  if (port.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

/// asyncio's _ipaddr_info: the getaddrinfo answer for a host that already is a numeric IPv4 or
/// IPv6 address (no zone) and a numeric port, built without a thread. Empty when the real
/// getaddrinfo must decide (a name, a service name, other flags, families or socket types).
std::optional<std::vector<AddrInfo>> numeric_addrinfo(std::string_view host, std::string_view port,
                                                      int family, int type, int proto, int flags) {
  if (host.empty() || host.find('%') != std::string_view::npos) return std::nullopt;
  if ((flags & ~(AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE)) != 0) return std::nullopt;
  std::optional<std::uint16_t> port_number = numeric_port(port);
  if (!port_number) return std::nullopt;

  // (type, proto) pairs in the order getaddrinfo lists them.
  struct Kind {
    int type;
    int proto;
  };
  std::vector<Kind> kinds;
  bool stream_ok = (type == 0 || type == SOCK_STREAM) && (proto == 0 || proto == IPPROTO_TCP);
  bool dgram_ok = (type == 0 || type == SOCK_DGRAM) && (proto == 0 || proto == IPPROTO_UDP);
  if (stream_ok) kinds.push_back({SOCK_STREAM, IPPROTO_TCP});
  if (dgram_ok) kinds.push_back({SOCK_DGRAM, IPPROTO_UDP});
  if (kinds.empty()) return std::nullopt;

  std::string text(host);
  std::optional<SockAddr> address;
  unsigned char buffer[sizeof(in6_addr)];
  if ((family == AF_UNSPEC || family == AF_INET) && inet_pton(AF_INET, text.c_str(), buffer) == 1) {
    address = SockAddr::ipv4(text, *port_number);
  } else if ((family == AF_UNSPEC || family == AF_INET6) &&
             inet_pton(AF_INET6, text.c_str(), buffer) == 1) {
    address = SockAddr::ipv6(text, *port_number);
  }
  if (!address) return std::nullopt;

  std::vector<AddrInfo> out;
  out.reserve(kinds.size());
  for (const Kind& kind : kinds) {
    out.push_back(AddrInfo{address->family(), kind.type, kind.proto, std::string(), *address});
  }
  return out;
}

void check_no_nul(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) throw ValueError("embedded null character");
}

}  // namespace

Future<std::vector<AddrInfo>> EventLoop::getaddrinfo(std::string_view host, std::string_view port,
                                                     int family, int type, int proto, int flags) {
  check_closed();
  check_no_nul(host);
  check_no_nul(port);
  if (auto numeric = numeric_addrinfo(host, port, family, type, proto, flags)) {
    auto future = create_future<std::vector<AddrInfo>>();
    future.set_result(std::move(*numeric));
    return future;
  }
  if (host.empty() && port.empty()) {
    // getaddrinfo(NULL, NULL): what the system answers (libuv refuses to ask).
    auto future = create_future<std::vector<AddrInfo>>();
    future.set_exception(GaiError(EAI_NONAME));
    return future;
  }
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = type;
  hints.ai_protocol = proto;
  hints.ai_flags = flags;
  std::string host_text(host);
  std::string port_text(port);
  return service<detail::DnsService>().getaddrinfo(host.empty() ? nullptr : host_text.c_str(),
                                                   port.empty() ? nullptr : port_text.c_str(),
                                                   hints);
}

Future<std::vector<AddrInfo>> EventLoop::getaddrinfo(std::string_view host, int port, int family,
                                                     int type, int proto, int flags) {
  check_closed();
  if (port < 0 || port > 65535) throw ValueError("port must be 0-65535.");
  return getaddrinfo(host, std::string_view(std::to_string(port)), family, type, proto, flags);
}

Future<NameInfo> EventLoop::getnameinfo(const SockAddr& address, int flags) {
  check_closed();
  if (address.family() != AF_INET && address.family() != AF_INET6) {
    throw TypeError("getnameinfo(): illegal sockaddr argument");
  }
  return service<detail::DnsService>().getnameinfo(address, flags);
}

}  // namespace asyncuv
