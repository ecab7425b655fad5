// Pipe transports over libuv's uv_pipe_t: asyncio's _UnixReadPipeTransport and
// _UnixWritePipeTransport (unix_events.py), for pipes, FIFOs, sockets and character devices
// (ttys). What connect_read_pipe / connect_write_pipe and the subprocess transport's stdio
// pipes are made of.
//
// Entry point: detail::make_pipe_transport() (below).
//
// How it maps onto libuv:
// - The descriptor is opened with uv_pipe_open (which makes it non-blocking); uv_close closes
//   it once connection_lost() ran (or the loop closed).
// - Read side: uv_read_start after connection_made; data_received() is called from libuv's
//   read callback with the loop's 64 KiB read buffer. At end of file reading stops, and
//   eof_received() then connection_lost(nullptr) are scheduled (the value eof_received()
//   returns does not matter: a read pipe has nothing left to do). A read error closes the
//   transport with connection_lost(that error); EIO (a pty whose other side closed) is only
//   logged in debug mode, other errors go to the exception handler ("Fatal read error on
//   pipe transport").
// - Write side: uv_try_write first, the rest buffered and sent with one uv_write at a time
//   (coalescing what is written meanwhile), with asyncio's flow control. write_eof() and
//   close() close the pipe once the buffer is flushed; abort() drops it. A write to a pipe
//   whose reader is gone ends the transport with connection_lost(BrokenPipeError) (only logged
//   in debug mode). As asyncio's "reader trick", for FIFOs and sockets the transport also
//   watches a duplicate of the descriptor for readability (a uv_poll_t): the reader closing
//   makes it readable (or report an error), and the transport closes itself: with
//   BrokenPipeError if data was still buffered, else cleanly. (asyncio also watches character
//   devices; a tty's input would then close the transport, so asyncuv does not.)
// - Writes after close()/write_eof() are dropped, a warning logged from the 5th on (asyncio's
//   pipe transport; unlike a socket transport it does not throw).
//
// One class serves both directions, so that the stream API (StreamReader / StreamWriter,
// which take a Transport) can sit on a pipe. The half a pipe does not have behaves as if idle:
// a write pipe is never "reading" (pause_reading/resume_reading do nothing); a read pipe has
// an empty write buffer, and write()/write_eof() throw RuntimeError. connect_read_pipe and
// connect_write_pipe hand it out as a ReadTransport / WriteTransport only.
//
// Lifetime, as the stream transport: an open pipe transport owns itself and its protocol
// until connection_lost() ran and libuv closed the handle; closing the loop closes every open
// pipe without calling its protocol.
#pragma once

#include <uv.h>

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "asyncuv/detail/loop_service.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv::detail {

/// Which way a pipe transport carries data.
enum class PipeMode { read, write };

class PipeTransport;

/// Makes the transport of pipe `fd` (asyncio's _make_read_pipe_transport /
/// _make_write_pipe_transport). On success the transport owns `fd`; on failure (an exception)
/// `fd` is left open. As asyncio, the protocol's connection_made(transport) is scheduled with
/// call_soon, reading (or watching for the reader to close) starts in the callback after it,
/// and `waiter` (if given) is completed right after connection_made() ran.
///
/// A read pipe needs a Protocol (TypeError otherwise); a write pipe any BaseProtocol.
/// Throws RuntimeError("Event loop is closed"), RuntimeError for an fd a transport owns,
/// ValueError("Invalid file descriptor: N") for a negative fd, OSError (EBADF) for a closed
/// one, and ValueError("Pipe transport is for pipes/sockets only.") (read) or
/// ValueError("Pipe transport is only for pipes, sockets and character devices") (write) for
/// anything else, such as a regular file.
std::shared_ptr<PipeTransport> make_pipe_transport(EventLoop& loop, int fd, PipeMode mode,
                                                   std::shared_ptr<BaseProtocol> protocol,
                                                   Future<void> waiter = {});

/// The pipe transport (see the file comment). Only make_pipe_transport() creates it.
class PipeTransport final : public Transport, public std::enable_shared_from_this<PipeTransport> {
  struct Private {};

 public:
  /// Use make_pipe_transport().
  PipeTransport(Private, EventLoop& loop, int fd, PipeMode mode);
  ~PipeTransport() override;
  PipeTransport(const PipeTransport&) = delete;
  PipeTransport& operator=(const PipeTransport&) = delete;

