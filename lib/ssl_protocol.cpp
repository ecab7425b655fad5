// asyncio's SSLProtocol over OpenSSL: the TLS state machine between a socket transport and
// the application's protocol. See include/asyncuv/detail/ssl_protocol.hpp.
#include "asyncuv/detail/ssl_protocol.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <tuple>
#include <utility>

#include "asyncuv/detail/stream_reader_state.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exception_context.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"
#include "internal.hpp"
#include "ssl_internal.hpp"
#include "stream_transport_internal.hpp"
#include "write_buffer_limits.hpp"

namespace asyncuv::detail {

namespace {

// asyncio's constants.
constexpr double kHandshakeTimeout = 60.0;
constexpr double kShutdownTimeout = 30.0;
constexpr std::size_t kHighWaterSslReadKiB = 256;
constexpr std::size_t kHighWaterSslWriteKiB = 512;
constexpr int kLogThresholdForConnLostWrites = 5;

// Buffers: the incoming ciphertext buffer starts at 64 KiB and always offers libuv at least
// 16 KiB; the plaintext buffer grows from one record's worth to 256 KiB per delivery.
constexpr std::size_t kIncomingInitial = 64 * 1024;
constexpr std::size_t kIncomingMinFree = 16 * 1024;
constexpr std::size_t kPlainInitial = 16 * 1024;
constexpr std::size_t kPlainMax = 256 * 1024;
constexpr int kMaxWriteChunk = 1 << 30;

/// asyncio's SSLAgainErrors: wait for more data (or, never with our BIO, for room to write).
bool is_again(int err) noexcept {
  return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ||
         (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0);
}

bool is_ip_address(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

template <class E>
bool holds(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

/// Throws TypeError unless `protocol` is a Protocol or a BufferedProtocol.
void check_app_protocol(const BaseProtocol* protocol) {
  if (dynamic_cast<const BufferedProtocol*>(protocol) == nullptr &&
      dynamic_cast<const Protocol*>(protocol) == nullptr) {
    throw TypeError("a Protocol or BufferedProtocol was expected, got " +
                    (protocol == nullptr ? std::string("nullptr") : protocol_repr(protocol)));
  }
}

}  // namespace

// ---- creation -----------------------------------------------------------------------------

std::shared_ptr<SSLProtocol> make_ssl_protocol(EventLoop& loop,
                                               std::shared_ptr<BaseProtocol> app_protocol,
                                               TlsSetup setup, Future<void> waiter,
                                               bool call_connection_made) {
  auto protocol =
      std::make_shared<SSLProtocol>(SSLProtocol::Private{}, loop, std::move(app_protocol),
                                    std::move(setup), std::move(waiter), call_connection_made);
  protocol->app_transport_ = std::make_shared<SSLTransport>(loop, protocol);
  return protocol;
}

SSLProtocol::SSLProtocol(Private, EventLoop& loop, std::shared_ptr<BaseProtocol> app_protocol,
                         TlsSetup setup, Future<void> waiter, bool call_connection_made)
    : loop_(loop),
      context_(std::move(setup.context)),
      server_side_(setup.server_side),
      waiter_(std::move(waiter)) {
  check_tls_timeouts(setup.handshake_timeout, setup.shutdown_timeout);
  handshake_timeout_ = setup.handshake_timeout ? setup.handshake_timeout->value : kHandshakeTimeout;
  shutdown_timeout_ = setup.shutdown_timeout ? setup.shutdown_timeout->value : kShutdownTimeout;
  if (!server_side_) server_hostname_ = std::move(setup.server_hostname);
  if (!context_) {
    // asyncio's _create_transport_context (ssl=True).
    if (server_side_) throw ValueError("Server side SSL needs a valid SSLContext");
    context_ = ssl::create_default_context();
    if (server_hostname_.empty()) context_->set_check_hostname(false);
  }
  if (server_side_ && context_->protocol() == ssl::TlsProtocol::TLS_CLIENT) {
    throw ValueError("Cannot create a server socket with a PROTOCOL_TLS_CLIENT context");
  }
  if (!server_side_ && context_->protocol() == ssl::TlsProtocol::TLS_SERVER) {
    throw ValueError("Cannot create a client socket with a PROTOCOL_TLS_SERVER context");
  }
  set_app_protocol(std::move(app_protocol));
  app_state_ = call_connection_made ? AppState::INIT : AppState::CON_MADE;

  ssl_ = SSL_new(context_->native_handle());
  if (ssl_ == nullptr) ssl::detail::throw_from_queue("SSL_new failed");
  BIO* bio = ssl::detail::make_protocol_bio(this);
  if (bio == nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
    ssl::detail::throw_from_queue("BIO_new failed");
  }
  SSL_set_bio(ssl_, bio, bio);
  if (server_side_) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (!server_hostname_.empty()) {
      const bool ip = is_ip_address(server_hostname_);
      // SNI carries host names only.
      if (!ip) SSL_set_tlsext_host_name(ssl_, server_hostname_.c_str());
      if (context_->check_hostname()) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_hostname_.c_str())
                    : X509_VERIFY_PARAM_set1_host(param, server_hostname_.c_str(), 0);
        if (ok != 1) {
          SSL_free(ssl_);
          ssl_ = nullptr;
          ssl::detail::throw_from_queue("invalid server_hostname");
        }
      }
    }
  }
  std::tie(incoming_high_, incoming_low_) =
      detail::write_buffer_limits({}, {}, kHighWaterSslReadKiB * 1024);
  std::tie(outgoing_high_, outgoing_low_) =
      detail::write_buffer_limits({}, {}, kHighWaterSslWriteKiB * 1024);
}

