// Stream transports over libuv (asyncio's _SelectorSocketTransport): creation, reading,
// errors, closing, and the loop's list of open transports. The write path is in
// stream_transport_write.cpp. See include/asyncuv/detail/stream_transport.hpp.
#include "asyncuv/detail/stream_transport.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <climits>
#include <new>
#include <optional>
#include <typeinfo>
#include <utility>

#include "asyncuv/detail/describe.hpp"
#include "asyncuv/detail/fd_watchers.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/exception_context.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"
#include "internal.hpp"
#include "stream_transport_internal.hpp"

namespace asyncuv::detail {

namespace {

/// Size of the per-transport read buffer a Protocol's data is read into.

/// Python ignores SIGPIPE at startup; a program using asyncuv's transports gets the same, so
/// that writing to a reset connection fails with EPIPE instead of killing the process. A
/// disposition the program chose itself (a handler, or SIG_IGN) is left alone.
void ignore_default_sigpipe() noexcept {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) return;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

/// getsockname / getpeername, or nothing when the call fails (asyncio stores None).
std::optional<SockAddr> socket_address(int fd, bool peer) {
  SockAddr address;
  socklen_t len = SockAddr::capacity();
  int rc = peer ? ::getpeername(fd, address.data(), &len) : ::getsockname(fd, address.data(), &len);
  if (rc != 0) return std::nullopt;
  address.set_size(len);
  return address;
}

/// Throws TypeError unless `protocol` is a Protocol or a BufferedProtocol.
void check_protocol(const BaseProtocol* protocol) {
  if (protocol == nullptr)
    throw TypeError("a Protocol or BufferedProtocol was expected, got nullptr");
  if (dynamic_cast<const Protocol*>(protocol) == nullptr &&
      dynamic_cast<const BufferedProtocol*>(protocol) == nullptr) {
    throw TypeError("a Protocol or BufferedProtocol was expected, got " +
                    demangle(typeid(*protocol).name()));
  }
}

}  // namespace

// ---- helpers shared with the write path -------------------------------------------------

std::exception_ptr uv_exception(int uv_code) {
  return make_os_error(uv_code_to_errno(uv_code));
}

bool is_os_error(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const OSError&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::string protocol_repr(const BaseProtocol* protocol) {
  if (protocol == nullptr) return "None";
  char address[32];
  std::snprintf(address, sizeof address, "%p", static_cast<const void*>(protocol));
  return "<" + demangle(typeid(*protocol).name()) + " object at " + address + ">";
}

CallbackScope::CallbackScope(EventLoop& loop) {
  // run_forever made the loop the running one; a host driving the uv loop itself has not.
  if (running_loop() != &loop) scope_.emplace(&loop);
}

std::string describe_socket(const Socket& sock) {
  return "<Socket fd=" + std::to_string(sock.fileno()) +
         " family=" + std::to_string(sock.family()) + " type=" + std::to_string(sock.type()) +
         " proto=" + std::to_string(sock.proto()) + ">";
}

// ---- creation -----------------------------------------------------------------------------

std::shared_ptr<Transport> make_socket_transport(EventLoop& loop, Socket sock,
                                                 std::shared_ptr<BaseProtocol> protocol,
                                                 std::shared_ptr<ConnectionTracker> tracker,
                                                 Future<void> waiter) {
  if (sock.closed() || sock.type() != SOCK_STREAM) {
    throw ValueError("A Stream Socket was expected, got " + describe_socket(sock));
  }
  // Creates the fd watchers first (services close in reverse order, so they outlive the
  // transports' list) and checks the descriptor like add_reader does: RuntimeError on a closed
  // loop or for an fd another transport owns.
  loop.fd_watcher_check(sock.fileno());
  FdWatchers& watchers = *loop.find_service<FdWatchers>();
  StreamTransports& open = loop.service<StreamTransports>();
  check_protocol(protocol.get());
  ignore_default_sigpipe();

  const bool tcp = sock.family() == AF_INET || sock.family() == AF_INET6;
  auto t = std::make_shared<StreamTransport>(StreamTransport::Private{}, loop, sock);
  if (int rc = t->open_handle(sock, tcp); rc != 0) throw_uv_error(rc);
  (void)sock.detach();  // libuv owns the descriptor now: uv_close closes it
  if (tcp && (sock.proto() == IPPROTO_TCP || sock.proto() == 0)) {
    // asyncio's _set_nodelay: small writes leave at once instead of waiting for an ACK.
    (void)uv_tcp_nodelay(&t->uv_.tcp, 1);
  }
  t->sockname_ = socket_address(t->fd_, false);
  t->peername_ = socket_address(t->fd_, true);

  t->self_ = t;
  open.add(t.get());
  watchers.claim_for_transport(t->fd_, t->repr());
  if (tracker) {
    try {
      tracker->attach(t);
    } catch (...) {
      t->loop_closed();  // nothing was scheduled yet: just close the socket
      throw;
    }
    t->tracker_ = std::move(tracker);
  }
  t->start(std::move(protocol), std::move(waiter));
  return t;
}

StreamTransport::StreamTransport(Private, EventLoop& loop, const Socket& sock)
    : loop_(loop), fd_(sock.fileno()) {}

StreamTransport::~StreamTransport() = default;

int StreamTransport::open_handle(const Socket& sock, bool tcp) {
  tcp_ = tcp;
  int rc =
      tcp ? uv_tcp_init(loop_.uv_loop(), &uv_.tcp) : uv_pipe_init(loop_.uv_loop(), &uv_.pipe, 0);
  if (rc != 0) return rc;
  handle()->data = this;
  handle_open_ = true;
  rc = tcp ? uv_tcp_open(&uv_.tcp, sock.fileno()) : uv_pipe_open(&uv_.pipe, sock.fileno());
  if (rc != 0) {
    // The handle does not own the descriptor: closing it leaves `sock` open. The transport
    // lives until libuv's close callback.
    self_ = shared_from_this();
    handle_closing_ = true;
    uv_close(handle(), &StreamTransport::on_close);
  }
  return rc;
}

void StreamTransport::start(std::shared_ptr<BaseProtocol> protocol, Future<void> waiter) {
  install_protocol(protocol);
  auto self = shared_from_this();
  // As asyncio: connection_made first, reading only after it, then the waiter.
  loop_.call_soon([self, protocol] {
    std::shared_ptr<Transport> transport = self;
    if (auto* buffered = dynamic_cast<BufferedProtocol*>(protocol.get())) {
      buffered->connection_made(std::move(transport));
    } else {
      static_cast<Protocol*>(protocol.get())->connection_made(std::move(transport));
    }
  });
  loop_.call_soon([self] {
    self->read_allowed_ = true;
    self->start_reading();
  });
  if (waiter) {
    loop_.call_soon([waiter] {
      if (!waiter.done()) waiter.set_result();
    });
  }
}

void StreamTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  check_protocol(protocol.get());
  if (lost_delivered_) return;
  install_protocol(std::move(protocol));
}

void StreamTransport::install_protocol(std::shared_ptr<BaseProtocol> protocol) {
  // asyncio checks for BufferedProtocol first.
  buffered_protocol_ = dynamic_cast<BufferedProtocol*>(protocol.get());
  stream_protocol_ = buffered_protocol_ ? nullptr : dynamic_cast<Protocol*>(protocol.get());
  protocol_ = std::move(protocol);
}

std::any StreamTransport::extra_info(std::string_view name) const {
  if (name == "peername") return peername_ ? std::any(*peername_) : std::any();
  if (name == "sockname") return sockname_ ? std::any(*sockname_) : std::any();
  if (name == "socket") return std::any(fd_);
  return {};
}

std::string StreamTransport::repr() const {
  std::string text = "<SocketTransport";
  if (handle_closing_) {
    text += " closed";
  } else if (closing_) {
    text += " closing";
  }
  text += " fd=" + std::to_string(fd_);
  if (!loop_.is_closed() && !handle_closing_) {
    text += reading_ ? " read=polling" : " read=idle";
    text += write_in_flight_ ? " write=<polling" : " write=<idle";
    text += ", bufsize=" + std::to_string(get_write_buffer_size()) + ">";
  }
  return text + ">";
}

// ---- reading ------------------------------------------------------------------------------

void StreamTransport::pause_reading() {
  if (!is_reading()) return;
  paused_ = true;
  stop_reading();
  if (loop_.get_debug()) logger()->debug("{} pauses reading", repr());
}

void StreamTransport::resume_reading() {
  if (closing_ || !paused_) return;
  paused_ = false;
  start_reading();
  if (loop_.get_debug()) logger()->debug("{} resumes reading", repr());
}

void StreamTransport::start_reading() {
  if (!read_allowed_ || reading_ || read_eof_ || !is_reading() || conn_lost_ != 0 ||
      handle_closing_) {
    return;
  }
  int rc = uv_read_start(stream(), &StreamTransport::on_alloc, &StreamTransport::on_read);
  if (rc != 0) {
    fatal_error(uv_exception(rc), "Fatal read error on socket transport");
    return;
  }
  reading_ = true;
}

void StreamTransport::stop_reading() noexcept {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(stream());
}

void StreamTransport::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
  auto* t = static_cast<StreamTransport*>(h->data);
  *buf = uv_buf_init(nullptr, 0);  // no buffer: libuv reports UV_ENOBUFS to on_read
  if (t->buffered_protocol_ == nullptr) {
    if (t->read_buf_ == nullptr) {
      auto* open = t->loop_.find_service<StreamTransports>();
      t->read_buf_ = open != nullptr ? open->read_buffer() : nullptr;
      if (t->read_buf_ == nullptr) {
        t->alloc_error_ = std::make_exception_ptr(std::bad_alloc());
        return;
      }
    }
    *buf = uv_buf_init(t->read_buf_, StreamTransports::read_buffer_size);
    return;
  }
  // A BufferedProtocol: libuv reads straight into the buffer it hands out.
  std::shared_ptr<BufferedProtocol> target(t->protocol_, t->buffered_protocol_);
  try {
    CallbackScope scope(t->loop_);
    std::span<std::byte> span = target->get_buffer(-1);
    if (span.empty()) throw RuntimeError("get_buffer() returned an empty buffer");
    std::size_t len = span.size() > UINT_MAX ? UINT_MAX : span.size();
    *buf = uv_buf_init(reinterpret_cast<char*>(span.data()), static_cast<unsigned>(len));
    t->reading_into_ = std::move(target);
  } catch (...) {
    t->alloc_error_ = std::current_exception();
  }
}

