// Stream transports: scenarios 43-48 of asyncio-semantics.md, connect_accepted_socket,
// extra info and fd ownership.
#include "stream_test_support.hpp"

#include <netinet/tcp.h>

#include "byte_compare.hpp"
#include "log_capture.hpp"
#include "loop_support.hpp"

using namespace stream_test;
using asyncuv::BufferedProtocol;
using asyncuv::Protocol;
using asyncuv::Task;

namespace {

using test_support::run_task;

}  // namespace

TEST_CASE("43. order: connection_made, data_received, eof_received, connection_lost(null)",
          "[transport]") {
  for (bool tcp : {true, false}) {
    CAPTURE(tcp);
    EventLoop loop;
    auto [peer, mine_] = tcp ? tcp_pair() : unix_pair();
    auto& mine = mine_;  // a named reference: clang 14 cannot capture a binding
    int peer_fd = peer.fileno();
    std::shared_ptr<Recorder> proto;
    std::shared_ptr<Transport> transport;
    bool made_before_return = false;

    auto connect = [&]() -> Task<void> {
      auto [t, p] = co_await loop.connect_accepted_socket(
          [] { return std::make_shared<Recorder>(); }, std::move(mine));
      made_before_return = p->made;  // connection_made ran before the coroutine returned
      transport = t;
      proto = p;
    };
    run_task(loop, connect());
    CHECK(made_before_return);
    REQUIRE(proto->events == std::vector<std::string>{"made"});
    CHECK(proto->transport == transport);

    if (tcp) {
      // TCP_NODELAY on the transport's socket (asyncio's _set_nodelay).
      int fd = std::any_cast<int>(transport->get_extra_info("socket"));
      int nodelay = 0;
      socklen_t len = sizeof nodelay;
      REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0);
      CHECK(nodelay != 0);
    }

    REQUIRE(::write(peer_fd, "hello", 5) == 5);
    run_until(loop, [&] { return proto->received == "hello"; });
    ::shutdown(peer_fd, SHUT_WR);
    run_until(loop, [&] { return proto->lost; });
    CHECK(proto->events == std::vector<std::string>{"made", "data", "eof", "lost"});
    CHECK(proto->lost_exc == nullptr);
    CHECK(proto->lost_calls == 1);
    CHECK(transport->is_closing());
    // The transport closed itself (eof_received returned false): the peer sees EOF.
    std::string rest;
    wait_fd(peer_fd, POLLIN);
    CHECK(drain_fd(peer_fd, rest));
    CHECK(rest.empty());
    CHECK(transport->get_protocol() == nullptr);
  }
}

TEST_CASE("43. connection_made runs through call_soon, reading starts after it", "[transport]") {
  EventLoop loop;
  auto [peer, mine] = unix_pair();
  REQUIRE(::write(peer.fileno(), "early", 5) == 5);  // already there when the transport starts
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;      // a named reference: clang 14 cannot capture a binding
  CHECK_FALSE(proto->made);  // nothing runs synchronously
  run_until(loop, [&] { return proto->received == "early"; });
  CHECK(proto->events == std::vector<std::string>{"made", "data"});
  t->close();
  run_until(loop, [&] { return proto->lost; });
}

TEST_CASE("44. eof_received() returning true keeps the connection half-open", "[transport]") {
  EventLoop loop;
  auto [peer, mine] = tcp_pair();
  int peer_fd = peer.fileno();
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  proto->keep_open_on_eof = true;
  ::shutdown(peer_fd, SHUT_WR);
  run_until(loop, [&] { return proto->eof; });
  run_iterations(loop, 3);
  CHECK_FALSE(t->is_closing());
  CHECK_FALSE(proto->lost);
  t->write("still writing");
  std::string got;
  run_until(loop, [&] {
    drain_fd(peer_fd, got);
    return got == "still writing";
  });
  t->close();
  run_until(loop, [&] { return proto->lost; });
  CHECK(proto->lost_exc == nullptr);
  CHECK(proto->events == std::vector<std::string>{"made", "eof", "lost"});
  wait_fd(peer_fd, POLLIN);
  CHECK(drain_fd(peer_fd, got));  // then EOF
  CHECK(got == "still writing");
}