SSLProtocol::~SSLProtocol() {
  handshake_timer_.cancel();
  shutdown_timer_.cancel();
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void SSLProtocol::set_app_protocol(std::shared_ptr<BaseProtocol> protocol) {
  check_app_protocol(protocol.get());
  app_buffered_ = dynamic_cast<BufferedProtocol*>(protocol.get());
  app_stream_ = app_buffered_ != nullptr ? nullptr : dynamic_cast<Protocol*>(protocol.get());
  app_protocol_ = std::move(protocol);
}

std::string SSLProtocol::repr() const {
  return protocol_repr(this);
}

void SSLProtocol::set_state(State next) {
  bool allowed = next == State::UNWRAPPED ||
                 (state_ == State::UNWRAPPED && next == State::DO_HANDSHAKE) ||
                 (state_ == State::DO_HANDSHAKE && next == State::WRAPPED) ||
                 (state_ == State::WRAPPED && next == State::FLUSHING) ||
                 (state_ == State::FLUSHING && next == State::SHUTDOWN);
  if (!allowed) {
    throw RuntimeError("cannot switch state from " + std::to_string(static_cast<int>(state_)) +
                       " to " + std::to_string(static_cast<int>(next)));
  }
  state_ = next;
}

void SSLProtocol::wakeup_waiter(std::exception_ptr exc) {
  if (!waiter_) return;
  Future<void> waiter = std::move(waiter_);
  waiter_ = Future<void>();
  if (waiter.done()) return;  // cancelled
  if (exc) {
    waiter.set_exception(exc);
  } else {
    waiter.set_result();
  }
}

std::any SSLProtocol::extra(std::string_view name) const {
  if (name == "sslcontext") return std::any(context_);
  if (handshake_done_) {
    if (name == "peercert") return peercert_ ? std::any(*peercert_) : std::any();
    if (name == "cipher") return cipher_ ? std::any(*cipher_) : std::any();
    if (name == "compression") return std::any(compression_);
    if (name == "ssl_object") return std::any(ssl_object_);
  }
  if (transport_) return transport_->get_extra_info(name);
  return {};
}

// ---- the underlying transport's callbacks ---------------------------------------------------

void SSLProtocol::connection_made(std::shared_ptr<Transport> transport) {
  transport_ = std::move(transport);
  start_handshake();
}

void SSLProtocol::connection_lost(std::exception_ptr exc) {
  if (!exc) exc = close_exc_;
  backlog_.clear();
  backlog_at_ = 0;
  outgoing_.clear();
  ++conn_lost_;
  if (app_transport_) app_transport_->mark_closed();
  std::shared_ptr<BaseProtocol> app = std::move(app_protocol_);
  app_stream_ = nullptr;
  app_buffered_ = nullptr;
  if (state_ != State::DO_HANDSHAKE &&
      (app_state_ == AppState::CON_MADE || app_state_ == AppState::EOF_RECEIVED)) {
    app_state_ = AppState::CON_LOST;
    if (app) loop_.call_soon([app, exc] { app->connection_lost(exc); });
  }
  state_ = State::UNWRAPPED;
  transport_.reset();
  app_transport_.reset();
  wakeup_waiter(exc);
  shutdown_timer_.cancel();
  handshake_timer_.cancel();
}

std::span<std::byte> SSLProtocol::get_buffer(std::ptrdiff_t) {
  if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
  if (in_cap_ - in_end_ < kIncomingMinFree) {
    const std::size_t used = in_end_ - in_begin_;
    if (in_begin_ > 0) {
      std::memmove(in_buf_.get(), in_buf_.get() + in_begin_, used);
      in_begin_ = 0;
      in_end_ = used;
    }
    if (in_cap_ - in_end_ < kIncomingMinFree) {
      const std::size_t cap = std::max(kIncomingInitial, 2 * in_cap_);
      std::unique_ptr<char[]> grown(new char[cap]);
      if (used > 0) std::memcpy(grown.get(), in_buf_.get(), used);
      in_buf_ = std::move(grown);
      in_cap_ = cap;
    }
  }
  return {reinterpret_cast<std::byte*>(in_buf_.get() + in_end_), in_cap_ - in_end_};
}

void SSLProtocol::buffer_updated(std::size_t nbytes) {
  in_end_ += nbytes;
  switch (state_) {
    case State::DO_HANDSHAKE:
      do_handshake();
      break;
    case State::WRAPPED:
      do_read();
      break;
    case State::FLUSHING:
      do_flush();
      break;
    case State::SHUTDOWN:
      do_shutdown();
      break;
    case State::UNWRAPPED:
      in_begin_ = in_end_ = 0;  // closed: nobody reads it any more
      break;
  }
}

bool SSLProtocol::eof_received() {
  eof_received_ = true;
  if (loop_.get_debug()) logger()->debug("{} received EOF", repr());
  try {
    switch (state_) {
      case State::DO_HANDSHAKE:
        on_handshake_complete(std::make_exception_ptr(ConnectionResetError(std::string())));
        break;
      case State::WRAPPED:
        set_state(State::FLUSHING);
        if (app_reading_paused_) return true;  // resume_reading() goes on
        do_flush();
        break;
      case State::FLUSHING:
        do_write();
        set_state(State::SHUTDOWN);
        do_shutdown();
        break;
      case State::SHUTDOWN:
        do_shutdown();
        break;
      case State::UNWRAPPED:
        break;
    }
  } catch (...) {
    if (transport_) transport_->close();
    throw;
  }
  return false;
}

void SSLProtocol::pause_writing() {
  ssl_writing_paused_ = true;
}

void SSLProtocol::resume_writing() {
  ssl_writing_paused_ = false;
  process_outgoing();
}

// ---- the custom BIO -------------------------------------------------------------------------

std::size_t SSLProtocol::bio_read(char* out, std::size_t len) noexcept {
  const std::size_t n = std::min(len, in_end_ - in_begin_);
  if (n == 0) return 0;
  std::memcpy(out, in_buf_.get() + in_begin_, n);
  in_begin_ += n;
  return n;
}

void SSLProtocol::bio_write(const char* data, std::size_t len) {
  outgoing_.append(data, len);
}

// ---- handshake --------------------------------------------------------------------------------

void SSLProtocol::start_handshake() {
  if (loop_.get_debug()) {
    logger()->debug("{} starts SSL handshake", repr());
    handshake_start_ = loop_.time();
  }
  set_state(State::DO_HANDSHAKE);
  std::weak_ptr<SSLProtocol> weak = weak_from_this();
  handshake_timer_ = loop_.call_later(handshake_timeout_, [weak] {
    if (auto self = weak.lock()) self->check_handshake_timeout();
  });
  do_handshake();
}

void SSLProtocol::check_handshake_timeout() {
  if (state_ != State::DO_HANDSHAKE) return;
  fatal_error(std::make_exception_ptr(ConnectionAbortedError(
      "SSL handshake is taking longer than " + python_float_repr(handshake_timeout_) +
      " seconds: aborting the connection")));
}

void SSLProtocol::do_handshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    on_handshake_complete(nullptr);
    return;
  }
  if (is_again(SSL_get_error(ssl_, rc))) {
    process_outgoing();
    return;
  }
  on_handshake_complete(ssl::detail::error_from_call(ssl_, rc, server_hostname_));
}

