// SockAddr: parsing and formatting socket addresses.
#include "asyncuv/sockaddr.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstring>

#include "asyncuv/exceptions.hpp"

namespace asyncuv {

SockAddr::SockAddr() noexcept {
  std::memset(&storage_, 0, sizeof storage_);
  storage_.ss_family = AF_UNSPEC;
}

SockAddr::SockAddr(const sockaddr* address, socklen_t len) noexcept : SockAddr() {
  if (address == nullptr) return;
  if (len > static_cast<socklen_t>(sizeof storage_)) len = sizeof storage_;
  std::memcpy(&storage_, address, len);
  size_ = len;
}

void SockAddr::set_size(socklen_t len) noexcept {
  size_ = len > static_cast<socklen_t>(sizeof storage_) ? sizeof storage_ : len;
}

SockAddr SockAddr::ipv4(std::string_view host, std::uint16_t port) {
  SockAddr out;
  auto* in = reinterpret_cast<sockaddr_in*>(&out.storage_);
  std::string text(host);
  if (inet_pton(AF_INET, text.c_str(), &in->sin_addr) != 1) {
    throw ValueError("not an IPv4 address: '" + text + "'");
  }
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  out.size_ = sizeof(sockaddr_in);
  return out;
}

SockAddr SockAddr::ipv6(std::string_view host, std::uint16_t port, std::uint32_t flowinfo,
                        std::uint32_t scope_id) {
  SockAddr out;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
  std::string text(host);
  // "fe80::1%eth0" or "fe80::1%2": the zone gives the scope id.
  if (auto percent = text.find('%'); percent != std::string::npos) {
    std::string zone = text.substr(percent + 1);
    text.resize(percent);
    unsigned index = if_nametoindex(zone.c_str());
    if (index == 0 && !zone.empty() && zone.find_first_not_of("0123456789") == std::string::npos) {
      index = static_cast<unsigned>(std::stoul(zone));
    }
    if (index == 0) throw ValueError("unknown IPv6 zone: '" + zone + "'");
    if (scope_id == 0) scope_id = index;
  }
  if (inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr) != 1) {
    throw ValueError("not an IPv6 address: '" + std::string(host) + "'");
  }
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  in6->sin6_flowinfo = htonl(flowinfo);
  in6->sin6_scope_id = scope_id;
  out.size_ = sizeof(sockaddr_in6);
  return out;
}

SockAddr SockAddr::parse(std::string_view host, std::uint16_t port) {
  if (host.find(':') != std::string_view::npos) {
    // "[::1]" as well as "::1".
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    return ipv6(host, port);
  }
  return ipv4(host, port);
}

SockAddr SockAddr::unix_path(std::string_view path) {
  SockAddr out;
  auto* un = reinterpret_cast<sockaddr_un*>(&out.storage_);
  if (path.size() >= sizeof un->sun_path) {
    throw ValueError("AF_UNIX path too long (" + std::to_string(path.size()) + " bytes)");
  }
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  // Abstract names are exactly as long as given; paths are NUL-terminated.
  bool abstract = !path.empty() && path.front() == '\0';
  out.size_ =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return out;
}

std::string SockAddr::host() const {
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
  switch (family()) {
    case AF_INET: {
      auto* in = reinterpret_cast<const sockaddr_in*>(&storage_);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      return text;
    }
    case AF_INET6: {
      auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
      return text;
    }
    case AF_UNIX: {
      auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      std::size_t header = offsetof(sockaddr_un, sun_path);
      if (size_ <= header) return {};
      std::size_t len = size_ - header;
      if (un->sun_path[0] != '\0') len = strnlen(un->sun_path, len);
      return std::string(un->sun_path, len);
    }
    default:
      return {};
  }
}

std::uint16_t SockAddr::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::uint32_t SockAddr::flowinfo() const noexcept {
  if (family() != AF_INET6) return 0;
  return ntohl(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_flowinfo);
}

std::uint32_t SockAddr::scope_id() const noexcept {
  if (family() != AF_INET6) return 0;
  return reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_scope_id;
}

std::string SockAddr::to_string() const {
  switch (family()) {
    case AF_INET:
      return host() + ":" + std::to_string(port());
    case AF_INET6:
      return "[" + host() + "]:" + std::to_string(port());
    case AF_UNIX:
      return host();
    default:
      return {};
  }
}

bool operator==(const SockAddr& a, const SockAddr& b) noexcept {
  return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0;
}

}  // namespace asyncuv
