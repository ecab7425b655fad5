// asyncio's streams (asyncio/streams.py): StreamReader / StreamWriter over a stream
// connection, open_connection() and start_server() (and their Unix variants).
//
//   auto [reader, writer] = co_await asyncuv::open_connection("127.0.0.1", 8888);
//   writer.write("hello\n");
//   co_await writer.drain();
//   std::string line = co_await reader.readline();
//   writer.close();
//   co_await writer.wait_closed();
//
// Semantics (CPython 3.13):
//  - StreamReader buffers what arrives. Its `limit` (64 KiB by default) bounds a line
//    (readline/readuntil) and, doubled, the buffer: above 2 * limit the transport stops
//    reading until a read brings the buffer back to the limit or below (or a read has to
//    wait). read(-1), read(n) and readexactly(n) ignore the limit.
//  - One coroutine at a time may wait for data: another read while one waits throws
//    RuntimeError("read() called while another coroutine is already waiting for incoming
//    data") (readline waits as "readuntil"). Cancelling a waiting read consumes nothing.
//  - An exception set on the reader (set_exception, or the connection lost with an error) is
//    thrown by the waiting read and by every later one; data still buffered is not returned.
//  - StreamWriter.drain() waits while the transport's write buffer is above its high-water
//    mark, throws the reader's exception if it has one, and ConnectionResetError("Connection
//    lost") once the connection is gone. wait_closed() waits until the connection is closed
//    (throwing the error it ended with, if any).
//  - The peer's EOF makes the reader see end of file and keeps the connection half-open: the
//    writer still works until close() (asyncio returns True from eof_received, except over
//    TLS).
//  - Handles are cheap copies sharing one state. When the last copy of a StreamWriter goes
//    away while its transport is still open, the transport is closed (asyncio 3.13's
//    StreamWriter.__del__); in debug mode a warning "unclosed <StreamWriter ...>" is logged.
#pragma once

#include <any>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncuv/connection_options.hpp"
#include "asyncuv/detail/stream_reader_state.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/server.hpp"
#include "asyncuv/stream_errors.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv {

/// asyncio's _DEFAULT_LIMIT: the default line length limit of a StreamReader (64 KiB).
inline constexpr std::size_t stream_default_limit = 64 * 1024;

class StreamReaderProtocol;

namespace detail {
class StreamWriterState;
/// Coroutine: asyncio FlowControlMixin._drain_helper: ConnectionResetError("Connection lost")
/// once the connection is lost, else waits while `protocol`'s writing is paused.
Task<void> drain_helper(std::shared_ptr<StreamReaderProtocol> protocol);
}  // namespace detail

/// asyncio.StreamReader: the receiving side of a stream. A handle: copies share one reader.
/// Not thread-safe; use it on its loop's thread.
class StreamReader {
 public:
  /// A reader on get_event_loop(). ValueError("Limit cannot be <= 0") for limit 0.
  explicit StreamReader(std::size_t limit = stream_default_limit);
  /// A reader on `loop`.
  explicit StreamReader(EventLoop& loop, std::size_t limit = stream_default_limit);
  /// A handle on existing state (internal).
  explicit StreamReader(std::shared_ptr<detail::StreamReaderState> state) noexcept
      : state_(std::move(state)) {}

  /// Coroutine: up to `n` bytes, as soon as at least one is buffered; "" at end of file.
  /// n < 0 (the default) reads until end of file; n == 0 returns "" at once.
  Task<std::string> read(std::ptrdiff_t n = -1) const;

  /// Coroutine: one line, "\n" included. At end of file: the incomplete last line ("" if
  /// none). A line longer than the limit throws ValueError (the asyncio message); the line is
  /// dropped if its "\n" arrived, else everything buffered is.
  Task<std::string> readline() const;

  /// Coroutine: exactly `n` bytes. IncompleteReadError(partial, n) if the stream ends first
  /// (what was buffered is taken into `partial`); ValueError for n < 0; "" for 0.
  Task<std::string> readexactly(std::ptrdiff_t n) const;

  /// Coroutine: everything up to and including `separator`. LimitOverrunError when the
  /// limit is reached first ("Separator is not found, and chunk exceed the limit" or
  /// "Separator is found, but chunk is longer than limit"; the data stays buffered);
  /// IncompleteReadError(partial, none) at end of file (the buffer is emptied into it).
  /// ValueError("Separator should be at least one-byte string") for "".
  Task<std::string> readuntil(std::string_view separator = "\n") const;
  /// readuntil with several separators (asyncio 3.13's tuple): returns the shortest data
  /// ending with any of them; for LimitOverrunError the shortest separator counts.
  /// ValueError("Separator should contain at least one element") for none.
  Task<std::string> readuntil(std::span<const std::string> separators) const;
  Task<std::string> readuntil(std::span<const std::string_view> separators) const;
  Task<std::string> readuntil(std::initializer_list<std::string_view> separators) const;