void SSLProtocol::on_handshake_complete(std::exception_ptr exc) {
  handshake_timer_.cancel();
  if (!exc) {
    try {
      set_state(State::WRAPPED);
      ssl_object_ = std::make_shared<ssl::SSLObject>(
          ssl_, server_side_,
          server_hostname_.empty() ? std::nullopt : std::optional<std::string>(server_hostname_));
      peercert_ = ssl_object_->getpeercert();
      if (peercert_ && (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) == 0) {
        peercert_ = ssl::PeerCert{};  // Python's {} for an unverified certificate
      }
      cipher_ = ssl_object_->cipher();
      compression_ = ssl_object_->compression();
      handshake_done_ = true;
    } catch (...) {
      exc = std::current_exception();
    }
  }
  if (exc) {
    state_ = State::UNWRAPPED;
    // Unlike asyncio, the alert OpenSSL prepared goes out first: the peer learns why.
    if (transport_ && !outgoing_.empty()) {
      try {
        transport_->write(outgoing_);
      } catch (...) {
        // The connection is going away anyway.
      }
      outgoing_.clear();
    }
    const char* message = holds<ssl::SSLCertVerificationError>(exc)
                              ? "SSL handshake failed on verifying the certificate"
                              : "SSL handshake failed";
    fatal_error(exc, message);
    wakeup_waiter(exc);
    return;
  }
  if (loop_.get_debug()) {
    logger()->debug("{}: SSL handshake took {:.1f} ms", repr(),
                    (loop_.time() - handshake_start_) * 1e3);
  }
  if (app_state_ == AppState::INIT) {
    app_state_ = AppState::CON_MADE;
    std::shared_ptr<BaseProtocol> keep = app_protocol_;
    std::shared_ptr<Transport> transport = app_transport_;
    if (app_buffered_ != nullptr) {
      app_buffered_->connection_made(std::move(transport));
    } else if (app_stream_ != nullptr) {
      app_stream_->connection_made(std::move(transport));
    }
  }
  wakeup_waiter(nullptr);
  do_read();
}

