// TLS as a protocol layered over any stream transport: asyncio's sslproto (CPython 3.11+)
// over OpenSSL.
//
// Entry points for the rest of asyncuv: detail::make_ssl_protocol() and
// detail::make_ssl_connection() (below), used by create_connection, the servers,
// connect_accepted_socket and loop.start_tls().
//
// Design (asyncio's SSLProtocol and _SSLProtocolTransport):
// - SSLProtocol is the protocol of the underlying transport (a BufferedProtocol: the socket
//   transport reads straight into its incoming buffer, which OpenSSL reads records from through
//   a custom BIO: no copy between the socket and OpenSSL). Encrypted output goes into one
//   buffer that OpenSSL's BIO appends to and that is handed to the underlying transport with
//   one write() per flush.
// - SSLTransport is what the application's protocol sees (the Transport of its
//   connection_made). It holds the SSLProtocol weakly: the underlying transport owns the
//   SSLProtocol until its connection_lost(), and the SSLProtocol owns the application's
//   protocol and transport until then, so dropped references and a closed loop free
//   everything.
// - States UNWRAPPED -> DO_HANDSHAKE -> WRAPPED -> FLUSHING -> SHUTDOWN (-> UNWRAPPED), as
//   asyncio. The handshake starts in connection_made(); the application's connection_made()
//   runs once it succeeded, then the waiter (create_connection's) completes. A handshake that
//   takes longer than ssl_handshake_timeout (60 s) ends with ConnectionAbortedError("SSL
//   handshake is taking longer than 60.0 seconds: aborting the connection"). close() flushes
//   the written data, sends close_notify and waits (ssl_shutdown_timeout, 30 s, then
//   TimeoutError("SSL shutdown timed out")) for the peer's; the application's eof_received()
//   runs when the TLS session ends, then connection_lost(nullptr).
// - A peer that closes without close_notify: eof_received() then connection_lost(nullptr), as
//   asyncio. write_eof() throws NotImplementedError and can_write_eof() is false (asyncio);
//   eof_received() returning true has no effect (a warning is logged).
// - Flow control, both ways as asyncio: the application's writes are paused when the
//   plaintext not yet encrypted plus the ciphertext not yet handed to the socket transport
//   reach the high-water mark (512 KiB; low 128 KiB); the socket transport's own pause stops
//   the hand-over. pause_reading() stops data_received(); the socket stops being read once 256
//   KiB of ciphertext waits (resumed at 64 KiB).
// - Errors as asyncio's SSLProtocol._fatal_error: OSErrors (ssl::SSLError included) end the
//   connection and are only logged in debug mode; other exceptions (thrown by the application's
//   data_received & co.) also go to the exception handler ("Fatal error on SSL protocol").
#pragma once

#include <any>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "asyncuv/durations.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/handle.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/ssl.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv::detail {

class ConnectionTracker;
class SSLTransport;

/// What a TLS connection needs besides its protocol.
struct TlsSetup {
  std::shared_ptr<ssl::Context> context;
  bool server_side = false;
  /// SNI and host name checking (clients); "" for neither.
  std::string server_hostname;
  std::optional<Seconds> handshake_timeout;
  std::optional<Seconds> shutdown_timeout;
};

/// asyncio's checks: ValueError("ssl_handshake_timeout should be a positive number, got 0")
/// (and the same for ssl_shutdown_timeout) for a timeout <= 0.
void check_tls_timeouts(const std::optional<Seconds>& handshake_timeout,
                        const std::optional<Seconds>& shutdown_timeout);

/// Python's repr() of a float: "0.3", "60.0", "-1.0".
std::string python_float_repr(double value);

