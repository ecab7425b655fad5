// Helpers for the TLS tests: an echo server protocol, a TLS echo server on 127.0.0.1:0 and a
// TLS client connection with a stream_test::Recorder.
#pragma once

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/ssl.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "loop_support.hpp"
#include "stream_test_support.hpp"
#include "tls_test_certs.hpp"

namespace tls_test {

using asyncuv::EventLoop;
using asyncuv::Transport;
using stream_test::Recorder;

/// The server side of the tests: echoes (unless told not to) and records what it saw.
class EchoServer : public asyncuv::Protocol {
 public:
  std::shared_ptr<Transport> transport;
  bool made = false;
  bool eof = false;
  bool lost = false;
  std::exception_ptr lost_exc;
  std::string received;
  bool echo = true;
  bool pause_on_made = false;
  int pauses = 0;
  int resumes = 0;
  std::optional<std::string> sni;
  std::optional<std::string> alpn;
  std::optional<asyncuv::ssl::PeerCert> peercert;
  std::function<void(EchoServer&, std::string_view)> on_data;

  void connection_made(std::shared_ptr<Transport> t) override {
    made = true;
    transport = t;
    auto object = t->get_extra_info<std::shared_ptr<asyncuv::ssl::SSLObject>>("ssl_object");
    if (object && *object) {
      sni = (*object)->server_hostname();
      alpn = (*object)->selected_alpn_protocol();
    }
    peercert = t->get_extra_info<asyncuv::ssl::PeerCert>("peercert");
    if (pause_on_made) t->pause_reading();
  }
  void data_received(std::string_view data) override {
    received.append(data);
    if (on_data) {
      on_data(*this, data);
    } else if (echo) {
      transport->write(data);
    }
  }
  bool eof_received() override {
    eof = true;
    return false;
  }
  void connection_lost(std::exception_ptr exc) override {
    lost = true;
    lost_exc = exc;
    transport.reset();
  }
  void pause_writing() override { ++pauses; }
  void resume_writing() override { ++resumes; }
};

/// A TLS echo server on 127.0.0.1 (port 0) and the protocols of its connections.
struct TlsServer {
  std::shared_ptr<asyncuv::Server> server;
  std::vector<std::shared_ptr<EchoServer>> peers;
  std::function<void(EchoServer&)> setup;
  std::uint16_t port = 0;
};

inline asyncuv::Task<void> open_server(EventLoop* loop, TlsServer* out,
                                       std::shared_ptr<asyncuv::ssl::Context> context,
                                       std::optional<asyncuv::Seconds> handshake_timeout) {
  auto factory = [out] {
    auto peer = std::make_shared<EchoServer>();
    if (out->setup) out->setup(*peer);
    out->peers.push_back(peer);
    return peer;
  };
  asyncuv::ServerOptions options;
  options.ssl = std::move(context);
  options.ssl_handshake_timeout = handshake_timeout;
  auto creating = loop->create_server(factory, "127.0.0.1", 0, std::move(options));
  out->server = co_await std::move(creating);
  out->port = out->server->sockets().at(0).getsockname().port();
}

/// Starts a TLS echo server with `context`; `setup` runs on each new EchoServer.
inline std::unique_ptr<TlsServer> start_echo_server(EventLoop& loop,
                                                    std::shared_ptr<asyncuv::ssl::Context> context,
                                                    std::function<void(EchoServer&)> setup = {},
                                                    std::optional<asyncuv::Seconds> timeout = {}) {
  auto server = std::make_unique<TlsServer>();
  server->setup = std::move(setup);
  test_support::run_task(loop, open_server(&loop, server.get(), std::move(context), timeout));
  return server;
}

using Connection = std::pair<std::shared_ptr<Transport>, std::shared_ptr<Recorder>>;

/// Coroutine: a TLS connection to 127.0.0.1:`port` with a new Recorder.
inline asyncuv::Task<Connection> tls_connect(
    EventLoop* loop, std::uint16_t port, std::shared_ptr<asyncuv::ssl::Context> context,
    std::optional<std::string> server_hostname = "localhost",
    std::optional<asyncuv::Seconds> handshake_timeout = {}) {
  auto factory = [] { return std::make_shared<Recorder>(); };
  asyncuv::ConnectionOptions options;
  options.ssl = std::move(context);
  options.server_hostname = std::move(server_hostname);
  options.ssl_handshake_timeout = handshake_timeout;
  auto connecting = loop->create_connection(factory, "127.0.0.1", port, std::move(options));
  auto made = co_await std::move(connecting);
  co_return Connection(std::move(made.first), std::move(made.second));
}

/// The underlying socket of a transport (get_extra_info("socket")).
inline int fd_of(const std::shared_ptr<Transport>& transport) {
  auto fd = transport->get_extra_info<int>("socket");
  REQUIRE(fd.has_value());
  return *fd;
}

}  // namespace tls_test