  /// True once feed_eof() was called and the buffer is empty.
  bool at_eof() const;
  /// The stored exception (null if none).
  std::exception_ptr exception() const;
  /// Stores `exc` (thrown by every later read) and fails the waiting read with it.
  void set_exception(std::exception_ptr exc) const;
  template <class E>
  requires std::is_base_of_v<std::exception, std::decay_t<E>>
  void set_exception(E&& e) const { set_exception(std::make_exception_ptr(std::forward<E>(e))); }
  /// The transport to pause and resume (set by StreamReaderProtocol). RuntimeError("Transport
  /// already set") the second time.
  void set_transport(std::shared_ptr<Transport> transport) const;
  /// Appends `data` and wakes the waiting read. RuntimeError("feed_data after feed_eof")
  /// once feed_eof() was called (an assertion in asyncio).
  void feed_data(std::string_view data) const;
  /// Marks the end of the stream and wakes the waiting read.
  void feed_eof() const;

  /// How many received bytes are buffered and not read yet (asyncio: len(reader._buffer)).
  std::size_t buffered_size() const noexcept { return state_->buffer.size(); }
  /// The buffered bytes themselves, without consuming them: for protocol code that peeks
  /// (and for tests). Valid until the next read, feed_data() or feed_eof().
  std::string_view buffered() const noexcept { return state_->buffer.view(); }

  /// The line length limit.
  std::size_t limit() const noexcept { return state_->limit; }
  /// The loop the reader belongs to.
  EventLoop& get_loop() const { return state_->loop(); }
  /// asyncio's repr: "<StreamReader 4 bytes eof limit=10 transport=<...> paused>".
  std::string repr() const { return state_->repr(); }

  /// The shared state (internal).
  const std::shared_ptr<detail::StreamReaderState>& state() const noexcept { return state_; }
  friend bool operator==(const StreamReader& a, const StreamReader& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  std::shared_ptr<detail::StreamReaderState> state_;
};

/// asyncio.StreamWriter: the sending side of a stream, wrapping its transport. A handle:
/// copies share one writer.
class StreamWriter {
 public:
  /// A writer on `transport`, whose protocol is `protocol`; `reader` (if any) is checked by
  /// drain() for an error.
  StreamWriter(std::shared_ptr<Transport> transport, std::shared_ptr<StreamReaderProtocol> protocol,
               std::optional<StreamReader> reader, EventLoop& loop);

  /// The transport.
  std::shared_ptr<Transport> transport() const;

  /// Writes `data` (never blocks; await drain() for flow control).
  void write(std::string_view data) const;
  void write(std::span<const std::byte> data) const;
  /// Writes the pieces in order.
  void writelines(std::span<const std::string_view> data) const;
  void writelines(std::span<const std::string> data) const;
  void writelines(std::initializer_list<std::string_view> data) const;

  /// Whether write_eof() is supported by the transport.
  bool can_write_eof() const;
  /// Half-closes after the buffered data is sent.
  void write_eof() const;
  /// Closes the transport (buffered data is still sent).
  void close() const;
  /// True once the transport is closing or closed.
  bool is_closing() const;

  /// Coroutine: waits until the connection is closed; throws the error it was lost with.
  Task<void> wait_closed() const;

  /// Coroutine: waits until the transport's write buffer is at its low-water mark (returns at
  /// once when writing is not paused). Throws the reader's exception if it has one, and
  /// ConnectionResetError("Connection lost") once the connection is lost (after yielding once
  /// to the loop when the transport is closing, so that connection_lost() can run).
  Task<void> drain() const;

  /// The transport's extra info ("peername", "sockname", "socket", ...), or `default_value`.
  std::any get_extra_info(std::string_view name, std::any default_value = {}) const;
  /// Typed extra info: get_extra_info<SockAddr>("peername").
  template <class T>
  std::optional<T> get_extra_info(std::string_view name) const {
    return transport()->template get_extra_info<T>(name);
  }

  /// The loop the writer belongs to.
  EventLoop& get_loop() const;
  /// The protocol (a StreamReaderProtocol).
  std::shared_ptr<StreamReaderProtocol> protocol() const;
  /// asyncio's repr: "<StreamWriter transport=<...> reader=<StreamReader ...>>".
  std::string repr() const;