TEST_CASE("45. write after close is dropped (warning from the 5th); write after write_eof raises",
          "[transport]") {
  test_support::LogCapture log;
  EventLoop loop;
  auto [peer_, mine] = unix_pair();
  auto& peer = peer_;  // a named reference: clang 14 cannot capture a binding
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  run_until(loop, [&] { return proto->made; });

  SECTION("write of 0 bytes does nothing") {
    t->write("");
    CHECK(t->get_write_buffer_size() == 0);
    run_iterations(loop, 2);
    std::string got;
    drain_fd(peer.fileno(), got);
    CHECK(got.empty());
    t->close();
  }
  SECTION("after close() with an empty buffer writes are dropped") {
    t->close();
    t->close();  // a second close does nothing
    auto warnings = [&] {
      int n = 0;
      for (const auto& r : log.records()) {
        if (r.text == "socket.send() raised exception.") ++n;
      }
      return n;
    };
    for (int i = 1; i <= 4; ++i)
      t->write("dropped");
    CHECK(warnings() == 0);
    t->write("dropped");  // the 5th
    CHECK(warnings() == 1);
    t->write("dropped");
    CHECK(warnings() == 2);
    CHECK(t->get_write_buffer_size() == 0);
    run_until(loop, [&] { return proto->lost; });
    CHECK(proto->lost_calls == 1);
    std::string got;
    wait_fd(peer.fileno(), POLLIN);
    CHECK(drain_fd(peer.fileno(), got));
    CHECK(got.empty());
  }
  SECTION("after write_eof(): RuntimeError") {
    CHECK(t->can_write_eof());
    t->write_eof();
    CHECK_THROWS_MATCHES(t->write("x"), asyncuv::RuntimeError,
                         Catch::Message("Cannot call write() after write_eof()"));
    t->write_eof();  // again: nothing
    std::string got;
    run_until(loop, [&] { return drain_fd(peer.fileno(), got); });  // the peer sees EOF
    t->close();
  }
  run_until(loop, [&] { return proto->lost; });
  CHECK(proto->lost_calls == 1);
}

TEST_CASE("46. close() flushes 4 MiB first; the peer gets every byte, then EOF", "[transport]") {
  for (bool tcp : {true, false}) {
    CAPTURE(tcp);
    EventLoop loop;
    auto [peer, mine] = tcp ? tcp_pair() : unix_pair();
    int peer_fd = peer.fileno();
    small_kernel_buffers(peer);
    small_kernel_buffers(mine);
    auto [t_, proto_] = attach(loop, std::move(mine));
    auto& t = t_;          // a named reference: clang 14 cannot capture a binding
    auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
    run_until(loop, [&] { return proto->made; });
    const std::string data = pattern(4 << 20, tcp ? 46 : 460);
    t->write(data);
    CHECK(t->get_write_buffer_size() > 0);  // the peer has not read anything yet
    t->close();
    CHECK(t->is_closing());
    run_iterations(loop, 3);
    CHECK_FALSE(proto->lost);  // waits for the buffer
    std::string got;
    bool eof = false;
    std::size_t size_when_lost = 1;
    proto->on_lost = [&](Recorder&) { size_when_lost = t->get_write_buffer_size(); };
    run_until(loop, [&] {
      eof = drain_fd(peer_fd, got) || eof;
      return eof && proto->lost;
    });
    CHECK(size_when_lost == 0);
    CHECK(proto->lost_exc == nullptr);
    REQUIRE(got.size() == data.size());
    CHECK(test_support::byte_difference(got, data) == "");
  }
}