/// asyncio's SSLProtocol (see the file comment). Create it with make_ssl_protocol().
class SSLProtocol final : public BufferedProtocol,
                          public std::enable_shared_from_this<SSLProtocol> {
  struct Private {};

 public:
  enum class State { UNWRAPPED, DO_HANDSHAKE, WRAPPED, FLUSHING, SHUTDOWN };
  enum class AppState { INIT, CON_MADE, EOF_RECEIVED, CON_LOST };

  /// Use make_ssl_protocol().
  SSLProtocol(Private, EventLoop& loop, std::shared_ptr<BaseProtocol> app_protocol, TlsSetup setup,
              Future<void> waiter, bool call_connection_made);
  ~SSLProtocol() override;
  SSLProtocol(const SSLProtocol&) = delete;
  SSLProtocol& operator=(const SSLProtocol&) = delete;

  // ---- the underlying transport's callbacks ----
  void connection_made(std::shared_ptr<Transport> transport) override;
  void connection_lost(std::exception_ptr exc) override;
  std::span<std::byte> get_buffer(std::ptrdiff_t sizehint) override;
  void buffer_updated(std::size_t nbytes) override;
  bool eof_received() override;
  void pause_writing() override;
  void resume_writing() override;

  /// The application's transport (made with the protocol; null after connection_lost).
  std::shared_ptr<SSLTransport> app_transport() const { return app_transport_; }
  State state() const noexcept { return state_; }

  // ---- what SSLTransport calls ----
  std::shared_ptr<BaseProtocol> app_protocol() const { return app_protocol_; }
  void set_app_protocol(std::shared_ptr<BaseProtocol> protocol);
  std::any extra(std::string_view name) const;
  void start_shutdown();
  void abort(std::exception_ptr exc);
  /// Writes `pieces` (asyncio _write_appdata): encrypted at once when the session is up,
  /// otherwise buffered until the handshake is done; dropped once closing.
  void write_appdata(std::span<const std::string_view> pieces);
  bool app_reading_paused() const noexcept { return app_reading_paused_; }
  void pause_app_reading() noexcept { app_reading_paused_ = true; }
  void resume_app_reading();
  void set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low);
  std::pair<std::size_t, std::size_t> write_buffer_limits() const noexcept {
    return {outgoing_low_, outgoing_high_};
  }
  std::size_t write_buffer_size() const noexcept {
    return outgoing_.size() + backlog_.size() - backlog_at_;
  }
  void set_read_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low);
  std::pair<std::size_t, std::size_t> read_buffer_limits() const noexcept {
    return {incoming_low_, incoming_high_};
  }
  std::size_t read_buffer_size() const noexcept { return in_end_ - in_begin_; }
  void control_app_writing();
  void control_ssl_reading();
  /// "<asyncuv.SSLProtocol object at 0x...>"-like text for logs and contexts.
  std::string repr() const;

  // ---- the custom BIO's side (lib/ssl_bio.cpp) ----
  /// Copies up to `len` bytes of ciphertext from the incoming buffer; 0 when empty.
  std::size_t bio_read(char* out, std::size_t len) noexcept;
  /// Appends ciphertext to the outgoing buffer.
  void bio_write(const char* data, std::size_t len);
  std::size_t bio_pending() const noexcept { return in_end_ - in_begin_; }
  std::size_t bio_out_pending() const noexcept { return outgoing_.size(); }

  /// Creation (see make_ssl_protocol).
  friend std::shared_ptr<SSLProtocol> make_ssl_protocol(EventLoop&, std::shared_ptr<BaseProtocol>,
                                                        TlsSetup, Future<void>, bool);

 private:
  void set_state(State next);
  void wakeup_waiter(std::exception_ptr exc);
  // Handshake.
  void start_handshake();
  void check_handshake_timeout();
  void do_handshake();
  void on_handshake_complete(std::exception_ptr exc);
  // Shutdown.
  void check_shutdown_timeout();
  void do_flush();
  void do_shutdown();
  void on_shutdown_complete(std::exception_ptr exc);
  // Writing.
  void do_write();
  /// Encrypts `data` (all of it unless OpenSSL wants to read first); how much was taken.
  std::size_t encrypt(std::string_view data);
  void process_outgoing();
  // Reading.
  void do_read();
  /// Decrypts what is available into `out`; true at close_notify.
  bool read_copied();
  bool read_buffered();
  void call_eof_received();
  // Errors.
  void fatal_error(std::exception_ptr exc, const char* message = "Fatal error on transport");

  EventLoop& loop_;
  std::shared_ptr<ssl::Context> context_;
  bool server_side_;
  std::string server_hostname_;
  double handshake_timeout_;
  double shutdown_timeout_;
  ssl_st* ssl_ = nullptr;

  std::shared_ptr<BaseProtocol> app_protocol_;
  Protocol* app_stream_ = nullptr;
  BufferedProtocol* app_buffered_ = nullptr;
  std::shared_ptr<SSLTransport> app_transport_;
  std::shared_ptr<Transport> transport_;  // the underlying transport
  Future<void> waiter_;

  State state_ = State::UNWRAPPED;
  AppState app_state_ = AppState::INIT;
  int conn_lost_ = 0;
  bool eof_received_ = false;
  std::exception_ptr close_exc_;  // the error abort() passes on to connection_lost()
  TimerHandle handshake_timer_;
  TimerHandle shutdown_timer_;
  double handshake_start_ = 0;
  int retry_len_ = 0;  // an SSL_write that wanted to read must be retried with this length

  // Set when the handshake succeeded (get_extra_info).
  bool handshake_done_ = false;
  std::optional<ssl::PeerCert> peercert_;
  std::optional<ssl::CipherInfo> cipher_;
  std::optional<std::string> compression_;
  std::shared_ptr<ssl::SSLObject> ssl_object_;

  // Incoming ciphertext: [in_begin_, in_end_) of in_buf_.
  std::unique_ptr<char[]> in_buf_;
  std::size_t in_cap_ = 0;
  std::size_t in_begin_ = 0;
  std::size_t in_end_ = 0;
  // Decrypted data on its way to a Protocol's data_received().
  std::unique_ptr<char[]> plain_buf_;
  std::size_t plain_cap_ = 0;
  // Outgoing ciphertext, and plaintext written but not encrypted yet (from backlog_at_ on).
  std::string outgoing_;
  std::string backlog_;
  std::size_t backlog_at_ = 0;

  // Flow control (asyncio's names).
  bool ssl_writing_paused_ = false;
  bool app_reading_paused_ = false;
  bool ssl_reading_paused_ = false;
  bool app_writing_paused_ = false;
  std::size_t incoming_high_ = 0;
  std::size_t incoming_low_ = 0;
  std::size_t outgoing_high_ = 0;
  std::size_t outgoing_low_ = 0;
};

