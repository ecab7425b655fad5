// loop.sendfile(transport, ...): sendfile(2) on socket transports, the read+write fallback
// (for files sendfile(2) cannot send and for other transports), and the file position.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "byte_compare.hpp"
#include "stream_test_support.hpp"

using namespace stream_test;
using asyncuv::BaseProtocol;
using asyncuv::Task;
using asyncuv::detail::make_socket_transport;

namespace {

/// A temporary file holding `data`, removed on destruction.
struct TempFile {
  int fd = -1;
  explicit TempFile(const std::string& data) {
    char name[] = "/tmp/asyncuv-sendfile-XXXXXX";
    fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    ::unlink(name);
    std::size_t at = 0;
    while (at < data.size()) {
      ssize_t n = ::write(fd, data.data() + at, data.size() - at);
      REQUIRE(n > 0);
      at += static_cast<std::size_t>(n);
    }
    REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
  }
  ~TempFile() { ::close(fd); }
  off_t position() const { return ::lseek(fd, 0, SEEK_CUR); }
};

/// Runs `coro` on `loop` while `pump()` runs every millisecond (the peer's reading); fails
/// after `limit` seconds.
template <class T>
T run_with(EventLoop& loop, Task<T> coro, const std::function<void()>& pump, double limit = 60.0) {
  auto task = loop.create_task(std::move(coro));
  bool fired = false;
  std::function<void()> tick;
  asyncuv::TimerHandle ticker;
  tick = [&] {
    pump();
    ticker = loop.call_later(0.001, [&] { tick(); });
  };
  ticker = loop.call_later(0.001, [&] { tick(); });
  auto watchdog = loop.call_later(limit, [&] {
    fired = true;
    task.cancel();
  });
  struct Cancel {
    asyncuv::TimerHandle& a;
    asyncuv::TimerHandle& b;
    ~Cancel() {
      a.cancel();
      b.cancel();
    }
  } cancel{ticker, watchdog};
  T value = loop.run_until_complete(task);
  REQUIRE_FALSE(fired);
  return value;
}

/// A transport that is not a socket transport (as a TLS transport would be): keeps what is
/// written, drains 4 KiB per millisecond and drives its protocol's flow control.
class MemoryTransport final : public Transport {
 public:
  explicit MemoryTransport(EventLoop& loop) : loop_(loop) {}

  std::string sent;    // what was drained so far
  std::string buffer;  // written, not drained yet
  int max_paused = 0;
  std::size_t max_buffer = 0;

  void start(std::shared_ptr<BaseProtocol> p) {
    protocol_ = std::move(p);
    tick();
  }
  void stop() { timer_.cancel(); }

  void close() override { closing_ = true; }
  bool is_closing() const override { return closing_; }
  void set_protocol(std::shared_ptr<BaseProtocol> p) override { protocol_ = std::move(p); }
  std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }
  EventLoop& get_loop() const override { return loop_; }
  bool is_reading() const override { return reading_; }
  void pause_reading() override { reading_ = false; }
  void resume_reading() override { reading_ = true; }
  void set_write_buffer_limits(std::optional<std::size_t> high,
                               std::optional<std::size_t> low) override {
    high_ = high.value_or(16384);
    low_ = low.value_or(high_ / 4);
  }
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const override {
    return {low_, high_};
  }
  std::size_t get_write_buffer_size() const override { return buffer.size(); }
  using WriteTransport::write;
  void write(std::string_view data) override {
    buffer.append(data);
    max_buffer = std::max(max_buffer, buffer.size());
    if (!paused_ && buffer.size() > high_) {
      paused_ = true;
      ++max_paused;
      protocol_->pause_writing();
    }
  }
  void write_eof() override {}
  bool can_write_eof() const override { return false; }
  void abort() override { closing_ = true; }

 private:
  std::any extra_info(std::string_view) const override { return {}; }
  void tick() {
    std::size_t n = std::min<std::size_t>(4096, buffer.size());
    sent.append(buffer, 0, n);
    buffer.erase(0, n);
    if (paused_ && buffer.size() <= low_) {
      paused_ = false;
      protocol_->resume_writing();
    }
    timer_ = loop_.call_later(0.001, [this] { tick(); });
  }

  EventLoop& loop_;
  std::shared_ptr<BaseProtocol> protocol_;
  asyncuv::TimerHandle timer_;
  bool closing_ = false;
  bool reading_ = true;
  bool paused_ = false;
  std::size_t high_ = 16384;
  std::size_t low_ = 4096;
};

}  // namespace

