// The datagram transport: asyncio's _SelectorDatagramTransport, in two flavours sharing one
// base class (DatagramEndpoint):
// - UDP (AF_INET, AF_INET6): a uv_udp_t opened on the socket.
// - every other family (AF_UNIX datagram sockets): libuv's uv_udp_t cannot carry AF_UNIX
//   addresses (their length is lost, which breaks abstract names), so the socket is driven
//   directly with recvfrom/sendto, watched by a uv_poll_t.
//
// Entry point for the rest of asyncuv: detail::make_datagram_transport() (below).
//
// How it maps onto asyncio:
// - Receiving: each datagram (empty ones too) goes to datagram_received(data, addr), read into
//   one receive buffer shared by all the loop's datagram transports (asyncio's max_size, 256
//   KiB; a longer datagram is truncated as recvfrom truncates it). A receive error (an ICMP
//   port-unreachable reported as ECONNREFUSED on a connected endpoint, ...) goes to
//   error_received(OSError); the transport stays open.
// - Sending: sendto() tries to send at once (uv_udp_try_send / sendto); when the socket cannot
//   take the datagram now it is copied and queued (uv_udp_send / the poll handle's writable
//   event). get_write_buffer_size() counts the queued datagrams: their payload plus 8 bytes of
//   header each (as asyncio counts them), and the protocol's pause_writing() / resume_writing()
//   follow the water marks as in asyncio's _FlowControlMixin. An OS error while sending goes to
//   error_received(OSError) and the transport stays open.
// - Errors that are not OSErrors (sendto() without an address on an endpoint that is not
//   connected: TypeError) go through asyncio's _fatal_error: the loop's exception handler gets
//   "Fatal write error on datagram transport" with "transport"
//   (std::shared_ptr<asyncuv::DatagramTransport>) and "protocol", then connection_lost(exc).
// - Exceptions thrown by datagram_received() / error_received() go to the exception handler
//   with the transport and protocol; the transport stays open (asyncio lets them reach the
//   handler through the loop callback). Fatal ones (FatalError, std::bad_alloc) are rethrown
//   from a loop callback so that they leave run_forever().
// - close(): receiving stops; once the queue is sent, connection_lost(nullptr) is scheduled
//   with call_soon; after it ran the socket is closed. abort() drops the queue and does the
//   same at once. sendto() after that drops the datagram (a warning from the 5th).
//
// Lifetime: an open transport owns itself (and its protocol) until connection_lost() has run
// and libuv closed the handle, so every user reference may be dropped at any time. Closing the
// loop closes every open datagram transport's socket without calling its protocol again.
#pragma once

#include <uv.h>

#include <any>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "asyncuv/detail/loop_service.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/sockaddr.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv::detail {

/// Makes the transport for datagram socket `sock` (asyncio _make_datagram_transport). The
/// transport takes over the descriptor (it closes it when the endpoint is closed) and claims it
/// in the loop's fd watchers. `address` is the endpoint's remote address (asyncio's r_addr):
/// sendto() then accepts no other address. As asyncio, the protocol's connection_made(transport)
/// is scheduled with call_soon, receiving starts in the callback after it, and `waiter` (if
/// given) is completed right after that unless it is done by then.
///
/// Throws RuntimeError("Event loop is closed"), RuntimeError for an fd another transport owns,
/// ValueError("A datagram socket was expected, got ...") for a closed or non-SOCK_DGRAM socket,
/// TypeError for a null protocol, or the OSError libuv reports (`sock` then keeps its fd).
std::shared_ptr<DatagramTransport> make_datagram_transport(
    EventLoop& loop, Socket sock, std::shared_ptr<DatagramProtocol> protocol,
    std::optional<SockAddr> address = std::nullopt, Future<void> waiter = {});

/// "('127.0.0.1', 9999)", "('::1', 9999, 0, 0)" or "'/path'": an address as Python prints it.
std::string datagram_address_repr(const SockAddr& address);

/// True when `a` and `b` name the same endpoint: same family, host and port (and IPv6 scope
/// id; the flow label is ignored), or the same Unix path.
bool same_endpoint(const SockAddr& a, const SockAddr& b) noexcept;