TEST_CASE("47. abort() drops the buffer; connection_lost(null) next iteration", "[transport]") {
  EventLoop loop;
  auto [peer, mine] = tcp_pair();
  small_kernel_buffers(peer);
  small_kernel_buffers(mine);
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  run_until(loop, [&] { return proto->made; });
  t->write(pattern(4 << 20));
  REQUIRE(t->get_write_buffer_size() > 0);
  t->abort();
  CHECK(t->get_write_buffer_size() == 0);
  CHECK(t->is_closing());
  CHECK_FALSE(proto->lost);
  std::vector<std::string> order;
  proto->on_lost = [&](Recorder&) { order.push_back("lost"); };
  loop.call_soon([&] { order.push_back("later"); });  // queued after connection_lost
  run_iterations(loop, 1);
  CHECK(order == std::vector<std::string>{"lost", "later"});
  CHECK(proto->lost_exc == nullptr);
  t->abort();  // again: nothing
  run_iterations(loop, 2);
  CHECK(proto->lost_calls == 1);
}

TEST_CASE("48. write flow control: limits, one pause above high, one resume at or below low",
          "[transport]") {
  EventLoop loop;
  auto [peer, mine] = unix_pair();
  int peer_fd = peer.fileno();
  auto [t_, proto_] = attach(loop, std::move(mine));
  auto& t = t_;          // a named reference: clang 14 cannot capture a binding
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  run_until(loop, [&] { return proto->made; });

  CHECK(t->get_write_buffer_limits() == std::pair<std::size_t, std::size_t>(16384, 65536));
  t->set_write_buffer_limits(1000);
  CHECK(t->get_write_buffer_limits() == std::pair<std::size_t, std::size_t>(250, 1000));
  t->set_write_buffer_limits(std::nullopt, 100);
  CHECK(t->get_write_buffer_limits() == std::pair<std::size_t, std::size_t>(100, 400));
  CHECK_THROWS_MATCHES(t->set_write_buffer_limits(10, 20), asyncuv::ValueError,
                       Catch::Message("high (10) must be >= low (20) must be >= 0"));
  t->set_write_buffer_limits();
  CHECK(t->get_write_buffer_limits() == std::pair<std::size_t, std::size_t>(16384, 65536));

  // Fill the socket, then the buffer: one pause once it goes over 64 KiB.
  const std::string chunk = pattern(16 * 1024, 48);
  std::string sent;
  while (proto->pauses == 0) {
    t->write(chunk);
    sent += chunk;
    REQUIRE(sent.size() < (64u << 20));
  }
  CHECK(t->get_write_buffer_size() > 65536);
  t->write(chunk);  // still above: no second pause
  sent += chunk;
  CHECK(proto->pauses == 1);
  CHECK(proto->resumes == 0);

  // The peer reads: one resume when the buffer is at or below 16 KiB.
  std::string got;
  std::size_t size_at_resume = SIZE_MAX;
  proto->on_data = nullptr;
  run_until(loop, [&] {
    drain_fd(peer_fd, got);
    if (proto->resumes == 1 && size_at_resume == SIZE_MAX)
      size_at_resume = t->get_write_buffer_size();
    return got.size() == sent.size();
  });
  CHECK(proto->pauses == 1);
  CHECK(proto->resumes == 1);
  CHECK(size_at_resume <= 16384);
  CHECK(test_support::byte_difference(got, sent) == "");

  // Raising the limit above the buffer does not resume; lowering it below pauses.
  t->set_write_buffer_limits(1);
  t->write(chunk);  // the socket takes it all: still below... or not; either way no error
  t->close();
  run_until(loop, [&] {
    drain_fd(peer_fd, got);
    return proto->lost;
  });
}

namespace {
struct ThrowingFlowControl : Recorder {
  void pause_writing() override { throw asyncuv::ValueError("pause failed"); }
  void resume_writing() override { throw asyncuv::ValueError("resume failed"); }
};
}  // namespace