// ---- shutdown ---------------------------------------------------------------------------------

void SSLProtocol::start_shutdown() {
  if (state_ == State::FLUSHING || state_ == State::SHUTDOWN || state_ == State::UNWRAPPED) return;
  if (app_transport_) app_transport_->mark_closed();
  if (state_ == State::DO_HANDSHAKE) {
    abort(nullptr);
    return;
  }
  set_state(State::FLUSHING);
  std::weak_ptr<SSLProtocol> weak = weak_from_this();
  shutdown_timer_ = loop_.call_later(shutdown_timeout_, [weak] {
    if (auto self = weak.lock()) self->check_shutdown_timeout();
  });
  do_flush();
}

void SSLProtocol::check_shutdown_timeout() {
  if (state_ != State::FLUSHING && state_ != State::SHUTDOWN) return;
  if (!transport_) return;
  close_exc_ = std::make_exception_ptr(TimeoutError("SSL shutdown timed out"));
  transport_->abort();
}

void SSLProtocol::do_flush() {
  do_read();
  set_state(State::SHUTDOWN);
  do_shutdown();
}

void SSLProtocol::do_shutdown() {
  if (!eof_received_) {
    // Python's unwrap(): our close_notify goes out, then the peer's is awaited. What the peer
    // still sends before it is read and dropped (OpenSSL refuses it inside SSL_shutdown).
    ERR_clear_error();
    int rc = 0;
    if ((SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) == 0) {
      rc = SSL_shutdown(ssl_);
      if (rc < 0) {
        if (is_again(SSL_get_error(ssl_, rc))) {
          process_outgoing();
          return;
        }
        on_shutdown_complete(ssl::detail::error_from_call(ssl_, rc, server_hostname_));
        return;
      }
    }
    if ((SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) == 0) {
      char scratch[16 * 1024];
      for (;;) {
        const int n = SSL_read(ssl_, scratch, sizeof scratch);
        if (n > 0) continue;
        const int err = SSL_get_error(ssl_, n);
        if (err == SSL_ERROR_ZERO_RETURN) break;
        if (is_again(err)) {
          process_outgoing();
          return;
        }
        on_shutdown_complete(ssl::detail::error_from_call(ssl_, n, server_hostname_));
        return;
      }
    }
    if (rc != 1) (void)SSL_shutdown(ssl_);  // both close_notify alerts are through
    ERR_clear_error();
  }
  process_outgoing();
  call_eof_received();
  on_shutdown_complete(nullptr);
}

