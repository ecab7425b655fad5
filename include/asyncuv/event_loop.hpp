// asyncuv::EventLoop: asyncio's event loop (base_events.BaseEventLoop) over a libuv loop.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>
#include "asyncuv/source_location.hpp"

#include "asyncuv/connection_options.hpp"
#include "asyncuv/context.hpp"
#include "asyncuv/detail/handle_impl.hpp"
#include "asyncuv/detail/loop_service.hpp"
#include "asyncuv/detail/ready_queue.hpp"
#include "asyncuv/detail/timer_heap.hpp"
#include "asyncuv/detail/uv_handle.hpp"
#include "asyncuv/durations.hpp"
#include "asyncuv/exception_context.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/handle.hpp"
#include "asyncuv/subprocess_options.hpp"

namespace asyncuv {

class EventLoop;
template <class T>
class Future;
template <class T>
class Task;
class AnyTask;
struct AddrInfo;  // <asyncuv/dns.hpp>
struct NameInfo;
class SockAddr;
class SocketRef;  // <asyncuv/socket.hpp>
class Socket;
class Transport;  // <asyncuv/transports.hpp>
class Server;     // <asyncuv/server.hpp>
class Executor;
// datagram endpoints (<asyncuv/datagram.hpp>)
class DatagramTransport;  // <asyncuv/transports.hpp>
struct DatagramEndpointOptions;
// end of datagram forward declarations
// subprocesses and pipes (<asyncuv/subprocess.hpp>, <asyncuv/pipes.hpp>)
class ReadTransport;  // <asyncuv/transports.hpp>
class WriteTransport;
class SubprocessTransport;
// end of subprocess forward declarations
// TLS (<asyncuv/ssl.hpp>)
class BaseProtocol;  // <asyncuv/protocols.hpp>
// end of TLS forward declarations

namespace detail {
class FutureCore;
class TaskStateBase;
/// asyncio.run's / Runner.close's cleanup; `unset_event_loop`: set_event_loop(nullptr) too.
void finish_run(EventLoop& loop, bool unset_event_loop = true) noexcept;
/// A context was created on the thread running `loop` (lib/contexts.cpp): the batch in
/// progress, if any, must switch to running its callbacks in contexts.
void notice_context_created(EventLoop& loop) noexcept;
/// The protocol pointer type a protocol factory returns (std::shared_ptr<P>).
template <class F>
using ProtocolPtrOf = std::remove_cvref_t<std::invoke_result_t<F&>>;
/// Shared with the futures of a loop so they can tell whether it still exists. `loop` is
/// cleared (under `mutex`) when the loop is destroyed; other threads read it under `mutex`.
struct LoopAnchor {
  explicit LoopAnchor(EventLoop* l) : loop(l) {}
  EventLoop* loop;
  std::mutex mutex;
};
}  // namespace detail

/// A custom exception handler: handler(loop, context), as set_exception_handler takes.
using ExceptionHandler = std::function<void(EventLoop&, const ExceptionContext&)>;

/// A task factory: factory(loop, coro) returns the scheduled task (see set_task_factory).
using TaskFactory = std::function<AnyTask(EventLoop&, AnyTask)>;

/// The event loop. Either owns a fresh uv_loop_t (`EventLoop loop;`) or adopts one that the
/// host program drives (`EventLoop loop(host_uv_loop);`): call_soon, timers and everything
/// else then work while the host calls uv_run itself.
///
/// Callbacks run exactly once, FIFO for call_soon, deadline order for timers, in batches as
/// asyncio's _run_once does: each iteration polls I/O, moves expired timers to the ready queue,
/// then runs only the callbacks that were ready when the batch started.
///
/// Not thread-safe, except call_soon_threadsafe() and stop() (which only sets a flag).
class EventLoop {
 public:
  /// A loop owning a new uv_loop_t.
  EventLoop();
  /// A loop adopting `host`, which it never closes or frees. Its handles are closed when the
  /// EventLoop closes; libuv frees them on the host loop's next iteration.
  explicit EventLoop(uv_loop_t* host);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  /// Closes the loop if it is not closed yet.
  virtual ~EventLoop();

  /// The underlying libuv loop.
  uv_loop_t* uv_loop() const noexcept { return uv_; }
  /// True when this EventLoop created (and will close) its uv_loop_t.
  bool owns_uv_loop() const noexcept { return owned_ != nullptr; }

  // ---- running and stopping -------------------------------------------------------------

  /// Runs until stop() is called. Throws RuntimeError if the loop is closed, already running,
  /// or another loop runs in this thread. A fatal exception (see FatalError) thrown by a
  /// callback propagates out of it.
  void run_forever();

  /// Stops run_forever() after the current batch of callbacks. Before run_forever(), makes the
  /// next run poll I/O once with a zero timeout, run one batch and return. Sets a flag only;
  /// from another thread it does not wake the loop (use call_soon_threadsafe for that).
  void stop() noexcept;

  /// True while run_forever() runs (or while the host's uv_run dispatches this loop's batch).
  bool is_running() const noexcept { return running_ || dispatching_; }

  /// Closes the loop, discarding pending callbacks and timers. Idempotent. Throws
  /// RuntimeError("Cannot close a running event loop") while running.
  void close();

