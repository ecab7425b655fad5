// File-descriptor watchers (add_reader / add_writer): scenarios 38-39 of asyncio-semantics.md.
#include <catch2/catch.hpp>

#include "loop_support.hpp"

#include <asyncuv/detail/fd_watchers.hpp>
#include <asyncuv/event_loop.hpp>
#include <asyncuv/exception_context.hpp>
#include <asyncuv/exceptions.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>
#include "byte_compare.hpp"

using asyncuv::EventLoop;
using asyncuv::TimerHandle;

namespace fd_test {

/// A connected AF_UNIX stream socket pair, closed on destruction (unless released).
struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0); }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
  ~SocketPair() { close_both(); }
  void close_both() {
    for (int& fd : fds) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }
};

/// A pipe: fds[0] reads, fds[1] writes; closed on destruction.
struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { REQUIRE(::pipe(fds) == 0); }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
  void close_end(int i) {
    ::close(fds[i]);
    fds[i] = -1;
  }
};

using test_support::run_with_watchdog;

/// Runs exactly one iteration (asyncio's pre-stopped run_forever).
void run_once(EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

/// Writes all of `data` to a socket or pipe end (small writes: never blocks on loopback).
void write_all(int fd, const std::string& data) {
  REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
}

/// Reads what is available (the fd is non-blocking once watched): the bytes, or "" at EOF or
/// when nothing is available.
std::string read_some(int fd) {
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

/// Deterministic payload for pair `i`: every byte is checked on arrival.
std::string payload(std::size_t i, std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t k = 0; k < size; ++k)
    s[k] = static_cast<char>((i * 31 + k * 7) % 251);
  return s;
}

}  // namespace fd_test

using namespace fd_test;

TEST_CASE("38. add_reader delivers every byte written to a socketpair", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  const std::string sent = payload(1, 3000);
  std::string received;
  int calls = 0;
  // add_reader returns nothing (void), as asyncio's returns None.
  static_assert(std::is_void_v<decltype(loop.add_reader(sp.fds[0], [] {}))>);
  loop.add_reader(sp.fds[0], [&] {
    ++calls;
    received += read_some(sp.fds[0]);
    if (received.size() >= sent.size()) loop.stop();
  });
  loop.call_soon([&] { write_all(sp.fds[1], sent); });
  run_with_watchdog(loop);
  CHECK(test_support::byte_difference(received, sent) == "");
  CHECK(calls >= 1);
  CHECK(loop.remove_reader(sp.fds[0]));
  loop.close();
}

TEST_CASE("38. add_reader passes its arguments by value to the callback", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  std::vector<std::string> seen;
  auto on_read = [&](int fd, const std::string& tag) {
    seen.push_back(tag + ":" + read_some(fd));
    loop.remove_reader(fd);
    loop.stop();
  };
  std::string tag = "sock";
  loop.add_reader(sp.fds[0], on_read, sp.fds[0], tag);
  tag = "changed";
  write_all(sp.fds[1], "xyz");
  run_with_watchdog(loop);
  CHECK(seen == std::vector<std::string>{"sock:xyz"});
  loop.close();
}

TEST_CASE("38. remove_reader / remove_writer return true once, then false", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  // Nothing was ever watched on this loop.
  CHECK_FALSE(loop.remove_reader(sp.fds[0]));
  CHECK_FALSE(loop.remove_writer(sp.fds[0]));

  loop.add_reader(sp.fds[0], [] {});
  CHECK_FALSE(loop.remove_writer(sp.fds[0]));  // a reader only: no writer to remove
  CHECK_FALSE(loop.remove_reader(sp.fds[1]));  // another fd, never added
  CHECK(loop.remove_reader(sp.fds[0]));
  CHECK_FALSE(loop.remove_reader(sp.fds[0]));

  loop.add_writer(sp.fds[1], [] {});
  CHECK(loop.remove_writer(sp.fds[1]));
  CHECK_FALSE(loop.remove_writer(sp.fds[1]));
  CHECK(loop.service<asyncuv::detail::FdWatchers>().watched_count() == 0);
  loop.close();
}