void SSLProtocol::on_shutdown_complete(std::exception_ptr exc) {
  shutdown_timer_.cancel();
  if (exc) {
    fatal_error(exc);
    return;
  }
  if (std::shared_ptr<Transport> transport = transport_) {
    loop_.call_soon([transport] { transport->close(); });
  }
}

void SSLProtocol::abort(std::exception_ptr exc) {
  state_ = State::UNWRAPPED;
  if (!transport_) return;
  if (exc) close_exc_ = exc;
  transport_->abort();
}

// ---- writing ----------------------------------------------------------------------------------

void SSLProtocol::write_appdata(std::span<const std::string_view> pieces) {
  if (state_ == State::FLUSHING || state_ == State::SHUTDOWN || state_ == State::UNWRAPPED) {
    if (conn_lost_ >= kLogThresholdForConnLostWrites) logger()->warn("SSL connection is closed");
    ++conn_lost_;
    return;
  }
  try {
    for (std::string_view data : pieces) {
      if (state_ == State::WRAPPED && backlog_at_ == backlog_.size()) {
        data.remove_prefix(encrypt(data));  // nothing waits: encrypt straight from `data`
      }
      backlog_.append(data);
    }
    if (state_ == State::WRAPPED) do_write();
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    if (is_fatal(e)) throw;
    fatal_error(e, "Fatal error on SSL protocol");
  }
}

std::size_t SSLProtocol::encrypt(std::string_view data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const int len =
        retry_len_ != 0
            ? retry_len_
            : static_cast<int>(std::min<std::size_t>(data.size() - done, kMaxWriteChunk));
    const int n = SSL_write(ssl_, data.data() + done, len);
    if (n > 0) {
      retry_len_ = 0;
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (is_again(SSL_get_error(ssl_, n))) {
      retry_len_ = len;
      break;
    }
    std::rethrow_exception(ssl::detail::error_from_call(ssl_, n, server_hostname_));
  }
  return done;
}

void SSLProtocol::do_write() {
  if (backlog_at_ < backlog_.size()) {
    backlog_at_ += encrypt(std::string_view(backlog_).substr(backlog_at_));
    if (backlog_at_ == backlog_.size()) {
      backlog_.clear();
      backlog_at_ = 0;
    }
  }
  process_outgoing();
}

