// The stream transport over a libuv stream: asyncio's _SelectorSocketTransport for TCP
// (uv_tcp_t) and Unix stream sockets (uv_pipe_t). What create_connection, create_server,
// create_unix_connection, connect_accepted_socket (and TLS, on top) build their connections
// with.
//
// Entry point for the rest of asyncuv: detail::make_socket_transport() (below).
//
// How it maps onto libuv:
// - Reading: uv_read_start. A Protocol gets data_received() straight from one 64 KiB read
//   buffer shared by all the loop's transports (libuv reads one stream at a time and the
//   protocol sees the data only during data_received(), so an idle connection costs no
//   buffer and no read allocates); a BufferedProtocol's get_buffer()
//   span is what libuv's alloc callback hands out, so data lands in the user's buffer, then
//   buffer_updated(n). The protocol is called from libuv's read callback, on the loop's thread
//   while the loop runs (as uvloop does), never before connection_made().
// - Writing: uv_try_write first; only what the socket did not take is copied into the write
//   buffer. At most one uv_write is in flight; what is written meanwhile is coalesced into one
//   pending buffer, sent as the next uv_write. get_write_buffer_size() counts every byte not
//   yet handed to the OS (the pending buffer plus libuv's unsent part of the write in flight).
// - write_eof(): uv_shutdown, which libuv issues once the writes before it are done.
// - close(): reading stops; once the buffer drained, connection_lost(nullptr) is scheduled with
//   call_soon, and after it ran the handle is closed with uv_close (closing the fd).
//
// Error reporting follows CPython's _SelectorTransport._fatal_error: an OSError (peer reset,
// broken pipe, any read/write failure of the socket) is only logged at debug level in debug
// mode; any other exception (thrown by data_received, eof_received, get_buffer,
// buffer_updated) goes to the loop's exception handler with "message", "exception",
// "transport" (std::shared_ptr<asyncuv::Transport>) and "protocol"
// (std::shared_ptr<asyncuv::BaseProtocol>), read with context.transport<asyncuv::Transport>()
// and context.protocol<asyncuv::BaseProtocol>(). Either way the transport is then aborted and
// connection_lost(exc) follows. A fatal exception (FatalError, std::bad_alloc) thrown by a
// protocol callback is rethrown from a loop callback, so that it leaves run_forever().
//
// Lifetime: an open transport owns itself (and its protocol) until connection_lost() has run
// and libuv closed the handle, so every user reference may be dropped at any time. Closing the
// loop closes every open transport's socket without calling its protocol again.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "asyncuv/detail/loop_service.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/sockaddr.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv::detail {

/// Lets a server count, close and abort its connections (asyncio's Server._attach/_detach).
/// A transport made with a tracker calls attach() once, when it is created, and detach() once,
/// when it is gone: right after its protocol's connection_lost() ran, or when the loop closes
/// with the connection still open. During loop.close() the loop is already closed: detach()
/// must then not schedule anything on it. Exceptions from detach() are ignored.
class ConnectionTracker {
 public:
  virtual ~ConnectionTracker() = default;
  /// A new connection; the tracker may keep `transport` until detach().
  virtual void attach(std::shared_ptr<Transport> transport) = 0;
  /// The connection `transport` is gone.
  virtual void detach(Transport* transport) = 0;
};

/// Makes the transport for connected stream socket `sock` (asyncio _make_socket_transport):
/// AF_INET/AF_INET6 sockets become a uv_tcp_t with TCP_NODELAY, every other family (AF_UNIX) a
/// uv_pipe_t. The transport takes over the descriptor (it closes it when the connection ends)
/// and claims it in the loop's fd watchers (add_reader & co. refuse it meanwhile).
///
/// `protocol` must be a Protocol or a BufferedProtocol. As asyncio, the protocol's
/// connection_made(transport) is scheduled with call_soon, reading starts in the callback after
/// it, and `waiter` (if given) is completed right after connection_made() ran (unless it is
/// done or cancelled by then): await it to know the connection is set up. `tracker`, if given,
/// is attached now and detached when the connection is gone (see ConnectionTracker).
///
/// The first transport also makes the process ignore SIGPIPE if it is at its default
/// disposition (Python does the same at startup): a write to a reset connection then fails with
/// EPIPE instead of killing the program.
///
/// Throws RuntimeError("Event loop is closed"), ValueError("A Stream Socket was expected, got
/// ...") for a non-stream or closed socket, TypeError for a null protocol or one that is
/// neither a Protocol nor a BufferedProtocol, or the OSError libuv reports (the socket is then
/// closed).
std::shared_ptr<Transport> make_socket_transport(EventLoop& loop, Socket sock,
                                                 std::shared_ptr<BaseProtocol> protocol,
                                                 std::shared_ptr<ConnectionTracker> tracker = {},
                                                 Future<void> waiter = {});

