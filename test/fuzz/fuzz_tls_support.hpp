// Helpers for the TLS fuzz targets: one side of a connection is asyncuv's TLS transport on a
// Unix socket pair, the other is driven by the target, either as raw bytes or through an
// OpenSSL session on memory BIOs (a real peer, so that a handshake can complete first).
#pragma once

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/detail/ssl_protocol.hpp>

#include <memory>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"

namespace fuzz_support {

/// The application protocol on asyncuv's side: echoes, and records what happened.
class EchoApp : public asyncuv::Protocol {
 public:
  std::shared_ptr<asyncuv::Transport> transport;
  bool made = false;
  bool lost = false;
  std::string received;
  void connection_made(std::shared_ptr<asyncuv::Transport> t) override {
    made = true;
    transport = std::move(t);
  }
  void data_received(std::string_view data) override {
    received.append(data);
    transport->write(data);
  }
  void connection_lost(std::exception_ptr) override {
    lost = true;
    transport.reset();
  }
};

/// Sends all of `data` on our non-blocking end `fd`, running the loop while the pair is full.
inline void send_all(asyncuv::EventLoop& loop, int fd, std::string_view data) {
  for (int spins = 0; !data.empty(); ++spins) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EAGAIN && spins < 1000) {
      settle(loop);  // the transport reads meanwhile
    } else {
      return;  // the transport closed its end: the rest cannot matter
    }
  }
}

/// Reads what is waiting on our end `fd`.
inline std::string recv_available(int fd) {
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

/// An OpenSSL session over memory BIOs: the target moves its records to and from the socket.
class MemoryPeer {
 public:
  MemoryPeer(SSL_CTX* ctx, bool server) : ssl_(SSL_new(ctx)) {
    require(ssl_ != nullptr, "SSL_new");
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);  // owned by the session from here
    if (server) {
      SSL_set_accept_state(ssl_);
    } else {
      SSL_set_connect_state(ssl_);
      SSL_set_tlsext_host_name(ssl_, "localhost");
    }
  }
  ~MemoryPeer() { SSL_free(ssl_); }
  MemoryPeer(const MemoryPeer&) = delete;
  MemoryPeer& operator=(const MemoryPeer&) = delete;

  SSL* get() const { return ssl_; }
  /// The records the session wants sent.
  std::string outgoing() {
    std::string out;
    char buf[16384];
    int n;
    while ((n = BIO_read(out_, buf, sizeof buf)) > 0)
      out.append(buf, static_cast<std::size_t>(n));
    return out;
  }
  /// Hands received records to the session.
  void incoming(std::string_view data) {
    if (!data.empty()) BIO_write(in_, data.data(), static_cast<int>(data.size()));
  }
  /// Plaintext the session decrypted.
  std::string read_plain() {
    std::string out;
    char buf[16384];
    int n;
    while ((n = SSL_read(ssl_, buf, sizeof buf)) > 0)
      out.append(buf, static_cast<std::size_t>(n));
    return out;
  }

  /// Runs the handshake against asyncuv's side on our end `fd` of the pair; true once both
  /// sides completed it (`done`: asyncuv's side finished it, e.g. its waiter is done).
  template <class Done>
  bool handshake(asyncuv::EventLoop& loop, int fd, Done done) {
    for (int round = 0; round < 50; ++round) {
      SSL_do_handshake(ssl_);
      send_all(loop, fd, outgoing());
      settle(loop);
      incoming(recv_available(fd));
      if (SSL_is_init_finished(ssl_) && done()) return true;
    }
    return false;
  }

 private:
  SSL* ssl_;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

/// Our end of the pair and asyncuv's TLS transport on the other.
struct TlsPair {
  asyncuv::Socket ours;
  std::shared_ptr<EchoApp> app = std::make_shared<EchoApp>();
  asyncuv::Future<void> waiter;
  std::shared_ptr<asyncuv::Transport> transport;

  TlsPair(asyncuv::EventLoop& loop, std::shared_ptr<asyncuv::ssl::Context> context,
          bool server_side)
      : waiter(loop.create_future<void>()) {
    auto pair = asyncuv::Socket::socketpair(AF_UNIX, SOCK_STREAM);
    ours = std::move(pair.first);
    asyncuv::detail::TlsSetup setup;
    setup.context = std::move(context);
    setup.server_side = server_side;
    if (!server_side) setup.server_hostname = "localhost";
    setup.handshake_timeout = asyncuv::Seconds(5);
    setup.shutdown_timeout = asyncuv::Seconds(1);
    transport = asyncuv::detail::make_ssl_connection(loop, std::move(pair.second), app,
                                                     std::move(setup), waiter);
    settle(loop);
  }

  /// Ends the connection from both sides and lets the loop release everything.
  void finish(asyncuv::EventLoop& loop) {
    ours.close();
    settle(loop);
    transport->abort();
    settle(loop);
    // A handshake that failed leaves the waiter's exception unread: read it.
    if (waiter.done() && !waiter.cancelled()) (void)waiter.exception();
  }
};

}  // namespace fuzz_support
