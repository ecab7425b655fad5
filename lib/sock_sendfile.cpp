// loop.sock_sendfile (asyncio unix_events._sock_sendfile_native and
// base_events._sock_sendfile_fallback): sendfile(2) driven by a writer watch, and a
// read-on-the-executor + sock_sendall fallback. See include/asyncuv/sock_ops.hpp.
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sendfile.h>
#endif

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "asyncuv/detail/sock_wait.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/executors.hpp"
#include "asyncuv/sock_ops.hpp"
#include "sendfile_position.hpp"

namespace asyncuv {

namespace {

/// asyncio's SENDFILE_FALLBACK_READBUFFER_SIZE.
constexpr std::size_t kFallbackBlock = 256 * 1024;

/// asyncio's _sock_sendfile_update_filepos: after a transfer that sent something, the file
/// position is just past the last byte sent.
void update_filepos(int file_fd, std::int64_t position, std::size_t total_sent) {
  if (total_sent > 0) (void)::lseek(file_fd, static_cast<off_t>(position), SEEK_SET);
}

#ifdef __linux__
/// sendfile(2) without SIGPIPE: a peer that went away must give EPIPE, not kill the process.
/// sendfile has no MSG_NOSIGNAL, so SIGPIPE is blocked in this thread around the call and the
/// one it raised (if any, and if none was pending before) is consumed.
ssize_t sendfile_nosignal(int out_fd, int in_fd, off_t* offset, std::size_t count) {
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  ssize_t sent;
  do {
    sent = ::sendfile(out_fd, in_fd, offset, count);
  } while (sent < 0 && errno == EINTR);
  const int err = errno;
  if (sent < 0 && err == EPIPE && !was_pending) {
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return sent;
}
#endif

/// asyncio's _sock_sendfile_fallback: reads blocks on the default executor and sends each
/// with sock_sendall. Kept alive by the read or send in flight; the returned Future holds it
/// only weakly, so that a loop closed in the middle frees everything.
class SendfileFallback : public std::enable_shared_from_this<SendfileFallback> {
 public:
  SendfileFallback(EventLoop& loop, int fd, int file_fd, std::int64_t offset, std::size_t count)
      : loop_(loop),
        fd_(fd),
        file_fd_(file_fd),
        offset_(offset),
        count_(count),
        fut_(loop.create_future<std::size_t>()) {}

  static Future<std::size_t> start(EventLoop& loop, int fd, int file_fd, std::int64_t offset,
                                   std::size_t count) {
    auto self = std::make_shared<SendfileFallback>(loop, fd, file_fd, offset, count);
    Future<std::size_t> fut = self->fut_;
    std::weak_ptr<SendfileFallback> weak = self;
    fut.add_done_callback([weak](Future<std::size_t> f) {
      if (!f.cancelled()) return;
      if (auto s = weak.lock()) s->cancelled();
    });
    try {
      self->begin();
    } catch (...) {
      self->finish(std::current_exception());
    }
    return fut;
  }

 private:
  void begin() {
    // Files are read at explicit offsets (pread), so that a read still running on the
    // executor after a cancellation cannot move the position set here. Non-seekable files
    // (pipes, character devices) are read as they come.
    seekable_ = detail::position_for_fallback(file_fd_, static_cast<std::uint64_t>(offset_));
    std::size_t block = count_ != 0 ? std::min(count_, kFallbackBlock) : kFallbackBlock;
    buf_ = std::make_shared<std::vector<std::byte>>(block);
    read_next();
  }

  void read_next() {
    std::size_t len = buf_->size();
    if (count_ != 0) len = std::min(len, count_ - total_);
    if (len == 0) {
      finish(nullptr);
      return;
    }
    const int file_fd = file_fd_;
    const bool seekable = seekable_;
    const auto position = static_cast<off_t>(offset_ + static_cast<std::int64_t>(total_));
    auto read_block = [file_fd, seekable, position, len, buf = buf_]() -> std::size_t {
      ssize_t n;
      do {
        n = seekable ? ::pread(file_fd, buf->data(), len, position)
                     : ::read(file_fd, buf->data(), len);
      } while (n < 0 && errno == EINTR);
      if (n < 0) throw_os_error(errno);
      return static_cast<std::size_t>(n);
    };
    Future<std::size_t> reading = loop_.run_in_executor(nullptr, read_block);
    pending_ = reading.state();
    auto self = shared_from_this();
    reading.add_done_callback([self](Future<std::size_t> r) { self->on_read(r); });
  }

  void on_read(const Future<std::size_t>& reading) {
    if (reading.cancelled() || fut_.done()) {
      if (!reading.cancelled()) (void)reading.exception();  // retrieved, and dropped
      return;
    }
    if (std::exception_ptr e = reading.exception()) {
      finish(e);
      return;
    }
    std::size_t n = reading.result();
    if (n == 0) {
      finish(nullptr);  // end of file
      return;
    }
    Future<void> sending;
    try {
      sending = loop_.sock_sendall(fd_, std::span<const std::byte>(buf_->data(), n));
    } catch (...) {
      finish(std::current_exception());
      return;
    }
    pending_ = sending.state();
    auto self = shared_from_this();
    sending.add_done_callback([self, n](Future<void> s) { self->on_sent(s, n); });
  }

  void on_sent(const Future<void>& sending, std::size_t n) {
    if (sending.cancelled() || fut_.done()) {
      if (!sending.cancelled()) (void)sending.exception();
      return;
    }
    if (std::exception_ptr e = sending.exception()) {
      finish(e);
      return;
    }
    total_ += n;
    read_next();
  }

  void finish(std::exception_ptr error) {
    if (seekable_) update_filepos(file_fd_, offset_ + static_cast<std::int64_t>(total_), total_);
    if (fut_.done()) return;
    if (error) {
      fut_.set_exception(std::move(error));
    } else {
      fut_.set_result(total_);
    }
  }

  void cancelled() {
    if (auto op = pending_.lock()) op->cancel("");
    if (seekable_) update_filepos(file_fd_, offset_ + static_cast<std::int64_t>(total_), total_);
  }

  EventLoop& loop_;
  int fd_;
  int file_fd_;
  std::int64_t offset_;
  std::size_t count_;
  bool seekable_ = false;
  std::size_t total_ = 0;
  std::shared_ptr<std::vector<std::byte>> buf_;
  Future<std::size_t> fut_;
  std::weak_ptr<detail::FutureCore> pending_;  // the read or the send in flight
};

/// One sendfile(2) attempt per writable event (asyncio's _sock_sendfile_native_impl).
struct SendfileStep {
  EventLoop* loop;
  bool fallback;
  int fd;
  int file_fd;
  std::int64_t offset;  // where the next byte comes from
  std::size_t count;    // 0: up to end of file
  std::size_t blocksize;
  std::size_t total = 0;

  bool operator()(Future<std::size_t>& fut) {
    if (count != 0) {
      if (total >= count) return finish(fut);
      blocksize = count - total;
    }
#ifdef __linux__
    off_t off = static_cast<off_t>(offset);
    ssize_t sent = sendfile_nosignal(fd, file_fd, &off, blocksize);
#else
    ssize_t sent = -1;
    errno = ENOSYS;
#endif
    if (sent < 0) {
      int err = errno;
      if (detail::would_block(err)) return false;
      if (total == 0) {
        // Most often the file cannot be mapped (not mmap-able): fall back, or say so.
        if (fallback) {
          detail::sock_follow(SendfileFallback::start(*loop, fd, file_fd, offset, count), fut);
        } else {
          fut.set_exception(SendfileNotAvailableError("os.sendfile call failed"));
        }
      } else if (err == ENOTCONN) {
        // The connection went away in the middle: one error for every platform.
        update_filepos(file_fd, offset, total);
        fut.set_exception(ConnectionError(ENOTCONN, "socket is not connected"));
      } else {
        update_filepos(file_fd, offset, total);
        fut.set_exception(make_os_error(err));
      }
      return true;
    }
    if (sent == 0) return finish(fut);  // end of file
    offset += sent;
    total += static_cast<std::size_t>(sent);
    if (count != 0 && total >= count) return finish(fut);
    return false;  // more when the socket is writable again
  }

  bool finish(Future<std::size_t>& fut) const {
    update_filepos(file_fd, offset, total);
    fut.set_result(total);
    return true;
  }

  /// The future was cancelled: the position still tells how much was sent.
  void cancelled() const {
    update_filepos(file_fd, offset, total);
  }
};

/// Fails with SendfileNotAvailableError(`why`), or falls back.
Future<std::size_t> unavailable(EventLoop& loop, const char* why, bool fallback, int fd,
                                int file_fd, std::int64_t offset, std::size_t count) {
  if (fallback) return SendfileFallback::start(loop, fd, file_fd, offset, count);
  Future<std::size_t> fut = loop.create_future<std::size_t>();
  fut.set_exception(SendfileNotAvailableError(why));
  return fut;
}

/// asyncio's _sock_sendfile_native, going on with the fallback when sendfile(2) turns out
/// unusable before anything was sent (and `fallback` allows it).
Future<std::size_t> sendfile_native(EventLoop& loop, int fd, int file_fd, std::int64_t offset,
                                    std::size_t count, bool fallback) {
#ifndef __linux__
  return unavailable(loop, "os.sendfile() is not available", fallback, fd, file_fd, offset, count);
#else
  struct stat st {};
  if (::fstat(file_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return unavailable(loop, "not a regular file", fallback, fd, file_fd, offset, count);
  }
  std::size_t blocksize = count != 0 ? count : static_cast<std::size_t>(st.st_size);
  if (blocksize == 0) {
    Future<std::size_t> empty = loop.create_future<std::size_t>();
    empty.set_result(0);
    return empty;
  }
  return detail::sock_op<std::size_t>(
      loop, fd, UV_WRITABLE, SendfileStep{&loop, fallback, fd, file_fd, offset, count, blocksize});
#endif
}

}  // namespace

Future<std::size_t> EventLoop::sock_sendfile(SocketRef sock, int file_fd, std::int64_t offset,
                                             std::optional<std::int64_t> count, bool fallback) {
  const int fd = sock.fileno();
  detail::sock_check(*this, fd);
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) throw_os_error(errno);
  if (type != SOCK_STREAM) throw ValueError("only SOCK_STREAM type sockets are supported");
  if (count && *count <= 0) {
    throw ValueError("count must be a positive integer (got " + std::to_string(*count) + ")");
  }
  if (offset < 0) {
    throw ValueError("offset must be a non-negative integer (got " + std::to_string(offset) + ")");
  }
  if (file_fd < 0) throw ValueError("Invalid file descriptor: " + std::to_string(file_fd));

  // Internally 0 stands for "up to end of file".
  return sendfile_native(*this, fd, file_fd, offset, static_cast<std::size_t>(count.value_or(0)),
                         fallback);
}

}  // namespace asyncuv
