// asyncuv::StreamReaderProtocol: asyncio StreamReaderProtocol with FlowControlMixin's drain
// support, and the protocol factory of start_server().
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "asyncuv/exception_context.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/streams.hpp"

namespace asyncuv {

StreamReaderProtocol::StreamReaderProtocol(std::optional<StreamReader> reader,
                                           ClientConnectedCallback client_connected_cb)
    : StreamReaderProtocol(get_event_loop(), std::move(reader), std::move(client_connected_cb)) {}

StreamReaderProtocol::StreamReaderProtocol(EventLoop& loop, std::optional<StreamReader> reader,
                                           ClientConnectedCallback client_connected_cb)
    : loop_(loop), closed_(loop.create_future<void>()) {
  if (reader) reader_ = reader->state();
  if (client_connected_cb) {
    if (!reader) throw TypeError("a client_connected_cb needs a StreamReader");
    // A server's stream: the reader must live until the connection is made.
    strong_reader_ = reader->state();
    client_connected_cb_ = std::move(client_connected_cb);
  }
}

StreamReaderProtocol::~StreamReaderProtocol() {
  // Nobody awaited wait_closed(): the error it holds is not worth a "never retrieved" report.
  if (closed_.done() && !closed_.cancelled()) closed_.exception();
}

std::optional<StreamReader> StreamReaderProtocol::reader() const {
  if (auto state = reader_.lock()) return StreamReader(std::move(state));
  return std::nullopt;
}

void StreamReaderProtocol::connection_made(std::shared_ptr<Transport> transport) {
  std::shared_ptr<detail::StreamReaderState> reader = reader_.lock();
  if (reader) reader->set_transport(transport);
  over_ssl_ = transport->get_extra_info("sslcontext").has_value();
  if (!client_connected_cb_) return;

  strong_reader_.reset();  // `reader` holds it now
  StreamWriter writer(transport, shared_from_this(), StreamReader(reader), loop_);
  Task<void> coro = client_connected_cb_(StreamReader(reader), std::move(writer));
  if (!coro) return;  // a plain callback: done
  Task<void> task = loop_.create_task(std::move(coro));
  // The copy of the callback keeps its captures alive until the coroutine is done.
  task.add_done_callback([transport, keep = client_connected_cb_](Task<void> finished) {
    (void)keep;
    if (finished.cancelled()) {
      transport->close();
      return;
    }
    if (std::exception_ptr exc = finished.exception()) {
      ExceptionContext context("Unhandled exception in client_connected_cb", exc);
      context.set("transport", transport, detail::transport_repr(transport.get()));
      finished.get_loop().call_exception_handler(context);
      transport->close();
    }
  });
}

void StreamReaderProtocol::connection_lost(std::exception_ptr exc) {
  if (std::shared_ptr<detail::StreamReaderState> reader = reader_.lock()) {
    if (exc) {
      reader->set_exception(exc);
    } else {
      reader->feed_eof();
    }
  }
  if (!closed_.done()) {
    if (exc) {
      closed_.set_exception(exc);
    } else {
      closed_.set_result();
    }
  }
  // FlowControlMixin: wake the writers waiting in drain().
  connection_lost_ = true;
  if (paused_) {
    for (const Future<void>& waiter : drain_waiters_) {
      if (waiter.done()) continue;
      if (exc) {
        waiter.set_exception(exc);
      } else {
        waiter.set_result();
      }
    }
  }
  reader_.reset();
  strong_reader_.reset();
}

void StreamReaderProtocol::data_received(std::string_view data) {
  if (std::shared_ptr<detail::StreamReaderState> reader = reader_.lock()) reader->feed_data(data);
}

bool StreamReaderProtocol::eof_received() {
  if (std::shared_ptr<detail::StreamReaderState> reader = reader_.lock()) reader->feed_eof();
  // Half-open, so that the writer keeps working; TLS cannot stay half-open.
  return !over_ssl_;
}

void StreamReaderProtocol::pause_writing() {
  paused_ = true;
  if (loop_.get_debug()) {
    logger()->debug("<StreamReaderProtocol {}> pauses writing", static_cast<const void*>(this));
  }
}

void StreamReaderProtocol::resume_writing() {
  paused_ = false;
  if (loop_.get_debug()) {
    logger()->debug("<StreamReaderProtocol {}> resumes writing", static_cast<const void*>(this));
  }
  for (const Future<void>& waiter : drain_waiters_) {
    if (!waiter.done()) waiter.set_result();
  }
}

namespace detail {

namespace {
/// Removes a drain waiter from its protocol however the wait ends.
struct DrainWaiterScope {
  std::vector<Future<void>>& waiters;
  Future<void> waiter;
  ~DrainWaiterScope() {
    auto it = std::find(waiters.begin(), waiters.end(), waiter);
    if (it != waiters.end()) waiters.erase(it);
  }
};
}  // namespace

Task<void> drain_helper(std::shared_ptr<StreamReaderProtocol> protocol) {
  if (protocol->connection_lost_) throw ConnectionResetError("Connection lost");
  if (!protocol->paused_) co_return;
  Future<void> waiter = protocol->loop_.create_future<void>();
  protocol->drain_waiters_.push_back(waiter);
  DrainWaiterScope scope{protocol->drain_waiters_, waiter};
  co_await waiter;
}

std::function<std::shared_ptr<StreamReaderProtocol>()> stream_protocol_factory(
    EventLoop& loop, ClientConnectedCallback cb, std::size_t limit) {
  if (!cb) throw TypeError("start_server() needs a client_connected_cb");
  EventLoop* lp = &loop;
  return [lp, cb = std::move(cb), limit] {
    StreamReader reader(*lp, limit);
    return std::make_shared<StreamReaderProtocol>(*lp, reader, cb);
  };
}

}  // namespace detail

}  // namespace asyncuv