TEST_CASE("38. add_reader again replaces the callback and cancels the old handle", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  auto first_token = std::make_shared<int>(1);
  std::vector<std::string> seen;
  loop.add_reader(sp.fds[0], [&, token = first_token] { seen.push_back("first"); });
  CHECK(first_token.use_count() == 2);
  loop.add_reader(sp.fds[0], [&] {
    seen.push_back("second:" + read_some(sp.fds[0]));
    loop.stop();
  });
  // Cancelling the old handle released its callable (and what it captured).
  CHECK(first_token.use_count() == 1);
  write_all(sp.fds[1], "hi");
  run_with_watchdog(loop);
  CHECK(seen == std::vector<std::string>{"second:hi"});
  CHECK(loop.remove_reader(sp.fds[0]));
  CHECK_FALSE(loop.remove_reader(sp.fds[0]));
  loop.close();
}

TEST_CASE("38. add_writer again replaces the writer and cancels the old handle", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  auto token = std::make_shared<int>(1);
  int second = 0;
  loop.add_writer(sp.fds[0], [t = token] {});
  loop.add_writer(sp.fds[0], [&] {
    ++second;
    loop.stop();
  });
  CHECK(token.use_count() == 1);
  run_with_watchdog(loop);
  CHECK(second == 1);
  CHECK(loop.remove_writer(sp.fds[0]));
  loop.close();
}

TEST_CASE("38. a writer fires on a writable socket", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  int calls = 0;
  loop.add_writer(sp.fds[1], [&] {
    ++calls;
    write_all(sp.fds[1], "ping");
    CHECK(loop.remove_writer(sp.fds[1]));
    loop.stop();
  });
  run_with_watchdog(loop);
  CHECK(calls == 1);
  // The writer's bytes arrived.
  char buf[8] = {};
  CHECK(::read(sp.fds[0], buf, sizeof buf) == 4);
  CHECK(std::string(buf, 4) == "ping");
  loop.close();
}

TEST_CASE("38. reader and writer on one fd are independent", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  const int fd = sp.fds[0];
  int reads = 0;
  int writes = 0;
  std::string received;
  loop.add_reader(fd, [&] {
    ++reads;
    received += read_some(fd);
  });
  loop.add_writer(fd, [&] { ++writes; });

  // Writable at once, nothing to read yet.
  run_once(loop);
  CHECK(writes == 1);
  CHECK(reads == 0);

  // Removing the writer leaves the reader watching.
  CHECK(loop.remove_writer(fd));
  write_all(sp.fds[1], "data");
  for (int i = 0; i < 1000 && received.size() < 4; ++i)
    run_once(loop);
  CHECK(received == "data");
  CHECK(writes == 1);

  // Removing the reader and adding a writer back: only the writer fires.
  CHECK(loop.remove_reader(fd));
  int reads_before = reads;
  write_all(sp.fds[1], "more");
  loop.add_writer(fd, [&] { ++writes; });
  run_once(loop);
  CHECK(writes == 2);
  CHECK(reads == reads_before);
  CHECK(read_some(fd) == "more");  // nobody read it
  CHECK(loop.remove_writer(fd));
  CHECK_FALSE(loop.remove_reader(fd));
  loop.close();
}

TEST_CASE("38. in one iteration the reader runs before the writer, each once", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  const int fd = sp.fds[0];
  std::vector<std::string> seen;
  write_all(sp.fds[1], "r");
  loop.add_writer(fd, [&] { seen.push_back("writer"); });
  loop.add_reader(fd, [&] { seen.push_back("reader"); });
  run_once(loop);
  CHECK(seen == std::vector<std::string>{"reader", "writer"});
  loop.close();
}

