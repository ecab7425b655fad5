// Fault tests: hostile volumes with memory bounded.
//  - 1 GiB without a newline offered to readline(): each call fails with ValueError (asyncio's
//    LimitOverrunError message) and drops what it buffered, the transport is paused above twice
//    the limit, so the reader's buffer (and the process's memory) stays near the limit.
//  - a 256 MiB write to a slow reader by a protocol that honours pause_writing(): the write
//    buffer never grows past the high-water mark plus one chunk, and every byte arrives in order.
// The data is generated in chunks from a short pattern (a period that is no divisor of any
// chunk size, so a lost or repeated chunk shows), never held whole.
#include "streams_test_support.hpp"

#include <cstdio>
#include <cstring>
#include <thread>

using namespace stream_test;
using asyncuv::StreamReader;
using streams_test::StreamPair;
using streams_test::wrap_socket;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool asan = true;
#else
constexpr bool asan = false;
#endif
#else
constexpr bool asan = false;
#endif

/// The resident set size of this process in bytes (VmRSS of /proc/self/status).
std::size_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  std::size_t kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::strtoull(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return kib * 1024;
}

/// A stream whose byte i is block[i % period]: any window of up to `period` bytes is
/// contiguous in `block` (which holds the period twice).
struct PeriodicStream {
  static constexpr std::size_t period = 65521;  // prime: shares no factor with chunk sizes
  std::string block = pattern(period, 77) + pattern(period, 77);
  std::string_view window(std::uint64_t at, std::size_t n) const {
    return std::string_view(block).substr(static_cast<std::size_t>(at % period), n);
  }
};

/// Writes all of `data` to blocking `fd` (false if the peer went away).
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// A protocol writing `total` bytes of a PeriodicStream in `chunk`-sized writes, stopping on
/// pause_writing() and going on at resume_writing(); it records the largest write buffer seen.
class BoundedWriter : public asyncuv::Protocol {
 public:
  BoundedWriter(std::uint64_t total, std::size_t chunk) : total_(total), chunk_(chunk) {}
  std::shared_ptr<Transport> transport;
  std::size_t max_buffered = 0;
  std::uint64_t written = 0;
  int pauses = 0;
  int resumes = 0;
  bool lost = false;
  std::exception_ptr lost_exc;

  void connection_made(std::shared_ptr<Transport> t) override {
    transport = std::move(t);
    pump();
  }
  void pause_writing() override {
    ++pauses;
    paused_ = true;
  }
  void resume_writing() override {
    ++resumes;
    paused_ = false;
    pump();
  }
  void connection_lost(std::exception_ptr exc) override {
    lost = true;
    lost_exc = exc;
    transport.reset();
  }

 private:
  void pump() {
    while (!paused_ && written < total_) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_, total_ - written));
      transport->write(stream_.window(written, n));
      written += n;
      max_buffered = std::max(max_buffered, transport->get_write_buffer_size());
    }
    if (written == total_ && !closed_) {
      closed_ = true;
      transport->close();  // flushes first (behaviour 46)
    }
  }

  PeriodicStream stream_;
  std::uint64_t total_;
  std::size_t chunk_;
  bool paused_ = false;
  bool closed_ = false;
};

}  // namespace

