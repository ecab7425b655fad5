// The per-loop resolver: owns nothing but the list of the loop's in-flight uv_getaddrinfo /
// uv_getnameinfo requests, so that close() can cancel them and cut them off from the loop.
#pragma once

#include <netdb.h>

#include <cstddef>
#include <vector>

#include "asyncuv/detail/loop_service.hpp"

namespace asyncuv {
class EventLoop;
class SockAddr;
struct AddrInfo;
struct NameInfo;
template <class T>
class Future;
}  // namespace asyncuv

namespace asyncuv::detail {

struct DnsRequest;

class DnsService final : public LoopService {
 public:
  explicit DnsService(EventLoop& loop) noexcept : loop_(loop) {}
  /// Cuts the remaining requests off (only if close() did not run, e.g. a loop destroyed
  /// while running).
  ~DnsService() override;

  /// Starts uv_getaddrinfo for `host`/`port` (null for None). Throws ValueError for a host
  /// libuv rejects up front (not valid UTF-8 or longer than 255 bytes once IDNA-encoded).
  Future<std::vector<AddrInfo>> getaddrinfo(const char* host, const char* port,
                                            const addrinfo& hints);
  /// Starts uv_getnameinfo for `address` (AF_INET or AF_INET6).
  Future<NameInfo> getnameinfo(const SockAddr& address, int flags);

  /// How many requests of this loop have not had their libuv callback yet.
  std::size_t pending() const noexcept { return count_; }

  /// Cancels the requests no worker thread has started, detaches all of them from their
  /// Futures, and (for a loop owning its uv_loop_t) makes the loop's final iterations wait for
  /// the running ones, so that the uv_loop_t can be closed.
  void close() noexcept override;

  // Intrusive list of in-flight requests (internal, used by the requests themselves).
  void link(DnsRequest* r) noexcept;
  void unlink(DnsRequest* r) noexcept;

 private:
  EventLoop& loop_;
  DnsRequest* head_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace asyncuv::detail