void StreamTransport::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* t = static_cast<StreamTransport*>(s->data);
  CallbackScope scope(t->loop_);
  try {
    t->read_done(nread, buf);
  } catch (...) {
    // Only the loop's own failures get here (the protocol's are handled in read_done).
    t->defer_fatal(std::current_exception());
  }
}

void StreamTransport::read_done(ssize_t nread, const uv_buf_t* buf) {
  std::shared_ptr<BufferedProtocol> into = std::move(reading_into_);
  if (alloc_error_) {
    std::exception_ptr e = std::exchange(alloc_error_, nullptr);
    if (conn_lost_ == 0) protocol_failed(e, "Fatal error: protocol.get_buffer() call failed.");
    return;
  }
  if (nread == 0 || conn_lost_ != 0) return;  // EAGAIN; or closing: asyncio ignores the data
  if (nread == UV_EOF) {
    read_eof();
    return;
  }
  if (nread < 0) {
    fatal_error(uv_exception(static_cast<int>(nread)), "Fatal read error on socket transport");
    return;
  }
  const auto n = static_cast<std::size_t>(nread);
  if (into) {
    try {
      into->buffer_updated(n);
    } catch (...) {
      protocol_failed(std::current_exception(),
                      "Fatal error: protocol.buffer_updated() call failed.");
    }
    return;
  }
  std::shared_ptr<BaseProtocol> keep = protocol_;  // set_protocol() may drop it meanwhile
  Protocol* protocol = stream_protocol_;
  if (protocol == nullptr) return;
  try {
    protocol->data_received(std::string_view(buf->base, n));
  } catch (...) {
    protocol_failed(std::current_exception(), "Fatal error: protocol.data_received() call failed.");
  }
}

