// The write pipe's write path (asyncio _UnixWritePipeTransport.write / _write_ready): try the
// write at once, buffer the rest behind one uv_write in flight, asyncio's flow control, close
// after flush, and the "reader trick" that notices the reader closing.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "asyncuv/detail/pipe_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"
#include "internal.hpp"
#include "stream_transport_internal.hpp"
#include "write_buffer_limits.hpp"

namespace asyncuv::detail {

namespace {
/// asyncio constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES.
constexpr int kLogThresholdForConnLostWrites = 5;
}  // namespace

std::size_t PipeTransport::get_write_buffer_size() const {
  if (conn_lost_ != 0) return 0;  // dropped (abort, error) or flushed
  std::size_t size = pending_.size();
  if (write_in_flight_ && !handle_closing_) size += stream()->write_queue_size;
  return size;
}

void PipeTransport::write(std::string_view data) {
  if (mode_ == PipeMode::read) throw RuntimeError("Cannot write to a read pipe transport");
  if (data.empty()) return;
  if (conn_lost_ != 0 || closing_) {
    // asyncio counts these in _conn_lost; a separate count keeps conn_lost_ meaning "the
    // connection_lost call is scheduled" (a write after close() must not stop the flush).
    if (conn_lost_ + dropped_writes_ >= kLogThresholdForConnLostWrites) {
      logger()->warn("pipe closed by peer or os.write(pipe, data) raised exception.");
    }
    ++dropped_writes_;
    return;
  }
  if (buffer_empty()) {
    const std::size_t chunk = data.size() > UINT_MAX ? UINT_MAX : data.size();
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(chunk));
    int n = uv_try_write(stream(), &buf, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS) {
      n = 0;
    } else if (n < 0) {
      fatal_error(uv_exception(n), "Fatal write error on pipe transport");
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    if (data.empty()) return;
    pending_.append(data);
    submit_pending();
    if (conn_lost_ != 0) return;
  } else {
    pending_.append(data);
  }
  maybe_pause_protocol();
}

void PipeTransport::submit_pending() {
  if (write_in_flight_ || pending_.empty() || handle_closing_) return;
  inflight_.swap(pending_);
  pending_.clear();
  std::vector<uv_buf_t> bufs;
  for (std::size_t at = 0; at < inflight_.size(); at += UINT_MAX) {
    std::size_t len = std::min<std::size_t>(UINT_MAX, inflight_.size() - at);
    bufs.push_back(uv_buf_init(inflight_.data() + at, static_cast<unsigned>(len)));
  }
  int rc = uv_write(&write_req_, stream(), bufs.data(), static_cast<unsigned>(bufs.size()),
                    &PipeTransport::on_write);
  if (rc != 0) {
    inflight_.clear();
    fatal_error(uv_exception(rc), "Fatal write error on pipe transport");
    return;
  }
  write_in_flight_ = true;
}

void PipeTransport::on_write(uv_write_t* req, int status) {
  auto* t = static_cast<PipeTransport*>(req->handle->data);
  CallbackScope scope(t->loop_);
  try {
    t->write_done(status);
  } catch (...) {
    t->defer_fatal(std::current_exception());
  }
}

void PipeTransport::write_done(int status) {
  write_in_flight_ = false;
  inflight_.clear();
  if (status == UV_ECANCELED || handle_closing_) return;
  if (status < 0) {
    pending_.clear();
    fatal_error(uv_exception(status), "Fatal write error on pipe transport");
    return;
  }
  if (conn_lost_ != 0) return;  // aborted meanwhile
  submit_pending();
  if (conn_lost_ != 0) return;
  maybe_resume_protocol();  // may write more
  if (conn_lost_ != 0 || !buffer_empty()) return;
  if (closing_) {
    // write_eof() / close() with data buffered: the last of it is out.
    stop_peer_watch();
    ++conn_lost_;
    call_connection_lost(nullptr);
  }
}

void PipeTransport::write_eof() {
  if (mode_ == PipeMode::read) throw RuntimeError("Cannot write to a read pipe transport");
  if (closing_) return;
  closing_ = true;
  if (buffer_empty()) {
    stop_peer_watch();
    ++conn_lost_;
    schedule_connection_lost(nullptr);
  }
}

// ---- the reader trick (asyncio _read_ready on a write pipe) -------------------------------

void PipeTransport::start_peer_watch() {
  if (!peer_poll_open_ || peer_watching_ || conn_lost_ != 0) return;
  if (closing_ && buffer_empty()) return;
  int rc = uv_poll_start(&peer_poll_, UV_READABLE, &PipeTransport::on_peer_event);
  if (rc == 0) peer_watching_ = true;
}

void PipeTransport::stop_peer_watch() noexcept {
  if (!peer_watching_) return;
  peer_watching_ = false;
  uv_poll_stop(&peer_poll_);
}

void PipeTransport::on_peer_event(uv_poll_t* poll, int, int) {
  auto* t = static_cast<PipeTransport*>(poll->data);
  CallbackScope scope(t->loop_);
  try {
    t->peer_closed();
  } catch (...) {
    t->defer_fatal(std::current_exception());
  }
}

void PipeTransport::peer_closed() {
  stop_peer_watch();
  if (conn_lost_ != 0) return;
  if (loop_.get_debug()) logger()->info("{} was closed by peer", repr());
  if (!buffer_empty()) {
    close_with(std::make_exception_ptr(BrokenPipeError(EPIPE, "Broken pipe")));
  } else {
    close_with(nullptr);
  }
}

// ---- flow control (asyncio transports._FlowControlMixin) ----------------------------------

void PipeTransport::set_write_buffer_limits(std::optional<std::size_t> high,
                                            std::optional<std::size_t> low) {
  std::tie(high_water_, low_water_) =
      detail::write_buffer_limits(high, low, WriteTransport::default_high_water);
  maybe_pause_protocol();
}

void PipeTransport::maybe_pause_protocol() {
  if (get_write_buffer_size() <= high_water_ || protocol_paused_) return;
  protocol_paused_ = true;
  std::shared_ptr<BaseProtocol> protocol = protocol_;
  if (!protocol) return;
  try {
    protocol->pause_writing();
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    if (is_fatal(e)) throw;
    report(e, "protocol.pause_writing() failed");
  }
}

void PipeTransport::maybe_resume_protocol() {
  if (!protocol_paused_ || get_write_buffer_size() > low_water_) return;
  protocol_paused_ = false;
  std::shared_ptr<BaseProtocol> protocol = protocol_;
  if (!protocol) return;
  try {
    protocol->resume_writing();
  } catch (...) {
    report(std::current_exception(), "protocol.resume_writing() failed");
  }
}

}  // namespace asyncuv::detail