  /// True once close() has been called.
  bool is_closed() const noexcept { return closed_; }

  // ---- scheduling -----------------------------------------------------------------------

  /// Schedules f() for the next iteration (asyncio call_soon).
  template <class F>
  requires std::invocable < std::decay_t<F>
  & > Handle call_soon(F&& f,
                       asyncuv::source_location where = asyncuv::source_location::current()) {
    check_schedulable();
    return push_ready(detail::make_handle(where, std::forward<F>(f)));
  }
  /// Schedules f(args...) for the next iteration; the arguments are stored by value.
  template <class F, class A0, class... As>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<A0>&, std::decay_t<As>&... > Handle call_soon(F&& f, A0&& a0, As&&... as) {
    check_schedulable();
    return push_ready(detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                          std::forward<A0>(a0), std::forward<As>(as)...));
  }

  /// call_soon(f, *args, context=context): f(args...) runs inside `context` itself (asyncio's
  /// context= argument) instead of a copy of the current context.
  template <class F, class... As>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<As>&... > Handle call_soon(const Context& context, F&& f, As&&... as) {
    check_schedulable();
    return push_ready_in_context(detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                                     std::forward<As>(as)...),
                                 context.impl());
  }

  /// call_soon that may be called from any thread; wakes the loop. Throws
  /// RuntimeError("Event loop is closed") on a closed loop.
  template <class F>
  requires std::invocable < std::decay_t<F>
  & > Handle call_soon_threadsafe(
          F&& f, asyncuv::source_location where = asyncuv::source_location::current()) {
    return push_threadsafe(detail::make_handle(where, std::forward<F>(f)));
  }
  template <class F, class A0, class... As>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<A0>&,
      std::decay_t<As>&... > Handle call_soon_threadsafe(F&& f, A0&& a0, As&&... as) {
    return push_threadsafe(detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                               std::forward<A0>(a0), std::forward<As>(as)...));
  }

  /// call_soon_threadsafe with asyncio's context= argument.
  template <class F, class... As>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<As>&... > Handle call_soon_threadsafe(const Context& context, F&& f, As&&... as) {
    detail::HandleImpl* h = detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                                std::forward<As>(as)...);
    detail::retain_context(context.impl());
    h->context = context.impl();
    return push_threadsafe(h, false);
  }

  /// Schedules f() to run `delay` seconds from now (a double or a std::chrono duration). Zero
  /// and negative delays still give a TimerHandle, ordered by deadline.
  template <class F>
  requires std::invocable < std::decay_t<F>
  & > TimerHandle call_later(Seconds delay, F&& f,
                             asyncuv::source_location where = asyncuv::source_location::current()) {
    check_schedulable();
    return push_timer(detail::make_handle(where, std::forward<F>(f)), time() + delay.value);
  }
  template <class F, class A0, class... As>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<A0>&,
      std::decay_t<As>&... > TimerHandle call_later(Seconds delay, F&& f, A0&& a0, As&&... as) {
    check_schedulable();
    return push_timer(detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                          std::forward<A0>(a0), std::forward<As>(as)...),
                      time() + delay.value);
  }

  /// call_later with asyncio's context= argument: f(args...) runs inside `context`.
  template <class F, class... As>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<As>&... >
         TimerHandle call_later(Seconds delay, const Context& context, F&& f, As&&... as) {
    check_schedulable();
    detail::HandleImpl* h = detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                                std::forward<As>(as)...);
    detail::retain_context(context.impl());
    h->context = context.impl();
    return push_timer_raw(h, time() + delay.value);
  }

  /// Schedules f() at absolute loop time `when` (a double or a steady_clock time point).
  template <class F>
  requires std::invocable < std::decay_t<F>
  & > TimerHandle call_at(LoopTime when, F&& f,
                          asyncuv::source_location where = asyncuv::source_location::current()) {
    check_schedulable();
    return push_timer(detail::make_handle(where, std::forward<F>(f)), when.value);
  }
  template <class F, class A0, class... As>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<A0>&,
      std::decay_t<As>&... > TimerHandle call_at(LoopTime when, F&& f, A0&& a0, As&&... as) {
    check_schedulable();
    return push_timer(detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                          std::forward<A0>(a0), std::forward<As>(as)...),
                      when.value);
  }

  /// call_at with asyncio's context= argument: f(args...) runs inside `context`.
  template <class F, class... As>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<As>&... >
         TimerHandle call_at(LoopTime when, const Context& context, F&& f, As&&... as) {
    check_schedulable();
    detail::HandleImpl* h = detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                                std::forward<As>(as)...);
    detail::retain_context(context.impl());
    h->context = context.impl();
    return push_timer_raw(h, when.value);
  }

  /// The loop's clock: monotonic seconds with nanosecond resolution (the steady clock).
  double time() const noexcept { return static_cast<double>(uv_hrtime()) * 1e-9; }

  // ---- futures ----------------------------------------------------------------------------

  /// A new pending Future<T> attached to this loop (asyncio create_future). Works on a closed
  /// loop too. Defined in <asyncuv/futures.hpp>.
  template <class T = void>
  Future<T> create_future();

  // ---- tasks (defined in <asyncuv/tasks.hpp>) -------------------------------------------

  /// Schedules coroutine `coro` as a task (asyncio create_task); its first step runs on the
  /// next iteration, never now. `name` defaults to "Task-N". Goes through the task factory if
  /// one is set. `eager_start` (3.14): true runs the first step now, inside create_task, while
  /// the loop runs (see <asyncuv/eager_tasks.hpp>); false never does; unset: the factory's
  /// default (an eager task factory's is true).
  template <class T>
  Task<T> create_task(Task<T> coro, std::string name = {},
                      std::optional<bool> eager_start = std::nullopt);
  /// create_task(coro, context=context): every step of the task runs in `context` itself,
  /// not in a copy of the current context. A task factory sees the task with its context set.
  template <class T>
  Task<T> create_task(Task<T> coro, const Context& context, std::string name = {},
                      std::optional<bool> eager_start = std::nullopt);

  /// Runs the loop until `future` is done and returns its result (or rethrows its exception).
  /// Throws ValueError for a future of another loop, and RuntimeError("Event loop stopped
  /// before Future completed.") if stop() ended the run first.
  template <class T>
  T run_until_complete(Future<T> future);
  /// Runs a task (scheduling a not-yet-scheduled coroutine first) to completion.
  template <class T>
  T run_until_complete(Task<T> task);

  /// Sets the task factory used by create_task (empty restores the default).
  void set_task_factory(TaskFactory factory) { task_factory_ = std::move(factory); }
  /// The task factory; empty by default.
  const TaskFactory& get_task_factory() const noexcept { return task_factory_; }

  /// Shared by this loop's futures; its pointer is cleared when the loop is destroyed
  /// (internal).
  const std::shared_ptr<detail::LoopAnchor>& anchor() const noexcept { return anchor_; }

  // ---- errors -----------------------------------------------------------------------------

  /// Installs `handler` (empty restores the default handler).
  void set_exception_handler(ExceptionHandler handler) { handler_ = std::move(handler); }
  /// The custom handler; empty by default.
  const ExceptionHandler& get_exception_handler() const noexcept { return handler_; }
  /// Logs `context` through the "asyncuv" logger at ERROR, in asyncio's format. Subclasses
  /// may override it.
  virtual void default_exception_handler(const ExceptionContext& context);
  /// Passes `context` to the custom handler, or the default one. Never throws, except a fatal
  /// exception (see FatalError) thrown by a handler.
  void call_exception_handler(const ExceptionContext& context);

  // ---- debug mode -------------------------------------------------------------------------

  /// Debug mode: on by default when the environment variable ASYNCUV_DEBUG is non-empty.
  bool get_debug() const noexcept { return debug_; }
  void set_debug(bool enabled) noexcept { debug_ = enabled; }
  /// In debug mode, callbacks running longer than this (seconds, default 0.1) are logged.
  double slow_callback_duration() const noexcept { return slow_callback_duration_; }
  void set_slow_callback_duration(double seconds) noexcept { slow_callback_duration_ = seconds; }

  /// How many batches (asyncio _run_once iterations) this loop has dispatched.
  std::uint64_t iteration_count() const noexcept { return iterations_; }

  // ---- watching file descriptors (asyncio selector_events) -------------------------------

  /// Watches `fd` for reading (asyncio add_reader): f(args...) runs in every loop iteration in
  /// which `fd` is readable (level-triggered: until the data is read or the reader removed),
  /// also at end of file and when polling the fd fails. The arguments are stored by value. A
  /// second add_reader on `fd` replaces the reader and cancels the old handle; the reader and
  /// the writer of an fd are independent. libuv puts `fd` in non-blocking mode. Throws
  /// RuntimeError("Event loop is closed"), RuntimeError for an fd used by a transport,
  /// ValueError("Invalid file descriptor: N") for a negative fd, OSError (EBADF) for a closed
  /// fd, PermissionError (EPERM) for a regular file. A callback's exception goes to the
  /// exception handler; the reader stays registered.
  template <class F, class... As>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<As>&... > void add_reader(int fd, F&& f, As&&... args) {
    fd_watcher_check(fd);
    fd_watcher_add(fd, UV_READABLE,
                   detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                       std::forward<As>(args)...));
  }
  /// Stops watching `fd` for reading and cancels the reader's handle. True if a reader was
  /// removed; false if there was none or the loop is closed. Safe inside the reader itself.
  bool remove_reader(int fd);
  /// Watches `fd` for writing (asyncio add_writer): f(args...) runs in every iteration in
  /// which `fd` is writable, until remove_writer(fd). Otherwise exactly like add_reader.
  template <class F, class... As>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<As>&... > void add_writer(int fd, F&& f, As&&... args) {
    fd_watcher_check(fd);
    fd_watcher_add(fd, UV_WRITABLE,
                   detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                       std::forward<As>(args)...));
  }
  /// Stops watching `fd` for writing; true if a writer was removed (see remove_reader).
  bool remove_writer(int fd);
  /// call_soon running f() in `context` (null: a fresh empty one) rather than a copy of the
  /// current context (internal: tasks and future callbacks pass their own).
  template <class F>
  Handle call_soon_in(detail::ContextImpl* context, F&& f) {
    check_schedulable();
    return push_ready_in_context(
        detail::make_handle(asyncuv::source_location{}, std::forward<F>(f)), context);
  }

  /// Schedules handle `h` to run in `context` (null: a fresh empty one), not a copy of the
  /// current context (internal: tasks and future callbacks pass their own context).
  Handle push_ready_in_context(detail::HandleImpl* h, detail::ContextImpl* context) {
    if (context != nullptr) detail::retain_context(context);
    h->context = context;
    return push_ready_raw(h);
  }

  /// add_reader / add_writer's checks before the handle is built (internal).
  void fd_watcher_check(int fd);
  /// Registers watcher handle `h` for `event` (UV_READABLE or UV_WRITABLE) (internal).
  void fd_watcher_add(int fd, int event, detail::HandleImpl* h);

  // ---- signals (asyncio unix_events) -----------------------------------------------------

  /// Runs f(args...) as an ordinary loop callback each time signal `sig` arrives (asyncio
  /// add_signal_handler); replaces this loop's earlier handler for `sig`. Throws
  /// ValueError("invalid signal number N"), RuntimeError("sig N cannot be caught") for
  /// SIGKILL/SIGSTOP, or RuntimeError("Event loop is closed"). Defined in
  /// <asyncuv/signals.hpp>, which describes the semantics.
  template <class F, class... As>
  void add_signal_handler(int sig, F&& f, As&&... args);
  /// Removes the handler for `sig` and restores the default disposition (SIG_DFL). Returns
  /// false if the loop had no handler for it; ValueError for an invalid signal number.
  /// Differs from asyncio for SIGINT on purpose: Python reinstalls its KeyboardInterrupt
  /// handler (signal.default_int_handler); C++ has none, so SIGINT goes back to SIG_DFL and
  /// terminates the process.
  bool remove_signal_handler(int sig);

  // ---- executors -------------------------------------------------------------------------

  /// Runs f(args...) on `executor` (nullptr: the default executor, a ThreadPoolExecutor created
  /// on first use) and returns a Future of this loop for its result; an exception thrown by f
  /// is the Future's. Arguments are stored by value. Cancelling the Future before the job
  /// starts keeps it from running. Throws RuntimeError("Event loop is closed") on a closed
  /// loop and, for the default executor, RuntimeError("Executor shutdown has been called")
  /// after shutdown_default_executor(). Defined in <asyncuv/executors.hpp>.
  template <class F, class... As>
  auto run_in_executor(std::shared_ptr<Executor> executor, F&& f, As&&... args)
      -> Future<std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>&, std::decay_t<As>&...>>>;
  /// Makes `executor` the default executor (TypeError for nullptr). The previous one is not
  /// shut down. asyncio (3.11+) accepts only a ThreadPoolExecutor; here any Executor is
  /// accepted, since implementing asyncuv::Executor is how a program supplies its own pool.
  void set_default_executor(std::shared_ptr<Executor> executor);
  /// Coroutine: refuses the default executor from now on and waits, on a helper thread while
  /// the loop keeps running, until its jobs finish and its threads exit. After `timeout`
  /// seconds it logs a warning and stops waiting. Calling it again is harmless.
  Task<void> shutdown_default_executor(std::optional<Seconds> timeout = std::nullopt);

  // ---- name resolution -------------------------------------------------------------------

  /// Resolves `host` and `port` (asyncio getaddrinfo) on libuv's thread pool; the Future gets
  /// the complete list of AddrInfo in getaddrinfo's order, or GaiError. `port` is a number or
  /// a service name ("http"); "" means None. An empty `host` means None (NULL): the wildcard
  /// address with AI_PASSIVE, else loopback; host and port both empty give
  /// GaiError(EAI_NONAME). A numeric IPv4/IPv6 host with a numeric port is answered without a
  /// thread (the Future is already done). Cancelling the Future cancels the request if no
  /// worker has started it. Throws RuntimeError("Event loop is closed"), ValueError for an
  /// embedded NUL or a host name libuv rejects. Needs <asyncuv/dns.hpp>.
  Future<std::vector<AddrInfo>> getaddrinfo(std::string_view host, std::string_view port,
                                            int family = 0, int type = 0, int proto = 0,
                                            int flags = 0);
  /// getaddrinfo with a numeric port; ValueError("port must be 0-65535.") outside that range.
  Future<std::vector<AddrInfo>> getaddrinfo(std::string_view host, int port, int family = 0,
                                            int type = 0, int proto = 0, int flags = 0);
  /// The (host, service) names of `address` (asyncio getnameinfo; NI_* flags), or GaiError.
  /// TypeError for an address that is not AF_INET/AF_INET6. Needs <asyncuv/dns.hpp>.
  Future<NameInfo> getnameinfo(const SockAddr& address, int flags = 0);

  // ---- low-level socket operations -------------------------------------------------------

  /// asyncio's loop.sock_* operations on a non-blocking socket: a Socket (which must stay
  /// open until the Future is done) or a raw fd. Each tries its call at once and watches the
  /// fd only when it would block; cancelling the Future stops watching and leaves the socket
  /// usable. Throws RuntimeError("Event loop is closed"), ValueError("the socket must be
  /// non-blocking") in debug mode, and RuntimeError("File descriptor N is used by transport
  /// ...") when it must wait on an fd a transport owns. OS errors finish the Future with the
  /// OSError subclass (ConnectionResetError, BrokenPipeError, ...); sending never raises
  /// SIGPIPE. Declared here, documented and awaitable with <asyncuv/sock_ops.hpp>.

  /// Receives up to `nbytes` bytes; "" at end of stream.
  Future<std::string> sock_recv(SocketRef sock, std::size_t nbytes);
  /// Receives into `buf` (which must outlive the Future); the byte count.
  Future<std::size_t> sock_recv_into(SocketRef sock, std::span<std::byte> buf);
  /// Receives one datagram of up to `bufsize` bytes and its sender's address.
  Future<std::pair<std::string, SockAddr>> sock_recvfrom(SocketRef sock, std::size_t bufsize);
  /// Receives one datagram into `buf` (at most `nbytes` bytes; 0: buf.size()).
  Future<std::pair<std::size_t, SockAddr>> sock_recvfrom_into(SocketRef sock,
                                                              std::span<std::byte> buf,
                                                              std::size_t nbytes = 0);
  /// Sends all of `data`; what cannot be sent at once is copied and sent as the fd allows.
  Future<void> sock_sendall(SocketRef sock, std::string_view data);
  Future<void> sock_sendall(SocketRef sock, std::span<const std::byte> data);
  /// Sends one datagram to `address`; the byte count.
  Future<std::size_t> sock_sendto(SocketRef sock, std::string_view data, const SockAddr& address);
  Future<std::size_t> sock_sendto(SocketRef sock, std::span<const std::byte> data,
                                  const SockAddr& address);
  /// Connects to `address`.
  Future<void> sock_connect(SocketRef sock, const SockAddr& address);
  /// Connects to `host`:`port`, resolved with getaddrinfo (the socket's family and type) unless
  /// `host` is a numeric address of the socket's family.
  Future<void> sock_connect(SocketRef sock, std::string_view host, std::uint16_t port);
  /// Accepts a connection: the new (non-blocking) socket and the peer's address.
  Future<std::pair<Socket, SockAddr>> sock_accept(SocketRef sock);
  /// Sends `count` bytes (std::nullopt: up to end of file) of the file `file_fd` from `offset`
  /// with sendfile(2), else (fallback) by reading and sending; the byte count. As asyncio, a
  /// count that is not positive is ValueError("count must be a positive integer (got 0)").
  Future<std::size_t> sock_sendfile(SocketRef sock, int file_fd, std::int64_t offset = 0,
                                    std::optional<std::int64_t> count = std::nullopt,
                                    bool fallback = true);

  // ---- stream connections and servers (asyncio base_events / selector_events) ---------

  /// Coroutine: wraps connected stream socket `sock` (accepted outside asyncuv, or connected by
  /// hand) in a transport with the protocol `protocol_factory()` returns (a
  /// std::shared_ptr<P>, P a Protocol or BufferedProtocol), and returns both once the
  /// protocol's connection_made() ran (asyncio connect_accepted_socket). ValueError("A Stream
  /// Socket was expected, got ...") for a socket that is not SOCK_STREAM. Defined in
  /// <asyncuv/stream_connections.hpp>.
  template <class F>
  auto connect_accepted_socket(F protocol_factory, Socket sock)
      -> Task<std::pair<std::shared_ptr<Transport>, std::remove_cvref_t<std::invoke_result_t<F&>>>>;

  /// Coroutine: sends `count` bytes (std::nullopt: up to end of file; 0 is ValueError "count
  /// must be a positive integer (got 0)") of file `file_fd` from `offset` through `transport`;
  /// returns how many were sent (asyncio loop.sendfile). A
  /// socket transport waits until its write buffer is flushed, pauses reading and uses
  /// sendfile(2); otherwise, or when sendfile(2) cannot be used and `fallback` is true, the
  /// file is read on the executor and written with flow control. RuntimeError("Transport is
  /// closing"), SendfileNotAvailableError (fallback false). See <asyncuv/stream_connections.hpp>.
  Task<std::size_t> sendfile(std::shared_ptr<Transport> transport, int file_fd,
                             std::uint64_t offset = 0,
                             std::optional<std::uint64_t> count = std::nullopt,
                             bool fallback = true);

  /// Coroutine: opens a stream connection to `host`:`port` and returns the transport and
  /// the protocol `protocol_factory()` made, once its connection_made() ran (asyncio
  /// create_connection). The host is resolved with getaddrinfo; the addresses are tried in
  /// order, or raced as RFC 8305 Happy Eyeballs with options.happy_eyeballs_delay. One failure
  /// is rethrown as is; several give OSError("Multiple exceptions: ...") (or, with all_errors,
  /// an ExceptionGroup). TCP_NODELAY is set. Argument errors throw ValueError as asyncio does.
  /// Defined in <asyncuv/stream_connections.hpp>.
  template <class F>
  auto create_connection(F protocol_factory, std::string host, std::uint16_t port,
                         ConnectionOptions options = {})
      -> Task<std::pair<std::shared_ptr<Transport>, detail::ProtocolPtrOf<F>>>;
  /// create_connection over options.sock, an already connected stream socket.
  template <class F>
  auto create_connection(F protocol_factory, ConnectionOptions options)
      -> Task<std::pair<std::shared_ptr<Transport>, detail::ProtocolPtrOf<F>>>;

  /// Coroutine: connects to the Unix stream socket at `path` ('\0' first: Linux's abstract
  /// namespace) and returns the transport and protocol (asyncio create_unix_connection).
  /// Defined in <asyncuv/stream_connections.hpp>.
  template <class F>
  auto create_unix_connection(F protocol_factory, std::string path,
                              UnixConnectionOptions options = {})
      -> Task<std::pair<std::shared_ptr<Transport>, detail::ProtocolPtrOf<F>>>;
  /// create_unix_connection over options.sock, an already connected AF_UNIX stream socket.
  template <class F>
  auto create_unix_connection(F protocol_factory, UnixConnectionOptions options)
      -> Task<std::pair<std::shared_ptr<Transport>, detail::ProtocolPtrOf<F>>>;

  /// Coroutine: a TCP server listening on `host`:`port` (asyncio create_server). An empty
  /// host listens on every interface: one socket per address family (IPv6 ones with
  /// IPV6_V6ONLY). Port 0 picks a free port per socket (read it from server->sockets()). Each
  /// accepted connection gets its own protocol from `protocol_factory`. Defined in
  /// <asyncuv/server.hpp>.
  template <class F>
  Task<std::shared_ptr<Server>> create_server(F protocol_factory, std::string host,
                                              std::uint16_t port, ServerOptions options = {});
  /// create_server on several hosts (each resolved, every address bound).
  template <class F>
  Task<std::shared_ptr<Server>> create_server(F protocol_factory, std::vector<std::string> hosts,
                                              std::uint16_t port, ServerOptions options = {});
  /// create_server over options.sock, a bound stream socket.
  template <class F>
  Task<std::shared_ptr<Server>> create_server(F protocol_factory, ServerOptions options);

  /// Coroutine: a server on the Unix stream socket `path` ('\0' first: abstract namespace)
  /// (asyncio create_unix_server). A stale socket file at `path` is removed first. Defined in
  /// <asyncuv/server.hpp>.
  template <class F>
  Task<std::shared_ptr<Server>> create_unix_server(F protocol_factory, std::string path,
                                                   UnixServerOptions options = {});
  /// create_unix_server over options.sock, a bound AF_UNIX stream socket.
  template <class F>
  Task<std::shared_ptr<Server>> create_unix_server(F protocol_factory, UnixServerOptions options);

  // ---- datagram endpoints (asyncio base_events / selector_events) ---------------------

  /// Coroutine: opens a datagram endpoint (UDP, or an AF_UNIX datagram socket) and returns its
  /// transport and the protocol `protocol_factory()` made (a std::shared_ptr<P>, P a
  /// DatagramProtocol), once the protocol's connection_made() ran (asyncio
  /// create_datagram_endpoint). options.local_addr is bound, options.remote_addr connected
  /// (both resolved with getaddrinfo; the first (family, proto) pair that works is used), or
  /// options.local_path / remote_path for family AF_UNIX; options.sock wraps an existing
  /// datagram socket. Argument errors throw ValueError / TypeError as asyncio does. Defined in
  /// <asyncuv/datagram.hpp>, which describes the semantics.
  template <class F>
  auto create_datagram_endpoint(F protocol_factory, DatagramEndpointOptions options)
      -> Task<std::pair<std::shared_ptr<DatagramTransport>, detail::ProtocolPtrOf<F>>>;
  /// create_datagram_endpoint with every option at its default (which asyncio refuses: it
  /// needs an address, a family or a socket); for symmetry with asyncio's signature.
  template <class F>
  auto create_datagram_endpoint(F protocol_factory)
      -> Task<std::pair<std::shared_ptr<DatagramTransport>, detail::ProtocolPtrOf<F>>>;

  // ---- subprocesses and pipes (asyncio base_events / unix_events) ----------------------

  /// Coroutine: starts program argv[0] (looked up on PATH) with arguments `argv` and returns
  /// its transport and the protocol `protocol_factory()` made (a std::shared_ptr<P>, P a
  /// SubprocessProtocol) once connection_made() ran (asyncio subprocess_exec). Each standard
  /// stream is a Stdio: pipe() (the default), devnull(), to_stdout() (stderr only), fd(n) or
  /// inherit(). The child's exit and pipes reach the protocol; connection_lost() comes last.
  /// Throws FileNotFoundError for a missing program (the OSError Popen would raise), ValueError
  /// for bad arguments. Defined in <asyncuv/subprocess.hpp>, which describes the semantics.
  template <class F>
  auto subprocess_exec(F protocol_factory, std::vector<std::string> argv,
                       Stdio stdin_ = Stdio::pipe(), Stdio stdout_ = Stdio::pipe(),
                       Stdio stderr_ = Stdio::pipe(), SubprocessOptions options = {})
      -> Task<std::pair<std::shared_ptr<SubprocessTransport>, detail::ProtocolPtrOf<F>>>;
  /// subprocess_exec of the shell command `cmd`: ["/bin/sh", "-c", cmd], or the shell
  /// options.executable names (asyncio subprocess_shell).
  template <class F>
  auto subprocess_shell(F protocol_factory, std::string cmd, Stdio stdin_ = Stdio::pipe(),
                        Stdio stdout_ = Stdio::pipe(), Stdio stderr_ = Stdio::pipe(),
                        SubprocessOptions options = {})
      -> Task<std::pair<std::shared_ptr<SubprocessTransport>, detail::ProtocolPtrOf<F>>>;

  /// Coroutine: reads the pipe, FIFO, socket or character device `fd` (which the transport
  /// then owns and closes) into the Protocol `protocol_factory()` makes, and returns both once
  /// connection_made() ran (asyncio connect_read_pipe). ValueError("Pipe transport is for
  /// pipes/sockets only.") for a regular file. Defined in <asyncuv/pipes.hpp>.
  template <class F>
  auto connect_read_pipe(F protocol_factory, int fd)
      -> Task<std::pair<std::shared_ptr<ReadTransport>, detail::ProtocolPtrOf<F>>>;
  /// Coroutine: a write transport with asyncio's flow control on the pipe, FIFO, socket or
  /// character device `fd` (owned by the transport from then on), for the protocol
  /// `protocol_factory()` makes (asyncio connect_write_pipe). ValueError("Pipe transport is
  /// only for pipes, sockets and character devices") for a regular file. See <asyncuv/pipes.hpp>.
  template <class F>
  auto connect_write_pipe(F protocol_factory, int fd)
      -> Task<std::pair<std::shared_ptr<WriteTransport>, detail::ProtocolPtrOf<F>>>;

  // ---- TLS (asyncio sslproto) ------------------------------------------------------------

  /// Coroutine: upgrades the live stream connection `transport` to TLS (asyncio start_tls):
  /// reading is paused, the transport's protocol becomes a TLS layer over `protocol` (whose
  /// connection_made() is not called again), and once the handshake succeeded the new TLS
  /// transport is returned; `transport` must not be used any more. The TLS server side with
  /// options.server_side. TypeError("sslcontext is expected to be an instance of
  /// ssl.SSLContext, got None") without a context, TypeError("transport ... is not supported by
  /// start_tls()") for a transport that is neither a socket nor a TLS transport, ValueError for
  /// a timeout <= 0. If the handshake fails, `transport` is closed and its error rethrown
  /// (ssl::SSLCertVerificationError, ConnectionAbortedError after ssl_handshake_timeout, ...).
  /// Needs <asyncuv/ssl.hpp>.
  Task<std::shared_ptr<Transport>> start_tls(std::shared_ptr<Transport> transport,
                                             std::shared_ptr<BaseProtocol> protocol,
                                             std::shared_ptr<ssl::Context> sslcontext,
                                             StartTlsOptions options = {});

  /// connect_accepted_socket() as the server side of a TLS session with options.ssl (asyncio's
  /// ssl=, ssl_handshake_timeout=, ssl_shutdown_timeout=): returns once the handshake
  /// succeeded and connection_made() ran. ValueError("ssl_handshake_timeout is only
  /// meaningful with ssl") (and the same for the shutdown timeout) without a context. Defined
  /// in <asyncuv/stream_connections.hpp>.
  template <class F>
  auto connect_accepted_socket(F protocol_factory, Socket sock, AcceptedSocketOptions options)
      -> Task<std::pair<std::shared_ptr<Transport>, std::remove_cvref_t<std::invoke_result_t<F&>>>>;

  // ---- asynchronous generators ---------------------------------------------------------

  /// Coroutine (asyncio shutdown_asyncgens): closes, concurrently, every asynchronous generator
  /// first iterated on this loop and still open, with aclose(). An Exception escaping one of
  /// them goes to the exception handler with message "an error occurred during closing of
  /// asynchronous generator <repr>", the exception, and "asyncgen" (an AnyAsyncGenerator).
  /// Afterwards the first iteration of a new generator on this loop logs a warning. asyncuv::run
  /// calls it before closing its loop. See <asyncuv/async_generator.hpp>.
  Task<void> shutdown_asyncgens();

  // ---- subsystems ------------------------------------------------------------------------

  /// The loop's instance of subsystem S (a detail::LoopService constructed as S(*this) on first
  /// use). For asyncuv's own subsystems and extensions; S is closed when the loop closes.
  template <class S>
  S& service() {
    if (S* s = find_service<S>()) return *s;
    check_closed();
    return static_cast<S&>(add_service(typeid(S), std::make_unique<S>(*this)));
  }
  /// The loop's instance of S, or nullptr if it was never created.
  template <class S>
  S* find_service() const noexcept {
    for (const auto& entry : services_) {
      if (*entry.first == typeid(S)) return static_cast<S*>(entry.second.get());
    }
    return nullptr;
  }

 protected:
  /// Throws RuntimeError("Event loop is closed") on a closed loop.
  void check_closed() const {
    if (closed_) [[unlikely]]
      throw_closed();
  }

 private:
  friend class detail::TaskStateBase;
  friend class detail::LoopService;
  friend std::vector<AnyTask> all_tasks(EventLoop& loop);
  friend void detail::finish_run(EventLoop& loop, bool unset_event_loop) noexcept;
  friend void detail::notice_context_created(EventLoop& loop) noexcept;

  template <class T, class State>
  T complete_and_return(const std::shared_ptr<State>& state, bool new_task);
  /// Runs until `future` is done (the body of run_until_complete).
  void run_until_done(detail::FutureCore& future, bool new_task);
  /// Drops the loop's references to its pending tasks (on close).
  void release_tasks() noexcept;

  void init_handles();
  detail::LoopService& add_service(const std::type_info& type,
                                   std::unique_ptr<detail::LoopService> service);
  void close_services() noexcept;
  [[noreturn]] static void throw_closed();
  void check_thread() const;
  void check_schedulable() const {
    if (closed_) [[unlikely]]
      throw_closed();
    if (debug_) [[unlikely]]
      check_thread();
  }

  Handle push_ready(detail::HandleImpl* h) {
    // asyncio's Handle takes copy_context(); nothing to copy while no context ever existed.
    if (contexts_.load(std::memory_order_relaxed)) [[unlikely]]
      h->context = detail::capture_context();
    return push_ready_raw(h);
  }
  Handle push_ready_raw(detail::HandleImpl* h) {
    // What other threads posted before this call goes first, as in asyncio's one deque.
    if (has_incoming_.load(std::memory_order_acquire)) [[unlikely]]
      drain_incoming();
    ready_.push(h);
    if (!idle_active_) [[unlikely]]
      start_idle();
    return Handle(h);
  }
  /// push_timer gives the handle a copy of the current context; push_timer_raw is for a
  /// handle that has its own.
  TimerHandle push_timer(detail::HandleImpl* h, double when) {
    if (contexts_.load(std::memory_order_relaxed)) [[unlikely]]
      h->context = detail::capture_context();
    return push_timer_raw(h, when);
  }
  TimerHandle push_timer_raw(detail::HandleImpl* h, double when);
  /// `capture`: give the handle a copy of the current context (false: it has its own).
  Handle push_threadsafe(detail::HandleImpl* h, bool capture = true);

  void start_idle() noexcept;
  void update_idle() noexcept;
  void arm_timer() noexcept {
    if (timers_.empty() && armed_when_ < 0) return;  // nothing scheduled, nothing armed
    rearm_timer();
  }
  void rearm_timer() noexcept;
  bool on_loop_thread() const noexcept;

  // libuv callbacks
  static void on_check(uv_check_t* h);
  static void on_idle(uv_idle_t* h);
  static void on_wake_timer(uv_timer_t* h);
  static void on_async(uv_async_t* h);

  void run_batch();
  /// `InContexts`: some context exists, so h runs inside one (asyncio's Handle._run);
  /// decided once per batch, see run_batch.
  template <bool InContexts>
  void run_handle(detail::HandleImpl* h);
  void run_handle_in_context(detail::HandleImpl* h);
  /// Runs up to `ntodo` ready callbacks, each in its context if `InContexts`, else bare (no
  /// context exists). Returns how many are left when a fatal error ends the batch or, bare,
  /// when the first context appears; 0 once all ran.
  template <bool InContexts>
  std::size_t run_ready(std::size_t ntodo);
  /// The rare path of a batch, taken when `attention_` is set after a callback: true to end
  /// the batch (a fatal error).
  bool on_attention(detail::HandleImpl* h, bool in_contexts);
  /// After a bare callback: the context it made (the first of this thread) becomes h's.
  void claim_context_made_by(detail::HandleImpl* h) noexcept;
  void set_fatal(std::exception_ptr e) noexcept {
    fatal_ = std::move(e);
    attention_ = true;
  }
  void report_callback_error(detail::HandleImpl* h, std::exception_ptr e);
  void drain_incoming();
  void after_batch();

  uv_loop_t* uv_ = nullptr;
  uv_loop_t* owned_ = nullptr;
  std::shared_ptr<detail::LoopAnchor> anchor_ = std::make_shared<detail::LoopAnchor>(this);
  detail::UvHandle<uv_idle_t> idle_;
  detail::UvHandle<uv_check_t> check_;
  detail::UvHandle<uv_timer_t> wake_timer_;
  detail::UvHandle<uv_async_t> async_;

  detail::ReadyQueue ready_;
  detail::TimerHeap timers_;

  bool idle_active_ = false;
  bool closed_ = false;
  bool running_ = false;       // inside run_forever
  bool dispatching_ = false;   // inside a batch
  bool stop_reached_ = false;  // the batch that honoured stop() (or a fatal error) has run
  bool debug_ = false;
  // Set by what the batch must look at after the callback that ran: a fatal error, or a
  // context created on this thread. One flag keeps the per-callback cost to one test.
  bool attention_ = false;
  // detail::g_contexts_in_use, mirrored here (detail::watch_contexts) for the hot paths.
  std::atomic<bool> contexts_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> has_incoming_{false};
  std::atomic<std::thread::id> thread_;  // the thread that runs (or last ran / created) it
  double armed_when_ = -1;               // the deadline the wake timer is armed for
  double slow_callback_duration_ = 0.1;
  std::uint64_t iterations_ = 0;
  std::exception_ptr fatal_;
  ExceptionHandler handler_;
  TaskFactory task_factory_;
  detail::TaskStateBase* tasks_ = nullptr;  // pending tasks (intrusive list)
  std::vector<std::pair<const std::type_info*, std::unique_ptr<detail::LoopService>>> services_;

  std::mutex incoming_mutex_;
  std::vector<detail::HandleImpl*> incoming_;  // from call_soon_threadsafe on other threads
  bool incoming_closed_ = false;               // guarded by incoming_mutex_
};

}  // namespace asyncuv