TEST_CASE("38. watchers are level-triggered: an unread fd fires every iteration", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  write_all(sp.fds[1], "unread");
  std::vector<std::uint64_t> iterations;
  loop.add_reader(sp.fds[0], [&] {
    iterations.push_back(loop.iteration_count());
    if (iterations.size() == 5) loop.stop();
  });
  run_with_watchdog(loop);
  REQUIRE(iterations.size() == 5);
  for (std::size_t i = 1; i < iterations.size(); ++i)
    CHECK(iterations[i] == iterations[i - 1] + 1);
  // Once the data is read, the reader goes quiet.
  CHECK(read_some(sp.fds[0]) == "unread");
  int later = 0;
  loop.add_reader(sp.fds[0], [&] { ++later; });
  for (int i = 0; i < 3; ++i)
    run_once(loop);
  CHECK(later == 0);
  loop.close();
}

TEST_CASE("38. a pipe reader fires at end of file", "[fd]") {
  EventLoop loop;
  Pipe p;
  std::string received;
  bool eof = false;
  loop.add_reader(p.fds[0], [&] {
    char buf[64];
    ssize_t n = ::read(p.fds[0], buf, sizeof buf);
    if (n > 0) {
      received.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      eof = true;
      loop.remove_reader(p.fds[0]);
      loop.stop();
    }
  });
  loop.call_soon([&] {
    write_all(p.fds[1], "last words");
    p.close_end(1);
  });
  run_with_watchdog(loop);
  CHECK(eof);
  CHECK(received == "last words");
  loop.close();
}

TEST_CASE("38. a pipe's write end gets a writer", "[fd]") {
  EventLoop loop;
  Pipe p;
  loop.add_writer(p.fds[1], [&] {
    write_all(p.fds[1], "through the pipe");
    loop.remove_writer(p.fds[1]);
  });
  std::string received;
  loop.add_reader(p.fds[0], [&] {
    received += read_some(p.fds[0]);
    if (received.size() >= 16) {
      loop.remove_reader(p.fds[0]);
      loop.stop();
    }
  });
  run_with_watchdog(loop);
  CHECK(received == "through the pipe");
  loop.close();
}

TEST_CASE("38. a poll error wakes both the reader and the writer, every iteration", "[fd]") {
  // The write end of a pipe whose read end is closed polls as an error (EPOLLERR): libuv
  // reports it with a negative status, and both callbacks must run to see it.
  EventLoop loop;
  Pipe p;
  p.close_end(0);
  const int fd = p.fds[1];
  std::vector<std::uint64_t> reader_at;
  std::vector<std::uint64_t> writer_at;
  loop.add_reader(fd, [&] { reader_at.push_back(loop.iteration_count()); });
  loop.add_writer(fd, [&] {
    writer_at.push_back(loop.iteration_count());
    if (writer_at.size() == 3) loop.stop();
  });
  run_with_watchdog(loop);
  REQUIRE(writer_at.size() == 3);
  CHECK(reader_at == writer_at);
  CHECK(writer_at[2] == writer_at[0] + 2);  // still reported in the following iterations
  CHECK(loop.remove_reader(fd));
  CHECK(loop.remove_writer(fd));
  loop.close();
}

TEST_CASE("38. a poll error wakes a reader that only asked for readability", "[fd]") {
  EventLoop loop;
  Pipe p;
  p.close_end(0);
  int calls = 0;
  loop.add_reader(p.fds[1], [&] {
    ++calls;
    loop.stop();
  });
  run_with_watchdog(loop);
  CHECK(calls == 1);
  CHECK(loop.remove_reader(p.fds[1]));
  loop.close();
}

