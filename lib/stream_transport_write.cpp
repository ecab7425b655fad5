// The stream transport's write path: uv_try_write first, one coalescing uv_write in flight,
// half-close with uv_shutdown, and asyncio's write flow control (transports._FlowControlMixin).
#include <spdlog/spdlog.h>

#include <climits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"
#include "internal.hpp"
#include "stream_transport_internal.hpp"
#include "write_buffer_limits.hpp"

namespace asyncuv::detail {

namespace {
/// asyncio constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES: from this many dropped writes on, each
/// one logs a warning.
constexpr int kLogThresholdForConnLostWrites = 5;
}  // namespace

std::size_t StreamTransport::get_write_buffer_size() const {
  if (conn_lost_ != 0) return 0;  // dropped (abort, error) or already flushed
  std::size_t size = pending_.size();
  if (write_in_flight_) size += stream()->write_queue_size;  // libuv's unsent part
  return size;
}

void StreamTransport::write(std::string_view data) {
  if (eof_) throw RuntimeError("Cannot call write() after write_eof()");
  if (empty_waiter_) throw RuntimeError("unable to write; sendfile is in progress");
  if (data.empty()) return;
  if (conn_lost_ != 0) {
    if (conn_lost_ >= kLogThresholdForConnLostWrites) {
      logger()->warn("socket.send() raised exception.");
    }
    ++conn_lost_;
    return;
  }

  if (buffer_empty()) {
    // Try to send now; only what the socket does not take is copied.
    const std::size_t chunk = data.size() > UINT_MAX ? UINT_MAX : data.size();
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(chunk));
    int n = uv_try_write(stream(), &buf, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS) {
      n = 0;
    } else if (n < 0) {
      fatal_error(uv_exception(n), "Fatal write error on socket transport");
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    if (data.empty()) return;
    pending_.append(data);
    submit_pending();
    if (conn_lost_ != 0) return;  // uv_write failed
  } else {
    pending_.append(data);
  }
  maybe_pause_protocol();
}

void StreamTransport::submit_pending() {
  if (write_in_flight_ || pending_.empty() || handle_closing_) return;
  inflight_.swap(pending_);  // pending_ gets the drained buffer back, keeping its capacity
  pending_.clear();
  // uv_buf_t lengths are unsigned ints: a buffer past 4 GiB goes as several pieces.
  uv_buf_t single;
  std::vector<uv_buf_t> many;
  const uv_buf_t* bufs = &single;
  unsigned count = 1;
  if (inflight_.size() <= UINT_MAX) {
    single = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
  } else {
    for (std::size_t at = 0; at < inflight_.size(); at += UINT_MAX) {
      std::size_t len = std::min<std::size_t>(UINT_MAX, inflight_.size() - at);
      many.push_back(uv_buf_init(inflight_.data() + at, static_cast<unsigned>(len)));
    }
    bufs = many.data();
    count = static_cast<unsigned>(many.size());
  }
  int rc = uv_write(&write_req_, stream(), bufs, count, &StreamTransport::on_write);
  if (rc != 0) {
    inflight_.clear();
    fatal_error(uv_exception(rc), "Fatal write error on socket transport");
    return;
  }
  write_in_flight_ = true;
  // After write_eof() nothing more can be written: libuv shuts down once this write is done.
  if (eof_) shutdown_write();
}

void StreamTransport::on_write(uv_write_t* req, int status) {
  auto* t = static_cast<StreamTransport*>(req->handle->data);
  CallbackScope scope(t->loop_);
  try {
    t->write_done(status);
  } catch (...) {
    t->defer_fatal(std::current_exception());
  }
}

void StreamTransport::write_done(int status) {
  write_in_flight_ = false;
  inflight_.clear();
  if (status == UV_ECANCELED || handle_closing_) return;  // the handle is closing
  if (status < 0) {
    pending_.clear();
    std::exception_ptr exc = uv_exception(status);
    fatal_error(exc, "Fatal write error on socket transport");
    if (empty_waiter_ && !empty_waiter_.done()) empty_waiter_.set_exception(exc);
    return;
  }
  if (conn_lost_ != 0) return;  // aborted while the write was in flight
  submit_pending();
  if (conn_lost_ != 0) return;
  maybe_resume_protocol();  // may write more, close or abort
  if (conn_lost_ != 0 || !buffer_empty()) return;
  if (empty_waiter_ && !empty_waiter_.done()) empty_waiter_.set_result();
  if (closing_) {
    ++conn_lost_;
    schedule_connection_lost(nullptr);
  }
}

void StreamTransport::write_eof() {
  if (closing_ || eof_) return;
  eof_ = true;
  // With data pending, submit_pending() shuts down after handing over the last of it.
  if (pending_.empty()) shutdown_write();
}

void StreamTransport::shutdown_write() {
  if (shutdown_sent_ || handle_closing_) return;
  shutdown_sent_ = true;
  int rc = uv_shutdown(&shutdown_req_, stream(), &StreamTransport::on_shutdown);
  if (rc != 0 && loop_.get_debug()) {
    logger()->debug("{}: shutdown(SHUT_WR) failed: {}", repr(), uv_strerror(rc));
  }
}

void StreamTransport::on_shutdown(uv_shutdown_t* req, int status) {
  auto* t = static_cast<StreamTransport*>(req->handle->data);
  if (status < 0 && status != UV_ECANCELED && !t->handle_closing_ && t->loop_.get_debug()) {
    // As a failing sock.shutdown(SHUT_WR): the connection is already gone; reading or writing
    // reports it.
    logger()->debug("{}: shutdown(SHUT_WR) failed: {}", t->repr(), uv_strerror(status));
  }
}

Future<void> StreamTransport::make_empty_waiter() {
  if (empty_waiter_) throw RuntimeError("Empty waiter is already set");
  empty_waiter_ = loop_.create_future<void>();
  if (buffer_empty()) empty_waiter_.set_result();
  return empty_waiter_;
}

// ---- flow control (asyncio transports._FlowControlMixin) ----------------------------------

void StreamTransport::set_write_buffer_limits(std::optional<std::size_t> high,
                                              std::optional<std::size_t> low) {
  std::tie(high_water_, low_water_) =
      detail::write_buffer_limits(high, low, WriteTransport::default_high_water);
  maybe_pause_protocol();
}

void StreamTransport::maybe_pause_protocol() {
  if (get_write_buffer_size() <= high_water_ || protocol_paused_) return;
  protocol_paused_ = true;
  std::shared_ptr<BaseProtocol> protocol = protocol_;
  if (!protocol) return;
  try {
    protocol->pause_writing();
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    if (is_fatal(e)) throw;  // called from write(): a fatal error reaches the caller
    report(e, "protocol.pause_writing() failed");
  }
}

void StreamTransport::maybe_resume_protocol() {
  if (!protocol_paused_ || get_write_buffer_size() > low_water_) return;
  protocol_paused_ = false;
  std::shared_ptr<BaseProtocol> protocol = protocol_;
  if (!protocol) return;
  try {
    protocol->resume_writing();
  } catch (...) {
    report(std::current_exception(), "protocol.resume_writing() failed");  // defers fatal ones
  }
}

}  // namespace asyncuv::detail