TEST_CASE("fault: 1 GiB without a newline to readline(): ValueError, memory bounded", "[fault]") {
  EventLoop loop;
  constexpr std::uint64_t total = std::uint64_t{1} << 30;
  constexpr std::size_t limit = 256 * 1024;
  auto pair = unix_pair();
  pair.first.setblocking(true);
  // The sender: 1 GiB of 'x' in 1 MiB writes, then a short last line, then end of file.
  std::thread sender([fd = pair.first.fileno()] {
    const std::string chunk(1 << 20, 'x');
    for (std::uint64_t sent = 0; sent < total; sent += chunk.size())
      if (!write_all(fd, chunk)) return;
    if (write_all(fd, "tail\n")) ::shutdown(fd, SHUT_WR);
  });
  struct Join {
    std::thread& t;
    Socket& s;
    ~Join() {
      if (t.joinable()) {
        ::shutdown(s.fileno(), SHUT_RDWR);  // a failed check must not leave the sender blocked
        t.join();
      }
    }
  } join{sender, pair.first};

  const std::size_t rss_before = rss_bytes();
  std::size_t max_buffered = 0;
  std::size_t max_rss = rss_before;
  int overruns = 0;
  std::vector<std::string> lines;
  std::string other_error;
  auto body = [&]() -> asyncuv::Task<void> {
    auto wrapping = wrap_socket(std::move(pair.second), limit);
    StreamPair streams = co_await std::move(wrapping);
    // Samples the buffer once per loop iteration, before a failing readline() drops it.
    bool reading = true;
    auto sampling = [](StreamReader reader, bool* reading,
                       std::size_t* max) -> asyncuv::Task<void> {
      while (*reading) {
        *max = std::max(*max, reader.buffered_size());
        co_await asyncuv::sleep(0);
      }
    };
    auto sampler = loop.create_task(sampling(streams.first, &reading, &max_buffered));
    for (;;) {
      std::string line;
      try {
        line = co_await streams.first.readline();
      } catch (const asyncuv::ValueError& e) {
        if (std::string(e.what()) != "Separator is not found, and chunk exceed the limit" &&
            std::string(e.what()) != "Separator is found, but chunk is longer than limit")
          other_error = e.what();
        ++overruns;
        if (overruns % 256 == 0) max_rss = std::max(max_rss, rss_bytes());
        continue;
      }
      if (line.empty()) break;
      lines.push_back(std::move(line));
    }
    reading = false;
    co_await std::move(sampler);
    streams.second.close();
  };
  streams_test::run(loop, body());
  sender.join();
  CHECK(other_error.empty());
  // Each failed readline dropped more than `limit` bytes; at most 2 * limit plus one read were
  // ever buffered (the transport pauses above 2 * limit).
  CHECK(overruns >= static_cast<int>(total / (2 * limit + 256 * 1024)));
  CHECK(overruns <= static_cast<int>(total / limit) + 1);
  CHECK(max_buffered > limit);  // the sampler saw the buffer fill
  CHECK(max_buffered <= 2 * limit + 256 * 1024);
  // At most one line survives: the x's after the last drop plus "tail\n" (if it fits the limit).
  REQUIRE(lines.size() <= 1);
  if (!lines.empty()) {
    CHECK(lines[0].size() <= limit + 1);
    CHECK(lines[0].ends_with("xtail\n"));
    CHECK(lines[0].find_first_not_of('x') == lines[0].size() - 5);
  }
  // Memory: far below the 1 GiB that an unbounded buffer would hold. ASan keeps freed memory in
  // its quarantine (256 MiB by default), so its bound is looser.
  const std::size_t growth = max_rss > rss_before ? max_rss - rss_before : 0;
  CAPTURE(growth);
  CHECK(growth < (asan ? std::size_t{600} << 20 : std::size_t{128} << 20));
}

TEST_CASE("fault 48: 256 MiB to a slow reader, pause_writing honoured: buffer bounded, every byte",
          "[fault]") {
  EventLoop loop;
  constexpr std::uint64_t total = std::uint64_t{256} << 20;
  constexpr std::size_t chunk = 32 * 1024;
  auto pair = unix_pair();
  small_kernel_buffers(pair.first);
  small_kernel_buffers(pair.second);
  pair.first.setblocking(true);
  // The slow reader: small reads, each byte compared with the stream it should be.
  std::uint64_t received = 0;
  std::uint64_t first_bad = UINT64_MAX;
  std::thread reader([&, fd = pair.first.fileno()] {
    PeriodicStream expected;
    char buf[8192];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      std::string_view want = expected.window(received, static_cast<std::size_t>(n));
      if (first_bad == UINT64_MAX && std::memcmp(buf, want.data(), want.size()) != 0) {
        std::size_t i = 0;
        while (buf[i] == want[i])
          ++i;
        first_bad = received + i;
      }
      received += static_cast<std::uint64_t>(n);
    }
  });
  struct Join {
    std::thread& t;
    Socket& s;
    ~Join() {
      if (t.joinable()) {
        ::shutdown(s.fileno(), SHUT_RDWR);
        t.join();
      }
    }
  } join{reader, pair.first};

  auto proto = std::make_shared<BoundedWriter>(total, chunk);
  auto t = asyncuv::detail::make_socket_transport(loop, std::move(pair.second), proto);
  run_until(
      loop, [&] { return proto->lost; }, 60.0);
  reader.join();
  CHECK(proto->lost_exc == nullptr);
  CHECK(proto->written == total);
  CHECK(received == total);
  CHECK(first_bad == UINT64_MAX);
  CHECK(proto->pauses >= 1);
  CHECK(proto->resumes == proto->pauses);  // every pause ended (the writer only stopped there)
  // Default limits (behaviour 48): pause above 64 KiB. A write happens only while not paused,
  // so the buffer never exceeds the high-water mark by more than the last chunk.
  CHECK(proto->max_buffered <= 64 * 1024 + chunk);
}