TEST_CASE("38. 200 socketpairs each deliver their own bytes", "[fd]") {
  EventLoop loop;
  constexpr std::size_t kPairs = 200;
  constexpr std::size_t kSize = 700;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<std::string> received(kPairs);
  std::size_t done = 0;
  for (std::size_t i = 0; i < kPairs; ++i) {
    pairs.push_back(std::make_unique<SocketPair>());
    const int fd = pairs[i]->fds[0];
    loop.add_reader(fd, [&, i, fd] {
      received[i] += read_some(fd);
      if (received[i].size() >= kSize) {
        CHECK(loop.remove_reader(fd));
        if (++done == kPairs) loop.stop();
      }
    });
  }
  CHECK(loop.service<asyncuv::detail::FdWatchers>().watched_count() == kPairs);
  // Write in reverse order, in two halves from two iterations.
  loop.call_soon([&] {
    for (std::size_t i = kPairs; i-- > 0;)
      write_all(pairs[i]->fds[1], payload(i, kSize).substr(0, 300));
    loop.call_soon([&] {
      for (std::size_t i = 0; i < kPairs; ++i)
        write_all(pairs[i]->fds[1], payload(i, kSize).substr(300));
    });
  });
  run_with_watchdog(loop);
  for (std::size_t i = 0; i < kPairs; ++i) {
    INFO("pair " << i);
    CHECK(received[i] == payload(i, kSize));
  }
  CHECK(loop.service<asyncuv::detail::FdWatchers>().watched_count() == 0);
  loop.close();
}

TEST_CASE("38. after remove_reader the fd may be closed and its number watched again at once",
          "[fd]") {
  EventLoop loop;
  auto first = std::make_unique<SocketPair>();
  const int number = first->fds[0];
  std::string got_first;
  loop.add_reader(number, [&] {
    got_first += read_some(number);
    loop.stop();
  });
  write_all(first->fds[1], "one");
  run_with_watchdog(loop);
  CHECK(got_first == "one");

  // Remove, close, and get the same number back from the next socketpair, all without the
  // loop running in between.
  CHECK(loop.remove_reader(number));
  first->close_both();
  auto second = std::make_unique<SocketPair>();
  REQUIRE(second->fds[0] == number);
  std::string got_second;
  loop.add_reader(number, [&] {
    got_second += read_some(number);
    if (got_second.size() >= 3) loop.stop();
  });
  write_all(second->fds[1], "two");
  run_with_watchdog(loop);
  CHECK(got_second == "two");
  CHECK(got_first == "one");

  // The same with a reader and a writer removed, and the writer's fd reused.
  loop.add_writer(number, [] {});
  CHECK(loop.remove_reader(number));
  CHECK(loop.remove_writer(number));
  second->close_both();
  auto third = std::make_unique<SocketPair>();
  REQUIRE(third->fds[0] == number);
  int writable = 0;
  loop.add_writer(number, [&] {
    ++writable;
    loop.stop();
  });
  run_with_watchdog(loop);
  CHECK(writable == 1);
  CHECK(loop.remove_writer(number));
  loop.close();
}

TEST_CASE("38. closing the loop with active watchers cancels every watcher handle", "[fd]") {
  auto token = std::make_shared<int>(0);
  SocketPair a;
  SocketPair b;
  {
    EventLoop loop;
    loop.add_reader(a.fds[0], [t = token] {});
    loop.add_writer(a.fds[0], [t = token] {});
    loop.add_reader(b.fds[0], [t = token] {});
    write_all(a.fds[1], "pending");
    loop.add_reader(b.fds[1], [t = token] {});
    loop.add_writer(b.fds[1], [t = token] {});
    CHECK(token.use_count() == 6);
    loop.close();
    // Every watcher's callable is gone, the poll handles are closed.
    CHECK(token.use_count() == 1);
    CHECK(loop.find_service<asyncuv::detail::FdWatchers>()->watched_count() == 0);

    // On a closed loop: add_* throws, remove_* returns false (also for a negative fd).
    CHECK_THROWS_WITH(loop.add_reader(a.fds[0], [] {}), "Event loop is closed");
    CHECK_THROWS_AS(loop.add_writer(a.fds[0], [] {}), asyncuv::RuntimeError);
    CHECK_FALSE(loop.remove_reader(a.fds[0]));
    CHECK_FALSE(loop.remove_writer(a.fds[0]));
    CHECK_FALSE(loop.remove_reader(-1));
  }
  // The fds are still usable: nothing was closed under the user.
  write_all(b.fds[1], "ok");
  char buf[2];
  CHECK(::read(b.fds[0], buf, 2) == 2);
}

