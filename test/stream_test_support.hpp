// Test support for the stream transport tests: connected socket pairs (Unix and loopback TCP),
// a recording protocol, patterned data and a loop runner with a watchdog.
#pragma once

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/stream_connections.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace stream_test {

using asyncuv::EventLoop;
using asyncuv::SockAddr;
using asyncuv::Socket;
using asyncuv::Transport;

/// Waits (poll(2), up to 10 s) until `fd` reports `events`; fails the test otherwise.
inline void wait_fd(int fd, short events) {
  pollfd p{fd, events, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, 10000);
  } while (rc < 0 && errno == EINTR);
  REQUIRE(rc == 1);
}

/// A connected loopback TCP pair (client, accepted server side), both non-blocking.
inline std::pair<Socket, Socket> tcp_pair() {
  Socket listener(AF_INET, SOCK_STREAM);
  listener.bind(SockAddr::ipv4("127.0.0.1", 0));
  listener.listen(1);
  Socket client(AF_INET, SOCK_STREAM);
  SockAddr address = listener.getsockname();
  int rc = ::connect(client.fileno(), address.get(), address.size());
  REQUIRE((rc == 0 || errno == EINPROGRESS));
  wait_fd(listener.fileno(), POLLIN);
  int fd = ::accept4(listener.fileno(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  REQUIRE(fd >= 0);
  wait_fd(client.fileno(), POLLOUT);
  return {std::move(client), Socket::adopt(fd)};
}

/// Shrinks the kernel buffers of `sock` (send and receive) so that a few megabytes cannot
/// all sit in the kernel: the rest must wait in the transport's buffer.
inline void small_kernel_buffers(Socket& sock) {
  sock.setsockopt(SOL_SOCKET, SO_SNDBUF, 64 * 1024);
  sock.setsockopt(SOL_SOCKET, SO_RCVBUF, 64 * 1024);
}

/// A connected Unix stream socket pair.
inline std::pair<Socket, Socket> unix_pair() {
  return Socket::socketpair(AF_UNIX, SOCK_STREAM);
}

/// `n` bytes of a pattern that differs at every position of a long stream (seeded).
inline std::string pattern(std::size_t n, std::uint32_t seed = 1) {
  std::string out(n, '\0');
  std::uint32_t x = seed * 2654435761u + 12345;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

/// Runs `loop` until `done()` is true (checked every millisecond), failing the test after
/// `limit` seconds.
inline void run_until(EventLoop& loop, const std::function<bool()>& done, double limit = 30.0) {
  if (done()) return;
  double deadline = loop.time() + limit;
  bool timed_out = false;
  std::function<void()> check;
  asyncuv::TimerHandle timer;
  check = [&] {
    if (done()) {
      loop.stop();
    } else if (loop.time() > deadline) {
      timed_out = true;
      loop.stop();
    } else {
      timer = loop.call_later(0.001, [&] { check(); });
    }
  };
  timer = loop.call_later(0.001, [&] { check(); });
  loop.run_forever();
  timer.cancel();
  REQUIRE_FALSE(timed_out);
}

/// Runs the loop for `n` iterations (n batches of callbacks).
inline void run_iterations(EventLoop& loop, int n) {
  for (int i = 0; i < n; ++i) {
    loop.stop();
    loop.run_forever();
  }
}

/// Reads what is available on non-blocking `fd` into `out`; true once it saw end of file.
inline bool drain_fd(int fd, std::string& out, std::size_t max = SIZE_MAX) {
  char buf[65536];
  while (max > 0) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, max));
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      max -= static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    return false;  // EAGAIN (or an error the caller will see in the data)
  }
  return false;
}

/// A protocol that records everything that happens to it.
class Recorder : public asyncuv::Protocol {
 public:
  std::vector<std::string> events;  // "made", "data", "eof", "lost", "pause", "resume"
  std::string received;
  std::shared_ptr<Transport> transport;  // from connection_made (dropped on connection_lost)
  bool made = false;
  bool eof = false;
  bool lost = false;
  int lost_calls = 0;
  std::exception_ptr lost_exc;
  bool keep_open_on_eof = false;
  bool keep_transport = true;  // false: do not store the transport
  int pauses = 0;
  int resumes = 0;
  std::function<void(Recorder&, std::string_view)> on_data;
  std::function<void(Recorder&)> on_made;
  std::function<void(Recorder&)> on_lost;

  void connection_made(std::shared_ptr<Transport> t) override {
    events.push_back("made");
    made = true;
    if (keep_transport) transport = t;
    if (on_made) on_made(*this);
  }
  void data_received(std::string_view data) override {
    if (events.empty() || events.back() != "data") events.push_back("data");
    received.append(data);
    if (on_data) on_data(*this, data);
  }
  bool eof_received() override {
    events.push_back("eof");
    eof = true;
    return keep_open_on_eof;
  }
  void connection_lost(std::exception_ptr exc) override {
    events.push_back("lost");
    lost = true;
    ++lost_calls;
    lost_exc = exc;
    if (on_lost) on_lost(*this);
    transport.reset();
  }
  void pause_writing() override {
    events.push_back("pause");
    ++pauses;
  }
  void resume_writing() override {
    events.push_back("resume");
    ++resumes;
  }
};

/// Makes a transport with a new Recorder on `sock`.
inline std::pair<std::shared_ptr<Transport>, std::shared_ptr<Recorder>> attach(EventLoop& loop,
                                                                               Socket sock) {
  auto proto = std::make_shared<Recorder>();
  auto t = asyncuv::detail::make_socket_transport(loop, std::move(sock), proto);
  return {t, proto};
}

/// Records what the exception handler receives.
struct HandlerLog {
  std::vector<asyncuv::ExceptionContext> contexts;
  void install(EventLoop& loop) {
    loop.set_exception_handler(
        [this](EventLoop&, const asyncuv::ExceptionContext& c) { contexts.push_back(c); });
  }
};

/// True if `e` holds an exception of type E.
template <class E>
bool holds(const std::exception_ptr& e) {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}

/// what() of `e`.
inline std::string what(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "?";
  }
}

}  // namespace stream_test
