// Pipe transports over libuv (asyncio's _UnixReadPipeTransport / _UnixWritePipeTransport):
// creation, reading, errors, closing, and the loop's list of open pipes. The write path is in
// pipe_transport_write.cpp. See include/asyncuv/detail/pipe_transport.hpp.
#include "asyncuv/detail/pipe_transport.hpp"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <new>
#include <typeinfo>
#include <utility>

#include "asyncuv/detail/describe.hpp"
#include "asyncuv/detail/fd_watchers.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exception_context.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"
#include "internal.hpp"
#include "stream_transport_internal.hpp"

namespace asyncuv::detail {

namespace {

/// As Python at startup (and the stream transport): a write to a pipe without a reader fails
/// with EPIPE instead of killing the process. A disposition the program chose is left alone.
void ignore_default_sigpipe() noexcept {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) return;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

/// asyncio's checks of the descriptor's type (os.fstat(fd).st_mode). Returns whether the
/// peer-closing watch applies (FIFOs and sockets).
bool check_pipe_type(int fd, PipeMode mode) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_os_error(errno);
  const bool fifo = S_ISFIFO(st.st_mode);
  const bool sock = S_ISSOCK(st.st_mode);
  const bool chr = S_ISCHR(st.st_mode);
  if (mode == PipeMode::read) {
    if (!(fifo || sock || chr)) throw ValueError("Pipe transport is for pipes/sockets only.");
  } else if (!(fifo || sock || chr)) {
    throw ValueError("Pipe transport is only for pipes, sockets and character devices");
  }
  return fifo || sock;
}

void check_protocol(const BaseProtocol* protocol, PipeMode mode) {
  if (protocol == nullptr) throw TypeError("a protocol was expected, got nullptr");
  if (mode == PipeMode::read && dynamic_cast<const Protocol*>(protocol) == nullptr) {
    throw TypeError("a read pipe needs a Protocol, got " + demangle(typeid(*protocol).name()));
  }
}

}  // namespace

// ---- creation -----------------------------------------------------------------------------

std::shared_ptr<PipeTransport> make_pipe_transport(EventLoop& loop, int fd, PipeMode mode,
                                                   std::shared_ptr<BaseProtocol> protocol,
                                                   Future<void> waiter) {
  // RuntimeError on a closed loop or for an fd a transport owns; ValueError for fd < 0. The
  // fd watchers are created first so that they outlive the list of open pipes.
  loop.fd_watcher_check(fd);
  FdWatchers& watchers = *loop.find_service<FdWatchers>();
  PipeTransports& open = loop.service<PipeTransports>();
  const bool watch_peer = check_pipe_type(fd, mode) && mode == PipeMode::write;
  check_protocol(protocol.get(), mode);
  ignore_default_sigpipe();

  auto t = std::make_shared<PipeTransport>(PipeTransport::Private{}, loop, fd, mode);
  if (int rc = t->open_handle(watch_peer); rc != 0) throw_uv_error(rc);
  t->self_ = t;
  open.add(t.get());
  watchers.claim_for_transport(fd, t->repr());
  t->start(std::move(protocol), std::move(waiter));
  return t;
}

PipeTransport::PipeTransport(Private, EventLoop& loop, int fd, PipeMode mode)
    : loop_(loop), fd_(fd), mode_(mode) {}

PipeTransport::~PipeTransport() = default;

int PipeTransport::open_handle(bool watch_peer) {
  int rc = uv_pipe_init(loop_.uv_loop(), &pipe_, 0);
  if (rc != 0) return rc;
  handle()->data = this;
  handle_open_ = true;
  // The peer watch first: until uv_pipe_open succeeds, closing the handle leaves fd alone.
  if (watch_peer) {
    peer_fd_ = ::fcntl(fd_, F_DUPFD_CLOEXEC, 3);
    if (peer_fd_ < 0) {
      rc = -errno;
    } else if ((rc = uv_poll_init(loop_.uv_loop(), &peer_poll_, peer_fd_)) == 0) {
      peer_poll_.data = this;
      peer_poll_open_ = true;
    } else {
      ::close(peer_fd_);
      peer_fd_ = -1;
    }
  }
  if (rc == 0) rc = uv_pipe_open(&pipe_, fd_);
  if (rc != 0) {
    // uv_pipe_open failed or never ran: the handle does not own fd, which stays the caller's.
    // The transport lives until libuv's close callbacks.
    self_ = shared_from_this();
    close_handle();
  }
  return rc;
}

void PipeTransport::start(std::shared_ptr<BaseProtocol> protocol, Future<void> waiter) {
  install_protocol(protocol);
  auto self = shared_from_this();
  loop_.call_soon([self, protocol] {
    std::shared_ptr<Transport> transport = self;
    if (auto* p = dynamic_cast<Protocol*>(protocol.get())) {
      p->connection_made(std::move(transport));
    } else if (auto* b = dynamic_cast<BufferedProtocol*>(protocol.get())) {
      b->connection_made(std::move(transport));
    }
  });
  // Only start reading (or watching the reader) once connection_made() has been called.
  loop_.call_soon([self] {
    self->started_ = true;
    if (self->mode_ == PipeMode::read) {
      self->start_reading();
    } else {
      self->start_peer_watch();
    }
  });
  if (waiter) {
    loop_.call_soon([waiter] {
      if (!waiter.done()) waiter.set_result();
    });
  }
}

void PipeTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  check_protocol(protocol.get(), mode_);
  if (lost_delivered_) return;
  install_protocol(std::move(protocol));
}

void PipeTransport::install_protocol(std::shared_ptr<BaseProtocol> protocol) {
  read_protocol_ = dynamic_cast<Protocol*>(protocol.get());
  protocol_ = std::move(protocol);
}

std::any PipeTransport::extra_info(std::string_view name) const {
  if (name == "pipe") return std::any(fd_);
  return {};
}

std::string PipeTransport::repr() const {
  std::string text =
      mode_ == PipeMode::read ? "<_UnixReadPipeTransport" : "<_UnixWritePipeTransport";
  if (handle_closing_) {
    text += " closed";
  } else if (closing_) {
    text += " closing";
  }
  text += " fd=" + std::to_string(fd_);
  if (!handle_closing_) {
    if (mode_ == PipeMode::read) {
      text += reading_ ? " polling" : " idle";
    } else {
      text += write_in_flight_ ? " polling" : " idle";
      text += " bufsize=" + std::to_string(get_write_buffer_size());
    }
  }
  return text + ">";
}

// ---- reading ------------------------------------------------------------------------------

bool PipeTransport::is_reading() const {
  return mode_ == PipeMode::read && !closing_ && !paused_;
}

void PipeTransport::pause_reading() {
  if (!is_reading()) return;
  paused_ = true;
  stop_reading();
  if (loop_.get_debug()) logger()->debug("{} pauses reading", repr());
}

void PipeTransport::resume_reading() {
  if (mode_ != PipeMode::read || closing_ || !paused_) return;
  paused_ = false;
  start_reading();
  if (loop_.get_debug()) logger()->debug("{} resumes reading", repr());
}

void PipeTransport::start_reading() {
  if (!started_ || reading_ || !is_reading() || conn_lost_ != 0 || handle_closing_) return;
  int rc = uv_read_start(stream(), &PipeTransport::on_alloc, &PipeTransport::on_read);
  if (rc != 0) {
    fatal_error(uv_exception(rc), "Fatal read error on pipe transport");
    return;
  }
  reading_ = true;
}

void PipeTransport::stop_reading() noexcept {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(stream());
}

void PipeTransport::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
  auto* t = static_cast<PipeTransport*>(h->data);
  *buf = uv_buf_init(nullptr, 0);  // no buffer: libuv reports UV_ENOBUFS
  if (t->read_buf_ == nullptr) {
    auto* open = t->loop_.find_service<PipeTransports>();
    t->read_buf_ = open != nullptr ? open->read_buffer() : nullptr;
    if (t->read_buf_ == nullptr) return;
  }
  *buf = uv_buf_init(t->read_buf_, PipeTransports::read_buffer_size);
}

void PipeTransport::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* t = static_cast<PipeTransport*>(s->data);
  CallbackScope scope(t->loop_);
  try {
    t->read_done(nread, buf);
  } catch (...) {
    t->defer_fatal(std::current_exception());
  }
}

void PipeTransport::read_done(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0 || conn_lost_ != 0) return;
  if (nread == UV_EOF) {
    read_eof();
    return;
  }
  if (nread == UV_ENOBUFS) {
    fatal_error(std::make_exception_ptr(std::bad_alloc()), "Fatal read error on pipe transport");
    return;
  }
  if (nread < 0) {
    fatal_error(uv_exception(static_cast<int>(nread)), "Fatal read error on pipe transport");
    return;
  }
  std::shared_ptr<BaseProtocol> keep = protocol_;
  Protocol* protocol = read_protocol_;
  if (protocol == nullptr) return;
  try {
    protocol->data_received(std::string_view(buf->base, static_cast<std::size_t>(nread)));
  } catch (...) {
    // asyncio: the exception leaves the reader callback and reaches the exception handler;
    // the pipe stays open.
    report(std::current_exception(), "Exception in protocol.data_received() of a pipe");
  }
}

void PipeTransport::read_eof() {
  if (loop_.get_debug()) logger()->info("{} was closed by peer", repr());
  closing_ = true;
  stop_reading();
  ++conn_lost_;
  std::shared_ptr<BaseProtocol> protocol = protocol_;
  auto self = shared_from_this();
  // As asyncio: eof_received() and connection_lost() as two callbacks (an exception from the
  // first reaches the handler as any callback's, and connection_lost still follows).
  loop_.call_soon([self, protocol] {
    if (auto* p = dynamic_cast<Protocol*>(protocol.get())) (void)p->eof_received();
  });
  schedule_connection_lost(nullptr);
}

// ---- errors -------------------------------------------------------------------------------

