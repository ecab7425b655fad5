// Stream transports under load and in trouble: large transfers, backpressure, buffered
// protocols, peer resets, exceptions from protocol callbacks, ownership (dropped references,
// closing from callbacks, set_protocol, the loop closed under open connections).
#include <fcntl.h>

#include <array>
#include <span>

#include "byte_compare.hpp"
#include "stream_test_support.hpp"

using namespace stream_test;
using asyncuv::BaseProtocol;
using asyncuv::BufferedProtocol;
using asyncuv::detail::make_socket_transport;

namespace {

/// Two transports connected to each other (TCP or Unix).
struct Connected {
  std::shared_ptr<Transport> ta, tb;
  std::shared_ptr<Recorder> a, b;
};

Connected connect_pair(EventLoop& loop, bool tcp, bool small_buffers = false) {
  auto [x, y] = tcp ? tcp_pair() : unix_pair();
  if (small_buffers) {
    small_kernel_buffers(x);
    small_kernel_buffers(y);
  }
  Connected c;
  std::tie(c.ta, c.a) = attach(loop, std::move(x));
  std::tie(c.tb, c.b) = attach(loop, std::move(y));
  run_until(loop, [&] { return c.a->made && c.b->made; });
  return c;
}

bool fd_closed(int fd) {
  return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

}  // namespace

TEST_CASE("multi-megabyte transfers in both directions, every byte checked", "[transport]") {
  for (bool tcp : {true, false}) {
    CAPTURE(tcp);
    EventLoop loop;
    Connected c = connect_pair(loop, tcp, true);
    const std::string ab = pattern(8 << 20, 1);
    const std::string ba = pattern(6 << 20, 2);
    // In pieces of assorted sizes, all at once: the rest is buffered.
    for (std::size_t at = 0, step = 1; at < ab.size(); at += step, step = step * 3 % 100003 + 1) {
      c.ta->write(std::string_view(ab).substr(at, step));
    }
    c.tb->write(ba);
    c.ta->write_eof();
    c.tb->write_eof();
    run_until(
        loop, [&] { return c.a->lost && c.b->lost; }, 60);
    CHECK(c.b->received.size() == ab.size());
    CHECK(c.b->received == ab);
    CHECK(c.a->received.size() == ba.size());
    CHECK(c.a->received == ba);
    CHECK(c.a->lost_exc == nullptr);
    CHECK(c.b->lost_exc == nullptr);
  }
}

namespace {
/// Writes `total` bytes in 16 KiB pieces whenever it is not paused.
struct Producer : Recorder {
  std::string data;
  std::size_t sent = 0;
  std::size_t max_buffer = 0;
  bool paused = false;

  void pump() {
    while (!paused && sent < data.size() && transport) {
      std::size_t n = std::min<std::size_t>(16 * 1024, data.size() - sent);
      transport->write(std::string_view(data).substr(sent, n));
      sent += n;
      max_buffer = std::max(max_buffer, transport->get_write_buffer_size());
    }
    if (sent == data.size() && transport) transport->close();
  }
  void connection_made(std::shared_ptr<Transport> t) override {
    Recorder::connection_made(std::move(t));
    pump();
  }
  void pause_writing() override {
    Recorder::pause_writing();
    paused = true;
  }
  void resume_writing() override {
    Recorder::resume_writing();
    paused = false;
    pump();
  }
};

/// Reads slowly: pauses after each piece and resumes a millisecond later.
struct SlowReader : Recorder {
  EventLoop* loop = nullptr;
  void data_received(std::string_view data) override {
    Recorder::data_received(data);
    transport->pause_reading();
    auto t = transport;
    loop->call_later(0.001, [t] { t->resume_reading(); });
  }
};
}  // namespace

TEST_CASE("backpressure: a slow reader pauses the writer, the buffer stays bounded",
          "[transport]") {
  EventLoop loop;
  auto [x, y] = tcp_pair();
  small_kernel_buffers(x);
  small_kernel_buffers(y);
  auto producer = std::make_shared<Producer>();
  producer->data = pattern(4 << 20, 77);
  auto reader = std::make_shared<SlowReader>();
  reader->loop = &loop;
  auto tx = make_socket_transport(loop, std::move(x), producer);
  auto ty = make_socket_transport(loop, std::move(y), reader);
  run_until(
      loop, [&] { return reader->lost && producer->lost; }, 120);
  CHECK(producer->pauses >= 1);
  CHECK(producer->resumes == producer->pauses);
  // Never more than one piece past the high-water mark.
  CHECK(producer->max_buffer <= 64 * 1024 + 16 * 1024);
  CHECK(reader->received == producer->data);
}

namespace {
/// Receives into a small buffer of its own.
struct Collector : BufferedProtocol {
  std::array<std::byte, 1000> buffer{};
  std::string received;
  std::vector<std::ptrdiff_t> hints;
  std::vector<std::string> events;
  bool lost = false;
  std::exception_ptr lost_exc;