/// "<Socket fd=5 family=2 type=1 proto=6>": a socket in error messages.
std::string describe_socket(const Socket& sock);

/// The transport. Only make_socket_transport() creates it; the public face is
/// asyncuv::Transport. The extra members are for loop.sendfile() and tests.
class StreamTransport final : public Transport,
                              public std::enable_shared_from_this<StreamTransport> {
  struct Private {};

 public:
  /// Use make_socket_transport().
  StreamTransport(Private, EventLoop& loop, const Socket& sock);
  ~StreamTransport() override;
  StreamTransport(const StreamTransport&) = delete;
  StreamTransport& operator=(const StreamTransport&) = delete;

  // The Transport overrides below behave as <asyncuv/transports.hpp> documents them (and
  // <asyncuv/stream_connections.hpp> sums up); only what differs is commented here.

  // ---- BaseTransport ----
  void close() override;
  bool is_closing() const override { return closing_; }
  /// Replaces the protocol: later callbacks go to `protocol` (a Protocol or a
  /// BufferedProtocol; TypeError otherwise). Ignored once connection_lost() was delivered.
  void set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
  /// The protocol; null once connection_lost() was delivered.
  std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }
  EventLoop& get_loop() const override { return loop_; }

  // ---- ReadTransport ----
  bool is_reading() const override { return !closing_ && !paused_; }
  void pause_reading() override;
  void resume_reading() override;

  // ---- WriteTransport ----
  void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                               std::optional<std::size_t> low = std::nullopt) override;
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const override {
    return {low_water_, high_water_};
  }
  std::size_t get_write_buffer_size() const override;
  using WriteTransport::write;
  void write(std::string_view data) override;
  void write_eof() override;
  bool can_write_eof() const override { return true; }
  void abort() override;

  /// asyncio-style text: "<SocketTransport fd=7 read=polling write=<idle, bufsize=0>>".
  std::string repr() const;
  /// The socket's descriptor (still reported after it was closed).
  int fd() const noexcept { return fd_; }
  /// True once libuv closed the socket (after connection_lost, or on loop.close()).
  bool socket_closed() const noexcept { return handle_closing_; }
  /// True while pause_writing() is in effect (asyncio _protocol_paused).
  bool protocol_paused() const noexcept { return protocol_paused_; }
  /// asyncio _make_empty_waiter: a future completed once the write buffer is empty (at once
  /// if it is), failed if writing fails or the connection is lost first. While it is set,
  /// write() throws RuntimeError("unable to write; sendfile is in progress"). RuntimeError
  /// ("Empty waiter is already set") when called twice without reset_empty_waiter().
  Future<void> make_empty_waiter();
  /// Clears the empty waiter (asyncio _reset_empty_waiter).
  void reset_empty_waiter() noexcept { empty_waiter_ = Future<void>(); }

  /// Intrusive list of the loop's open transports (StreamTransports).
  StreamTransport* prev_open = nullptr;
  StreamTransport* next_open = nullptr;

 private:
  friend std::shared_ptr<Transport> make_socket_transport(EventLoop&, Socket,
                                                          std::shared_ptr<BaseProtocol>,
                                                          std::shared_ptr<ConnectionTracker>,
                                                          Future<void>);
  friend class StreamTransports;

  std::any extra_info(std::string_view name) const override;

  /// Opens the libuv handle on `sock`'s descriptor; a libuv error code (the handle is then
  /// closed and `sock` keeps its descriptor).
  int open_handle(const Socket& sock, bool tcp);
  /// Schedules connection_made, the start of reading and the waiter (constructor's tail).
  void start(std::shared_ptr<BaseProtocol> protocol, Future<void> waiter);
  /// Installs `protocol`, caching which kind it is.
  void install_protocol(std::shared_ptr<BaseProtocol> protocol);

  // Reading.
  void start_reading();
  void stop_reading() noexcept;
  static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_close(uv_handle_t* handle);
  void read_done(ssize_t nread, const uv_buf_t* buf);
  void read_eof();

  // Writing (lib/stream_transport_write.cpp).
  void submit_pending();
  void shutdown_write();
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  void write_done(int status);
  void maybe_pause_protocol();
  void maybe_resume_protocol();
  bool buffer_empty() const noexcept { return pending_.empty() && !write_in_flight_; }

  // Errors and closing.
  /// asyncio _fatal_error: reports `e` (see the file comment), then force_close(e).
  void fatal_error(std::exception_ptr e, const char* message);
  /// Reports a non-OSError `e` thrown by a protocol callback (or by pause/resume_writing):
  /// handler context with transport and protocol. Fatal exceptions are deferred.
  void report(std::exception_ptr e, const std::string& message);
  /// A protocol callback threw `e`: deferred if fatal, else fatal_error(e, message).
  void protocol_failed(std::exception_ptr e, const char* message);
  /// asyncio _force_close: drops the buffer, stops reading, schedules connection_lost(exc).
  void force_close(std::exception_ptr exc);
  /// Schedules connection_lost(exc) with call_soon.
  void schedule_connection_lost(std::exception_ptr exc);
  /// asyncio _call_connection_lost: calls the protocol, then releases everything.
  void call_connection_lost(std::exception_ptr exc);
  /// The "finally" of call_connection_lost: closes the socket, drops the protocol, detaches
  /// from the tracker and fails a pending empty waiter.
  void release_after_connection_lost() noexcept;
  /// Closes the libuv handle (and so the fd), gives the fd back to the fd watchers, leaves
  /// the loop's list of open transports.
  void close_handle() noexcept;
  /// The loop is closing with this transport open: closes the socket, drops the protocol and
  /// detaches from the tracker, calling no protocol method.
  void loop_closed() noexcept;
  /// Rethrows `e` (a fatal exception) from a loop callback, out of run_forever().
  void defer_fatal(std::exception_ptr e) noexcept;
  void detach_tracker() noexcept;

  uv_stream_t* stream() noexcept { return reinterpret_cast<uv_stream_t*>(&uv_); }
  const uv_stream_t* stream() const noexcept { return reinterpret_cast<const uv_stream_t*>(&uv_); }
  uv_handle_t* handle() noexcept { return reinterpret_cast<uv_handle_t*>(&uv_); }

  EventLoop& loop_;
  union Uv {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } uv_;
  bool handle_open_ = false;     // uv_*_init succeeded; uv_close not called yet
  bool handle_closing_ = false;  // uv_close called
  int fd_ = -1;
  bool tcp_ = false;

  std::shared_ptr<StreamTransport> self_;  // owns itself until libuv closed the handle
  std::shared_ptr<BaseProtocol> protocol_;
  Protocol* stream_protocol_ = nullptr;            // protocol_ as a Protocol, or null
  BufferedProtocol* buffered_protocol_ = nullptr;  // protocol_ as a BufferedProtocol, or null
  std::shared_ptr<ConnectionTracker> tracker_;
  std::optional<SockAddr> sockname_;
  std::optional<SockAddr> peername_;

  // State (asyncio's names).
  bool closing_ = false;         // close() / abort() called, or the connection was lost
  bool paused_ = false;          // pause_reading() in effect
  bool eof_ = false;             // write_eof() called
  int conn_lost_ = 0;            // connection_lost scheduled; counts writes dropped since
  bool lost_delivered_ = false;  // connection_lost ran (or the loop closed)

  // Reading state.
  bool read_allowed_ = false;  // the start-reading callback after connection_made ran
  bool reading_ = false;       // uv_read_start in effect
  bool read_eof_ = false;      // the peer's EOF was received
  char* read_buf_ = nullptr;   // the loop's shared read buffer (StreamTransports)
  std::shared_ptr<BufferedProtocol> reading_into_;  // gave the buffer of the current read
  std::exception_ptr alloc_error_;                  // thrown by get_buffer()

  // Writing state.
  std::string pending_;   // written while a uv_write is in flight, sent next
  std::string inflight_;  // the buffer of the uv_write in flight
  bool write_in_flight_ = false;
  bool shutdown_sent_ = false;
  uv_write_t write_req_{};
  uv_shutdown_t shutdown_req_{};
  std::size_t high_water_ = WriteTransport::default_high_water;
  std::size_t low_water_ = WriteTransport::default_high_water / 4;
  bool protocol_paused_ = false;
  Future<void> empty_waiter_;
};

/// The loop's open stream transports, so that loop.close() can close their sockets.
class StreamTransports final : public LoopService {
 public:
  explicit StreamTransports(EventLoop&) {}
  ~StreamTransports() override = default;

  /// Closes every open transport (StreamTransport::loop_closed).
  void close() noexcept override;

  void add(StreamTransport* t) noexcept;
  void remove(StreamTransport* t) noexcept;
  /// How many transports are open.
  std::size_t size() const noexcept { return count_; }

  /// The read buffer every Protocol transport of the loop reads into (allocated on first
  /// use; null if that allocation failed).
  char* read_buffer() noexcept;
  /// Its size.
  static constexpr std::size_t read_buffer_size = 64 * 1024;

 private:
  std::unique_ptr<char[]> read_buffer_;
  StreamTransport* head_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace asyncuv::detail