void SSLProtocol::process_outgoing() {
  if (!ssl_writing_paused_ && !outgoing_.empty() && transport_) {
    transport_->write(outgoing_);  // one write per flush
    outgoing_.clear();
  }
  control_app_writing();
}

// ---- reading ----------------------------------------------------------------------------------

void SSLProtocol::do_read() {
  if (state_ != State::WRAPPED && state_ != State::FLUSHING) return;
  try {
    if (!app_reading_paused_) {
      const bool close_notify = app_buffered_ != nullptr ? read_buffered() : read_copied();
      if (close_notify) {
        call_eof_received();
        start_shutdown();
      }
      if (backlog_at_ < backlog_.size()) {
        do_write();
      } else {
        process_outgoing();
      }
    }
    control_ssl_reading();
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    if (is_fatal(e)) throw;
    fatal_error(e, "Fatal error on SSL protocol");
  }
}

bool SSLProtocol::read_copied() {
  std::size_t got = 0;
  bool close_notify = false;
  bool more = false;
  for (;;) {
    if (plain_cap_ - got == 0) {
      if (plain_cap_ >= kPlainMax) {
        more = true;  // deliver this much; the rest on the next iteration
        break;
      }
      const std::size_t cap = plain_cap_ == 0 ? kPlainInitial : 2 * plain_cap_;
      std::unique_ptr<char[]> grown(new char[cap]);
      if (got > 0) std::memcpy(grown.get(), plain_buf_.get(), got);
      plain_buf_ = std::move(grown);
      plain_cap_ = cap;
    }
    const int n = SSL_read(ssl_, plain_buf_.get() + got,
                           static_cast<int>(std::min<std::size_t>(plain_cap_ - got, INT_MAX)));
    if (n > 0) {
      got += static_cast<std::size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_ZERO_RETURN) {
      close_notify = true;
      break;
    }
    if (is_again(err)) break;
    std::rethrow_exception(ssl::detail::error_from_call(ssl_, n, server_hostname_));
  }
  if (more) {
    std::weak_ptr<SSLProtocol> weak = weak_from_this();
    loop_.call_soon([weak] {
      if (auto self = weak.lock()) self->do_read();
    });
  }
  if (got > 0 && app_stream_ != nullptr) {
    std::shared_ptr<BaseProtocol> keep = app_protocol_;
    app_stream_->data_received(std::string_view(plain_buf_.get(), got));
  }
  return close_notify;
}

bool SSLProtocol::read_buffered() {
  std::shared_ptr<BaseProtocol> keep = app_protocol_;
  BufferedProtocol* app = app_buffered_;
  const std::size_t pending = read_buffer_size();
  std::span<std::byte> buf =
      app->get_buffer(pending > 0 ? static_cast<std::ptrdiff_t>(pending) : -1);
  if (buf.empty()) throw RuntimeError("get_buffer() returned an empty buffer");
  std::size_t offset = 0;
  bool close_notify = false;
  for (;;) {
    if (offset == buf.size()) {
      std::weak_ptr<SSLProtocol> weak = weak_from_this();
      loop_.call_soon([weak] {
        if (auto self = weak.lock()) self->do_read();
      });
      break;
    }
    const int n = SSL_read(ssl_, buf.data() + offset,
                           static_cast<int>(std::min<std::size_t>(buf.size() - offset, INT_MAX)));
    if (n > 0) {
      offset += static_cast<std::size_t>(n);
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_ZERO_RETURN) {
      close_notify = true;
      break;
    }
    if (is_again(err)) break;
    std::rethrow_exception(ssl::detail::error_from_call(ssl_, n, server_hostname_));
  }
  if (offset > 0) app->buffer_updated(offset);
  return close_notify;
}