TEST_CASE("48. exceptions from pause_writing / resume_writing go to the exception handler",
          "[transport]") {
  EventLoop loop;
  HandlerLog handler;
  handler.install(loop);
  auto [peer_, mine] = unix_pair();
  auto& peer = peer_;  // a named reference: clang 14 cannot capture a binding
  auto proto = std::make_shared<ThrowingFlowControl>();
  auto t = asyncuv::detail::make_socket_transport(loop, std::move(mine), proto);
  run_until(loop, [&] { return proto->made; });
  t->set_write_buffer_limits(4096);
  std::string sent;
  const std::string chunk = pattern(8192, 7);
  while (handler.contexts.empty()) {
    t->write(chunk);
    sent += chunk;
    REQUIRE(sent.size() < (64u << 20));
  }
  REQUIRE(handler.contexts.size() == 1);
  CHECK(handler.contexts[0].message() == "protocol.pause_writing() failed");
  CHECK(what(handler.contexts[0].exception()) == "pause failed");
  CHECK(handler.contexts[0].transport<Transport>() == t);
  CHECK(handler.contexts[0].protocol<asyncuv::BaseProtocol>() == proto);
  CHECK_FALSE(t->is_closing());  // not fatal for the transport

  std::string got;
  run_until(loop, [&] {
    drain_fd(peer.fileno(), got);
    return handler.contexts.size() == 2;
  });
  CHECK(handler.contexts[1].message() == "protocol.resume_writing() failed");
  CHECK(what(handler.contexts[1].exception()) == "resume failed");
  t->close();
  run_until(loop, [&] {
    drain_fd(peer.fileno(), got);
    return proto->lost;
  });
  CHECK(test_support::byte_difference(got, sent) == "");
}

TEST_CASE("connect_accepted_socket refuses a socket that is not SOCK_STREAM", "[transport]") {
  EventLoop loop;
  Socket udp(AF_INET, SOCK_DGRAM);
  auto connect = [&]() -> Task<void> {
    co_await loop.connect_accepted_socket([] { return std::make_shared<Recorder>(); },
                                          std::move(udp));
  };
  CHECK_THROWS_WITH(run_task(loop, connect()),
                    Catch::StartsWith("A Stream Socket was expected, got <Socket fd="));
}

TEST_CASE("get_extra_info: peername, sockname, socket; unknown names give the default",
          "[transport]") {
  EventLoop loop;
  auto [peer, mine] = tcp_pair();
  SockAddr mine_name = mine.getsockname();
  SockAddr peer_name = peer.getsockname();
  int fd = mine.fileno();
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  CHECK(t->get_extra_info<SockAddr>("sockname") == mine_name);
  CHECK(t->get_extra_info<SockAddr>("peername") == peer_name);
  CHECK(t->get_extra_info<int>("socket") == fd);
  CHECK(std::any_cast<int>(t->get_extra_info("nothing", 42)) == 42);
  CHECK(&t->get_loop() == &loop);
  t->close();
  run_until(loop, [&] { return proto->lost; });
}

TEST_CASE("the transport owns its fd: add_reader refuses it until the transport closes",
          "[transport]") {
  EventLoop loop;
  auto [peer, mine] = unix_pair();
  int fd = mine.fileno();
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  CHECK_THROWS_WITH(loop.add_reader(fd, [] {}),
                    Catch::StartsWith("File descriptor " + std::to_string(fd) +
                                      " is used by transport <SocketTransport"));
  CHECK_THROWS_AS(loop.remove_writer(fd), asyncuv::RuntimeError);
  t->close();
  run_until(loop, [&] { return proto->lost; });
  CHECK_FALSE(loop.remove_reader(fd));  // released (and closed)
  CHECK(t->is_closing());
  CHECK_FALSE(t->is_reading());
}