  // ---- BaseTransport ----
  /// Read pipe: stops reading, connection_lost(nullptr) follows. Write pipe: write_eof().
  void close() override;
  bool is_closing() const override { return closing_; }
  /// Replaces the protocol (a Protocol for a read pipe; TypeError otherwise). Ignored once
  /// connection_lost() was delivered.
  void set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
  /// The protocol; null once connection_lost() was delivered.
  std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }
  EventLoop& get_loop() const override { return loop_; }

  // ---- ReadTransport (a write pipe: never reading; pausing does nothing) ----
  bool is_reading() const override;
  void pause_reading() override;
  void resume_reading() override;

  // ---- WriteTransport (a read pipe: RuntimeError on write / write_eof) ----
  void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                               std::optional<std::size_t> low = std::nullopt) override;
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const override {
    return {low_water_, high_water_};
  }
  std::size_t get_write_buffer_size() const override;
  using WriteTransport::write;
  void write(std::string_view data) override;
  /// Closes the pipe once the buffer is flushed (asyncio: the same as close()).
  void write_eof() override;
  bool can_write_eof() const override { return mode_ == PipeMode::write; }
  /// Drops the buffer and closes; connection_lost(nullptr) follows.
  void abort() override;

  /// asyncio-style text: "<_UnixWritePipeTransport fd=7 idle bufsize=0>".
  std::string repr() const;
  /// The pipe's descriptor (still reported after it was closed).
  int fd() const noexcept { return fd_; }
  /// Which way the pipe goes.
  PipeMode mode() const noexcept { return mode_; }
  /// True once libuv closed the descriptor.
  bool pipe_closed() const noexcept { return handle_closing_; }

  /// Intrusive list of the loop's open pipe transports.
  PipeTransport* prev_open = nullptr;
  PipeTransport* next_open = nullptr;

 private:
  friend std::shared_ptr<PipeTransport> make_pipe_transport(EventLoop&, int, PipeMode,
                                                            std::shared_ptr<BaseProtocol>,
                                                            Future<void>);
  friend class PipeTransports;

  std::any extra_info(std::string_view name) const override;

  int open_handle(bool watch_peer);
  void start(std::shared_ptr<BaseProtocol> protocol, Future<void> waiter);
  void install_protocol(std::shared_ptr<BaseProtocol> protocol);

  // Reading (lib/pipe_transport.cpp).
  void start_reading();
  void stop_reading() noexcept;
  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  void read_done(ssize_t nread, const uv_buf_t* buf);
  void read_eof();

  // Writing (lib/pipe_transport_write.cpp).
  void submit_pending();
  static void on_write(uv_write_t* req, int status);
  void write_done(int status);
  void maybe_pause_protocol();
  void maybe_resume_protocol();
  bool buffer_empty() const noexcept { return pending_.empty() && !write_in_flight_; }
  void start_peer_watch();
  void stop_peer_watch() noexcept;
  static void on_peer_event(uv_poll_t* poll, int status, int events);
  void peer_closed();

  // Errors and closing.
  /// asyncio _fatal_error: reports `e` (only in debug mode for the errors a closed peer
  /// gives), then close_with(e).
  void fatal_error(std::exception_ptr e, const char* message);
  void report(std::exception_ptr e, const std::string& message);
  /// asyncio _close: stops everything, drops the buffer, schedules connection_lost(exc).
  void close_with(std::exception_ptr exc);
  void schedule_connection_lost(std::exception_ptr exc);
  void call_connection_lost(std::exception_ptr exc);
  void release_after_connection_lost() noexcept;
  void close_handle() noexcept;
  static void on_close(uv_handle_t* handle);
  void loop_closed() noexcept;
  void defer_fatal(std::exception_ptr e) noexcept;

  uv_stream_t* stream() noexcept { return reinterpret_cast<uv_stream_t*>(&pipe_); }
  const uv_stream_t* stream() const noexcept {
    return reinterpret_cast<const uv_stream_t*>(&pipe_);
  }
  uv_handle_t* handle() noexcept { return reinterpret_cast<uv_handle_t*>(&pipe_); }

  EventLoop& loop_;
  uv_pipe_t pipe_{};
  int fd_;
  PipeMode mode_;
  bool handle_open_ = false;     // uv_pipe_init succeeded; uv_close not called yet
  bool handle_closing_ = false;  // uv_close called
  int closes_pending_ = 0;       // libuv close callbacks still to come

  std::shared_ptr<PipeTransport> self_;  // owns itself until libuv closed its handles
  std::shared_ptr<BaseProtocol> protocol_;
  Protocol* read_protocol_ = nullptr;  // protocol_ as a Protocol (read pipes)

  bool closing_ = false;
  int conn_lost_ = 0;       // connection_lost scheduled (or the write side failed)
  int dropped_writes_ = 0;  // writes dropped because the pipe is closing or lost
  bool lost_delivered_ = false;

  // Reading.
  bool started_ = false;  // the callback after connection_made ran
  bool paused_ = false;
  bool reading_ = false;
  char* read_buf_ = nullptr;

  // Writing.
  std::string pending_;
  std::string inflight_;
  bool write_in_flight_ = false;
  uv_write_t write_req_{};
  std::size_t high_water_ = WriteTransport::default_high_water;
  std::size_t low_water_ = WriteTransport::default_high_water / 4;
  bool protocol_paused_ = false;
  // The reader trick: a poll on a duplicate of the descriptor (FIFOs and sockets).
  uv_poll_t peer_poll_{};
  int peer_fd_ = -1;
  bool peer_poll_open_ = false;
  bool peer_watching_ = false;
};

/// The loop's open pipe transports, so that loop.close() can close them, and the read
/// buffer they share.
class PipeTransports final : public LoopService {
 public:
  explicit PipeTransports(EventLoop&) {}
  ~PipeTransports() override = default;

  /// Closes every open pipe transport without calling its protocol.
  void close() noexcept override;

  void add(PipeTransport* t) noexcept;
  void remove(PipeTransport* t) noexcept;
  /// How many pipe transports are open.
  std::size_t size() const noexcept { return count_; }

  /// The buffer every read pipe of the loop reads into (null if allocating it failed).
  char* read_buffer() noexcept;
  static constexpr std::size_t read_buffer_size = 64 * 1024;

 private:
  std::unique_ptr<char[]> read_buffer_;
  PipeTransport* head_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace asyncuv::detail