void StreamTransport::read_eof() {
  read_eof_ = true;
  stop_reading();
  if (loop_.get_debug()) logger()->debug("{} received EOF", repr());
  std::shared_ptr<BaseProtocol> keep = protocol_;
  bool keep_open = false;
  try {
    if (buffered_protocol_ != nullptr) {
      keep_open = buffered_protocol_->eof_received();
    } else if (stream_protocol_ != nullptr) {
      keep_open = stream_protocol_->eof_received();
    }
  } catch (...) {
    protocol_failed(std::current_exception(), "Fatal error: protocol.eof_received() call failed.");
    return;
  }
  // Kept open: reading stays stopped, the protocol may still write. Otherwise close.
  if (!keep_open) close();
}

// ---- errors -------------------------------------------------------------------------------

void StreamTransport::protocol_failed(std::exception_ptr e, const char* message) {
  if (is_fatal(e)) {
    defer_fatal(std::move(e));
    return;
  }
  fatal_error(std::move(e), message);
}

void StreamTransport::fatal_error(std::exception_ptr e, const char* message) {
  if (is_os_error(e)) {
    // CPython's _fatal_error: OS errors (a reset peer, a broken pipe, ...) only reach the debug
    // log; connection_lost(exc) tells the protocol.
    if (loop_.get_debug()) {
      logger()->debug("{}: {}: {}", repr(), message, describe_exception(e));
    }
  } else {
    report(e, message);
  }
  force_close(std::move(e));
}

