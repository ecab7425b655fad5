// loop.sendfile(transport, file_fd, ...): asyncio base_events.sendfile, with selector_events'
// _sendfile_native (flush the buffer, pause reading, sendfile(2) on the socket) and
// base_events' _sendfile_fallback (read the file on the executor, write it through the
// transport, waiting for resume_writing() whenever the protocol would be paused).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "asyncuv/detail/describe.hpp"
#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/executors.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/sock_ops.hpp"
#include "asyncuv/tasks.hpp"
#include "sendfile_position.hpp"

namespace asyncuv {

namespace {

/// The block size of asyncio's transport fallback (base_events._sendfile_fallback).
constexpr std::size_t kFallbackBlock = 16 * 1024;

/// "<TypeName object at 0x...>" for a transport that is not one of ours.
std::string transport_repr(const Transport& transport) {
  if (const auto* ours = dynamic_cast<const detail::StreamTransport*>(&transport)) {
    return ours->repr();
  }
  char address[32];
  std::snprintf(address, sizeof address, "%p", static_cast<const void*>(&transport));
  return "<" + detail::demangle(typeid(transport).name()) + " object at " + address + ">";
}

/// Owns a descriptor (the dup of a transport's socket that sendfile(2) writes to).
struct OwnedFd {
  int fd;
  explicit OwnedFd(int f) noexcept : fd(f) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
};

/// asyncio's _SendfileFallbackProtocol: stands in for the transport's protocol while the
/// fallback writes the file, turning pause_writing()/resume_writing() into a future to wait
/// on, and hands everything back in restore().
class SendfileFallbackProtocol final : public Protocol {
 public:
  /// Installs a new fallback protocol on `transport` (pausing its reading).
  static std::shared_ptr<SendfileFallbackProtocol> install(EventLoop& loop, Transport& transport) {
    auto self = std::make_shared<SendfileFallbackProtocol>(loop, transport);
    transport.pause_reading();
    transport.set_protocol(self);
    if (self->should_resume_writing_) self->write_ready_ = loop.create_future<void>();
    return self;
  }

  SendfileFallbackProtocol(EventLoop& loop, Transport& transport)
      : loop_(loop),
        transport_(transport),
        proto_(transport.get_protocol()),
        should_resume_reading_(transport.is_reading()),
        should_resume_writing_(writing_paused(transport)) {}

  /// The future to wait on before writing more (empty when writing may go on).
  Future<void> write_ready() const { return write_ready_; }

  void connection_made(std::shared_ptr<Transport>) override {
    throw RuntimeError("Invalid state: connection should have been established already.");
  }

  void connection_lost(std::exception_ptr exc) override {
    if (write_ready_) {
      // The peer went away before the whole file was sent: an error for the sender either way.
      if (!write_ready_.done()) {
        write_ready_.set_exception(
            exc ? exc : std::make_exception_ptr(ConnectionError("Connection is closed by peer")));
      }
    }
    if (proto_) proto_->connection_lost(exc);
  }

  void pause_writing() override {
    if (write_ready_) return;
    write_ready_ = loop_.create_future<void>();
  }

  void resume_writing() override {
    if (!write_ready_) return;
    if (!write_ready_.done()) write_ready_.set_result();
    write_ready_ = Future<void>();
  }

  void data_received(std::string_view) override {
    throw RuntimeError("Invalid state: reading should be paused");
  }

  bool eof_received() override { throw RuntimeError("Invalid state: reading should be paused"); }

  /// Gives the transport its protocol back and undoes the pauses.
  void restore() {
    if (proto_) transport_.set_protocol(proto_);
    if (should_resume_reading_) transport_.resume_reading();
    if (write_ready_) {
      // Nobody waits for it any more.
      write_ready_.cancel();
      write_ready_ = Future<void>();
    }
    if (should_resume_writing_ && proto_) proto_->resume_writing();
  }

 private:
  /// asyncio reads transp._protocol_paused; for a transport that is not ours the buffer size
  /// against the high-water mark says the same.
  static bool writing_paused(const Transport& transport) {
    if (const auto* ours = dynamic_cast<const detail::StreamTransport*>(&transport)) {
      return ours->protocol_paused();
    }
    return transport.get_write_buffer_size() > transport.get_write_buffer_limits().second;
  }

