// The shared state behind asyncuv::StreamReader handles (asyncio StreamReader's attributes),
// and the byte buffer it reads from. Internal: <asyncuv/streams.hpp> is the public face.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"

namespace asyncuv {
class Transport;
}

namespace asyncuv::detail {

/// A FIFO of bytes: appends at the back, consumes at the front in amortized O(1) (the
/// consumed prefix is only moved away once it is the larger part).
class ByteBuffer {
 public:
  /// The unread bytes.
  std::string_view view() const noexcept { return std::string_view(data_).substr(start_); }
  std::size_t size() const noexcept { return data_.size() - start_; }
  bool empty() const noexcept { return size() == 0; }
  void append(std::string_view bytes) { data_.append(bytes); }
  /// Removes and returns the first `n` bytes (n <= size()).
  std::string take(std::size_t n);
  /// Drops the first `n` bytes (n <= size()).
  void consume(std::size_t n) noexcept;
  void clear() noexcept {
    data_.clear();
    start_ = 0;
  }

 private:
  std::string data_;
  std::size_t start_ = 0;
};

/// What every copy of one StreamReader shares. The field names follow asyncio's.
class StreamReaderState {
 public:
  StreamReaderState(EventLoop& loop, std::size_t limit);

  /// The reader's loop; RuntimeError if it was destroyed.
  EventLoop& loop() const;
  /// True if the loop is alive and in debug mode.
  bool debug() const noexcept;

  /// asyncio feed_data: appends, wakes the waiting reader, pauses the transport above
  /// 2 * limit. RuntimeError("feed_data after feed_eof") after feed_eof().
  void feed_data(std::string_view data);
  /// asyncio feed_eof: marks the end and wakes the waiting reader.
  void feed_eof();
  /// asyncio set_exception: stores `exc` and fails the waiting reader with it.
  void set_exception(std::exception_ptr exc);
  /// asyncio set_transport: RuntimeError("Transport already set") the second time.
  void set_transport(std::shared_ptr<Transport> t);
  /// Resumes the paused transport once the buffer is at or below the limit.
  void maybe_resume_transport();

  /// asyncio _wait_for_data's first half: RuntimeError("<func_name>() called while another
  /// coroutine is already waiting for incoming data") if a reader waits already, resumes a
  /// paused transport, and returns the new waiter to await.
  Future<void> begin_wait(const char* func_name);
  /// The second half (asyncio's `finally`): forgets `waiter` if it is still the current one.
  void end_wait(const Future<void>& waiter) noexcept;

  /// Rethrows the stored exception, if any.
  void throw_if_failed() const {
    if (exception) std::rethrow_exception(exception);
  }

  /// asyncio's repr: "<StreamReader 4 bytes eof limit=10 waiter=... transport=... paused>".
  std::string repr() const;

  std::shared_ptr<LoopAnchor> anchor;
  std::size_t limit;
  ByteBuffer buffer;
  bool eof = false;
  bool paused = false;
  Future<void> waiter;  // set while a read waits for data
  std::exception_ptr exception;
  std::shared_ptr<Transport> transport;

 private:
  void wakeup_waiter();
};

/// A transport's text for reprs and exception contexts: "<SocketTransport fd=7 ...>".
std::string transport_repr(const Transport* transport);

/// Keeps a read waiting on `waiter` registered and forgets it however the wait ends (the
/// `finally` of asyncio's _wait_for_data).
struct ReaderWaitScope {
  StreamReaderState& state;
  Future<void> waiter;
  ~ReaderWaitScope() { state.end_wait(waiter); }
};

}  // namespace asyncuv::detail