void SSLProtocol::call_eof_received() {
  try {
    if (app_state_ != AppState::CON_MADE) return;
    app_state_ = AppState::EOF_RECEIVED;
    std::shared_ptr<BaseProtocol> keep = app_protocol_;
    bool keep_open = false;
    if (app_buffered_ != nullptr) {
      keep_open = app_buffered_->eof_received();
    } else if (app_stream_ != nullptr) {
      keep_open = app_stream_->eof_received();
    }
    if (keep_open) {
      logger()->warn("returning true from eof_received() has no effect when using ssl");
    }
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    if (is_fatal(e)) throw;
    fatal_error(e, "Error calling eof_received()");
  }
}

// ---- flow control -----------------------------------------------------------------------------

void SSLProtocol::control_app_writing() {
  const std::size_t size = write_buffer_size();
  const bool pause = size >= outgoing_high_ && !app_writing_paused_;
  const bool resume = !pause && size <= outgoing_low_ && app_writing_paused_;
  if (!pause && !resume) return;
  app_writing_paused_ = pause;
  std::shared_ptr<BaseProtocol> app = app_protocol_;
  if (!app) return;
  try {
    if (pause) {
      app->pause_writing();
    } else {
      app->resume_writing();
    }
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    if (is_fatal(e)) throw;
    ExceptionContext context(
        pause ? "protocol.pause_writing() failed" : "protocol.resume_writing() failed", e);
    std::shared_ptr<Transport> transport = app_transport_;
    context.set("transport", transport, "<asyncuv SSLTransport>");
    context.set("protocol", std::shared_ptr<BaseProtocol>(shared_from_this()), repr());
    loop_.call_exception_handler(context);
  }
}

void SSLProtocol::control_ssl_reading() {
  const std::size_t size = read_buffer_size();
  if (size >= incoming_high_ && !ssl_reading_paused_) {
    ssl_reading_paused_ = true;
    if (transport_) transport_->pause_reading();
  } else if (size <= incoming_low_ && ssl_reading_paused_) {
    ssl_reading_paused_ = false;
    if (transport_) transport_->resume_reading();
  }
}

void SSLProtocol::set_write_buffer_limits(std::optional<std::size_t> high,
                                          std::optional<std::size_t> low) {
  std::tie(outgoing_high_, outgoing_low_) =
      detail::write_buffer_limits(high, low, kHighWaterSslWriteKiB * 1024);
}

void SSLProtocol::set_read_buffer_limits(std::optional<std::size_t> high,
                                         std::optional<std::size_t> low) {
  std::tie(incoming_high_, incoming_low_) =
      detail::write_buffer_limits(high, low, kHighWaterSslReadKiB * 1024);
}

void SSLProtocol::resume_app_reading() {
  if (!app_reading_paused_) return;
  app_reading_paused_ = false;
  std::weak_ptr<SSLProtocol> weak = weak_from_this();
  loop_.call_soon([weak] {
    auto self = weak.lock();
    if (!self) return;
    switch (self->state_) {
      case State::WRAPPED:
        self->do_read();
        break;
      case State::FLUSHING:
        self->do_flush();
        break;
      case State::SHUTDOWN:
        self->do_shutdown();
        break;
      default:
        break;
    }
  });
}

// ---- errors -----------------------------------------------------------------------------------

void SSLProtocol::fatal_error(std::exception_ptr exc, const char* message) {
  std::shared_ptr<Transport> transport = transport_;
  if (transport) {
    close_exc_ = exc;
    transport->abort();  // asyncio's _force_close(exc): connection_lost(exc) follows
  }
  if (is_os_error(exc)) {
    if (loop_.get_debug()) {
      logger()->debug("{}: {}: {}", repr(), message, describe_exception(exc));
    }
    return;
  }
  if (holds<CancelledError>(exc)) return;
  ExceptionContext context(message, exc);
  if (transport) context.set("transport", transport, transport_repr(transport.get()));
  context.set("protocol", std::shared_ptr<BaseProtocol>(shared_from_this()), repr());
  loop_.call_exception_handler(context);
}

}  // namespace asyncuv::detail
