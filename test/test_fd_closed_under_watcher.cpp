// An fd closed under its add_reader / add_writer watcher, in every order of add, close, reuse
// and remove (issue 19). asyncio's selector stops seeing a closed fd and its callback never
// runs; libuv, which registers a uv_poll_t with epoll only in its next poll, used to abort()
// the process there, or watch whatever new file got the same number.
#include <catch2/catch.hpp>

#include "loop_support.hpp"

#include <asyncuv/detail/fd_watchers.hpp>
#include <asyncuv/event_loop.hpp>
#include <asyncuv/exceptions.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

using asyncuv::EventLoop;

namespace fd_closed_test {

/// Runs exactly one iteration (asyncio's pre-stopped run_forever).
void run_once(EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

void run_iterations(EventLoop& loop, int n) {
  for (int i = 0; i < n; ++i)
    run_once(loop);
}

/// A pipe whose ends are closed on destruction; readable() makes its read end readable.
struct Pipe {
  int read_end = -1;
  int write_end = -1;
  Pipe() {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    read_end = p[0];
    write_end = p[1];
  }
  /// A new pipe whose `which` end (0: read, 1: write) has the fd number `number`, which must
  /// be closed: the reuse a program gets from its next pipe() or accept().
  Pipe(int which, int number) : Pipe() {
    int& end = which == 0 ? read_end : write_end;
    if (end != number) {
      REQUIRE(::dup2(end, number) == number);
      ::close(end);
      end = number;
    }
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    if (read_end >= 0) ::close(read_end);
    if (write_end >= 0) ::close(write_end);
  }
  void make_readable() const { REQUIRE(::write(write_end, "x", 1) == 1); }
};

/// A socketpair end, closed by close() (the misuse under test) or on destruction.
struct Socket {
  int fd = -1;
  int peer = -1;
  Socket() {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fd = sv[0];
    peer = sv[1];
    REQUIRE(::write(peer, "x", 1) == 1);  // readable and writable from the start
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    close();
    if (peer >= 0) ::close(peer);
  }
  void close() {
    if (fd >= 0) ::close(fd);
  }
};

std::size_t watched(EventLoop& loop) {
  return loop.service<asyncuv::detail::FdWatchers>().watched_count();
}

/// What every case starts from: a loop, and a socketpair end `fd` that is readable and
/// writable. watch_reader()/watch_writer() add watchers that count into `old_runs`, the
/// callbacks that must never run once the fd is closed.
struct Watched {
  EventLoop loop;
  Socket s;
  const int fd = s.fd;
  int old_runs = 0;
  int ready_runs = 0;

  Watched() = default;
  Watched(const Watched&) = delete;
  Watched& operator=(const Watched&) = delete;
  ~Watched() {
    if (!loop.is_closed()) loop.close();
  }

  void watch_reader() {
    loop.add_reader(fd, [this] { ++old_runs; });
  }
  void watch_writer() {
    loop.add_writer(fd, [this] { ++old_runs; });
  }
  /// Adds a reader (or a writer) on `number` that counts into ready_runs and stops the loop,
  /// and runs the loop until it ran: how many ready callbacks ran meanwhile (1, unless one
  /// ran for a stale registration too).
  int run_until_ready(int number, bool reader) {
    int before = ready_runs;
    auto ready = [this] {
      ++ready_runs;
      loop.stop();
    };
    if (reader) {
      loop.add_reader(number, ready);
    } else {
      loop.add_writer(number, ready);
    }
    test_support::run_with_watchdog(loop);
    return ready_runs - before;
  }
};

}  // namespace fd_closed_test

using namespace fd_closed_test;

TEST_CASE_METHOD(Watched,
                 "38. add_reader then close before the next poll: no abort, the reader never runs",
                 "[fd][fd-closed]") {
  watch_reader();
  s.close();
  run_iterations(loop, 3);
  CHECK(old_runs == 0);
  // The selector still holds the key: removing finds it once.
  CHECK(loop.remove_reader(fd));
  CHECK_FALSE(loop.remove_reader(fd));
  CHECK(watched(loop) == 0);
}

TEST_CASE_METHOD(Watched,
                 "38. add_writer then close before the next poll: no abort, the writer never runs",
                 "[fd][fd-closed]") {
  watch_writer();
  s.close();
  run_iterations(loop, 3);
  CHECK(old_runs == 0);
  CHECK(loop.remove_writer(fd));
}

TEST_CASE_METHOD(Watched, "38. reader and writer, fd closed before the next poll: neither runs",
                 "[fd][fd-closed]") {
  watch_reader();
  watch_writer();
  s.close();
  run_iterations(loop, 3);
  CHECK(old_runs == 0);
  // The lost watch keeps both keys; removing one leaves the other, removing both forgets it.
  CHECK(loop.remove_writer(fd));
  CHECK(watched(loop) == 1);
  CHECK(loop.remove_reader(fd));
  CHECK(watched(loop) == 0);
}

TEST_CASE_METHOD(Watched,
                 "38. add_reader, close, and the number reused by a new pipe before the next "
                 "poll: the old reader never runs for the new pipe",
                 "[fd][fd-closed]") {
  watch_reader();
  s.close();
  Pipe reused(0, fd);
  reused.make_readable();
  run_iterations(loop, 3);
  CHECK(old_runs == 0);
  // Watching the number again watches the new pipe, with the new reader only.
  CHECK(run_until_ready(fd, true) == 1);
  CHECK(old_runs == 0);
  CHECK(loop.remove_reader(fd));
}

TEST_CASE_METHOD(Watched,
                 "38. add_writer, close, and the number reused by a pipe's write end before the "
                 "next poll: the old writer never runs",
                 "[fd][fd-closed]") {
  watch_writer();
  s.close();
  Pipe reused(1, fd);  // a pipe's write end is writable at once
  run_iterations(loop, 3);
  CHECK(old_runs == 0);
  CHECK(loop.remove_writer(fd));
}

TEST_CASE_METHOD(Watched,
                 "38. close, reuse and add_reader again before any poll: only the new reader runs",
                 "[fd][fd-closed]") {
  watch_reader();
  watch_writer();
  s.close();
  Pipe reused(0, fd);
  reused.make_readable();
  CHECK(run_until_ready(fd, true) == 1);
  CHECK(old_runs == 0);
  // The old file's writer went with it.
  CHECK_FALSE(loop.remove_writer(fd));
  CHECK(loop.remove_reader(fd));
}

TEST_CASE_METHOD(Watched,
                 "38. close after a poll, reuse, then add_writer: the new file is watched afresh",
                 "[fd][fd-closed]") {
  // libuv holds the old registration; the kernel dropped it on close. Adding the writer used
  // to hand libuv an epoll MOD for a number epoll no longer knows (abort on ENOENT).
  REQUIRE(run_until_ready(fd, true) == 1);
  s.close();
  Pipe reused(1, fd);
  run_iterations(loop, 2);
  CHECK(ready_runs == 1);  // the reader registered before the close never ran again
  CHECK(run_until_ready(fd, false) == 1);
  CHECK_FALSE(loop.remove_reader(fd));  // forgotten with the old file
  CHECK(loop.remove_writer(fd));
}

TEST_CASE_METHOD(Watched,
                 "38. close after a poll, reuse, then remove_writer of a two-way watch: "
                 "asyncio's FileNotFoundError, no abort",
                 "[fd][fd-closed]") {
  watch_reader();
  REQUIRE(run_until_ready(fd, false) == 1);
  s.close();
  Pipe reused(0, fd);
  reused.make_readable();
  old_runs = 0;
  // Keeping the reader means an epoll modify() for a number epoll no longer knows: asyncio's
  // fails with ENOENT and drops the key; libuv's would have aborted.
  CHECK_THROWS_AS(loop.remove_writer(fd), asyncuv::FileNotFoundError);
  CHECK_FALSE(loop.remove_reader(fd));
  run_iterations(loop, 2);
  CHECK(old_runs == 0);
}

TEST_CASE("38. close then remove before the next poll, and remove then close", "[fd][fd-closed]") {
  EventLoop loop;
  int runs = 0;
  {
    Socket s;
    loop.add_reader(s.fd, [&] { ++runs; });
    s.close();
    CHECK(loop.remove_reader(s.fd));
  }
  {
    Socket s;
    loop.add_writer(s.fd, [&] { ++runs; });
    CHECK(loop.remove_writer(s.fd));
    s.close();
  }
  run_iterations(loop, 2);
  CHECK(runs == 0);
  CHECK(watched(loop) == 0);
  loop.close();
}

TEST_CASE_METHOD(Watched,
                 "38. reader and writer, close, then remove_writer before the next poll: OSError "
                 "EBADF as asyncio's modify(), no abort",
                 "[fd][fd-closed]") {
  watch_reader();
  watch_writer();
  s.close();
  try {
    loop.remove_writer(fd);
    FAIL("remove_writer on a closed fd with a reader left did not throw");
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EBADF);
  }
  run_iterations(loop, 2);
  CHECK(old_runs == 0);
  CHECK_FALSE(loop.remove_reader(fd));  // the registration was dropped
}

TEST_CASE_METHOD(Watched,
                 "38. close, reuse, remove and add again: the lost watch is forgotten each time",
                 "[fd][fd-closed]") {
  // A loop of the same misuse, so that a stale poll handle or a stale pending check would
  // show up as an abort, a failed uv_poll_init (EEXIST) or a stray callback.
  for (int round = 0; round < 20; ++round) {
    Socket each;
    const int number = each.fd;
    loop.add_reader(number, [this] { ++old_runs; });
    if (round % 2 == 0) run_once(loop);  // registered with epoll, or still pending
    old_runs = 0;
    each.close();
    Pipe reused(0, number);
    reused.make_readable();
    run_once(loop);
    CHECK(old_runs == 0);
    if (round % 3 == 0) CHECK(loop.remove_reader(number));
    CHECK(run_until_ready(number, true) == 1);
    CHECK(old_runs == 0);
    CHECK(loop.remove_reader(number));
  }
  CHECK(watched(loop) == 0);
}
