// asyncuv::StreamReader: asyncio StreamReader's buffer, flow control and read coroutines.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/exception_context.hpp"
#include "asyncuv/streams.hpp"

namespace asyncuv {

namespace detail {

// ---- ByteBuffer ---------------------------------------------------------------------------

std::string ByteBuffer::take(std::size_t n) {
  std::string out(view().substr(0, n));
  consume(n);
  return out;
}

void ByteBuffer::consume(std::size_t n) noexcept {
  start_ += n;
  if (start_ >= data_.size()) {
    clear();
  } else if (start_ >= 4096 && start_ * 2 >= data_.size()) {
    // The consumed prefix is the larger part: move the rest down once (amortized O(1)).
    data_.erase(0, start_);
    start_ = 0;
  }
}

// ---- StreamReaderState --------------------------------------------------------------------

std::string transport_repr(const Transport* transport) {
  if (transport == nullptr) return "None";
  if (const auto* stream = dynamic_cast<const StreamTransport*>(transport)) return stream->repr();
  return "<Transport>";
}

namespace {
std::size_t checked_limit(std::size_t limit) {
  if (limit == 0) throw ValueError("Limit cannot be <= 0");
  return limit;
}
}  // namespace

StreamReaderState::StreamReaderState(EventLoop& loop, std::size_t limit_bytes)
    : anchor(loop.anchor()), limit(checked_limit(limit_bytes)) {}

EventLoop& StreamReaderState::loop() const {
  if (anchor->loop == nullptr) throw RuntimeError("the StreamReader's event loop was destroyed");
  return *anchor->loop;
}

bool StreamReaderState::debug() const noexcept {
  return anchor->loop != nullptr && anchor->loop->get_debug();
}

void StreamReaderState::wakeup_waiter() {
  Future<void> w = std::exchange(waiter, Future<void>());
  if (w && !w.done()) w.set_result();
}

void StreamReaderState::feed_data(std::string_view data) {
  if (eof) throw RuntimeError("feed_data after feed_eof");
  if (data.empty()) return;
  buffer.append(data);
  wakeup_waiter();
  if (transport && !paused && buffer.size() > 2 * limit) {
    transport->pause_reading();
    paused = true;
  }
}

void StreamReaderState::feed_eof() {
  eof = true;
  wakeup_waiter();
}

void StreamReaderState::set_exception(std::exception_ptr exc) {
  exception = exc;
  Future<void> w = std::exchange(waiter, Future<void>());
  if (w && !w.done()) w.set_exception(std::move(exc));
}

void StreamReaderState::set_transport(std::shared_ptr<Transport> t) {
  if (transport) throw RuntimeError("Transport already set");
  transport = std::move(t);
}

void StreamReaderState::maybe_resume_transport() {
  if (paused && buffer.size() <= limit) {
    paused = false;
    transport->resume_reading();
  }
}

Future<void> StreamReaderState::begin_wait(const char* func_name) {
  // One waiter only: with two, nobody could tell which of them gets the next data.
  if (waiter) {
    throw RuntimeError(std::string(func_name) +
                       "() called while another coroutine is already waiting for incoming data");
  }
  if (eof) throw RuntimeError("_wait_for_data after EOF");
  // Waiting while paused would never end (readexactly(n) with n > limit needs this).
  if (paused) {
    paused = false;
    transport->resume_reading();
  }
  waiter = loop().create_future<void>();
  return waiter;
}

void StreamReaderState::end_wait(const Future<void>& w) noexcept {
  if (waiter == w) waiter = Future<void>();
}

std::string StreamReaderState::repr() const {
  std::string out = "<StreamReader";
  if (!buffer.empty()) out += " " + std::to_string(buffer.size()) + " bytes";
  if (eof) out += " eof";
  if (limit != stream_default_limit) out += " limit=" + std::to_string(limit);
  if (waiter) out += " waiter=" + waiter.repr();
  if (exception) out += " exception=" + describe_exception(exception);
  if (transport) out += " transport=" + transport_repr(transport.get());
  if (paused) out += " paused";
  return out + ">";
}

}  // namespace detail

// ---- the read coroutines ------------------------------------------------------------------

namespace {

using StatePtr = std::shared_ptr<detail::StreamReaderState>;

/// asyncio _wait_for_data: waits until data, EOF or an exception arrives.
Task<void> wait_for_data(StatePtr st, const char* func_name) {
  Future<void> waiter = st->begin_wait(func_name);
  detail::ReaderWaitScope scope{*st, waiter};
  co_await waiter;
}

Task<std::string> read_coro(StatePtr st, std::ptrdiff_t n) {
  st->throw_if_failed();
  if (n == 0) co_return std::string();
  if (n < 0) {
    // Until EOF, one limit-sized block at a time (so that a paused transport resumes).
    std::string all;
    for (;;) {
      st->throw_if_failed();
      if (st->buffer.empty() && !st->eof) co_await wait_for_data(st, "read");
      std::size_t block = std::min(st->limit, st->buffer.size());
      if (block == 0) break;
      all.append(st->buffer.view().substr(0, block));
      st->buffer.consume(block);
      st->maybe_resume_transport();
    }
    co_return all;
  }
  if (st->buffer.empty() && !st->eof) co_await wait_for_data(st, "read");
  std::string data = st->buffer.take(std::min(static_cast<std::size_t>(n), st->buffer.size()));
  st->maybe_resume_transport();
  co_return data;
}

Task<std::string> readexactly_coro(StatePtr st, std::ptrdiff_t n) {
  if (n < 0) throw ValueError("readexactly size can not be less than zero");
  st->throw_if_failed();
  if (n == 0) co_return std::string();
  const auto wanted = static_cast<std::size_t>(n);
  while (st->buffer.size() < wanted) {
    if (st->eof) {
      std::string incomplete(st->buffer.view());
      st->buffer.clear();
      throw IncompleteReadError(std::move(incomplete), wanted);
    }
    co_await wait_for_data(st, "readexactly");
  }
  std::string data = st->buffer.take(wanted);
  st->maybe_resume_transport();
  co_return data;
}

Task<std::string> readuntil_coro(StatePtr st, std::vector<std::string> separators) {
  // Shortest first (a stable sort, as Python's sorted), so that on a tie it wins.
  std::stable_sort(separators.begin(), separators.end(),
                   [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
  if (separators.empty()) throw ValueError("Separator should contain at least one element");
  const std::size_t min_seplen = separators.front().size();
  const std::size_t max_seplen = separators.back().size();
  if (min_seplen == 0) throw ValueError("Separator should be at least one-byte string");
  st->throw_if_failed();

  // `offset`: how many bytes at the start of the buffer are known to hold no separator. The
  // last max_seplen - 1 bytes are scanned again as more data arrives (a separator may
  // straddle two chunks).
  std::size_t offset = 0;
  std::size_t match_start = 0;
  std::size_t match_end = 0;
  for (;;) {
    std::string_view buf = st->buffer.view();
    const std::size_t buflen = buf.size();
    if (buflen >= offset && buflen - offset >= min_seplen) {
      bool found = false;
      for (const std::string& sep : separators) {
        std::size_t at = buf.find(sep, offset);
        if (at == std::string_view::npos) continue;
        std::size_t end = at + sep.size();
        if (!found || end < match_end) {
          found = true;
          match_start = at;
          match_end = end;
        }
      }
      if (found) break;
      offset = buflen + 1 > max_seplen ? buflen + 1 - max_seplen : 0;
      if (offset > st->limit) {
        throw LimitOverrunError("Separator is not found, and chunk exceed the limit", offset);
      }
    }
    // The last chunk may have completed a separator even with EOF set: checked after the scan.
    if (st->eof) {
      std::string chunk(buf);
      st->buffer.clear();
      throw IncompleteReadError(std::move(chunk), std::nullopt);
    }
    co_await wait_for_data(st, "readuntil");
  }
  if (match_start > st->limit) {
    throw LimitOverrunError("Separator is found, but chunk is longer than limit", match_start);
  }
  std::string chunk = st->buffer.take(match_end);
  st->maybe_resume_transport();
  co_return chunk;
}

Task<std::string> readline_coro(StatePtr st) {
  std::vector<std::string> newline(1, std::string("\n"));
  Task<std::string> until = readuntil_coro(st, std::move(newline));
  try {
    co_return co_await std::move(until);
  } catch (IncompleteReadError& e) {
    co_return std::move(e.partial);
  } catch (const LimitOverrunError& e) {
    // Drop the over-long line if its end is buffered, else everything buffered.
    std::string_view buf = st->buffer.view();
    if (e.consumed < buf.size() && buf[e.consumed] == '\n') {
      st->buffer.consume(e.consumed + 1);
    } else {
      st->buffer.clear();
    }
    st->maybe_resume_transport();
    throw ValueError(e.what());
  }
}

std::vector<std::string> owned(std::span<const std::string_view> separators) {
  return std::vector<std::string>(separators.begin(), separators.end());
}

}  // namespace

// ---- StreamReader -------------------------------------------------------------------------

StreamReader::StreamReader(std::size_t limit) : StreamReader(get_event_loop(), limit) {}

StreamReader::StreamReader(EventLoop& loop, std::size_t limit)
    : state_(std::make_shared<detail::StreamReaderState>(loop, limit)) {}

Task<std::string> StreamReader::read(std::ptrdiff_t n) const {
  return read_coro(state_, n);
}

Task<std::string> StreamReader::readline() const {
  return readline_coro(state_);
}

Task<std::string> StreamReader::readexactly(std::ptrdiff_t n) const {
  return readexactly_coro(state_, n);
}

Task<std::string> StreamReader::readuntil(std::string_view separator) const {
  return readuntil_coro(state_, std::vector<std::string>(1, std::string(separator)));
}

Task<std::string> StreamReader::readuntil(std::span<const std::string> separators) const {
  return readuntil_coro(state_, std::vector<std::string>(separators.begin(), separators.end()));
}

Task<std::string> StreamReader::readuntil(std::span<const std::string_view> separators) const {
  return readuntil_coro(state_, owned(separators));
}

Task<std::string> StreamReader::readuntil(
    std::initializer_list<std::string_view> separators) const {
  return readuntil_coro(
      state_, owned(std::span<const std::string_view>(separators.begin(), separators.size())));
}

bool StreamReader::at_eof() const {
  return state_->eof && state_->buffer.empty();
}

std::exception_ptr StreamReader::exception() const {
  return state_->exception;
}

void StreamReader::set_exception(std::exception_ptr exc) const {
  state_->set_exception(std::move(exc));
}

void StreamReader::set_transport(std::shared_ptr<Transport> transport) const {
  state_->set_transport(std::move(transport));
}

void StreamReader::feed_data(std::string_view data) const {
  state_->feed_data(data);
}

void StreamReader::feed_eof() const {
  state_->feed_eof();
}

}  // namespace asyncuv