/// The shared part of both datagram transports. Only make_datagram_transport() creates them;
/// the public face is asyncuv::DatagramTransport. The extra members are for tests.
class DatagramEndpoint : public DatagramTransport,
                         public std::enable_shared_from_this<DatagramEndpoint> {
 public:
  ~DatagramEndpoint() override;
  DatagramEndpoint(const DatagramEndpoint&) = delete;
  DatagramEndpoint& operator=(const DatagramEndpoint&) = delete;

  // The DatagramTransport overrides behave as <asyncuv/transports.hpp> documents them and
  // <asyncuv/datagram.hpp> sums up; only what differs is commented here.

  // ---- BaseTransport ----
  void close() override;
  bool is_closing() const override { return closing_; }
  /// Replaces the protocol (a DatagramProtocol; TypeError otherwise). Ignored once
  /// connection_lost() was delivered.
  void set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
  /// The protocol; null once connection_lost() was delivered.
  std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }
  EventLoop& get_loop() const override { return loop_; }

  // ---- DatagramTransport ----
  using DatagramTransport::sendto;
  void sendto(std::string_view data, const std::optional<SockAddr>& addr) override;
  void abort() override;
  void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                               std::optional<std::size_t> low = std::nullopt) override;
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const override {
    return {low_water_, high_water_};
  }
  std::size_t get_write_buffer_size() const override { return conn_lost_ != 0 ? 0 : queued_bytes_; }

  /// asyncio-style text: "<DatagramTransport fd=7 read=polling write=<idle, bufsize=0>>".
  std::string repr() const;
  /// The socket's descriptor (still reported after it was closed).
  int fd() const noexcept { return fd_; }
  /// True once the socket was closed (after connection_lost, or on loop.close()).
  bool socket_closed() const noexcept { return handle_closing_; }
  /// True while pause_writing() is in effect.
  bool protocol_paused() const noexcept { return protocol_paused_; }
  /// How many datagrams wait in the send queue.
  std::size_t queued_datagrams() const noexcept { return conn_lost_ != 0 ? 0 : queued_count_; }
  /// The remote address sendto() is restricted to (asyncio's _address), if any.
  const std::optional<SockAddr>& remote_address() const noexcept { return address_; }

  /// Intrusive list of the loop's open datagram transports.
  DatagramEndpoint* prev_open = nullptr;
  DatagramEndpoint* next_open = nullptr;

 protected:
  DatagramEndpoint(EventLoop& loop, int fd);

  // ---- what each kind of socket provides ----

  /// Sends one datagram now, to `addr` (null: the connected peer). The byte count, UV_EAGAIN
  /// when the socket cannot take it now, or another (negative) libuv error code.
  virtual int send_now(std::string_view data, const SockAddr* addr) noexcept = 0;
  /// Queues a copy of `data` for `addr` (null: the peer), sent as soon as the socket can take
  /// it, after those queued before. Each queued datagram is reported to queued_done() once.
  /// 0, or a libuv error code when it could not be queued.
  virtual int send_later(std::string_view data, const SockAddr* addr) = 0;
  /// Forgets the queued datagrams (abort): those not sent yet are dropped.
  virtual void discard_queue() noexcept = 0;
  /// Starts / stops delivering received datagrams to received() and receive_failed().
  virtual int start_receiving() noexcept = 0;
  virtual void stop_receiving() noexcept = 0;
  /// True while receiving.
  virtual bool receiving() const noexcept = 0;
  /// Closes the socket and its libuv handle (uv_close); the close callback calls
  /// handle_closed().
  virtual void close_socket() noexcept = 0;

  // ---- called by the implementations, from libuv callbacks ----

  /// A datagram arrived from `from`: datagram_received(data, from), unless closing.
  void received(std::string_view data, const SockAddr& from);
  /// Receiving failed with libuv error code `code`: error_received(OSError).
  void receive_failed(int code);
  /// A queued datagram of `bytes` payload bytes was sent (status 0) or failed (libuv code;
  /// UV_ECANCELED when the socket closed first).
  void queued_done(std::size_t bytes, int status);
  /// The queue was dropped (discard_queue): forgets its accounting.
  void forget_queue() noexcept {
    queued_bytes_ = 0;
    queued_count_ = 0;
  }
  /// Makes the transport own itself (if it does not yet) until handle_closed().
  void keep_until_closed() {
    if (!self_) self_ = shared_from_this();
  }
  /// libuv closed the handle: drops the transport's reference to itself.
  void handle_closed() noexcept;
  /// The loop's receive buffer (null if it could not be allocated) and its size.
  char* receive_buffer() noexcept;
  static std::size_t receive_buffer_size() noexcept;
  /// Rethrows `e` (a fatal exception) from a loop callback, out of run_forever().
  void defer_fatal(std::exception_ptr e) noexcept;

  EventLoop& loop_;
  int fd_ = -1;
  bool handle_open_ = false;     // the libuv handle exists and uv_close was not called yet
  bool handle_closing_ = false;  // uv_close called
  bool connected_ = false;       // the socket itself is connected (it has a peername)

 private:
  friend std::shared_ptr<DatagramTransport> make_datagram_transport(
      EventLoop&, Socket, std::shared_ptr<DatagramProtocol>, std::optional<SockAddr>, Future<void>);
  friend class DatagramTransports;

  std::any extra_info(std::string_view name) const override;

  /// Schedules connection_made, the start of receiving and the waiter.
  void start(std::shared_ptr<DatagramProtocol> protocol, Future<void> waiter);
  void install_protocol(std::shared_ptr<BaseProtocol> protocol);
  void begin_receiving();
  /// Calls the protocol's error_received(e), reporting what it throws.
  void deliver_error(std::exception_ptr e);
  /// asyncio _fatal_error: reports a non-OSError `e`, then force_close(e).
  void fatal_error(std::exception_ptr e, const char* message);
  /// The exception handler gets `e` with "transport" and "protocol" (fatal: deferred).
  void report(std::exception_ptr e, const std::string& message);
  void force_close(std::exception_ptr exc);
  void schedule_connection_lost(std::exception_ptr exc);
  void call_connection_lost(std::exception_ptr exc);
  void release_after_connection_lost() noexcept;
  /// Closes the socket, gives the fd back to the fd watchers, leaves the loop's list.
  void close_handle() noexcept;
  /// The loop is closing with this transport open: closes the socket and drops the protocol
  /// without calling it.
  void loop_closed() noexcept;
  void maybe_pause_protocol();
  void maybe_resume_protocol();

  std::shared_ptr<DatagramEndpoint> self_;  // owns itself until libuv closed the handle
  std::shared_ptr<BaseProtocol> protocol_;
  DatagramProtocol* datagram_protocol_ = nullptr;  // protocol_ as a DatagramProtocol
  std::optional<SockAddr> address_;                // asyncio's _address
  std::optional<SockAddr> sockname_;
  std::optional<SockAddr> peername_;
  char* receive_buffer_ = nullptr;

  bool closing_ = false;
  int conn_lost_ = 0;
  bool lost_delivered_ = false;
  bool receive_allowed_ = false;  // the start-receiving callback after connection_made ran

  std::size_t queued_bytes_ = 0;  // payload + 8 per queued datagram
  std::size_t queued_count_ = 0;
  std::size_t high_water_ = WriteTransport::default_high_water;
  std::size_t low_water_ = WriteTransport::default_high_water / 4;
  bool protocol_paused_ = false;
};

/// The loop's open datagram transports (so that loop.close() can close their sockets) and the
/// receive buffer they share.
class DatagramTransports final : public LoopService {
 public:
  explicit DatagramTransports(EventLoop&) {}
  ~DatagramTransports() override = default;

  /// Closes every open datagram transport (DatagramEndpoint::loop_closed).
  void close() noexcept override;

  void add(DatagramEndpoint* t) noexcept;
  void remove(DatagramEndpoint* t) noexcept;
  /// How many datagram transports are open.
  std::size_t size() const noexcept { return count_; }

  /// The receive buffer (allocated on first use; null if that failed).
  char* receive_buffer() noexcept;
  /// Its size: asyncio's max_size for datagram reads.
  static constexpr std::size_t receive_buffer_size = 256 * 1024;

 private:
  std::unique_ptr<char[]> buffer_;
  DatagramEndpoint* head_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace asyncuv::detail
