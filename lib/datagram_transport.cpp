// What both datagram transports share (asyncio's _SelectorDatagramTransport and
// _SelectorTransport): creation, the protocol, sendto() and its queue accounting with asyncio's
// flow control, error reporting, closing, and the loop's list of open datagram transports.
// See include/asyncuv/detail/datagram_transport.hpp.
#include "asyncuv/detail/datagram_transport.hpp"

#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <tuple>
#include <typeinfo>
#include <utility>

#include "asyncuv/detail/describe.hpp"
#include "asyncuv/detail/fd_watchers.hpp"
#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exception_context.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"
#include "datagram_kinds.hpp"
#include "internal.hpp"
#include "stream_transport_internal.hpp"
#include "write_buffer_limits.hpp"

namespace asyncuv::detail {

namespace {

/// asyncio constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES.
constexpr int kLogThresholdForConnLostWrites = 5;

/// The bytes asyncio counts per queued datagram on top of its payload (its header).
constexpr std::size_t kDatagramHeader = 8;

/// getsockname / getpeername, or nothing when the call fails (asyncio stores None).
std::optional<SockAddr> socket_address(int fd, bool peer) {
  SockAddr address;
  socklen_t len = SockAddr::capacity();
  int rc = peer ? ::getpeername(fd, address.data(), &len) : ::getsockname(fd, address.data(), &len);
  if (rc != 0) return std::nullopt;
  address.set_size(len);
  return address;
}

/// The path of a Unix address without the trailing NULs a path address may carry.
std::string_view unix_name(const SockAddr& a) {
  const auto* un = reinterpret_cast<const sockaddr_un*>(a.get());
  std::size_t offset = offsetof(sockaddr_un, sun_path);
  std::size_t len = a.size() > offset ? a.size() - offset : 0;
  std::string_view name(un->sun_path, len);
  if (!name.empty() && name.front() != '\0') {
    std::size_t end = name.find('\0');
    if (end != std::string_view::npos) name = name.substr(0, end);
  }
  return name;
}

}  // namespace

// ---- addresses ------------------------------------------------------------------------------

std::string datagram_address_repr(const SockAddr& a) {
  if (a.family() == AF_INET6) {
    return "('" + a.host() + "', " + std::to_string(a.port()) + ", " +
           std::to_string(a.flowinfo()) + ", " + std::to_string(a.scope_id()) + ")";
  }
  if (a.family() == AF_INET) return "('" + a.host() + "', " + std::to_string(a.port()) + ")";
  if (a.family() == AF_UNIX) {
    std::string name(unix_name(a));
    for (char& c : name) {
      if (c == '\0') c = '@';  // how Linux tools print the abstract namespace
    }
    return "'" + name + "'";
  }
  return "None";
}

bool same_endpoint(const SockAddr& a, const SockAddr& b) noexcept {
  if (a.family() != b.family()) return false;
  switch (a.family()) {
    case AF_INET: {
      const auto* x = reinterpret_cast<const sockaddr_in*>(a.get());
      const auto* y = reinterpret_cast<const sockaddr_in*>(b.get());
      return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AF_INET6: {
      const auto* x = reinterpret_cast<const sockaddr_in6*>(a.get());
      const auto* y = reinterpret_cast<const sockaddr_in6*>(b.get());
      return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
             std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    case AF_UNIX:
      return unix_name(a) == unix_name(b);
    default:
      return a == b;
  }
}

// ---- creation -------------------------------------------------------------------------------

std::shared_ptr<DatagramTransport> make_datagram_transport(
    EventLoop& loop, Socket sock, std::shared_ptr<DatagramProtocol> protocol,
    std::optional<SockAddr> address, Future<void> waiter) {
  if (sock.closed() || sock.type() != SOCK_DGRAM) {
    throw ValueError("A datagram socket was expected, got " + describe_socket(sock));
  }
  // The fd watchers first (services close in reverse order, so they outlive the list of
  // transports); RuntimeError on a closed loop or for an fd another transport owns.
  loop.fd_watcher_check(sock.fileno());
  FdWatchers& watchers = *loop.find_service<FdWatchers>();
  DatagramTransports& open = loop.service<DatagramTransports>();
  if (!protocol) throw TypeError("a DatagramProtocol was expected, got nullptr");

  std::shared_ptr<DatagramEndpoint> t;
  if (sock.family() == AF_INET || sock.family() == AF_INET6) {
    t = UdpEndpoint::open(loop, sock);
  } else {
    t = PollEndpoint::open(loop, sock);
  }
  (void)sock.detach();  // the transport closes the descriptor now
  t->sockname_ = socket_address(t->fd_, false);
  t->peername_ = socket_address(t->fd_, true);
  t->connected_ = t->peername_.has_value();
  t->address_ = std::move(address);
  t->self_ = t;
  open.add(t.get());
  watchers.claim_for_transport(t->fd_, t->repr());
  t->start(std::move(protocol), std::move(waiter));
  return t;
}

DatagramEndpoint::DatagramEndpoint(EventLoop& loop, int fd) : loop_(loop), fd_(fd) {}

DatagramEndpoint::~DatagramEndpoint() = default;

void DatagramEndpoint::start(std::shared_ptr<DatagramProtocol> protocol, Future<void> waiter) {
  install_protocol(protocol);
  auto self = shared_from_this();
  // As asyncio: connection_made first, receiving only after it, then the waiter.
  loop_.call_soon([self, protocol] { protocol->connection_made(self); });
  loop_.call_soon([self] {
    self->receive_allowed_ = true;
    self->begin_receiving();
  });
  if (waiter) {
    loop_.call_soon([waiter] {
      if (!waiter.done()) waiter.set_result();
    });
  }
}

void DatagramEndpoint::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  if (protocol == nullptr) throw TypeError("a DatagramProtocol was expected, got nullptr");
  if (dynamic_cast<DatagramProtocol*>(protocol.get()) == nullptr) {
    const BaseProtocol& given = *protocol;  // typeid of a plain reference: no side effects
    throw TypeError("a DatagramProtocol was expected, got " + demangle(typeid(given).name()));
  }
  if (lost_delivered_) return;
  install_protocol(std::move(protocol));
}

void DatagramEndpoint::install_protocol(std::shared_ptr<BaseProtocol> protocol) {
  datagram_protocol_ = dynamic_cast<DatagramProtocol*>(protocol.get());
  protocol_ = std::move(protocol);
}

std::any DatagramEndpoint::extra_info(std::string_view name) const {
  if (name == "peername") return peername_ ? std::any(*peername_) : std::any();
  if (name == "sockname") return sockname_ ? std::any(*sockname_) : std::any();
  if (name == "socket") return std::any(fd_);
  return {};
}

std::string DatagramEndpoint::repr() const {
  std::string text = "<DatagramTransport";
  if (handle_closing_) {
    text += " closed";
  } else if (closing_) {
    text += " closing";
  }
  text += " fd=" + std::to_string(fd_);
  if (!loop_.is_closed() && !handle_closing_) {
    text += receiving() ? " read=polling" : " read=idle";
    text += get_write_buffer_size() != 0 ? " write=<polling" : " write=<idle";
    text += ", bufsize=" + std::to_string(get_write_buffer_size()) + ">";
  }
  return text + ">";
}

char* DatagramEndpoint::receive_buffer() noexcept {
  if (receive_buffer_ == nullptr) {
    auto* open = loop_.find_service<DatagramTransports>();
    receive_buffer_ = open != nullptr ? open->receive_buffer() : nullptr;
  }
  return receive_buffer_;
}

std::size_t DatagramEndpoint::receive_buffer_size() noexcept {
  return DatagramTransports::receive_buffer_size;
}

// ---- receiving ------------------------------------------------------------------------------

void DatagramEndpoint::begin_receiving() {
  if (!receive_allowed_ || closing_ || conn_lost_ != 0 || handle_closing_ || receiving()) return;
  if (int rc = start_receiving(); rc != 0) {
    fatal_error(uv_exception(rc), "Fatal read error on datagram transport");
  }
}

void DatagramEndpoint::received(std::string_view data, const SockAddr& from) {
  if (conn_lost_ != 0 || datagram_protocol_ == nullptr) return;  // closing: asyncio ignores it
  std::shared_ptr<BaseProtocol> keep = protocol_;  // set_protocol() may drop it meanwhile
  try {
    datagram_protocol_->datagram_received(data, from);
  } catch (...) {
    // The transport stays open, as in asyncio.
    report(std::current_exception(), "protocol.datagram_received() call failed.");
  }
}

void DatagramEndpoint::receive_failed(int code) {
  if (conn_lost_ != 0) return;
  deliver_error(uv_exception(code));
}

void DatagramEndpoint::deliver_error(std::exception_ptr e) {
  std::shared_ptr<BaseProtocol> keep = protocol_;
  DatagramProtocol* protocol = datagram_protocol_;
  if (protocol == nullptr) return;
  try {
    protocol->error_received(std::move(e));
  } catch (...) {
    report(std::current_exception(), "protocol.error_received() call failed.");
  }
}

// ---- sending --------------------------------------------------------------------------------

void DatagramEndpoint::sendto(std::string_view data, const std::optional<SockAddr>& addr) {
  if (address_ && addr && !same_endpoint(*addr, *address_)) {
    throw ValueError("Invalid address: must be None or " + datagram_address_repr(*address_));
  }
  if (conn_lost_ != 0) {
    if (conn_lost_ >= kLogThresholdForConnLostWrites) {
      logger()->warn("socket.send() raised exception.");
    }
    ++conn_lost_;
    return;
  }
  const SockAddr* target = addr ? &*addr : (address_ ? &*address_ : nullptr);
  if (target == nullptr && !connected_) {
    // asyncio's sock.sendto(data, None) raises TypeError, which _fatal_error reports.
    fatal_error(std::make_exception_ptr(
                    TypeError("sendto() needs an address: the datagram endpoint is not connected")),
                "Fatal write error on datagram transport");
    return;
  }
  if (connected_) target = nullptr;  // a connected socket sends to its peer (send, not sendto)
  if (data.size() > INT_MAX) {
    deliver_error(make_os_error(EMSGSIZE));
    return;
  }
  if (queued_count_ == 0) {
    // Try to send now; only what the socket cannot take is copied.
    int rc = send_now(data, target);
    if (rc >= 0) return;
    if (rc != UV_EAGAIN) {
      deliver_error(uv_exception(rc));
      return;
    }
  }
  if (int rc = send_later(data, target); rc != 0) {
    deliver_error(uv_exception(rc));
    return;
  }
  queued_bytes_ += data.size() + kDatagramHeader;
  ++queued_count_;
  maybe_pause_protocol();
}

void DatagramEndpoint::queued_done(std::size_t bytes, int status) {
  if (queued_count_ != 0) {
    --queued_count_;
    queued_bytes_ -= bytes + kDatagramHeader;
  }
  if (status == UV_ECANCELED || handle_closing_ || conn_lost_ != 0) return;
  if (status < 0) {
    deliver_error(uv_exception(status));
    if (conn_lost_ != 0) return;
  }
  maybe_resume_protocol();  // may send more, close or abort
  if (conn_lost_ == 0 && closing_ && queued_count_ == 0) {
    ++conn_lost_;
    schedule_connection_lost(nullptr);
  }
}

// ---- flow control (asyncio transports._FlowControlMixin) ------------------------------------

void DatagramEndpoint::set_write_buffer_limits(std::optional<std::size_t> high,
                                               std::optional<std::size_t> low) {
  std::tie(high_water_, low_water_) =
      detail::write_buffer_limits(high, low, WriteTransport::default_high_water);
  maybe_pause_protocol();
}

void DatagramEndpoint::maybe_pause_protocol() {
  if (get_write_buffer_size() <= high_water_ || protocol_paused_) return;
  protocol_paused_ = true;
  std::shared_ptr<BaseProtocol> protocol = protocol_;
  if (!protocol) return;
  try {
    protocol->pause_writing();
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    if (is_fatal(e)) throw;  // called from sendto(): a fatal error reaches the caller
    report(e, "protocol.pause_writing() failed");
  }
}

void DatagramEndpoint::maybe_resume_protocol() {
  if (!protocol_paused_ || get_write_buffer_size() > low_water_) return;
  protocol_paused_ = false;
  std::shared_ptr<BaseProtocol> protocol = protocol_;
  if (!protocol) return;
  try {
    protocol->resume_writing();
  } catch (...) {
    report(std::current_exception(), "protocol.resume_writing() failed");  // defers fatal ones
  }
}

// ---- errors ---------------------------------------------------------------------------------

void DatagramEndpoint::fatal_error(std::exception_ptr e, const char* message) {
  if (is_fatal(e)) {
    defer_fatal(std::move(e));
    return;
  }
  if (is_os_error(e)) {
    if (loop_.get_debug()) {
      logger()->debug("{}: {}: {}", repr(), message, describe_exception(e));
    }
  } else {
    report(e, message);
  }
  force_close(std::move(e));
}

void DatagramEndpoint::report(std::exception_ptr e, const std::string& message) {
  if (is_fatal(e)) {
    defer_fatal(std::move(e));
    return;
  }
  ExceptionContext context(message, e);
  context.set("transport", std::shared_ptr<DatagramTransport>(shared_from_this()), repr());
  context.set("protocol", protocol_, protocol_repr(protocol_.get()));
  try {
    loop_.call_exception_handler(context);
  } catch (...) {
    defer_fatal(std::current_exception());  // only fatal errors escape the handler
  }
}

void DatagramEndpoint::defer_fatal(std::exception_ptr e) noexcept {
  try {
    loop_.call_soon([e] { std::rethrow_exception(e); });
  } catch (...) {
    // The loop is closed: there is no run_forever() left to leave.
  }
}

// ---- closing --------------------------------------------------------------------------------

void DatagramEndpoint::close() {
  if (closing_) return;
  closing_ = true;
  stop_receiving();
  if (queued_count_ == 0 && conn_lost_ == 0) {
    ++conn_lost_;
    schedule_connection_lost(nullptr);
  }
  // Otherwise queued_done() schedules connection_lost once the queue is sent.
}

void DatagramEndpoint::abort() {
  force_close(nullptr);
}

void DatagramEndpoint::force_close(std::exception_ptr exc) {
  if (conn_lost_ != 0) return;
  discard_queue();
  if (!closing_) {
    closing_ = true;
    stop_receiving();
  }
  ++conn_lost_;
  schedule_connection_lost(std::move(exc));
}

void DatagramEndpoint::schedule_connection_lost(std::exception_ptr exc) {
  auto self = shared_from_this();
  loop_.call_soon([self, exc] { self->call_connection_lost(exc); });
}

void DatagramEndpoint::call_connection_lost(std::exception_ptr exc) {
  if (lost_delivered_) return;
  lost_delivered_ = true;
  // asyncio's try/finally: the socket is closed and everything released even if the
  // protocol's connection_lost() throws (its exception then goes to the exception handler).
  struct Release {
    DatagramEndpoint* t;
    ~Release() { t->release_after_connection_lost(); }
  } release{this};
  std::shared_ptr<BaseProtocol> protocol = protocol_;
  if (protocol) protocol->connection_lost(exc);
}

void DatagramEndpoint::release_after_connection_lost() noexcept {
  close_handle();
  std::shared_ptr<BaseProtocol> protocol = std::move(protocol_);
  datagram_protocol_ = nullptr;
  protocol.reset();  // may run the protocol's destructor: last, with the transport settled
}

void DatagramEndpoint::close_handle() noexcept {
  if (!handle_open_ || handle_closing_) return;
  if (auto* watchers = loop_.find_service<FdWatchers>()) watchers->release_from_transport(fd_);
  if (auto* open = loop_.find_service<DatagramTransports>()) open->remove(this);
  close_socket();  // sets handle_closing_; closes the fd now
}

void DatagramEndpoint::handle_closed() noexcept {
  // libuv is done with the handle and its requests: the transport may go.
  std::shared_ptr<DatagramEndpoint> last = std::move(self_);
}

void DatagramEndpoint::loop_closed() noexcept {
  closing_ = true;
  if (conn_lost_ == 0) conn_lost_ = 1;
  lost_delivered_ = true;
  discard_queue();
  close_handle();
  std::shared_ptr<BaseProtocol> protocol = std::move(protocol_);
  datagram_protocol_ = nullptr;
  protocol.reset();
}

// ---- the loop's open datagram transports -----------------------------------------------------

void DatagramTransports::add(DatagramEndpoint* t) noexcept {
  t->prev_open = nullptr;
  t->next_open = head_;
  if (head_ != nullptr) head_->prev_open = t;
  head_ = t;
  ++count_;
}

void DatagramTransports::remove(DatagramEndpoint* t) noexcept {
  if (t->prev_open == nullptr && head_ != t) return;  // not in the list
  if (t->prev_open != nullptr) t->prev_open->next_open = t->next_open;
  if (t->next_open != nullptr) t->next_open->prev_open = t->prev_open;
  if (head_ == t) head_ = t->next_open;
  t->prev_open = t->next_open = nullptr;
  --count_;
}

char* DatagramTransports::receive_buffer() noexcept {
  if (!buffer_) buffer_.reset(new (std::nothrow) char[receive_buffer_size]);
  return buffer_.get();
}

void DatagramTransports::close() noexcept {
  // As for stream transports: open sockets are closed with the loop, without calling their
  // protocols.
  while (head_ != nullptr) {
    DatagramEndpoint* t = head_;
    t->loop_closed();
    if (head_ == t) remove(t);
  }
}

}  // namespace asyncuv::detail
