// Fault test: TLS clients vanishing mid-handshake. Raw TCP clients connect to a TLS server and
// go away at every stage: before sending anything, inside the ClientHello record, after a full
// ClientHello once the server has answered, or after sending garbage; by FIN or by RST. asyncio
// (behaviour 54): a failed handshake never reaches connection_made() and, outside debug mode,
// never the exception handler. The server must survive, serve a real client afterwards and
// leave no descriptor (ASan checks the memory).
#include <catch2/catch.hpp>

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <asyncuv/asyncuv.hpp>

#include "server_test_support.hpp"
#include "test_tls_support.hpp"

using asyncuv::SockAddr;
using asyncuv::Socket;
using namespace tls_test;
using stream_test::drain_fd;
using stream_test::run_until;
using test_support::run_task;

namespace {

/// A real ClientHello (the first flight of an OpenSSL client), made in memory.
std::string client_hello() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  REQUIRE(ctx != nullptr);
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);  // the SSL owns both from here
  SSL_set_connect_state(ssl);
  SSL_set_tlsext_host_name(ssl, "localhost");
  CHECK(SSL_do_handshake(ssl) == -1);  // wants the server's answer
  char* data = nullptr;
  long n = BIO_get_mem_data(out, &data);
  std::string hello(data, static_cast<std::size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  REQUIRE(hello.size() > 40);
  return hello;
}

/// Closes `sock` so that the peer sees RST (SO_LINGER 0) or FIN.
void vanish(Socket& sock, bool reset) {
  if (reset) {
    struct linger lg {
      1, 0
    };
    REQUIRE(::setsockopt(sock.fileno(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  }
  sock.close();
}

/// Sends all of `data` on non-blocking `sock` (small: fits the kernel buffer).
void send_now(Socket& sock, std::string_view data) {
  REQUIRE(::send(sock.fileno(), data.data(), data.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(data.size()));
}

/// Coroutine: a real TLS client's echo round trip; true if the echo matched.
asyncuv::Task<bool> echo_once(asyncuv::EventLoop* loop, std::uint16_t port,
                              std::shared_ptr<asyncuv::ssl::Context> context) {
  Connection made = co_await tls_connect(loop, port, std::move(context));
  made.first->write("still serving");
  while (made.second->received.size() < 13 && !made.second->lost)
    co_await asyncuv::sleep(0.001);
  bool ok = made.second->received == "still serving";
  made.first->close();
  while (!made.second->lost)
    co_await asyncuv::sleep(0.001);
  co_return ok;
}

}  // namespace

TEST_CASE("fault 54: clients vanishing mid-TLS-handshake: server survives, nothing leaks",
          "[fault]") {
  Certs certs;
  EventLoop loop;
  stream_test::HandlerLog handler;
  handler.install(loop);
  auto server = start_echo_server(loop, server_context(certs.server));
  auto client = client_context(certs.ca);
  const SockAddr address = server->server->sockets().at(0).getsockname();
  // One real connection first: what stays open for the loop's life is then counted.
  REQUIRE(run_task(loop, echo_once(&loop, server->port, client)));
  run_until(loop, [&] { return server->peers.back()->lost; });  // its server side is gone too
  const int fds_before = server_test::open_fd_count();
  const std::size_t peers_before = server->peers.size();
  const std::string hello = client_hello();

  enum Stage { NOTHING, HALF_RECORD_HEADER, HALF_HELLO, AFTER_SERVER_ANSWER, GARBAGE };
  struct Vanishing {
    Stage stage;
    bool reset;
  };
  std::vector<Vanishing> plan;
  for (int round = 0; round < 2; ++round)
    for (Stage stage : {NOTHING, HALF_RECORD_HEADER, HALF_HELLO, AFTER_SERVER_ANSWER, GARBAGE})
      for (bool reset : {false, true})
        plan.push_back({stage, reset});

  std::vector<Socket> sockets;
  for (const Vanishing& v : plan) {
    sockets.push_back(server_test::connect_to(address));
    Socket& sock = sockets.back();
    switch (v.stage) {
      case NOTHING:
        break;
      case HALF_RECORD_HEADER:
        send_now(sock, std::string_view(hello).substr(0, 3));
        break;
      case HALF_HELLO:
        send_now(sock, std::string_view(hello).substr(0, hello.size() / 2));
        break;
      case AFTER_SERVER_ANSWER:
        send_now(sock, hello);
        break;
      case GARBAGE:
        send_now(sock, "GET / HTTP/1.0\r\n\r\n" + std::string(100, '\x16'));
        break;
    }
  }
  // The servers' answers to the full ClientHellos arrive: those handshakes are midway.
  for (std::size_t i = 0; i < plan.size(); ++i) {
    if (plan[i].stage != AFTER_SERVER_ANSWER) continue;
    std::string answer;
    run_until(loop, [&] {
      drain_fd(sockets[i].fileno(), answer);
      return answer.size() > 0;
    });
    CHECK(answer[0] == '\x16');  // a handshake record
  }
  // Every client has been accepted (its protocol made) before it vanishes.
  run_until(loop, [&] { return server->peers.size() == peers_before + plan.size(); });
  for (std::size_t i = 0; i < plan.size(); ++i)
    vanish(sockets[i], plan[i].reset);
  sockets.clear();

  // The server drops them all: back to the descriptors it had before, none made.
  run_until(loop, [&] { return server_test::open_fd_count() == fds_before; });
  for (std::size_t i = peers_before; i < server->peers.size(); ++i) {
    CHECK_FALSE(server->peers[i]->made);
    CHECK_FALSE(server->peers[i]->lost);
  }
  CHECK(handler.contexts.empty());  // not in debug mode: a client's failure is its own

  // Still serving.
  CHECK(server->server->is_serving());
  CHECK(run_task(loop, echo_once(&loop, server->port, client)));
  run_until(loop, [&] { return server_test::open_fd_count() == fds_before; });
  server->server->close();
  run_task(loop, server->server->wait_closed());
}
