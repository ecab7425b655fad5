// TLS handshakes (asyncio sslproto; semantics scenario 54): both directions, SNI, ALPN,
// client certificates, every rejection, the TLS argument checks and the handshake timeout.
#include <catch2/catch.hpp>

#include <openssl/x509_vfy.h>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/ssl.hpp>
#include <asyncuv/tasks.hpp>

#include "test_tls_support.hpp"

using asyncuv::EventLoop;
using asyncuv::Transport;
using stream_test::holds;
using stream_test::Recorder;
using stream_test::run_until;
using stream_test::what;
using test_support::failure_of;
using test_support::run_task;
using namespace tls_test;
namespace ssl = asyncuv::ssl;

namespace {

auto recorder_factory() {
  return [] { return std::make_shared<Recorder>(); };
}

bool has_entry(const std::vector<std::pair<std::string, std::string>>& entries,
               const std::string& key, const std::string& value) {
  for (const auto& entry : entries) {
    if (entry.first == key && entry.second == value) return true;
  }
  return false;
}

/// Connects with `context` and expects a certificate verification failure.
std::exception_ptr rejected(EventLoop& loop, std::uint16_t port,
                            std::shared_ptr<ssl::Context> context,
                            std::optional<std::string> server_hostname = "localhost") {
  std::exception_ptr e =
      failure_of(loop, tls_connect(&loop, port, std::move(context), std::move(server_hostname)));
  REQUIRE(e);
  return e;
}

/// Connects, then waits for the connection's end; rethrows what ended it. (TLS 1.3: the
/// client's handshake may end before the server refuses its certificate; the refusal then
/// ends the connection.)
asyncuv::Task<void> connect_until_lost(EventLoop* loop, std::uint16_t port,
                                       std::shared_ptr<ssl::Context> context) {
  Connection made = co_await tls_connect(loop, port, std::move(context));
  while (!made.second->lost)
    co_await asyncuv::sleep(0.005);
  if (made.second->lost_exc) std::rethrow_exception(made.second->lost_exc);
}

long verify_code(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const ssl::SSLCertVerificationError& error) {
    return error.verify_code();
  } catch (...) {
    return -1;
  }
}

}  // namespace

TEST_CASE("54. ssl_handshake_timeout and ssl_shutdown_timeout must be positive", "[tls]") {
  EventLoop loop;
  Certs certs;
  auto client = client_context(certs.ca);

  asyncuv::ConnectionOptions zero;
  zero.ssl = client;
  zero.ssl_handshake_timeout = 0.0;
  std::exception_ptr e =
      failure_of(loop, loop.create_connection(recorder_factory(), "127.0.0.1", 1, std::move(zero)));
  CHECK(holds<asyncuv::ValueError>(e));
  CHECK(what(e) == "ssl_handshake_timeout should be a positive number, got 0.0");

  asyncuv::ConnectionOptions negative;
  negative.ssl = client;
  negative.ssl_shutdown_timeout = -1.5;
  e = failure_of(loop,
                 loop.create_connection(recorder_factory(), "127.0.0.1", 1, std::move(negative)));
  CHECK(holds<asyncuv::ValueError>(e));
  CHECK(what(e) == "ssl_shutdown_timeout should be a positive number, got -1.5");

  asyncuv::ServerOptions server;
  server.ssl = server_context(certs.server);
  server.ssl_handshake_timeout = -1.0;
  e = failure_of(loop, loop.create_server(recorder_factory(), "127.0.0.1", 0, std::move(server)));
  CHECK(holds<asyncuv::ValueError>(e));
  CHECK(what(e) == "ssl_handshake_timeout should be a positive number, got -1.0");

  // Without ssl the TLS arguments are refused (asyncio's messages).
  asyncuv::ConnectionOptions plain;
  plain.ssl_handshake_timeout = 1.0;
  e = failure_of(loop,
                 loop.create_connection(recorder_factory(), "127.0.0.1", 1, std::move(plain)));
  CHECK(what(e) == "ssl_handshake_timeout is only meaningful with ssl");
  loop.close();
}