void StreamTransport::report(std::exception_ptr e, const std::string& message) {
  if (is_fatal(e)) {
    defer_fatal(std::move(e));
    return;
  }
  ExceptionContext context(message, e);
  context.set("transport", std::shared_ptr<Transport>(shared_from_this()), repr());
  context.set("protocol", protocol_, protocol_repr(protocol_.get()));
  try {
    loop_.call_exception_handler(context);
  } catch (...) {
    defer_fatal(std::current_exception());  // only fatal errors escape the handler
  }
}

void StreamTransport::defer_fatal(std::exception_ptr e) noexcept {
  try {
    loop_.call_soon([e] { std::rethrow_exception(e); });
  } catch (...) {
    // The loop is closed: there is no run_forever() left to leave.
  }
}

// ---- closing ------------------------------------------------------------------------------

void StreamTransport::close() {
  if (closing_) return;
  closing_ = true;
  stop_reading();
  if (buffer_empty()) {
    ++conn_lost_;
    schedule_connection_lost(nullptr);
  }
  // Otherwise the write path schedules connection_lost once the buffer drained.
}

void StreamTransport::abort() {
  force_close(nullptr);
}

void StreamTransport::force_close(std::exception_ptr exc) {
  if (conn_lost_ != 0) return;
  pending_.clear();  // the write in flight, if any, is cancelled when the handle closes
  if (!closing_) {
    closing_ = true;
    stop_reading();
  }
  ++conn_lost_;
  schedule_connection_lost(std::move(exc));
}

void StreamTransport::schedule_connection_lost(std::exception_ptr exc) {
  auto self = shared_from_this();
  loop_.call_soon([self, exc] { self->call_connection_lost(exc); });
}

void StreamTransport::call_connection_lost(std::exception_ptr exc) {
  if (lost_delivered_) return;
  lost_delivered_ = true;
  // asyncio's try/finally: the socket is closed and everything released even if the
  // protocol's connection_lost() throws (its exception then goes to the exception handler).
  struct Release {
    StreamTransport* t;
    ~Release() { t->release_after_connection_lost(); }
  } release{this};
  std::shared_ptr<BaseProtocol> protocol = protocol_;
  if (protocol) protocol->connection_lost(exc);
}