/// asyncio's _SSLProtocolTransport: the application's side of a TLS connection.
class SSLTransport final : public Transport {
 public:
  SSLTransport(EventLoop& loop, std::weak_ptr<SSLProtocol> protocol)
      : loop_(loop), protocol_(std::move(protocol)) {}

  void close() override;
  bool is_closing() const override { return closed_; }
  void set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
  std::shared_ptr<BaseProtocol> get_protocol() const override;
  EventLoop& get_loop() const override { return loop_; }

  bool is_reading() const override;
  void pause_reading() override;
  void resume_reading() override;

  void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                               std::optional<std::size_t> low = std::nullopt) override;
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const override;
  std::size_t get_write_buffer_size() const override;
  using WriteTransport::write;
  void write(std::string_view data) override;
  void writelines(std::span<const std::string_view> pieces) override;
  using WriteTransport::writelines;
  /// Throws NotImplementedError, as asyncio's TLS transport.
  void write_eof() override;
  bool can_write_eof() const override { return false; }
  void abort() override;

  /// Read flow control over the ciphertext waiting to be decrypted (asyncio's
  /// set_read_buffer_limits; 256 KiB high, 64 KiB low by default).
  void set_read_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                              std::optional<std::size_t> low = std::nullopt);
  std::pair<std::size_t, std::size_t> get_read_buffer_limits() const;
  std::size_t get_read_buffer_size() const;

  /// Marks the transport closed (the connection is gone or closing).
  void mark_closed() noexcept { closed_ = true; }

 protected:
  std::any extra_info(std::string_view name) const override;

 private:
  EventLoop& loop_;
  std::weak_ptr<SSLProtocol> protocol_;
  bool closed_ = false;
};

/// Makes the SSLProtocol for application protocol `app_protocol` (a Protocol or a
/// BufferedProtocol; TypeError otherwise) and its SSLTransport. `waiter` (if set) completes
/// once the handshake succeeded and connection_made() ran, or fails with the handshake's
/// error. With call_connection_made false (start_tls), the application's connection_made() is
/// not called. Throws ValueError for bad timeouts or a context of the wrong side, SSLError if
/// OpenSSL cannot make the session.
std::shared_ptr<SSLProtocol> make_ssl_protocol(EventLoop& loop,
                                               std::shared_ptr<BaseProtocol> app_protocol,
                                               TlsSetup setup, Future<void> waiter,
                                               bool call_connection_made = true);

/// Wraps connected stream socket `sock` in a socket transport whose protocol is a new
/// SSLProtocol for `app_protocol`, and returns the application's transport (asyncio
/// _make_ssl_transport). `tracker` is attached to the socket transport. The handshake starts
/// once the socket transport is set up; `waiter` reports its outcome.
std::shared_ptr<Transport> make_ssl_connection(EventLoop& loop, Socket sock,
                                               std::shared_ptr<BaseProtocol> app_protocol,
                                               TlsSetup setup, Future<void> waiter,
                                               std::shared_ptr<ConnectionTracker> tracker = {});

}  // namespace asyncuv::detail