TEST_CASE("54. a server that never answers the handshake: ConnectionAbortedError after 0.3 s",
          "[tls]") {
  EventLoop loop;
  Certs certs;
  // A plain TCP server: it accepts and never says a word.
  auto plain = run_task(loop, loop.create_server(recorder_factory(), "127.0.0.1", 0));
  const std::uint16_t port = plain->sockets().at(0).getsockname().port();
  const double start = loop.time();
  std::exception_ptr e = failure_of(
      loop, tls_connect(&loop, port, client_context(certs.ca), "localhost", asyncuv::Seconds(0.3)));
  CHECK(holds<asyncuv::ConnectionAbortedError>(e));
  CHECK(what(e) == "SSL handshake is taking longer than 0.3 seconds: aborting the connection");
  CHECK(loop.time() - start >= 0.29);
  plain->close();
  loop.close();
}

TEST_CASE("TLS handshake both ways: echo, extra info, SNI seen by the server", "[tls]") {
  EventLoop loop;
  Certs certs;
  auto server = start_echo_server(loop, server_context(certs.server));
  auto client_ctx = client_context(certs.ca);
  auto [transport, client_] = run_task(loop, tls_connect(&loop, server->port, client_ctx));
  auto& client = client_;  // a named reference: clang 14 cannot capture a binding
  CHECK(client->made);
  transport->write("hello over TLS");
  run_until(loop, [&] { return client->received == "hello over TLS"; });

  auto context = transport->get_extra_info<std::shared_ptr<ssl::Context>>("sslcontext");
  REQUIRE(context);
  CHECK(*context == client_ctx);
  auto object = transport->get_extra_info<std::shared_ptr<ssl::SSLObject>>("ssl_object");
  REQUIRE(object);
  CHECK((*object)->version() == "TLSv1.3");
  CHECK_FALSE((*object)->server_side());
  CHECK((*object)->server_hostname() == std::optional<std::string>("localhost"));
  auto cipher = transport->get_extra_info<ssl::CipherInfo>("cipher");
  REQUIRE(cipher);
  CHECK(cipher->protocol == "TLSv1.3");
  CHECK(cipher->secret_bits >= 128);
  auto peercert = transport->get_extra_info<ssl::PeerCert>("peercert");
  REQUIRE(peercert);
  CHECK(has_entry(peercert->subject, "commonName", "localhost"));
  CHECK(has_entry(peercert->issuer, "commonName", "asyncuv test CA"));
  CHECK(has_entry(peercert->subject_alt_name, "DNS", "localhost"));
  CHECK(has_entry(peercert->subject_alt_name, "IP Address", "127.0.0.1"));
  CHECK(peercert->version == 3);
  CHECK_FALSE(peercert->der.empty());
  auto compression = transport->get_extra_info<std::optional<std::string>>("compression");
  REQUIRE(compression);
  CHECK_FALSE(compression->has_value());
  CHECK(transport->get_extra_info<asyncuv::SockAddr>("peername")->port() == server->port);

  REQUIRE(server->peers.size() == 1);
  const auto& peer = server->peers[0];
  CHECK(peer->made);
  CHECK(peer->sni == std::optional<std::string>("localhost"));
  CHECK_FALSE(peer->peercert.has_value());  // no client certificate was asked for
  CHECK(peer->received == "hello over TLS");
  server->server->close();
  loop.close();
}

TEST_CASE("TLS: the host is the server name by default; IP addresses are checked, not sent as SNI",
          "[tls]") {
  EventLoop loop;
  Certs certs;
  auto server = start_echo_server(loop, server_context(certs.server));
  auto [transport, client_] =
      run_task(loop, tls_connect(&loop, server->port, client_context(certs.ca), std::nullopt));
  auto& client = client_;  // a named reference: clang 14 cannot capture a binding
  CHECK(client->made);
  run_until(loop, [&] { return server->peers.size() == 1 && server->peers[0]->made; });
  CHECK_FALSE(server->peers[0]->sni.has_value());
  transport->close();
  run_until(loop, [&] { return client->lost; });
  loop.close();
}