void StreamTransport::release_after_connection_lost() noexcept {
  close_handle();
  std::shared_ptr<BaseProtocol> protocol = std::move(protocol_);
  stream_protocol_ = nullptr;
  buffered_protocol_ = nullptr;
  reading_into_.reset();
  detach_tracker();
  if (empty_waiter_ && !empty_waiter_.done()) {
    try {
      empty_waiter_.set_exception(ConnectionError("Connection is closed by peer"));
    } catch (...) {
      // Only allocation can fail here; the waiter then stays pending until the loop closes.
    }
  }
  protocol.reset();  // may run the protocol's destructor: last, with the transport settled
}

void StreamTransport::close_handle() noexcept {
  if (!handle_open_ || handle_closing_) return;
  handle_closing_ = true;
  stop_reading();
  if (auto* watchers = loop_.find_service<FdWatchers>()) watchers->release_from_transport(fd_);
  if (auto* open = loop_.find_service<StreamTransports>()) open->remove(this);
  uv_close(handle(), &StreamTransport::on_close);  // closes the fd now
}

void StreamTransport::on_close(uv_handle_t* h) {
  auto* t = static_cast<StreamTransport*>(h->data);
  // libuv is done with the handle and the write requests: the transport may go.
  std::shared_ptr<StreamTransport> last = std::move(t->self_);
}

void StreamTransport::loop_closed() noexcept {
  closing_ = true;
  if (conn_lost_ == 0) conn_lost_ = 1;
  lost_delivered_ = true;
  pending_.clear();
  close_handle();
  std::shared_ptr<BaseProtocol> protocol = std::move(protocol_);
  stream_protocol_ = nullptr;
  buffered_protocol_ = nullptr;
  reading_into_.reset();
  empty_waiter_ = Future<void>();
  detach_tracker();
  protocol.reset();
}

void StreamTransport::detach_tracker() noexcept {
  std::shared_ptr<ConnectionTracker> tracker = std::move(tracker_);
  if (!tracker) return;
  try {
    tracker->detach(this);
  } catch (...) {
    // Documented: a tracker's exceptions are ignored.
  }
}

// ---- the loop's open transports ------------------------------------------------------------

void StreamTransports::add(StreamTransport* t) noexcept {
  t->prev_open = nullptr;
  t->next_open = head_;
  if (head_ != nullptr) head_->prev_open = t;
  head_ = t;
  ++count_;
}

void StreamTransports::remove(StreamTransport* t) noexcept {
  if (t->prev_open == nullptr && head_ != t) return;  // not in the list
  if (t->prev_open != nullptr) t->prev_open->next_open = t->next_open;
  if (t->next_open != nullptr) t->next_open->prev_open = t->prev_open;
  if (head_ == t) head_ = t->next_open;
  t->prev_open = t->next_open = nullptr;
  --count_;
}

char* StreamTransports::read_buffer() noexcept {
  if (!read_buffer_) read_buffer_.reset(new (std::nothrow) char[read_buffer_size]);
  return read_buffer_.get();
}

void StreamTransports::close() noexcept {
  // asyncio leaves open sockets to the garbage collector; here they are closed with the loop,
  // without calling their protocols.
  while (head_ != nullptr) {
    StreamTransport* t = head_;
    t->loop_closed();
    if (head_ == t) remove(t);
  }
}

}  // namespace asyncuv::detail

namespace asyncuv::detail {

void log_connection_handled(EventLoop& loop, const std::shared_ptr<Transport>& transport) {
  if (!loop.get_debug()) return;
  auto* ours = dynamic_cast<StreamTransport*>(transport.get());
  if (ours == nullptr) return;
  logger()->debug("<Socket fd={}> handled: ({}, {})", ours->fd(), ours->repr(),
                  protocol_repr(ours->get_protocol().get()));
}

}  // namespace asyncuv::detail
