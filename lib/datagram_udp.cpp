// The UDP datagram transport over a uv_udp_t: uv_udp_try_send first, uv_udp_send (a copy of
// the datagram per request) for what the socket cannot take now, uv_udp_recv_start into the
// loop's shared receive buffer. See include/asyncuv/detail/datagram_transport.hpp.
#include <netinet/in.h>
#include <sys/socket.h>

#include <new>
#include <string>
#include <utility>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "datagram_kinds.hpp"
#include "stream_transport_internal.hpp"

namespace asyncuv::detail {

namespace {

/// One queued datagram: libuv's request and the copy it sends.
struct UdpSend {
  uv_udp_send_t req;
  std::string data;
};

socklen_t address_length(const sockaddr* addr) noexcept {
  return addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

}  // namespace

std::shared_ptr<UdpEndpoint> UdpEndpoint::open(EventLoop& loop, const Socket& sock) {
  auto t = std::make_shared<UdpEndpoint>(Private{}, loop, sock.fileno());
  if (int rc = uv_udp_init(loop.uv_loop(), &t->udp_); rc != 0) throw_uv_error(rc);
  t->handle()->data = t.get();
  t->handle_open_ = true;
  // uv_udp_open turns SO_REUSEADDR on, which asyncio deliberately never does for datagram
  // sockets (another socket could then bind the same port): the socket's setting is restored.
  int reuse = 0;
  socklen_t len = sizeof reuse;
  const bool restore = ::getsockopt(sock.fileno(), SOL_SOCKET, SO_REUSEADDR, &reuse, &len) == 0;
  if (int rc = uv_udp_open(&t->udp_, sock.fileno()); rc != 0) {
    // The handle does not own the descriptor yet: closing it leaves `sock` open. The transport
    // lives until libuv's close callback.
    t->handle_closing_ = true;
    t->keep_until_closed();
    uv_close(t->handle(), &UdpEndpoint::on_close);
    throw_uv_error(rc);
  }
  if (restore && reuse == 0) {
    (void)::setsockopt(sock.fileno(), SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
  }
  return t;
}

// ---- sending --------------------------------------------------------------------------------

int UdpEndpoint::send_now(std::string_view data, const SockAddr* addr) noexcept {
  uv_buf_t buf = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
  return uv_udp_try_send(&udp_, &buf, 1, addr != nullptr ? addr->get() : nullptr);
}

int UdpEndpoint::send_later(std::string_view data, const SockAddr* addr) {
  if (handle_closing_) return UV_EBADF;
  auto* send = new UdpSend;
  send->data.assign(data);
  uv_buf_t buf = uv_buf_init(send->data.data(), static_cast<unsigned>(send->data.size()));
  int rc = uv_udp_send(&send->req, &udp_, &buf, 1, addr != nullptr ? addr->get() : nullptr,
                       &UdpEndpoint::on_send);
  if (rc != 0) delete send;
  return rc;
}

void UdpEndpoint::on_send(uv_udp_send_t* req, int status) {
  auto* send = reinterpret_cast<UdpSend*>(req);
  auto* t = static_cast<UdpEndpoint*>(req->handle->data);
  const std::size_t bytes = send->data.size();
  delete send;
  CallbackScope scope(t->loop_);
  try {
    t->queued_done(bytes, status);
  } catch (...) {
    t->defer_fatal(std::current_exception());
  }
}

// ---- receiving ------------------------------------------------------------------------------

int UdpEndpoint::start_receiving() noexcept {
  if (receiving_ || handle_closing_) return 0;
  int rc = uv_udp_recv_start(&udp_, &UdpEndpoint::on_alloc, &UdpEndpoint::on_recv);
  if (rc == 0) receiving_ = true;
  return rc;
}

void UdpEndpoint::stop_receiving() noexcept {
  if (!receiving_) return;
  receiving_ = false;
  uv_udp_recv_stop(&udp_);
}

void UdpEndpoint::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
  auto* t = static_cast<UdpEndpoint*>(h->data);
  char* base = t->receive_buffer();
  // No buffer: libuv reports UV_ENOBUFS to on_recv.
  *buf = base != nullptr ? uv_buf_init(base, static_cast<unsigned>(receive_buffer_size()))
                         : uv_buf_init(nullptr, 0);
}

void UdpEndpoint::on_recv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                          unsigned) {
  if (nread == 0 && addr == nullptr) return;  // nothing (more) to read
  auto* t = static_cast<UdpEndpoint*>(h->data);
  CallbackScope scope(t->loop_);
  try {
    if (nread < 0) {
      t->receive_failed(static_cast<int>(nread));
    } else {
      t->received(std::string_view(buf->base, static_cast<std::size_t>(nread)),
                  SockAddr(addr, address_length(addr)));
    }
  } catch (...) {
    // Only the loop's own failures get here (the protocol's are reported by received()).
    t->defer_fatal(std::current_exception());
  }
}

// ---- closing --------------------------------------------------------------------------------

void UdpEndpoint::close_socket() noexcept {
  if (!handle_open_ || handle_closing_) return;
  handle_closing_ = true;
  stop_receiving();
  keep_until_closed();
  uv_close(handle(), &UdpEndpoint::on_close);  // closes the fd now; queued sends are cancelled
}

void UdpEndpoint::on_close(uv_handle_t* h) {
  static_cast<UdpEndpoint*>(h->data)->handle_closed();
}

}  // namespace asyncuv::detail