TEST_CASE("TLS: ALPN negotiation", "[tls]") {
  EventLoop loop;
  Certs certs;
  auto server_ctx = server_context(certs.server);
  server_ctx->set_alpn_protocols({"h2", "http/1.1"});
  auto server = start_echo_server(loop, server_ctx);
  auto client_ctx = client_context(certs.ca);
  client_ctx->set_alpn_protocols({"http/1.1", "spdy/3"});
  auto [transport, client] = run_task(loop, tls_connect(&loop, server->port, client_ctx));
  auto object = transport->get_extra_info<std::shared_ptr<ssl::SSLObject>>("ssl_object");
  REQUIRE(object);
  CHECK((*object)->selected_alpn_protocol() == std::optional<std::string>("http/1.1"));
  run_until(loop, [&] { return server->peers.size() == 1 && server->peers[0]->made; });
  CHECK(server->peers[0]->alpn == std::optional<std::string>("http/1.1"));
  CHECK_THROWS_AS(client_ctx->set_alpn_protocols({""}), asyncuv::ValueError);
  loop.close();
}

TEST_CASE("TLS: a required client certificate", "[tls]") {
  EventLoop loop;
  Certs certs;
  auto server_ctx = server_context(certs.server);
  server_ctx->set_verify_mode(ssl::VerifyMode::CERT_REQUIRED);
  server_ctx->load_verify_locations(certs.ca);
  auto server = start_echo_server(loop, server_ctx);

  SECTION("without one, both sides fail") {
    std::exception_ptr e =
        failure_of(loop, connect_until_lost(&loop, server->port, client_context(certs.ca)));
    CHECK(holds<ssl::SSLError>(e));
    REQUIRE(server->peers.size() == 1);
    CHECK_FALSE(server->peers[0]->made);
  }
  SECTION("with one, the server sees it") {
    auto client_ctx = client_context(certs.ca);
    client_ctx->load_cert_chain(certs.client.cert, certs.client.key);
    auto [transport, client_] = run_task(loop, tls_connect(&loop, server->port, client_ctx));
    auto& client = client_;  // a named reference: clang 14 cannot capture a binding
    transport->write("ping");
    run_until(loop, [&] { return client->received == "ping"; });
    REQUIRE(server->peers.size() == 1);
    REQUIRE(server->peers[0]->peercert);
    CHECK(has_entry(server->peers[0]->peercert->subject, "commonName", "asyncuv test client"));
  }
  server->server->close();
  loop.close();
}

TEST_CASE("TLS: an expired certificate is rejected", "[tls]") {
  EventLoop loop;
  Certs certs;
  auto server = start_echo_server(loop, server_context(certs.expired));
  std::exception_ptr e = rejected(loop, server->port, client_context(certs.ca));
  CHECK(holds<ssl::SSLCertVerificationError>(e));
  CHECK(holds<asyncuv::OSError>(e));
  CHECK(what(e) ==
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has "
        "expired");
  CHECK(verify_code(e) == X509_V_ERR_CERT_HAS_EXPIRED);
  stream_test::run_iterations(loop, 3);
  for (const auto& peer : server->peers)
    CHECK_FALSE(peer->made);
  loop.close();
}

TEST_CASE("TLS: a certificate for another host is rejected, unless server_hostname is \"\"",
          "[tls]") {
  EventLoop loop;
  Certs certs;
  auto server = start_echo_server(loop, server_context(certs.wrong_host));
  std::exception_ptr e = rejected(loop, server->port, client_context(certs.ca));
  CHECK(holds<ssl::SSLCertVerificationError>(e));
  CHECK(what(e) ==
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname "
        "mismatch, certificate is not valid for 'localhost'.");
  CHECK(verify_code(e) == X509_V_ERR_HOSTNAME_MISMATCH);

  // An IP address is checked against the IP SANs.
  e = rejected(loop, server->port, client_context(certs.ca), "127.0.0.1");
  CHECK(what(e) ==
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address "
        "mismatch, certificate is not valid for '127.0.0.1'.");

  // "" disables the host name check (the chain is still verified).
  auto [transport, client_] =
      run_task(loop, tls_connect(&loop, server->port, client_context(certs.ca), ""));
  auto& client = client_;  // a named reference: clang 14 cannot capture a binding
  CHECK(client->made);
  transport->abort();
  run_until(loop, [&] { return client->lost; });
  CHECK_FALSE(client->lost_exc);
  loop.close();
}

