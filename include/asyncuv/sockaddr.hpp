// asyncuv::SockAddr: a socket address (IPv4, IPv6 or Unix), the C++ form of the address tuples
// asyncio passes around: ("127.0.0.1", 8080), ("::1", 8080, flowinfo, scope_id) or a path.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace asyncuv {

class SockAddr {
 public:
  /// An empty address (family AF_UNSPEC).
  SockAddr() noexcept;
  /// Copies `len` bytes of `address` (as filled in by accept, getsockname, recvfrom, …).
  SockAddr(const sockaddr* address, socklen_t len) noexcept;

  /// A numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "fe80::1%eth0") and a port. Throws
  /// ValueError if `host` is not a numeric address (names need loop.getaddrinfo).
  static SockAddr parse(std::string_view host, std::uint16_t port);
  /// An IPv4 address; throws ValueError if `host` is not dotted-quad.
  static SockAddr ipv4(std::string_view host, std::uint16_t port);
  /// An IPv6 address with optional flowinfo and scope id; throws ValueError if `host` is not
  /// an IPv6 literal.
  static SockAddr ipv6(std::string_view host, std::uint16_t port, std::uint32_t flowinfo = 0,
                       std::uint32_t scope_id = 0);
  /// A Unix socket path. A path starting with '\0' is in Linux's abstract namespace. Throws
  /// ValueError if it does not fit in sockaddr_un.
  static SockAddr unix_path(std::string_view path);

  /// AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC.
  int family() const noexcept { return storage_.ss_family; }
  bool empty() const noexcept { return family() == AF_UNSPEC; }

  /// The numeric host ("127.0.0.1", "::1") or, for AF_UNIX, the path ("" when unnamed).
  std::string host() const;
  /// The port (0 for AF_UNIX).
  std::uint16_t port() const noexcept;
  /// IPv6 only (0 otherwise).
  std::uint32_t flowinfo() const noexcept;
  std::uint32_t scope_id() const noexcept;
  /// "127.0.0.1:8080", "[::1]:8080", the Unix path, or "" when empty.
  std::string to_string() const;

  /// For the C APIs: the address and its length.
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return size_; }
  /// For filling in by accept/recvfrom/getsockname: the buffer, its capacity, then
  /// set_size() with the length the call returned.
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
  void set_size(socklen_t len) noexcept;

  friend bool operator==(const SockAddr& a, const SockAddr& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t size_ = 0;
};

}  // namespace asyncuv
