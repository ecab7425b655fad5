// Fault tests: the peer resets the connection (close with SO_LINGER 0, which sends RST). asyncio
// (behaviour 29) reports a reset through connection_lost(ConnectionResetError) and never through
// the exception handler; the streams layer raises it from the waiting read and from drain().
// Checked while the connection is idle and while megabytes sit in the write buffer.
#include "streams_test_support.hpp"

#include <sys/socket.h>

using namespace stream_test;
using streams_test::error_of;
using streams_test::StreamPair;
using streams_test::wrap_socket;

namespace {

/// Closes `sock` with SO_LINGER {1, 0}: the kernel sends RST instead of FIN.
void reset(Socket& sock) {
  struct linger lg {
    1, 0
  };
  REQUIRE(::setsockopt(sock.fileno(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  sock.close();
}

}  // namespace

TEST_CASE("fault 29: RST on an idle connection: connection_lost(ConnectionResetError), no handler",
          "[fault]") {
  EventLoop loop;
  HandlerLog handler;
  handler.install(loop);
  auto pair = tcp_pair();
  auto attached = attach(loop, std::move(pair.second));
  std::shared_ptr<Transport> t = attached.first;
  std::shared_ptr<Recorder> proto = attached.second;
  run_until(loop, [&] { return proto->made; });
  run_iterations(loop, 3);  // idle: the transport waits in the poller for reads
  reset(pair.first);
  run_until(loop, [&] { return proto->lost; });
  CHECK(holds<asyncuv::ConnectionResetError>(proto->lost_exc));
  CHECK(proto->lost_calls == 1);
  CHECK_FALSE(proto->eof);  // a reset is not an end of file
  CHECK(t->is_closing());
  CHECK(handler.contexts.empty());
}

TEST_CASE("fault 29: RST with megabytes buffered for writing: lost once, buffer dropped",
          "[fault]") {
  EventLoop loop;
  HandlerLog handler;
  handler.install(loop);
  auto pair = tcp_pair();
  small_kernel_buffers(pair.first);
  small_kernel_buffers(pair.second);
  auto attached = attach(loop, std::move(pair.second));
  std::shared_ptr<Transport> t = attached.first;
  std::shared_ptr<Recorder> proto = attached.second;
  run_until(loop, [&] { return proto->made; });
  // The peer does not read: 8 MiB cannot fit in the kernel, the rest stays in the transport.
  const std::string chunk = pattern(1 << 20, 3);
  for (int i = 0; i < 8; ++i)
    t->write(chunk);
  run_iterations(loop, 3);
  REQUIRE(t->get_write_buffer_size() > 0);
  CHECK(proto->pauses == 1);  // above the high-water mark (behaviour 48)
  reset(pair.first);
  run_until(loop, [&] { return proto->lost; });
  // ECONNRESET from the read side or from send(), or EPIPE if send() saw it after the reset:
  // both are ConnectionError (asyncio: ConnectionResetError / BrokenPipeError).
  CHECK(holds<asyncuv::ConnectionError>(proto->lost_exc));
  CHECK(proto->lost_calls == 1);
  CHECK(t->get_write_buffer_size() == 0);
  CHECK(t->is_closing());
  CHECK(handler.contexts.empty());
  t->write("dropped");  // after the loss writes are dropped, not raised
  run_iterations(loop, 2);
  CHECK(proto->lost_calls == 1);
}

TEST_CASE("fault 29: RST under streams: the waiting read and drain() raise ConnectionResetError",
          "[fault]") {
  EventLoop loop;
  HandlerLog handler;
  handler.install(loop);
  SECTION("a reader waiting on an idle connection") {
    auto pair = tcp_pair();
    auto body = [&]() -> asyncuv::Task<void> {
      auto wrapping = wrap_socket(std::move(pair.second));
      StreamPair streams = co_await std::move(wrapping);
      auto reading = loop.create_task(streams.first.readline());
      co_await asyncuv::sleep(0);
      co_await asyncuv::sleep(0);
      reset(pair.first);
      std::exception_ptr error = co_await error_of(std::move(reading));
      CHECK(holds<asyncuv::ConnectionResetError>(error));
      // Later reads raise it again (the reader keeps the exception).
      std::exception_ptr again = co_await error_of(streams.first.read(10));
      CHECK(holds<asyncuv::ConnectionResetError>(again));
      streams.second.close();
    };
    streams_test::run(loop, body());
  }
  SECTION("a writer waiting in drain() with megabytes buffered") {
    auto pair = tcp_pair();
    small_kernel_buffers(pair.first);
    small_kernel_buffers(pair.second);
    auto body = [&]() -> asyncuv::Task<void> {
      auto wrapping = wrap_socket(std::move(pair.second));
      StreamPair streams = co_await std::move(wrapping);
      streams.second.write(pattern(8 << 20, 4));
      auto draining = loop.create_task(streams.second.drain());
      co_await asyncuv::sleep(0);
      co_await asyncuv::sleep(0);
      CHECK_FALSE(draining.done());  // the peer reads nothing: drain must wait
      reset(pair.first);
      std::exception_ptr error = co_await error_of(std::move(draining));
      CHECK(holds<asyncuv::ConnectionError>(error));
      streams.second.close();
    };
    streams_test::run(loop, body());
  }
  CHECK(handler.contexts.empty());
}