TEST_CASE("TLS: a certificate the client does not trust is rejected", "[tls]") {
  EventLoop loop;
  Certs certs;
  SECTION("self-signed") {
    auto server = start_echo_server(loop, server_context(certs.self_signed));
    std::exception_ptr e = rejected(loop, server->port, client_context(certs.ca));
    CHECK(what(e) ==
          "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate");
    CHECK(verify_code(e) == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    // Trusted explicitly, it is accepted.
    auto [transport, client] =
        run_task(loop, tls_connect(&loop, server->port, client_context(certs.self_signed.cert)));
    CHECK(client->made);
  }
  SECTION("signed by an unknown CA") {
    auto server = start_echo_server(loop, server_context(certs.server));
    std::exception_ptr e = rejected(loop, server->port, client_context(""));
    CHECK(holds<ssl::SSLCertVerificationError>(e));
    CHECK(what(e) ==
          "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get "
          "local issuer certificate");
  }
  loop.close();
}

TEST_CASE("TLS: a plain-text peer fails the handshake with an SSLError", "[tls]") {
  EventLoop loop;
  Certs certs;
  // A plain echo server answers the ClientHello with itself: not a TLS record the client wants.
  auto plain = run_task(loop, loop.create_server(
                                  [] {
                                    auto r = std::make_shared<Recorder>();
                                    r->on_data = [](Recorder& self, std::string_view d) {
                                      self.transport->write("HTTP/1.0 400 Bad Request\r\n\r\n");
                                      (void)d;
                                    };
                                    return r;
                                  },
                                  "127.0.0.1", 0));
  const std::uint16_t port = plain->sockets().at(0).getsockname().port();
  std::exception_ptr e = failure_of(loop, tls_connect(&loop, port, client_context(certs.ca)));
  CHECK(holds<ssl::SSLError>(e));
  CHECK(what(e) == "[SSL: WRONG_VERSION_NUMBER] wrong version number");
  plain->close();
  loop.close();
}

TEST_CASE("TLS: context settings", "[tls]") {
  auto client = ssl::create_default_context();
  CHECK(client->protocol() == ssl::TlsProtocol::TLS_CLIENT);
  CHECK(client->check_hostname());
  CHECK(client->verify_mode() == ssl::VerifyMode::CERT_REQUIRED);
  CHECK(client->minimum_version() == ssl::TLSVersion::TLSv1_2);
  CHECK_THROWS_WITH(client->set_verify_mode(ssl::VerifyMode::CERT_NONE),
                    "Cannot set verify_mode to CERT_NONE when check_hostname is enabled.");
  client->set_check_hostname(false);
  client->set_verify_mode(ssl::VerifyMode::CERT_NONE);
  client->set_check_hostname(true);
  CHECK(client->verify_mode() == ssl::VerifyMode::CERT_REQUIRED);
  client->set_minimum_version(ssl::TLSVersion::TLSv1_3);
  CHECK(client->minimum_version() == ssl::TLSVersion::TLSv1_3);
  CHECK_THROWS_AS(client->set_ciphers("NO-SUCH-CIPHER"), ssl::SSLError);
  CHECK_THROWS_AS(client->load_cert_chain("/nonexistent/cert.pem"), asyncuv::FileNotFoundError);

  auto server = ssl::create_default_context(ssl::Purpose::CLIENT_AUTH);
  CHECK(server->protocol() == ssl::TlsProtocol::TLS_SERVER);
  CHECK_FALSE(server->check_hostname());
  CHECK(server->verify_mode() == ssl::VerifyMode::CERT_NONE);

  Certs certs;
  // A key that does not match the certificate.
  CHECK_THROWS_AS(server->load_cert_chain(certs.server.cert, certs.client.key), ssl::SSLError);
}