TEST_CASE("make_socket_transport checks its arguments", "[transport]") {
  EventLoop loop;
  SECTION("a protocol that is neither a Protocol nor a BufferedProtocol") {
    struct Base : asyncuv::BaseProtocol {};
    auto [a, b] = unix_pair();
    CHECK_THROWS_AS(
        asyncuv::detail::make_socket_transport(loop, std::move(a), std::make_shared<Base>()),
        asyncuv::TypeError);
    CHECK_THROWS_AS(asyncuv::detail::make_socket_transport(loop, std::move(b), nullptr),
                    asyncuv::TypeError);
  }
  SECTION("a closed socket") {
    Socket s;
    s.close();
    CHECK_THROWS_AS(
        asyncuv::detail::make_socket_transport(loop, std::move(s), std::make_shared<Recorder>()),
        asyncuv::ValueError);
  }
  SECTION("a closed loop") {
    auto [a, b] = unix_pair();
    loop.close();
    CHECK_THROWS_MATCHES(
        asyncuv::detail::make_socket_transport(loop, std::move(a), std::make_shared<Recorder>()),
        asyncuv::RuntimeError, Catch::Message("Event loop is closed"));
  }
}

TEST_CASE("pause_reading / resume_reading stop and restart data_received", "[transport]") {
  EventLoop loop;
  auto [peer, mine] = unix_pair();
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  run_until(loop, [&] { return proto->made; });
  CHECK(t->is_reading());
  t->pause_reading();
  t->pause_reading();  // idempotent
  CHECK_FALSE(t->is_reading());
  REQUIRE(::write(peer.fileno(), "abc", 3) == 3);
  run_iterations(loop, 5);
  CHECK(proto->received.empty());
  t->resume_reading();
  t->resume_reading();
  CHECK(t->is_reading());
  run_until(loop, [&] { return proto->received == "abc"; });
  t->close();
  CHECK_FALSE(t->is_reading());
  t->resume_reading();  // closing: nothing
  CHECK_FALSE(t->is_reading());
  run_until(loop, [&] { return proto->lost; });
}

TEST_CASE("write_eof() half-closes after the buffer drained; the peer may still answer",
          "[transport]") {
  EventLoop loop;
  auto [peer, mine] = tcp_pair();
  int peer_fd = peer.fileno();
  small_kernel_buffers(peer);
  small_kernel_buffers(mine);
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  run_until(loop, [&] { return proto->made; });
  const std::string data = pattern(8 << 20, 9);
  t->write(data);
  REQUIRE(t->get_write_buffer_size() > 0);
  t->write_eof();
  CHECK_FALSE(t->is_closing());
  std::string got;
  bool eof = false;
  run_until(loop, [&] {
    eof = drain_fd(peer_fd, got);
    return eof;
  });
  CHECK(test_support::byte_difference(got, data) == "");
  // The other direction still works.
  REQUIRE(::write(peer_fd, "answer", 6) == 6);
  run_until(loop, [&] { return proto->received == "answer"; });
  ::shutdown(peer_fd, SHUT_WR);
  run_until(loop, [&] { return proto->lost; });
  // 8 MiB went over the high-water mark once and drained below the low one.
  CHECK(proto->events ==
        std::vector<std::string>{"made", "pause", "resume", "data", "eof", "lost"});
  CHECK(proto->lost_exc == nullptr);
}

TEST_CASE("repr describes the transport", "[transport]") {
  EventLoop loop;
  auto [peer, mine] = unix_pair();
  int fd = mine.fileno();
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  auto* st = dynamic_cast<asyncuv::detail::StreamTransport*>(t.get());
  REQUIRE(st != nullptr);
  run_until(loop, [&] { return proto->made; });
  CHECK(st->repr() ==
        "<SocketTransport fd=" + std::to_string(fd) + " read=polling write=<idle, bufsize=0>>");
  t->close();
  CHECK(st->repr() == "<SocketTransport closing fd=" + std::to_string(fd) +
                          " read=idle write=<idle, bufsize=0>>");
  run_until(loop, [&] { return proto->lost; });
  CHECK(st->repr() == "<SocketTransport closed fd=" + std::to_string(fd) + ">");
}
