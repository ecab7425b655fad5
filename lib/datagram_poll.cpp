// The datagram transport of the socket families uv_udp_t does not handle (AF_UNIX datagram
// sockets): recvfrom/sendto on the non-blocking socket, watched by a uv_poll_t that waits for
// readability while receiving and for writability while datagrams are queued. Addresses keep
// their exact length, so abstract names and unnamed peers come through intact. See
// include/asyncuv/detail/datagram_transport.hpp.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <utility>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "datagram_kinds.hpp"
#include "stream_transport_internal.hpp"

namespace asyncuv::detail {

namespace {

/// How many datagrams one readable event reads at most (as libuv's UDP handle), so that a
/// flood on one socket cannot starve the loop.
constexpr int kReadsPerEvent = 32;

/// A libuv error code for the errno of a failed call (libuv's codes are negated errnos).
int failed_with(int err) noexcept {
  if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) return UV_EAGAIN;
  return -err;
}

}  // namespace

std::shared_ptr<PollEndpoint> PollEndpoint::open(EventLoop& loop, const Socket& sock) {
  auto t = std::make_shared<PollEndpoint>(Private{}, loop, sock.fileno());
  // On failure uv_poll_init leaves nothing to close.
  if (int rc = uv_poll_init(loop.uv_loop(), &t->poll_, sock.fileno()); rc != 0) {
    throw_uv_error(rc);
  }
  t->poll_.data = t.get();
  t->handle_open_ = true;
  return t;
}

// ---- sending --------------------------------------------------------------------------------

int PollEndpoint::send_now(std::string_view data, const SockAddr* addr) noexcept {
  ssize_t n;
  do {
    n = addr != nullptr
            ? ::sendto(fd_, data.data(), data.size(), MSG_NOSIGNAL, addr->get(), addr->size())
            : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return failed_with(errno);
  return n > INT_MAX ? INT_MAX : static_cast<int>(n);
}

int PollEndpoint::send_later(std::string_view data, const SockAddr* addr) {
  if (handle_closing_) return UV_EBADF;
  queue_.push_back(Queued{std::string(data), addr != nullptr ? std::optional<SockAddr>(*addr)
                                                             : std::optional<SockAddr>()});
  if (int rc = update_poll(); rc != 0) {
    queue_.pop_back();
    return rc;
  }
  return 0;
}

void PollEndpoint::discard_queue() noexcept {
  queue_.clear();
  forget_queue();
  (void)update_poll();
}

void PollEndpoint::writable() {
  while (!queue_.empty() && !handle_closing_) {
    Queued& next = queue_.front();
    int rc = send_now(next.data, next.addr ? &*next.addr : nullptr);
    if (rc == UV_EAGAIN) break;
    const std::size_t bytes = next.data.size();
    queue_.pop_front();
    queued_done(bytes, rc < 0 ? rc : 0);  // may call the protocol: send more, close, abort
  }
  (void)update_poll();
}

// ---- receiving ------------------------------------------------------------------------------

int PollEndpoint::start_receiving() noexcept {
  if (receiving_ || handle_closing_) return 0;
  receiving_ = true;
  if (int rc = update_poll(); rc != 0) {
    receiving_ = false;
    return rc;
  }
  return 0;
}

void PollEndpoint::stop_receiving() noexcept {
  if (!receiving_) return;
  receiving_ = false;
  (void)update_poll();
}

void PollEndpoint::readable() {
  char* buf = receive_buffer();
  if (buf == nullptr) {
    receive_failed(UV_ENOBUFS);
    return;
  }
  for (int i = 0; i < kReadsPerEvent && receiving_ && !handle_closing_; ++i) {
    SockAddr from;
    socklen_t len = SockAddr::capacity();
    ssize_t n = ::recvfrom(fd_, buf, receive_buffer_size(), 0, from.data(), &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      int rc = failed_with(errno);
      if (rc != UV_EAGAIN) receive_failed(rc);
      return;
    }
    from.set_size(len);
    received(std::string_view(buf, static_cast<std::size_t>(n)), from);
  }
}

// ---- the poll handle ------------------------------------------------------------------------

int PollEndpoint::update_poll() noexcept {
  if (!handle_open_ || handle_closing_) return 0;
  const int want = (receiving_ ? UV_READABLE : 0) | (queue_.empty() ? 0 : UV_WRITABLE);
  if (want == polled_) return 0;
  int rc = want == 0 ? uv_poll_stop(&poll_) : uv_poll_start(&poll_, want, &PollEndpoint::on_poll);
  if (rc == 0) polled_ = want;
  return rc;
}

void PollEndpoint::on_poll(uv_poll_t* poll, int status, int events) {
  auto* t = static_cast<PollEndpoint*>(poll->data);
  // An error wakes both sides: recvfrom / sendto then meet it (as libuv recommends).
  if (status < 0) events = UV_READABLE | UV_WRITABLE;
  CallbackScope scope(t->loop_);
  try {
    if ((events & UV_READABLE) != 0 && t->receiving_) t->readable();
    if ((events & UV_WRITABLE) != 0 && !t->queue_.empty()) t->writable();
  } catch (...) {
    // Only the loop's own failures get here (the protocol's are reported where called).
    t->defer_fatal(std::current_exception());
  }
}

// ---- closing --------------------------------------------------------------------------------

void PollEndpoint::close_socket() noexcept {
  if (!handle_open_ || handle_closing_) return;
  handle_closing_ = true;
  receiving_ = false;
  queue_.clear();
  keep_until_closed();
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &PollEndpoint::on_close);
  ::close(fd_);  // uv_close stopped watching it
}

void PollEndpoint::on_close(uv_handle_t* handle) {
  static_cast<PollEndpoint*>(handle->data)->handle_closed();
}

}  // namespace asyncuv::detail