  friend bool operator==(const StreamWriter& a, const StreamWriter& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  std::shared_ptr<detail::StreamWriterState> state_;
};

/// The client_connected_cb of start_server(): called as cb(reader, writer) for every
/// connection. It returns void (called directly) or Task<void> (run as a task; when it ends
/// with an exception, the exception handler gets "Unhandled exception in client_connected_cb"
/// with "exception" and "transport", and the transport is closed; cancelled, the transport is
/// closed too).
class ClientConnectedCallback {
 public:
  ClientConnectedCallback() = default;
  template <class F>
  requires(!std::same_as<std::remove_cvref_t<F>, ClientConnectedCallback> &&
           std::invocable<std::decay_t<F>&, StreamReader, StreamWriter>)
      ClientConnectedCallback(F&& f) {  // NOLINT: implicit on purpose
    using Fn = std::decay_t<F>;
    using R = std::invoke_result_t<Fn&, StreamReader, StreamWriter>;
    static_assert(std::is_void_v<R> || std::is_same_v<R, Task<void>>,
                  "client_connected_cb must return void or asyncuv::Task<void>");
    // Shared, so that the callable (a lambda coroutine's captures) outlives every task
    // started from it: each task keeps a copy of this callback until it is done.
    auto shared = std::make_shared<Fn>(std::forward<F>(f));
    fn_ = [shared](StreamReader reader, StreamWriter writer) -> Task<void> {
      if constexpr (std::is_void_v<R>) {
        (*shared)(std::move(reader), std::move(writer));
        return Task<void>();
      } else {
        return (*shared)(std::move(reader), std::move(writer));
      }
    };
  }

  explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
  /// Calls the callback: its coroutine (not yet scheduled), or an empty Task for a plain one.
  Task<void> operator()(StreamReader reader, StreamWriter writer) const {
    return fn_(std::move(reader), std::move(writer));
  }