TEST_CASE("38. a closed loop that never watched an fd", "[fd]") {
  EventLoop loop;
  loop.close();
  CHECK_THROWS_WITH(loop.add_reader(0, [] {}), "Event loop is closed");
  CHECK_THROWS_WITH(loop.add_writer(-1, [] {}), "Event loop is closed");
  CHECK_FALSE(loop.remove_reader(0));
  CHECK_FALSE(loop.remove_writer(-1));
}

TEST_CASE("38. closing a loop with a watcher handle still in the ready queue is clean", "[fd]") {
  auto token = std::make_shared<int>(0);
  SocketPair sp;
  EventLoop loop;
  write_all(sp.fds[1], "x");
  int calls = 0;
  loop.add_reader(sp.fds[0], [&, t = token] { ++calls; });
  // A fatal error in the callback queued first ends the batch before the reader, which the
  // poll had queued: the reader stays in the ready queue until close() discards it.
  loop.call_soon([] { throw asyncuv::KeyboardInterrupt(); });
  CHECK_THROWS_AS(loop.run_forever(), asyncuv::KeyboardInterrupt);
  CHECK(calls == 0);
  CHECK(token.use_count() == 2);
  loop.close();
  CHECK(calls == 0);
  CHECK(token.use_count() == 1);
}

TEST_CASE("38. an exception in a reader goes to the exception handler; it stays registered",
          "[fd]") {
  EventLoop loop;
  SocketPair sp;
  std::vector<std::string> messages;
  loop.set_exception_handler([&](EventLoop&, const asyncuv::ExceptionContext& context) {
    messages.push_back(context.message());
  });
  int calls = 0;
  loop.add_reader(sp.fds[0], [&] {
    ++calls;
    if (calls == 1) throw std::runtime_error("reader failed");
    CHECK(read_some(sp.fds[0]) == "z");
    loop.stop();
  });
  write_all(sp.fds[1], "z");
  run_with_watchdog(loop);
  CHECK(calls == 2);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].rfind("Exception in callback ", 0) == 0);
  CHECK(loop.remove_reader(sp.fds[0]));
  loop.close();
}

TEST_CASE("38. removing or replacing the reader from inside its own callback is safe", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  const int fd = sp.fds[0];
  auto token = std::make_shared<int>(0);
  std::vector<std::string> seen;

  SECTION("remove itself") {
    loop.add_reader(fd, [&, t = token] {
      // The callable (and `t`) must survive until it returns.
      CHECK(token.use_count() == 2);
      CHECK(loop.remove_reader(fd));
      CHECK(token.use_count() == 2);
      seen.push_back("removed:" + read_some(fd));
      loop.call_soon([&] { loop.stop(); });
    });
    write_all(sp.fds[1], "a");
    run_with_watchdog(loop);
    CHECK(token.use_count() == 1);
    // Data arriving later finds no reader.
    write_all(sp.fds[1], "b");
    for (int i = 0; i < 3; ++i)
      run_once(loop);
    CHECK(seen == std::vector<std::string>{"removed:a"});
    CHECK_FALSE(loop.remove_reader(fd));
  }

  SECTION("replace itself") {
    loop.add_reader(fd, [&, t = token] {
      loop.add_reader(fd, [&] {
        seen.push_back("second:" + read_some(fd));
        loop.stop();
      });
      CHECK(token.use_count() == 2);
      seen.push_back("first:" + read_some(fd));
      loop.call_soon([&] { write_all(sp.fds[1], "d"); });
    });
    write_all(sp.fds[1], "c");
    run_with_watchdog(loop);
    CHECK(token.use_count() == 1);
    CHECK(seen == std::vector<std::string>{"first:c", "second:d"});
    CHECK(loop.remove_reader(fd));
  }

  SECTION("remove the other watchers of the batch") {
    // The writer runs after the reader in the same batch; the reader removes it first, so
    // the already-queued writer handle is cancelled and never runs.
    loop.add_writer(fd, [&] { seen.push_back("writer"); });
    loop.add_reader(fd, [&] {
      seen.push_back("reader");
      CHECK(loop.remove_writer(fd));
      CHECK(loop.remove_reader(fd));
    });
    write_all(sp.fds[1], "e");
    run_once(loop);
    run_once(loop);
    CHECK(seen == std::vector<std::string>{"reader"});
  }
  loop.close();
}

