// asyncuv::StreamWriter: asyncio StreamWriter, a thin layer over the transport with drain()
// and wait_closed().
#include <spdlog/spdlog.h>

#include <utility>

#include "asyncuv/log.hpp"
#include "asyncuv/streams.hpp"

namespace asyncuv {

namespace detail {

/// What every copy of one StreamWriter shares.
class StreamWriterState {
 public:
  StreamWriterState(std::shared_ptr<Transport> t, std::shared_ptr<StreamReaderProtocol> p,
                    std::shared_ptr<StreamReaderState> r, EventLoop& loop)
      : transport(std::move(t)),
        protocol(std::move(p)),
        reader(std::move(r)),
        anchor(loop.anchor()) {}
  StreamWriterState(const StreamWriterState&) = delete;
  StreamWriterState& operator=(const StreamWriterState&) = delete;

  /// The last handle is gone: an open transport is closed (asyncio 3.13's __del__), with a
  /// warning in debug mode.
  ~StreamWriterState() {
    try {
      if (transport->is_closing()) return;
      EventLoop* loop = anchor->loop;
      if (loop == nullptr) return;
      if (loop->is_closed()) {
        if (loop->get_debug()) logger()->warn("unclosed StreamWriter: loop is closed");
        return;
      }
      transport->close();
      if (loop->get_debug()) logger()->warn("unclosed {}", repr());
    } catch (...) {
      // A destructor: nothing may escape (close() only fails on a closed loop, checked above).
    }
  }

  std::string repr() const {
    std::string out = "<StreamWriter transport=" + transport_repr(transport.get());
    if (reader) out += " reader=" + reader->repr();
    return out + ">";
  }

  std::shared_ptr<Transport> transport;
  std::shared_ptr<StreamReaderProtocol> protocol;
  std::shared_ptr<StreamReaderState> reader;  // may be null
  std::shared_ptr<LoopAnchor> anchor;
};

}  // namespace detail

namespace {

using WriterPtr = std::shared_ptr<detail::StreamWriterState>;

Task<void> drain_coro(WriterPtr st) {
  if (st->reader && st->reader->exception) std::rethrow_exception(st->reader->exception);
  if (st->transport->is_closing()) {
    // Let connection_lost() run first: a write()/drain() loop on a closed connection must
    // see the error instead of spinning.
    co_await sleep(0);
  }
  co_await detail::drain_helper(st->protocol);
}

Task<void> wait_closed_coro(WriterPtr st) {
  Future<void> closed = st->protocol->closed();
  co_await closed;
}

}  // namespace

StreamWriter::StreamWriter(std::shared_ptr<Transport> transport,
                           std::shared_ptr<StreamReaderProtocol> protocol,
                           std::optional<StreamReader> reader, EventLoop& loop) {
  if (!transport) throw TypeError("StreamWriter needs a transport");
  if (!protocol) throw TypeError("StreamWriter needs a StreamReaderProtocol");
  state_ = std::make_shared<detail::StreamWriterState>(
      std::move(transport), std::move(protocol),
      reader ? reader->state() : std::shared_ptr<detail::StreamReaderState>(), loop);
}

std::shared_ptr<Transport> StreamWriter::transport() const {
  return state_->transport;
}

void StreamWriter::write(std::string_view data) const {
  state_->transport->write(data);
}

void StreamWriter::write(std::span<const std::byte> data) const {
  state_->transport->write(data);
}

void StreamWriter::writelines(std::span<const std::string_view> data) const {
  state_->transport->writelines(data);
}

void StreamWriter::writelines(std::span<const std::string> data) const {
  std::vector<std::string_view> pieces(data.begin(), data.end());
  state_->transport->writelines(std::span<const std::string_view>(pieces));
}

void StreamWriter::writelines(std::initializer_list<std::string_view> data) const {
  state_->transport->writelines(std::span<const std::string_view>(data.begin(), data.size()));
}

bool StreamWriter::can_write_eof() const {
  return state_->transport->can_write_eof();
}

void StreamWriter::write_eof() const {
  state_->transport->write_eof();
}

void StreamWriter::close() const {
  state_->transport->close();
}

bool StreamWriter::is_closing() const {
  return state_->transport->is_closing();
}

Task<void> StreamWriter::wait_closed() const {
  return wait_closed_coro(state_);
}

Task<void> StreamWriter::drain() const {
  return drain_coro(state_);
}

std::any StreamWriter::get_extra_info(std::string_view name, std::any default_value) const {
  return state_->transport->get_extra_info(name, std::move(default_value));
}

EventLoop& StreamWriter::get_loop() const {
  if (state_->anchor->loop == nullptr) {
    throw RuntimeError("the StreamWriter's event loop was destroyed");
  }
  return *state_->anchor->loop;
}

std::shared_ptr<StreamReaderProtocol> StreamWriter::protocol() const {
  return state_->protocol;
}

std::string StreamWriter::repr() const {
  return state_->repr();
}

}  // namespace asyncuv