void PipeTransport::fatal_error(std::exception_ptr e, const char* message) {
  if (is_fatal(e)) {
    defer_fatal(e);
  } else {
    bool quiet = false;
    try {
      std::rethrow_exception(e);
    } catch (const OSError& os) {
      // Read side: EIO (a pty's other side is gone). Write side: the reader went away.
      quiet = mode_ == PipeMode::read ? os.errnum() == EIO
                                      : (dynamic_cast<const BrokenPipeError*>(&os) != nullptr ||
                                         dynamic_cast<const ConnectionResetError*>(&os) != nullptr);
    } catch (...) {
    }
    if (!quiet) {
      report(e, message);
    } else if (loop_.get_debug()) {
      logger()->debug("{}: {}: {}", repr(), message, describe_exception(e));
    }
  }
  close_with(std::move(e));
}

void PipeTransport::report(std::exception_ptr e, const std::string& message) {
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
    defer_fatal(std::current_exception());
  }
}

void PipeTransport::defer_fatal(std::exception_ptr e) noexcept {
  try {
    loop_.call_soon([e] { std::rethrow_exception(e); });
  } catch (...) {
    // The loop is closed: there is no run_forever() left to leave.
  }
}

// ---- closing ------------------------------------------------------------------------------

void PipeTransport::close() {
  if (mode_ == PipeMode::write) {
    // asyncio: write_eof is all a write pipe needs to close.
    if (!closing_) write_eof();
    return;
  }
  if (!closing_) close_with(nullptr);
}

void PipeTransport::abort() {
  if (conn_lost_ != 0) return;
  close_with(nullptr);
}

void PipeTransport::close_with(std::exception_ptr exc) {
  if (conn_lost_ != 0) return;
  closing_ = true;
  stop_reading();
  stop_peer_watch();
  pending_.clear();  // a write in flight is cancelled when the handle closes
  ++conn_lost_;
  schedule_connection_lost(std::move(exc));
}

void PipeTransport::schedule_connection_lost(std::exception_ptr exc) {
  auto self = shared_from_this();
  loop_.call_soon([self, exc] { self->call_connection_lost(exc); });
}

void PipeTransport::call_connection_lost(std::exception_ptr exc) {
  if (lost_delivered_) return;
  lost_delivered_ = true;
  struct Release {
    PipeTransport* t;
    ~Release() { t->release_after_connection_lost(); }
  } release{this};
  std::shared_ptr<BaseProtocol> protocol = protocol_;
  if (protocol) protocol->connection_lost(exc);
}

void PipeTransport::release_after_connection_lost() noexcept {
  close_handle();
  std::shared_ptr<BaseProtocol> protocol = std::move(protocol_);
  read_protocol_ = nullptr;
  protocol.reset();
}

void PipeTransport::close_handle() noexcept {
  if (!handle_open_ || handle_closing_) return;
  handle_closing_ = true;
  stop_reading();
  stop_peer_watch();
  if (auto* watchers = loop_.find_service<FdWatchers>()) watchers->release_from_transport(fd_);
  if (auto* open = loop_.find_service<PipeTransports>()) open->remove(this);
  ++closes_pending_;
  uv_close(handle(), &PipeTransport::on_close);  // closes the fd now
  if (peer_poll_open_) {
    peer_poll_open_ = false;
    ++closes_pending_;
    uv_close(reinterpret_cast<uv_handle_t*>(&peer_poll_), &PipeTransport::on_close);
    ::close(peer_fd_);  // uv_close took it out of epoll already
    peer_fd_ = -1;
  }
}

void PipeTransport::on_close(uv_handle_t* h) {
  auto* t = static_cast<PipeTransport*>(h->data);
  if (--t->closes_pending_ != 0) return;
  std::shared_ptr<PipeTransport> last = std::move(t->self_);
}

void PipeTransport::loop_closed() noexcept {
  closing_ = true;
  if (conn_lost_ == 0) conn_lost_ = 1;
  lost_delivered_ = true;
  pending_.clear();
  close_handle();
  std::shared_ptr<BaseProtocol> protocol = std::move(protocol_);
  read_protocol_ = nullptr;
  protocol.reset();
}

// ---- the loop's open pipes ----------------------------------------------------------------

void PipeTransports::add(PipeTransport* t) noexcept {
  t->prev_open = nullptr;
  t->next_open = head_;
  if (head_ != nullptr) head_->prev_open = t;
  head_ = t;
  ++count_;
}

void PipeTransports::remove(PipeTransport* t) noexcept {
  if (t->prev_open == nullptr && head_ != t) return;
  if (t->prev_open != nullptr) t->prev_open->next_open = t->next_open;
  if (t->next_open != nullptr) t->next_open->prev_open = t->prev_open;
  if (head_ == t) head_ = t->next_open;
  t->prev_open = t->next_open = nullptr;
  --count_;
}

char* PipeTransports::read_buffer() noexcept {
  if (!read_buffer_) read_buffer_.reset(new (std::nothrow) char[read_buffer_size]);
  return read_buffer_.get();
}

void PipeTransports::close() noexcept {
  while (head_ != nullptr) {
    PipeTransport* t = head_;
    t->loop_closed();
    if (head_ == t) remove(t);
  }
}

}  // namespace asyncuv::detail