  void connection_made(std::shared_ptr<Transport>) override { events.push_back("made"); }
  std::span<std::byte> get_buffer(std::ptrdiff_t sizehint) override {
    hints.push_back(sizehint);
    return buffer;
  }
  void buffer_updated(std::size_t n) override {
    if (events.back() != "data") events.push_back("data");
    REQUIRE(n <= buffer.size());
    received.append(reinterpret_cast<const char*>(buffer.data()), n);
  }
  bool eof_received() override {
    events.push_back("eof");
    return false;
  }
  void connection_lost(std::exception_ptr exc) override {
    events.push_back("lost");
    lost = true;
    lost_exc = exc;
  }
};
}  // namespace

TEST_CASE("BufferedProtocol: data lands in the protocol's own buffer", "[transport]") {
  for (bool tcp : {true, false}) {
    CAPTURE(tcp);
    EventLoop loop;
    auto [peer, mine] = tcp ? tcp_pair() : unix_pair();
    auto collector = std::make_shared<Collector>();
    auto [tp, recorder_] = attach(loop, std::move(peer));
    auto& recorder = recorder_;  // a named reference: clang 14 cannot capture a binding
    auto t = make_socket_transport(loop, std::move(mine), collector);
    const std::string data = pattern(1 << 20, 5);
    run_until(loop, [&] { return recorder->made; });
    tp->write(data);
    tp->write_eof();
    run_until(loop, [&] { return collector->lost; });
    CHECK(collector->received == data);
    CHECK(collector->events == std::vector<std::string>{"made", "data", "eof", "lost"});
    CHECK(collector->lost_exc == nullptr);
    REQUIRE_FALSE(collector->hints.empty());
    for (auto hint : collector->hints)
      CHECK(hint == -1);
    // At most 1000 bytes per read: many reads.
    CHECK(collector->hints.size() >= data.size() / 1000);
    run_until(loop, [&] { return recorder->lost; });
  }
}

TEST_CASE("a reset peer gives connection_lost(ConnectionResetError) and no handler call",
          "[transport]") {
  EventLoop loop;
  HandlerLog handler;
  handler.install(loop);
  auto [peer, mine] = tcp_pair();
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  run_until(loop, [&] { return proto->made; });
  SECTION("while reading") {
    struct linger lg {
      1, 0
    };
    REQUIRE(::setsockopt(peer.fileno(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    peer.close();  // RST
    run_until(loop, [&] { return proto->lost; });
    CHECK(holds<asyncuv::ConnectionResetError>(proto->lost_exc));
  }
  SECTION("while writing") {
    t->pause_reading();
    struct linger lg {
      1, 0
    };
    REQUIRE(::setsockopt(peer.fileno(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    peer.close();
    run_iterations(loop, 2);
    const std::string chunk = pattern(64 * 1024);
    for (int i = 0; i < 64 && !t->is_closing(); ++i) {
      t->write(chunk);
      run_iterations(loop, 1);
    }
    run_until(loop, [&] { return proto->lost; });
    // ECONNRESET or EPIPE, depending on when the kernel noticed.
    CHECK(holds<asyncuv::ConnectionError>(proto->lost_exc));
  }
  CHECK(handler.contexts.empty());
  CHECK(proto->lost_calls == 1);
  CHECK(t->is_closing());
}

namespace {
struct Boom : asyncuv::ValueError {
  Boom() : asyncuv::ValueError("boom") {}
};

/// A BufferedProtocol whose get_buffer / buffer_updated can fail.
struct FailingBuffered : Collector {
  int fail_get = 0;  // 1: throw, 2: empty buffer
  bool fail_update = false;
  std::span<std::byte> get_buffer(std::ptrdiff_t sizehint) override {
    if (fail_get == 1) throw Boom();
    if (fail_get == 2) return {};
    return Collector::get_buffer(sizehint);
  }
  void buffer_updated(std::size_t n) override {
    if (fail_update) throw Boom();
    Collector::buffer_updated(n);
  }
};

void check_fatal_context(const HandlerLog& handler, const std::string& message,
                         const std::shared_ptr<Transport>& t,
                         const std::shared_ptr<BaseProtocol>& p, const std::string& text) {
  REQUIRE(handler.contexts.size() == 1);
  const auto& c = handler.contexts[0];
  CHECK(c.message() == message);
  CHECK(what(c.exception()) == text);
  CHECK(c.transport<Transport>() == t);
  CHECK(c.protocol<BaseProtocol>() == p);
  CHECK(c.items().size() == 4);  // message, exception, transport, protocol
}
}  // namespace

TEST_CASE("exceptions from protocol callbacks go to the handler and abort the transport",
          "[transport]") {
  EventLoop loop;
  HandlerLog handler;
  handler.install(loop);
  auto [peer, mine] = unix_pair();
  int peer_fd = peer.fileno();

  SECTION("data_received") {
    auto [t, proto_] = attach(loop, std::move(mine));
    auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
    proto->on_data = [](Recorder&, std::string_view) { throw Boom(); };
    REQUIRE(::write(peer_fd, "x", 1) == 1);
    run_until(loop, [&] { return proto->lost; });
    check_fatal_context(handler, "Fatal error: protocol.data_received() call failed.", t, proto,
                        "boom");
    CHECK(holds<Boom>(proto->lost_exc));
    CHECK(proto->lost_exc == handler.contexts[0].exception());
  }
  SECTION("eof_received") {
    struct EofThrows : Recorder {
      bool eof_received() override { throw Boom(); }
    };
    auto proto = std::make_shared<EofThrows>();
    auto t = make_socket_transport(loop, std::move(mine), proto);
    ::shutdown(peer_fd, SHUT_WR);
    run_until(loop, [&] { return proto->lost; });
    check_fatal_context(handler, "Fatal error: protocol.eof_received() call failed.", t, proto,
                        "boom");
    CHECK(holds<Boom>(proto->lost_exc));
  }
  SECTION("get_buffer") {
    auto proto = std::make_shared<FailingBuffered>();
    proto->fail_get = 1;
    auto t = make_socket_transport(loop, std::move(mine), proto);
    REQUIRE(::write(peer_fd, "x", 1) == 1);
    run_until(loop, [&] { return proto->lost; });
    check_fatal_context(handler, "Fatal error: protocol.get_buffer() call failed.", t, proto,
                        "boom");
    CHECK(holds<Boom>(proto->lost_exc));
  }
  SECTION("get_buffer returning an empty buffer") {
    auto proto = std::make_shared<FailingBuffered>();
    proto->fail_get = 2;
    auto t = make_socket_transport(loop, std::move(mine), proto);
    REQUIRE(::write(peer_fd, "x", 1) == 1);
    run_until(loop, [&] { return proto->lost; });
    check_fatal_context(handler, "Fatal error: protocol.get_buffer() call failed.", t, proto,
                        "get_buffer() returned an empty buffer");
    CHECK(holds<asyncuv::RuntimeError>(proto->lost_exc));
  }
  SECTION("buffer_updated") {
    auto proto = std::make_shared<FailingBuffered>();
    proto->fail_update = true;
    auto t = make_socket_transport(loop, std::move(mine), proto);
    REQUIRE(::write(peer_fd, "x", 1) == 1);
    run_until(loop, [&] { return proto->lost; });
    check_fatal_context(handler, "Fatal error: protocol.buffer_updated() call failed.", t, proto,
                        "boom");
    CHECK(holds<Boom>(proto->lost_exc));
  }
  SECTION("connection_made: reported as a callback error; the transport stays open") {
    auto [t, proto_] = attach(loop, std::move(mine));
    auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
    proto->on_made = [](Recorder&) { throw Boom(); };
    REQUIRE(::write(peer_fd, "x", 1) == 1);
    run_until(loop, [&] { return proto->received == "x"; });
    REQUIRE(handler.contexts.size() == 1);
    CHECK_THAT(handler.contexts[0].message(), Catch::StartsWith("Exception in callback"));
    CHECK_FALSE(t->is_closing());
    t->close();
    run_until(loop, [&] { return proto->lost; });
  }
  SECTION("connection_lost: reported; the socket is closed all the same") {
    auto [t, proto_] = attach(loop, std::move(mine));
    auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
    int fd = t->get_extra_info<int>("socket").value();
    proto->on_lost = [](Recorder&) { throw Boom(); };
    t->close();
    run_until(loop, [&] { return proto->lost; });
    run_iterations(loop, 1);
    REQUIRE(handler.contexts.size() == 1);
    CHECK_THAT(handler.contexts[0].message(), Catch::StartsWith("Exception in callback"));
    CHECK(fd_closed(fd));
    CHECK(t->get_protocol() == nullptr);
  }
  SECTION("a fatal exception (KeyboardInterrupt) leaves run_forever") {
    auto [t, proto_] = attach(loop, std::move(mine));
    auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
    proto->on_data = [](Recorder&, std::string_view) { throw asyncuv::KeyboardInterrupt(); };
    REQUIRE(::write(peer_fd, "x", 1) == 1);
    auto watchdog = loop.call_later(10, [&] { loop.stop(); });
    CHECK_THROWS_AS(loop.run_forever(), asyncuv::KeyboardInterrupt);
    watchdog.cancel();
    CHECK(handler.contexts.empty());
    t->close();
    run_until(loop, [&] { return proto->lost; });
  }
}

TEST_CASE("dropping every reference mid-transfer: close() still delivers every byte",
          "[transport]") {
  for (bool tcp : {true, false}) {
    CAPTURE(tcp);
    EventLoop loop;
    auto [peer, mine] = tcp ? tcp_pair() : unix_pair();
    small_kernel_buffers(peer);
    small_kernel_buffers(mine);
    int peer_fd = peer.fileno();
    const std::string data = pattern(4 << 20, 33);
    std::weak_ptr<Transport> weak_t;
    std::weak_ptr<Recorder> weak_p;
    {
      auto proto = std::make_shared<Recorder>();
      proto->keep_transport = false;
      auto t = make_socket_transport(loop, std::move(mine), proto);
      run_until(loop, [&] { return proto->made; });
      t->write(data);
      REQUIRE(t->get_write_buffer_size() > 0);
      t->close();
      weak_t = t;
      weak_p = proto;
    }
    CHECK_FALSE(weak_t.expired());  // alive while it has work to do
    std::string got;
    bool eof = false;
    run_until(loop, [&] {
      eof = drain_fd(peer_fd, got) || eof;
      return eof && weak_t.expired();
    });
    CHECK(test_support::byte_difference(got, data) == "");
    CHECK(weak_p.expired());
  }
}

TEST_CASE("closing from inside callbacks", "[transport]") {
  EventLoop loop;
  auto [peer, mine] = tcp_pair();
  small_kernel_buffers(peer);
  small_kernel_buffers(mine);
  int peer_fd = peer.fileno();
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  const std::string reply = pattern(2 << 20, 12);

  SECTION("close() in data_received after a large write: the reply arrives, then EOF") {
    proto->on_data = [&](Recorder& r, std::string_view) {
      r.transport->write(reply);
      r.transport->close();
    };
    REQUIRE(::write(peer_fd, "ping", 4) == 4);
    std::string got;
    bool eof = false;
    run_until(loop, [&] {
      eof = drain_fd(peer_fd, got) || eof;
      return eof && proto->lost;
    });
    CHECK(test_support::byte_difference(got, reply) == "");
    CHECK(proto->lost_exc == nullptr);
  }
  SECTION("abort() in data_received: nothing more is delivered") {
    proto->on_data = [](Recorder& r, std::string_view) { r.transport->abort(); };
    REQUIRE(::write(peer_fd, "one", 3) == 3);
    run_until(loop, [&] { return proto->lost; });
    CHECK(proto->events == std::vector<std::string>{"made", "data", "lost"});
  }
  SECTION("close() in connection_made") {
    proto->on_made = [](Recorder& r) { r.transport->close(); };
    run_until(loop, [&] { return proto->lost; });
    CHECK(proto->events == std::vector<std::string>{"made", "lost"});
    std::string got;
    wait_fd(peer_fd, POLLIN);
    CHECK(drain_fd(peer_fd, got));
  }
  SECTION("close() and abort() in connection_lost do nothing") {
    proto->on_lost = [](Recorder& r) {
      r.transport->close();
      r.transport->abort();
      r.transport->write("late");
    };
    t->close();
    run_until(loop, [&] { return proto->lost; });
    run_iterations(loop, 2);
    CHECK(proto->lost_calls == 1);
  }
  CHECK(proto->lost_calls == 1);
}

TEST_CASE("set_protocol mid-stream: later data goes to the new protocol", "[transport]") {
  EventLoop loop;
  auto [peer, mine] = unix_pair();
  int peer_fd = peer.fileno();
  auto second = std::make_shared<Recorder>();
  std::weak_ptr<Recorder> weak_first;
  std::shared_ptr<Transport> t;
  {
    auto first = std::make_shared<Recorder>();
    weak_first = first;
    first->on_data = [second](Recorder& r, std::string_view) {
      // Replaces (and so releases) the protocol that is running right now.
      second->transport = r.transport;
      r.transport->set_protocol(second);
      r.transport.reset();
    };
    t = make_socket_transport(loop, std::move(mine), first);
  }
  run_until(loop, [&] { return !weak_first.expired() && weak_first.lock()->made; });
  REQUIRE(::write(peer_fd, "first", 5) == 5);
  run_until(loop, [&] { return weak_first.expired(); });
  CHECK(t->get_protocol() == second);
  CHECK_THROWS_AS(t->set_protocol(nullptr), asyncuv::TypeError);
  REQUIRE(::write(peer_fd, "second", 6) == 6);
  ::shutdown(peer_fd, SHUT_WR);
  run_until(loop, [&] { return second->lost; });
  CHECK(second->received == "second");
  CHECK(second->events == std::vector<std::string>{"data", "eof", "lost"});
}

namespace {
struct CountingTracker : asyncuv::detail::ConnectionTracker {
  std::vector<std::shared_ptr<Transport>> attached;
  int detached = 0;
  void attach(std::shared_ptr<Transport> t) override { attached.push_back(std::move(t)); }
  void detach(Transport* t) override {
    ++detached;
    std::erase_if(attached, [t](const auto& p) { return p.get() == t; });
  }
};
}  // namespace

TEST_CASE("a ConnectionTracker sees attach at creation and detach after connection_lost",
          "[transport]") {
  EventLoop loop;
  auto tracker = std::make_shared<CountingTracker>();
  auto [peer, mine] = unix_pair();
  auto proto = std::make_shared<Recorder>();
  auto t = make_socket_transport(loop, std::move(mine), proto, tracker);
  CHECK(tracker->attached.size() == 1);
  CHECK(tracker->attached[0] == t);
  bool detached_before_lost = true;
  proto->on_lost = [&](Recorder&) { detached_before_lost = tracker->detached != 0; };
  t->close();
  run_until(loop, [&] { return proto->lost; });
  CHECK_FALSE(detached_before_lost);
  CHECK(tracker->detached == 1);
  CHECK(tracker->attached.empty());
}

TEST_CASE("closing the loop with open connections closes their sockets, calls no protocol",
          "[transport]") {
  auto loop = std::make_unique<EventLoop>();
  auto tracker = std::make_shared<CountingTracker>();
  auto [peer1, mine1] = tcp_pair();
  auto [peer2, mine2] = unix_pair();
  small_kernel_buffers(mine1);
  small_kernel_buffers(peer1);
  int fd1 = mine1.fileno();
  int fd2 = mine2.fileno();
  auto p1 = std::make_shared<Recorder>();
  auto p2 = std::make_shared<Recorder>();
  std::weak_ptr<Recorder> weak_p2 = p2;
  std::shared_ptr<Transport> t1 = make_socket_transport(*loop, std::move(mine1), p1, tracker);
  {
    // The second one is only referenced by its protocol (a cycle the loop must break).
    auto t2 = make_socket_transport(*loop, std::move(mine2), p2);
    (void)t2;
  }
  run_until(*loop, [&] { return p1->made && p2->made; });
  p2.reset();
  t1->write(pattern(4 << 20));  // still buffered when the loop closes
  REQUIRE(t1->get_write_buffer_size() > 0);
  loop->close();
  CHECK_FALSE(p1->lost);
  CHECK(fd_closed(fd1));
  CHECK(fd_closed(fd2));
  CHECK(weak_p2.expired());
  CHECK(tracker->detached == 1);
  // What the user still holds is inert.
  CHECK(t1->is_closing());
  CHECK(t1->get_write_buffer_size() == 0);
  t1->write("dropped");
  t1->close();
  t1->abort();
  t1->pause_reading();
  t1->resume_reading();
  CHECK_FALSE(t1->is_reading());
  loop.reset();  // the loop goes first
  CHECK_FALSE(p1->lost);
  t1.reset();
  std::string got;
  wait_fd(peer2.fileno(), POLLIN);
  CHECK(drain_fd(peer2.fileno(), got));  // the Unix peer sees the end
}

TEST_CASE("writelines writes the pieces in order", "[transport]") {
  EventLoop loop;
  auto [peer_, mine] = unix_pair();
  auto& peer = peer_;  // a named reference: clang 14 cannot capture a binding
  auto [t, proto_] = attach(loop, std::move(mine));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  t->writelines({"a", "bc", "", "def"});
  t->close();
  std::string got;
  run_until(loop, [&] { return drain_fd(peer.fileno(), got); });
  CHECK(got == "abcdef");
  run_until(loop, [&] { return proto->lost; });
}