TEST_CASE("sendfile: sendfile(2) on a socket transport, after the buffered data", "[transport]") {
  EventLoop loop;
  auto [peer, mine] = tcp_pair();
  small_kernel_buffers(peer);
  small_kernel_buffers(mine);
  int peer_fd = peer.fileno();
  auto [t_, proto_] = attach(loop, std::move(mine));
  auto& t = t_;          // a named reference: clang 14 cannot capture a binding
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  run_until(loop, [&] { return proto->made; });

  const std::string header = pattern(1 << 20, 3);
  const std::string content = pattern(6 << 20, 4);
  TempFile file(content);
  t->write(header);
  REQUIRE(t->get_write_buffer_size() > 0);  // sendfile must wait for it

  std::string got;
  std::string write_error;
  bool reading_during = true;
  auto send = [&]() -> Task<std::size_t> {
    // Runs after sendfile's first step: the transport is sendfile's now.
    loop.call_soon([&] {
      reading_during = t->is_reading();
      try {
        t->write("interloper");
      } catch (const asyncuv::RuntimeError& e) {
        write_error = e.what();
      }
    });
    co_return co_await loop.sendfile(t, file.fd);
  };
  std::size_t sent = run_with(loop, send(), [&] { drain_fd(peer_fd, got); });
  CHECK(sent == content.size());
  CHECK(write_error == "unable to write; sendfile is in progress");
  CHECK_FALSE(reading_during);
  CHECK(t->is_reading());  // resumed
  CHECK(file.position() == static_cast<off_t>(content.size()));
  t->write("trailer");
  t->close();
  run_until(loop, [&] { return drain_fd(peer_fd, got); });
  CHECK(got.size() == header.size() + content.size() + 7);
  CHECK(got == header + content + "trailer");
  run_until(loop, [&] { return proto->lost; });
}

TEST_CASE("sendfile: offset and count; the file position ends after the last byte sent",
          "[transport]") {
  EventLoop loop;
  auto [peer, mine] = unix_pair();
  int peer_fd = peer.fileno();
  auto [t_, proto_] = attach(loop, std::move(mine));
  auto& t = t_;          // a named reference: clang 14 cannot capture a binding
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  const std::string content = pattern(1 << 20, 8);
  TempFile file(content);
  std::string got;
  auto send = [&]() -> Task<std::size_t> {
    co_return co_await loop.sendfile(t, file.fd, 1000, 300000);
  };
  CHECK(run_with(loop, send(), [&] { drain_fd(peer_fd, got); }) == 300000);
  CHECK(file.position() == 301000);
  // Up to end of file from an offset.
  auto rest = [&]() -> Task<std::size_t> { co_return co_await loop.sendfile(t, file.fd, 301000); };
  CHECK(run_with(loop, rest(), [&] { drain_fd(peer_fd, got); }) == content.size() - 301000);
  t->close();
  run_until(loop, [&] { return drain_fd(peer_fd, got); });
  CHECK(got == content.substr(1000));
  // count 0 is refused (asyncio: "count must be a positive integer").
  auto [peer2, mine2] = unix_pair();
  auto [t2_, proto2_] = attach(loop, std::move(mine2));
  auto& t2 = t2_;          // a named reference: clang 14 cannot capture a binding
  auto& proto2 = proto2_;  // a named reference: clang 14 cannot capture a binding
  auto zero = [&]() -> Task<std::size_t> { co_return co_await loop.sendfile(t2, file.fd, 0, 0); };
  CHECK_THROWS_MATCHES(run_with(loop, zero(), [] {}), asyncuv::ValueError,
                       Catch::Message("count must be a positive integer (got 0)"));
  CHECK(t2->is_reading());
  // An empty file sends nothing.
  TempFile empty("");
  auto nothing = [&]() -> Task<std::size_t> { co_return co_await loop.sendfile(t2, empty.fd); };
  CHECK(run_with(loop, nothing(), [] {}) == 0);
  t2->close();
  run_until(loop, [&] { return proto->lost && proto2->lost; });
}