 private:
  std::function<Task<void>(StreamReader, StreamWriter)> fn_;
};

/// asyncio.StreamReaderProtocol: feeds a StreamReader from a connection and gives the
/// StreamWriter its flow control (asyncio's FlowControlMixin). For servers it makes the
/// StreamWriter and calls the client callback in connection_made().
class StreamReaderProtocol : public Protocol,
                             public std::enable_shared_from_this<StreamReaderProtocol> {
 public:
  /// A protocol feeding `reader` (may be empty) on get_event_loop().
  explicit StreamReaderProtocol(std::optional<StreamReader> reader,
                                ClientConnectedCallback client_connected_cb = {});
  /// A protocol on `loop`. A client callback needs a reader (TypeError otherwise).
  StreamReaderProtocol(EventLoop& loop, std::optional<StreamReader> reader,
                       ClientConnectedCallback client_connected_cb = {});
  /// Marks an exception of the closed future as retrieved (nothing logs "never retrieved").
  ~StreamReaderProtocol() override;
  StreamReaderProtocol(const StreamReaderProtocol&) = delete;
  StreamReaderProtocol& operator=(const StreamReaderProtocol&) = delete;

  /// Sets the reader's transport; with a client callback, makes the writer and calls it.
  void connection_made(std::shared_ptr<Transport> transport) override;
  /// Ends the reader (feed_eof, or set_exception(exc)), completes closed(), wakes drain().
  void connection_lost(std::exception_ptr exc) override;
  /// Feeds the reader.
  void data_received(std::string_view data) override;
  /// Feeds EOF to the reader; returns true (half-open) unless the transport is TLS.
  bool eof_received() override;
  /// Writing is paused: drain() waits from now on.
  void pause_writing() override;
  /// Writing resumes: every waiting drain() wakes.
  void resume_writing() override;

  /// The future completed when the connection is lost (asyncio _get_close_waiter).
  Future<void> closed() const { return closed_; }
  /// True while pause_writing() is in effect.
  bool writing_paused() const noexcept { return paused_; }
  /// True once connection_lost() ran.
  bool connection_lost_called() const noexcept { return connection_lost_; }
  /// The loop.
  EventLoop& get_loop() const noexcept { return loop_; }
  /// The reader, if it still exists (the protocol only holds it weakly once connected).
  std::optional<StreamReader> reader() const;

 private:
  friend Task<void> detail::drain_helper(std::shared_ptr<StreamReaderProtocol> protocol);

  EventLoop& loop_;
  std::weak_ptr<detail::StreamReaderState> reader_;
  std::shared_ptr<detail::StreamReaderState> strong_reader_;  // until connection_made
  ClientConnectedCallback client_connected_cb_;
  bool over_ssl_ = false;
  Future<void> closed_;
  bool paused_ = false;
  bool connection_lost_ = false;
  std::vector<Future<void>> drain_waiters_;
};

// ---- opening connections and servers -------------------------------------------------------

/// Coroutine: connects to `host`:`port` with loop.create_connection() on the running loop and
/// returns the (reader, writer) pair (asyncio.open_connection). `limit` is the reader's limit.
Task<std::pair<StreamReader, StreamWriter>> open_connection(
    std::string host, std::uint16_t port, ConnectionOptions options = {},
    std::size_t limit = stream_default_limit);
/// open_connection over options.sock, an already connected stream socket.
Task<std::pair<StreamReader, StreamWriter>> open_connection(
    ConnectionOptions options, std::size_t limit = stream_default_limit);

/// Coroutine: connects to the Unix stream socket at `path` (asyncio.open_unix_connection).
Task<std::pair<StreamReader, StreamWriter>> open_unix_connection(
    std::string path, UnixConnectionOptions options = {}, std::size_t limit = stream_default_limit);
/// open_unix_connection over options.sock, an already connected AF_UNIX stream socket.
Task<std::pair<StreamReader, StreamWriter>> open_unix_connection(
    UnixConnectionOptions options, std::size_t limit = stream_default_limit);

namespace detail {
/// The protocol factory of start_server(): a new StreamReader(limit) and StreamReaderProtocol
/// calling `cb` per connection.
std::function<std::shared_ptr<StreamReaderProtocol>()> stream_protocol_factory(
    EventLoop& loop, ClientConnectedCallback cb, std::size_t limit);
}  // namespace detail

/// Coroutine: a TCP server on `host`:`port` (loop.create_server() on the running loop) that
/// calls client_connected_cb(reader, writer) for every connection (asyncio.start_server).
/// The callback returns void or Task<void> (see ClientConnectedCallback).
template <class F>
Task<std::shared_ptr<Server>> start_server(F client_connected_cb, std::string host,
                                           std::uint16_t port, ServerOptions options = {},
                                           std::size_t limit = stream_default_limit) {
  EventLoop& loop = get_running_loop();
  auto factory = detail::stream_protocol_factory(
      loop, ClientConnectedCallback(std::move(client_connected_cb)), limit);
  Task<std::shared_ptr<Server>> creating =
      loop.create_server(std::move(factory), std::move(host), port, std::move(options));
  co_return co_await std::move(creating);
}

/// start_server over options.sock, a bound (or listening) stream socket.
template <class F>
Task<std::shared_ptr<Server>> start_server(F client_connected_cb, ServerOptions options,
                                           std::size_t limit = stream_default_limit) {
  EventLoop& loop = get_running_loop();
  auto factory = detail::stream_protocol_factory(
      loop, ClientConnectedCallback(std::move(client_connected_cb)), limit);
  Task<std::shared_ptr<Server>> creating =
      loop.create_server(std::move(factory), std::move(options));
  co_return co_await std::move(creating);
}

/// Coroutine: a server on the Unix stream socket `path` calling client_connected_cb(reader,
/// writer) for every connection (asyncio.start_unix_server).
template <class F>
Task<std::shared_ptr<Server>> start_unix_server(F client_connected_cb, std::string path,
                                                UnixServerOptions options = {},
                                                std::size_t limit = stream_default_limit) {
  EventLoop& loop = get_running_loop();
  auto factory = detail::stream_protocol_factory(
      loop, ClientConnectedCallback(std::move(client_connected_cb)), limit);
  Task<std::shared_ptr<Server>> creating =
      loop.create_unix_server(std::move(factory), std::move(path), std::move(options));
  co_return co_await std::move(creating);
}

/// start_unix_server over options.sock, a bound (or listening) AF_UNIX stream socket.
template <class F>
Task<std::shared_ptr<Server>> start_unix_server(F client_connected_cb, UnixServerOptions options,
                                                std::size_t limit = stream_default_limit) {
  EventLoop& loop = get_running_loop();
  auto factory = detail::stream_protocol_factory(
      loop, ClientConnectedCallback(std::move(client_connected_cb)), limit);
  Task<std::shared_ptr<Server>> creating =
      loop.create_unix_server(std::move(factory), std::move(options));
  co_return co_await std::move(creating);
}

}  // namespace asyncuv
