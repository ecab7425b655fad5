// Fault tests: the peer half-closes (shutdown(SHUT_WR)). asyncio (behaviours 43, 44): if
// eof_received() returns true the transport stays open for writing and the peer still gets
// every byte; a later close() gives connection_lost(null). If it returns false the transport
// closes itself and the peer sees end of file.
#include "stream_test_support.hpp"

#include <sys/socket.h>
#include "byte_compare.hpp"

using namespace stream_test;

TEST_CASE("fault 44: half-close with eof_received true: writes still reach the peer", "[fault]") {
  EventLoop loop;
  HandlerLog handler;
  handler.install(loop);
  auto pair = tcp_pair();
  auto attached = attach(loop, std::move(pair.second));
  std::shared_ptr<Transport> t = attached.first;
  std::shared_ptr<Recorder> proto = attached.second;
  proto->keep_open_on_eof = true;
  run_until(loop, [&] { return proto->made; });

  const std::string request = pattern(100000, 5);
  REQUIRE(::send(pair.first.fileno(), request.data(), 50000, MSG_NOSIGNAL) == 50000);
  run_until(loop, [&] { return proto->received.size() == 50000; });
  std::string rest = request.substr(50000);
  std::size_t sent = 0;
  while (sent < rest.size()) {  // the peer's kernel buffer is large enough, or we wait for it
    ssize_t n = ::send(pair.first.fileno(), rest.data() + sent, rest.size() - sent, MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<std::size_t>(n);
    run_iterations(loop, 1);
  }
  REQUIRE(::shutdown(pair.first.fileno(), SHUT_WR) == 0);
  run_until(loop, [&] { return proto->eof; });
  CHECK(proto->received == request);
  CHECK_FALSE(proto->lost);
  CHECK_FALSE(t->is_closing());

  // Half-open: the reply (several megabytes, more than the kernel buffers) reaches the peer.
  const std::string reply = pattern(3 << 20, 6);
  t->write(reply);
  std::string got;
  run_until(loop, [&] {
    drain_fd(pair.first.fileno(), got);
    return got.size() >= reply.size();
  });
  CHECK(test_support::byte_difference(got, reply) == "");
  CHECK_FALSE(proto->lost);
  t->close();
  run_until(loop, [&] { return proto->lost; });
  CHECK(proto->lost_exc == nullptr);
  CHECK(proto->events == std::vector<std::string>{"made", "data", "eof", "lost"});
  run_until(loop, [&] { return drain_fd(pair.first.fileno(), got); });
  // Nothing after the reply but end of file.
  CHECK(test_support::byte_difference(got, reply) == "");
  CHECK(handler.contexts.empty());
}

TEST_CASE("fault 43: half-close with eof_received false: the transport closes itself", "[fault]") {
  EventLoop loop;
  HandlerLog handler;
  handler.install(loop);
  auto pair = tcp_pair();
  auto attached = attach(loop, std::move(pair.second));
  std::shared_ptr<Transport> t = attached.first;
  std::shared_ptr<Recorder> proto = attached.second;
  proto->keep_open_on_eof = false;
  run_until(loop, [&] { return proto->made; });
  REQUIRE(::send(pair.first.fileno(), "last words", 10, MSG_NOSIGNAL) == 10);
  REQUIRE(::shutdown(pair.first.fileno(), SHUT_WR) == 0);
  run_until(loop, [&] { return proto->lost; });
  CHECK(proto->received == "last words");
  CHECK(proto->eof);
  CHECK(proto->lost_exc == nullptr);
  CHECK(proto->lost_calls == 1);
  CHECK(proto->events == std::vector<std::string>{"made", "data", "eof", "lost"});
  CHECK(t->is_closing());
  // The peer sees end of file (not a reset): the server side closed cleanly.
  std::string got;
  run_until(loop, [&] { return drain_fd(pair.first.fileno(), got); });
  CHECK(got.empty());
  CHECK(handler.contexts.empty());
}