TEST_CASE("sendfile: a file sendfile(2) cannot send falls back to reading and writing",
          "[transport]") {
  EventLoop loop;
  auto [peer, mine] = unix_pair();
  int peer_fd = peer.fileno();
  auto [t_, proto_] = attach(loop, std::move(mine));
  auto& t = t_;          // a named reference: clang 14 cannot capture a binding
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  int pipe_fds[2];
  REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
  const std::string content = pattern(40000, 21);
  REQUIRE(::write(pipe_fds[1], content.data(), content.size()) ==
          static_cast<ssize_t>(content.size()));
  ::close(pipe_fds[1]);

  SECTION("fallback") {
    std::string got;
    auto send = [&]() -> Task<std::size_t> {
      co_return co_await loop.sendfile(t, pipe_fds[0], 0, content.size());
    };
    CHECK(run_with(loop, send(), [&] { drain_fd(peer_fd, got); }) == content.size());
    CHECK(t->get_protocol() == proto);  // restored
    CHECK(t->is_reading());
    t->close();
    run_until(loop, [&] { return drain_fd(peer_fd, got); });
    CHECK(test_support::byte_difference(got, content) == "");
  }
  SECTION("fallback=false: SendfileNotAvailableError") {
    auto send = [&]() -> Task<std::size_t> {
      co_return co_await loop.sendfile(t, pipe_fds[0], 0, content.size(), false);
    };
    CHECK_THROWS_AS(run_with(loop, send(), [] {}), asyncuv::SendfileNotAvailableError);
    CHECK(t->is_reading());
    t->close();
  }
  ::close(pipe_fds[0]);
  run_until(loop, [&] { return proto->lost; });
}

TEST_CASE("sendfile: other transports get the fallback, with flow control", "[transport]") {
  EventLoop loop;
  auto memory = std::make_shared<MemoryTransport>(loop);
  auto proto = std::make_shared<Recorder>();
  memory->start(proto);
  const std::string content = pattern(300000, 5);
  TempFile file(content);

  SECTION("every byte goes through write(), waiting whenever the protocol is paused") {
    auto send = [&]() -> Task<std::size_t> {
      co_return co_await loop.sendfile(memory, file.fd, 100);
    };
    CHECK(run_with(loop, send(), [] {}) == content.size() - 100);
    run_until(loop, [&] { return memory->buffer.empty(); });
    CHECK(memory->sent == content.substr(100));
    CHECK(memory->max_paused > 1);
    CHECK(memory->max_buffer <= 16384 + 16384);  // one block past the high-water mark
    CHECK(memory->get_protocol() == proto);      // restored
    CHECK(memory->is_reading());
    CHECK(file.position() == static_cast<off_t>(content.size()));
  }
  SECTION("70: count 0 is ValueError on the fallback path too") {
    auto send = [&]() -> Task<std::size_t> {
      co_return co_await loop.sendfile(memory, file.fd, 0, 0);
    };
    CHECK_THROWS_MATCHES(run_with(loop, send(), [] {}), asyncuv::ValueError,
                         Catch::Message("count must be a positive integer (got 0)"));
    CHECK(memory->sent.empty());
  }
  SECTION("fallback=false: RuntimeError") {
    auto send = [&]() -> Task<std::size_t> {
      co_return co_await loop.sendfile(memory, file.fd, 0, std::nullopt, false);
    };
    CHECK_THROWS_WITH(run_with(loop, send(), [] {}),
                      Catch::StartsWith("fallback is disabled and native sendfile is not "
                                        "supported for transport <"));
  }
  SECTION("a closing transport: RuntimeError") {
    memory->close();
    auto send = [&]() -> Task<std::size_t> { co_return co_await loop.sendfile(memory, file.fd); };
    CHECK_THROWS_MATCHES(run_with(loop, send(), [] {}), asyncuv::RuntimeError,
                         Catch::Message("Transport is closing"));
  }
  memory->stop();
}

TEST_CASE("sendfile: the peer going away fails the transfer", "[transport]") {
  EventLoop loop;
  auto [peer_, mine] = tcp_pair();
  auto& peer = peer_;  // a named reference: clang 14 cannot capture a binding
  small_kernel_buffers(peer);
  small_kernel_buffers(mine);
  auto [t_, proto_] = attach(loop, std::move(mine));
  auto& t = t_;          // a named reference: clang 14 cannot capture a binding
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  run_until(loop, [&] { return proto->made; });
  const std::string content = pattern(8 << 20, 6);
  TempFile file(content);
  std::string got;
  bool reset = false;
  auto send = [&]() -> Task<std::size_t> { co_return co_await loop.sendfile(t, file.fd); };
  // The peer reads a little, then resets the connection.
  CHECK_THROWS_AS(run_with(loop, send(),
                           [&] {
                             if (reset) return;
                             drain_fd(peer.fileno(), got, 100000);
                             if (got.size() >= 100000) {
                               struct linger lg {
                                 1, 0
                               };
                               ::setsockopt(peer.fileno(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                               peer.close();
                               reset = true;
                             }
                           }),
                  asyncuv::ConnectionError);
  CHECK(file.position() > 0);  // what was sent, as asyncio leaves it
  CHECK(file.position() < static_cast<off_t>(content.size()));
  t->abort();
  run_until(loop, [&] { return proto->lost; });
}