  EventLoop& loop_;
  Transport& transport_;  // kept alive by the sendfile coroutine
  std::shared_ptr<BaseProtocol> proto_;
  bool should_resume_reading_;
  bool should_resume_writing_;
  Future<void> write_ready_;
};

/// asyncio's selector_events._sendfile_native: wait until the write buffer is empty, pause
/// reading, sendfile(2) (loop.sock_sendfile without fallback) on a duplicate of the socket's
/// descriptor, resume reading.
Task<std::size_t> sendfile_native(EventLoop& loop, std::shared_ptr<detail::StreamTransport> t,
                                  int file_fd, std::uint64_t offset,
                                  std::optional<std::uint64_t> count) {
  const bool resume_reading = t->is_reading();
  t->pause_reading();
  Future<void> empty = t->make_empty_waiter();  // write() refuses to run from now on
  struct Restore {
    detail::StreamTransport& t;
    bool resume;
    ~Restore() {
      t.reset_empty_waiter();
      try {
        if (resume) t.resume_reading();
      } catch (...) {
        // resume_reading reports its own failures; nothing may leave a destructor.
      }
    }
  } restore{*t, resume_reading};

  co_await empty;
  // A duplicate descriptor: the transport's own fd is libuv's, which watches it itself (one
  // fd cannot have two watchers in a uv loop) and closes it whenever the connection ends. The
  // duplicate stays open until the operation is over, even when it is cancelled.
  auto dup = std::make_shared<OwnedFd>(::fcntl(t->fd(), F_DUPFD_CLOEXEC, 0));
  if (dup->fd < 0) throw_os_error(errno);
  Future<std::size_t> sending = loop.sock_sendfile(
      dup->fd, file_fd, static_cast<std::int64_t>(offset),
      count ? std::optional<std::int64_t>(static_cast<std::int64_t>(*count)) : std::nullopt, false);
  auto keep_fd = [dup](Future<std::size_t>) {};
  sending.add_done_callback(keep_fd);
  co_return co_await sending;
}

/// asyncio's base_events._sendfile_fallback: blocks of 16 KiB read on the default executor
/// and written through the transport, waiting whenever the transport would pause its
/// protocol. The file is read at explicit positions from `offset`; afterwards its position
/// is offset + bytes sent (as asyncio leaves it).
Task<std::size_t> sendfile_fallback(EventLoop& loop, std::shared_ptr<Transport> transport,
                                    int file_fd, std::uint64_t offset,
                                    std::optional<std::uint64_t> count) {
  const bool seekable = detail::position_for_fallback(file_fd, offset);
  // 0 stands for "up to end of file" here (sendfile() refused a count of 0).
  const std::uint64_t limit = count ? *count : 0;
  const std::size_t block =
      limit != 0 ? static_cast<std::size_t>(std::min<std::uint64_t>(limit, kFallbackBlock))
                 : kFallbackBlock;
  auto buf = std::make_shared<std::vector<char>>(block);
  std::uint64_t total = 0;
  auto proto = SendfileFallbackProtocol::install(loop, *transport);
  std::exception_ptr error;
  try {
    for (;;) {
      std::size_t len = block;
      if (limit != 0) {
        if (total >= limit) break;
        len = static_cast<std::size_t>(std::min<std::uint64_t>(len, limit - total));
      }
      const auto position = static_cast<off_t>(offset + total);
      auto read_block = [file_fd, seekable, position, len, buf]() -> std::size_t {
        ssize_t n;
        do {
          n = seekable ? ::pread(file_fd, buf->data(), len, position)
                       : ::read(file_fd, buf->data(), len);
        } while (n < 0 && errno == EINTR);
        if (n < 0) throw_os_error(errno);
        return static_cast<std::size_t>(n);
      };
      std::size_t n = co_await loop.run_in_executor(nullptr, read_block);
      if (n == 0) break;  // end of file
      transport->write(std::string_view(buf->data(), n));
      // asyncio's drain(): a closed transport ends the transfer, a paused one is waited for.
      if (transport->is_closing()) throw ConnectionError("Connection closed by peer");
      if (Future<void> ready = proto->write_ready()) co_await ready;
      total += n;
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (total > 0 && seekable) (void)::lseek(file_fd, static_cast<off_t>(offset + total), SEEK_SET);
  proto->restore();
  if (error) std::rethrow_exception(error);
  co_return static_cast<std::size_t>(total);
}

}  // namespace

Task<std::size_t> EventLoop::sendfile(std::shared_ptr<Transport> transport, int file_fd,
                                      std::uint64_t offset, std::optional<std::uint64_t> count,
                                      bool fallback) {
  if (!transport) throw TypeError("sendfile() needs a transport, got nullptr");
  if (transport->is_closing()) throw RuntimeError("Transport is closing");
  // asyncio's _check_sendfile_params, for both the native and the fallback path.
  if (count && *count == 0) throw ValueError("count must be a positive integer (got 0)");
  if (auto ours = std::dynamic_pointer_cast<detail::StreamTransport>(transport)) {
    // asyncio's TRY_NATIVE mode: sendfile(2), and the fallback only if that is not possible.
    try {
      co_return co_await sendfile_native(*this, std::move(ours), file_fd, offset, count);
    } catch (const SendfileNotAvailableError&) {
      if (!fallback) throw;
    }
  } else if (!fallback) {
    throw RuntimeError("fallback is disabled and native sendfile is not supported for transport " +
                       transport_repr(*transport));
  }
  co_return co_await sendfile_fallback(*this, std::move(transport), file_fd, offset, count);
}

}  // namespace asyncuv