TEST_CASE("38. stop() before run_forever: one iteration runs call_soon, then the reader", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  write_all(sp.fds[1], "x");
  std::vector<std::string> seen;
  loop.add_reader(sp.fds[0], [&] { seen.push_back("reader"); });
  TimerHandle far = loop.call_later(30, [&] { seen.push_back("far"); });
  loop.stop();
  loop.call_soon([&] { seen.push_back("x"); });
  std::uint64_t before = loop.iteration_count();
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"x", "reader"});
  CHECK(loop.iteration_count() == before + 1);
  far.cancel();
  loop.close();
}

TEST_CASE("39. a negative fd raises ValueError", "[fd]") {
  EventLoop loop;
  CHECK_THROWS_AS(loop.add_reader(-1, [] {}), asyncuv::ValueError);
  CHECK_THROWS_WITH(loop.add_reader(-1, [] {}), "Invalid file descriptor: -1");
  CHECK_THROWS_WITH(loop.add_writer(-7, [] {}), "Invalid file descriptor: -7");
  // selectors' get_key() raises it for remove too, on an open loop.
  CHECK_THROWS_WITH(loop.remove_reader(-1), "Invalid file descriptor: -1");
  CHECK_THROWS_WITH(loop.remove_writer(-2), "Invalid file descriptor: -2");
  CHECK(loop.service<asyncuv::detail::FdWatchers>().watched_count() == 0);
  loop.close();
}

TEST_CASE("39. a closed fd raises OSError(EBADF)", "[fd]") {
  EventLoop loop;
  int fd;
  {
    SocketPair sp;
    fd = sp.fds[0];
  }
  auto token = std::make_shared<int>(0);
  try {
    loop.add_reader(fd, [t = token] {});
    FAIL("add_reader on a closed fd did not throw");
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EBADF);
  }
  // The rejected handle was released, and nothing stayed registered.
  CHECK(token.use_count() == 1);
  CHECK_FALSE(loop.remove_reader(fd));
  try {
    loop.add_writer(fd, [] {});
    FAIL("add_writer on a closed fd did not throw");
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EBADF);
  }
  CHECK(loop.service<asyncuv::detail::FdWatchers>().watched_count() == 0);
  loop.close();
}

TEST_CASE("39. adding a writer to a watched fd that was closed under it raises EBADF", "[fd]") {
  EventLoop loop;
  auto sp = std::make_unique<SocketPair>();
  const int fd = sp->fds[0];
  auto token = std::make_shared<int>(0);
  loop.add_reader(fd, [t = token] {});
  sp->close_both();  // misuse: closed while watched
  try {
    loop.add_writer(fd, [t = token] {});
    FAIL("add_writer on a closed fd did not throw");
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EBADF);
  }
  // As selectors' modify(): the registration is dropped.
  CHECK(token.use_count() == 1);
  CHECK_FALSE(loop.remove_reader(fd));
  CHECK(loop.service<asyncuv::detail::FdWatchers>().watched_count() == 0);
  loop.close();
}

