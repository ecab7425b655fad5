// The two kinds of datagram transport (not installed): UDP over uv_udp_t
// (lib/datagram_udp.cpp) and the other socket families (AF_UNIX) over a raw socket watched by a
// uv_poll_t (lib/datagram_poll.cpp). See include/asyncuv/detail/datagram_transport.hpp.
#pragma once

#include <uv.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "asyncuv/detail/datagram_transport.hpp"

namespace asyncuv::detail {

/// A UDP endpoint (AF_INET / AF_INET6) over a uv_udp_t.
class UdpEndpoint final : public DatagramEndpoint {
  struct Private {};

 public:
  /// Use open().
  UdpEndpoint(Private, EventLoop& loop, int fd) : DatagramEndpoint(loop, fd) {}
  /// The endpoint for `sock`'s descriptor (which stays `sock`'s until the caller detaches it).
  /// Throws the OSError libuv reports.
  static std::shared_ptr<UdpEndpoint> open(EventLoop& loop, const Socket& sock);

 protected:
  int send_now(std::string_view data, const SockAddr* addr) noexcept override;
  int send_later(std::string_view data, const SockAddr* addr) override;
  void discard_queue() noexcept override {}  // libuv cancels the requests when the handle closes
  int start_receiving() noexcept override;
  void stop_receiving() noexcept override;
  bool receiving() const noexcept override { return receiving_; }
  void close_socket() noexcept override;

 private:
  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void on_recv(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                      unsigned flags);
  static void on_send(uv_udp_send_t* req, int status);
  static void on_close(uv_handle_t* handle);
  uv_handle_t* handle() noexcept { return reinterpret_cast<uv_handle_t*>(&udp_); }

  uv_udp_t udp_{};
  bool receiving_ = false;
};

/// A datagram endpoint of another family (AF_UNIX): recvfrom / sendto on the socket, watched by
/// a uv_poll_t (readable while receiving, writable while datagrams are queued).
class PollEndpoint final : public DatagramEndpoint {
  struct Private {};

 public:
  /// Use open().
  PollEndpoint(Private, EventLoop& loop, int fd) : DatagramEndpoint(loop, fd) {}
  /// The endpoint for `sock`'s descriptor (which stays `sock`'s until the caller detaches it).
  /// Throws the OSError libuv reports.
  static std::shared_ptr<PollEndpoint> open(EventLoop& loop, const Socket& sock);

 protected:
  int send_now(std::string_view data, const SockAddr* addr) noexcept override;
  int send_later(std::string_view data, const SockAddr* addr) override;
  void discard_queue() noexcept override;
  int start_receiving() noexcept override;
  void stop_receiving() noexcept override;
  bool receiving() const noexcept override { return receiving_; }
  void close_socket() noexcept override;

 private:
  struct Queued {
    std::string data;
    std::optional<SockAddr> addr;
  };

  static void on_poll(uv_poll_t* poll, int status, int events);
  static void on_close(uv_handle_t* handle);
  void readable();
  void writable();
  /// Starts (or stops) the poll handle for what is wanted now; a libuv error code.
  int update_poll() noexcept;

  uv_poll_t poll_{};
  int polled_ = 0;  // the events poll_ was started with
  bool receiving_ = false;
  std::deque<Queued> queue_;
};

}  // namespace asyncuv::detail