TEST_CASE("39. a regular file raises PermissionError(EPERM)", "[fd]") {
  EventLoop loop;
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  const int fd = ::fileno(file);
  CHECK_THROWS_AS(loop.add_reader(fd, [] {}), asyncuv::PermissionError);
  try {
    loop.add_writer(fd, [] {});
    FAIL("add_writer on a regular file did not throw");
  } catch (const asyncuv::PermissionError& e) {
    CHECK(e.errnum() == EPERM);
  }
  CHECK_FALSE(loop.remove_reader(fd));
  std::fclose(file);
  loop.close();
}

TEST_CASE("39. add/remove on an fd used by a transport raise RuntimeError", "[fd]") {
  EventLoop loop;
  SocketPair sp;
  const int fd = sp.fds[0];
  auto& watchers = loop.service<asyncuv::detail::FdWatchers>();
  CHECK_FALSE(watchers.is_claimed(fd));
  watchers.claim_for_transport(fd, "<_SelectorSocketTransport fd=" + std::to_string(fd) + ">");
  CHECK(watchers.is_claimed(fd));
  const std::string message =
      "File descriptor " + std::to_string(fd) +
      " is used by transport <_SelectorSocketTransport fd=" + std::to_string(fd) + ">";
  CHECK_THROWS_WITH(loop.add_reader(fd, [] {}), message);
  CHECK_THROWS_WITH(loop.add_writer(fd, [] {}), message);
  CHECK_THROWS_WITH(loop.remove_reader(fd), message);
  CHECK_THROWS_AS(loop.remove_writer(fd), asyncuv::RuntimeError);
  // Other fds are not affected.
  loop.add_reader(sp.fds[1], [] {});
  CHECK(loop.remove_reader(sp.fds[1]));

  watchers.release_from_transport(fd);
  CHECK_FALSE(watchers.is_claimed(fd));
  watchers.release_from_transport(fd);  // releasing twice does nothing
  int calls = 0;
  loop.add_reader(fd, [&] {
    ++calls;
    loop.stop();
  });
  write_all(sp.fds[1], "free");
  run_with_watchdog(loop);
  CHECK(calls == 1);
  CHECK(loop.remove_reader(fd));
  loop.close();
}

TEST_CASE("39. the service's own add/remove bypass transport claims (asyncio _add_reader)",
          "[fd]") {
  EventLoop loop;
  SocketPair sp;
  const int fd = sp.fds[0];
  auto& watchers = loop.service<asyncuv::detail::FdWatchers>();
  watchers.claim_for_transport(fd, "<Transport>");
  int calls = 0;
  asyncuv::Handle h = watchers.add(fd, UV_READABLE, asyncuv::detail::make_handle({}, [&] {
                                     ++calls;
                                     loop.stop();
                                   }));
  write_all(sp.fds[1], "t");
  run_with_watchdog(loop);
  CHECK(calls == 1);
  CHECK_FALSE(h.cancelled());
  CHECK(watchers.remove(fd, UV_READABLE));
  CHECK(h.cancelled());
  CHECK_THROWS_AS(loop.remove_reader(fd), asyncuv::RuntimeError);
  loop.close();
}

TEST_CASE("38. a watcher handle cancelled through a copy is unregistered on its next event",
          "[fd]") {
  EventLoop loop;
  SocketPair sp;
  const int fd = sp.fds[0];
  auto& watchers = loop.service<asyncuv::detail::FdWatchers>();
  int calls = 0;
  asyncuv::Handle h =
      watchers.add(fd, UV_READABLE, asyncuv::detail::make_handle({}, [&] { ++calls; }));
  h.cancel();
  write_all(sp.fds[1], "q");
  run_once(loop);
  CHECK(calls == 0);
  CHECK(watchers.watched_count() == 0);
  CHECK_FALSE(loop.remove_reader(fd));
  loop.close();
}
