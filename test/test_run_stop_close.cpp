// Run, stop, close: scenarios 7-11 and 15 of asyncio-semantics.md.
#include <catch2/catch.hpp>

#include <asyncuv/event_loop.hpp>
#include <asyncuv/events.hpp>
#include <asyncuv/exception_context.hpp>
#include <asyncuv/exceptions.hpp>
#include <asyncuv/futures.hpp>
#include <asyncuv/handle.hpp>
#include <asyncuv/tasks.hpp>

#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

using asyncuv::EventLoop;
using asyncuv::Handle;
using asyncuv::TimerHandle;

namespace rsc {

/// A user-defined fatal exception type (the C++ analogue of SystemExit/KeyboardInterrupt).
struct Abort : std::runtime_error, asyncuv::FatalError {
  Abort() : std::runtime_error("abort!") {}
};

/// A connected AF_UNIX socket pair, closed on destruction.
struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0); }
  ~SocketPair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

/// Stand-in for loop.add_reader(fd, cb), which asyncuv does not have yet: a raw uv_poll_t on
/// loop.uv_loop() whose callback schedules `on_readable` with call_soon, as asyncio's selector
/// loop adds the reader's handle to the ready queue when the fd polls readable.
struct RawReader {
  uv_poll_t* poll = new uv_poll_t{};
  EventLoop& loop;
  std::function<void()> on_readable;
  int polled = 0;

  RawReader(EventLoop& l, int fd, std::function<void()> cb) : loop(l), on_readable(std::move(cb)) {
    REQUIRE(uv_poll_init(loop.uv_loop(), poll, fd) == 0);
    poll->data = this;
    REQUIRE(uv_poll_start(poll, UV_READABLE, [](uv_poll_t* p, int status, int events) {
              auto* self = static_cast<RawReader*>(p->data);
              REQUIRE(status == 0);
              REQUIRE((events & UV_READABLE) != 0);
              ++self->polled;
              self->loop.call_soon(self->on_readable);
            }) == 0);
  }
  /// Must run before the loop closes: the loop's close() runs libuv's close callbacks.
  ~RawReader() {
    uv_close(reinterpret_cast<uv_handle_t*>(poll),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  }
};

void run_once(EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

}  // namespace rsc

TEST_CASE("7: stop() before run_forever runs one iteration: call_soon, then the ready reader",
          "[stop][pre-stopped]") {
  EventLoop loop;
  rsc::SocketPair sp;
  REQUIRE(::write(sp.fds[1], "x", 1) == 1);
  std::vector<std::string> seen;
  {
    rsc::RawReader reader(loop, sp.fds[0], [&] { seen.push_back("reader"); });
    // A far timer must not make the single iteration block: I/O is polled with timeout 0.
    TimerHandle far = loop.call_later(10, [&] { seen.push_back("far"); });
    loop.stop();
    loop.call_soon([&] { seen.push_back("x"); });
    std::uint64_t before = loop.iteration_count();
    double start = loop.time();
    loop.run_forever();
    double elapsed = loop.time() - start;
    CHECK(seen == std::vector<std::string>{"x", "reader"});
    CHECK(loop.iteration_count() == before + 1);
    CHECK(reader.polled == 1);
    CHECK(elapsed < 1.0);
    CHECK_FALSE(loop.is_running());
    far.cancel();
  }
  loop.close();
}

TEST_CASE("7: stop() before run_forever with nothing scheduled returns after one iteration",
          "[stop][pre-stopped]") {
  EventLoop loop;
  TimerHandle far = loop.call_later(10, [] {});
  loop.stop();
  std::uint64_t before = loop.iteration_count();
  double start = loop.time();
  loop.run_forever();
  CHECK(loop.time() - start < 1.0);
  CHECK(loop.iteration_count() == before + 1);
  // The stop request was consumed: the next run needs its own stop.
  std::vector<int> seen;
  loop.call_soon([&] { loop.call_soon([&] { seen.push_back(2), loop.stop(); }); });
  loop.run_forever();
  CHECK(seen == std::vector<int>{2});
  CHECK(loop.iteration_count() >= before + 3);
}

TEST_CASE("8: stop() during run_forever finishes the batch", "[stop]") {
  EventLoop loop;
  std::vector<std::string> seen;
  loop.call_soon([&] {
    seen.push_back("c1");
    loop.call_soon([&] {
      seen.push_back("c1_child");
      loop.call_soon([&] {
        seen.push_back("c3");
        loop.stop();
      });
    });
    loop.stop();
  });
  loop.call_soon([&] { seen.push_back("c2"); });
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"c1", "c2"});
  CHECK_FALSE(loop.is_running());

  // The next run starts with c1_child and keeps going past that batch.
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"c1", "c2", "c1_child", "c3"});
}

TEST_CASE("8: stop(); stop(); run_forever() stops only that one run", "[stop]") {
  EventLoop loop;
  loop.stop();
  loop.stop();
  std::vector<std::string> seen;
  loop.call_soon([&] {
    seen.push_back("a");
    loop.call_soon([&] { seen.push_back("b"); });
  });
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"a"});

  // Not pre-stopped any more: b runs, then c in a later iteration, and only c's stop ends it.
  loop.call_soon([&] { loop.call_soon([&] { seen.push_back("c"), loop.stop(); }); });
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("8: stop() sets a flag, it does not enqueue a stop callback", "[stop]") {
  EventLoop loop;
  std::vector<std::string> seen;

  SECTION("inside a run: what is scheduled after stop() waits for the next run") {
    // uvloop queues a stop handle behind `later`, so `later` would run in this run (#517).
    loop.call_soon([&] {
      loop.stop();
      loop.call_soon([&] { seen.push_back("later"); });
    });
    loop.run_forever();
    CHECK(seen.empty());
    rsc::run_once(loop);
    CHECK(seen == std::vector<std::string>{"later"});
  }

  SECTION("before a run: callbacks scheduled before and after stop() share the one batch") {
    loop.call_soon([&] { seen.push_back("a"); });
    loop.stop();
    loop.call_soon([&] { seen.push_back("b"); });
    std::uint64_t before = loop.iteration_count();
    loop.run_forever();
    CHECK(seen == std::vector<std::string>{"a", "b"});
    CHECK(loop.iteration_count() == before + 1);
  }
}

TEST_CASE("8: stop() from a timer callback", "[stop]") {
  EventLoop loop;
  std::vector<std::string> seen;
  loop.call_later(0.01, [&] {
    seen.push_back("timer");
    loop.stop();
  });
  loop.call_later(5, [&] { seen.push_back("too late"); });
  double start = loop.time();
  loop.run_forever();
  double elapsed = loop.time() - start;
  CHECK(seen == std::vector<std::string>{"timer"});
  CHECK(elapsed >= 0.01);
  CHECK(elapsed < 4.0);
}

TEST_CASE("9: run_forever inside a callback: This event loop is already running", "[reentrant]") {
  EventLoop loop;
  std::vector<std::string> errors;
  loop.call_soon([&] {
    CHECK(loop.is_running());
    try {
      loop.run_forever();
    } catch (const asyncuv::RuntimeError& e) {
      errors.push_back(e.what());
    }
    try {
      loop.run_until_complete(loop.create_future<int>());
    } catch (const asyncuv::RuntimeError& e) {
      errors.push_back(e.what());
    }
    try {
      loop.close();
    } catch (const asyncuv::RuntimeError& e) {
      errors.push_back(e.what());
    }
    loop.stop();
  });
  loop.run_forever();
  CHECK(errors == std::vector<std::string>{"This event loop is already running",
                                           "This event loop is already running",
                                           "Cannot close a running event loop"});
  CHECK_FALSE(loop.is_closed());
  // The loop is intact and runs again.
  int runs = 0;
  loop.call_soon([&] { ++runs; });
  rsc::run_once(loop);
  CHECK(runs == 1);
}

TEST_CASE("9: running a second loop inside a running one in the same thread", "[reentrant]") {
  EventLoop outer;
  EventLoop inner;
  std::vector<std::string> errors;
  int inner_runs = 0;
  inner.call_soon([&] { ++inner_runs; });
  outer.call_soon([&] {
    try {
      inner.stop();
      inner.run_forever();
    } catch (const asyncuv::RuntimeError& e) {
      errors.push_back(e.what());
    }
    try {
      inner.run_until_complete(inner.create_future<void>());
    } catch (const asyncuv::RuntimeError& e) {
      errors.push_back(e.what());
    }
    outer.stop();
  });
  outer.run_forever();
  CHECK(errors ==
        std::vector<std::string>{"Cannot run the event loop while another loop is running",
                                 "Cannot run the event loop while another loop is running"});
  CHECK(inner_runs == 0);
  CHECK_FALSE(inner.is_running());
  // Outside the outer run the inner loop works (its stop() request is still pending).
  inner.run_forever();
  CHECK(inner_runs == 1);
}

TEST_CASE("10: close() is idempotent and discards pending callbacks and timers", "[close]") {
  auto token = std::make_shared<int>(0);
  int runs = 0;
  Handle f;
  TimerHandle g;
  {
    EventLoop loop;
    f = loop.call_soon([&runs, token] { ++runs; });
    g = loop.call_later(0, [&runs, token] { ++runs; });
    CHECK(token.use_count() == 3);
    CHECK_FALSE(loop.is_closed());
    loop.close();
    CHECK(loop.is_closed());
    loop.close();
    CHECK(loop.is_closed());
    CHECK_FALSE(loop.is_running());
    // The callables were destroyed with the queue; the handles were not cancelled (as asyncio's
    // close() clears _ready and _scheduled without cancelling).
    CHECK(token.use_count() == 1);
    CHECK_FALSE(f.cancelled());
    CHECK_FALSE(g.cancelled());
  }
  CHECK(runs == 0);
  f.cancel();
  g.cancel();
}

TEST_CASE("10: closing a loop that has run, then destroying it", "[close]") {
  EventLoop loop;
  int runs = 0;
  loop.call_soon([&] { ++runs; });
  rsc::run_once(loop);
  loop.call_later(60, [&] { ++runs; });
  loop.close();
  CHECK(runs == 1);
}

TEST_CASE("11: a closed loop refuses new work with Event loop is closed", "[close]") {
  EventLoop loop;
  loop.close();
  int runs = 0;
  auto cb = [&] { ++runs; };
  REQUIRE_THROWS_AS(loop.call_soon(cb), asyncuv::RuntimeError);
  REQUIRE_THROWS_WITH(loop.call_soon(cb), "Event loop is closed");
  REQUIRE_THROWS_WITH(loop.call_soon([&](int) { ++runs; }, 1), "Event loop is closed");
  REQUIRE_THROWS_WITH(loop.call_later(0, cb), "Event loop is closed");
  REQUIRE_THROWS_WITH(loop.call_later(
                          1, [&](int) { ++runs; }, 1),
                      "Event loop is closed");
  REQUIRE_THROWS_WITH(loop.call_at(loop.time(), cb), "Event loop is closed");
  REQUIRE_THROWS_WITH(loop.call_at(
                          loop.time(), [&](int) { ++runs; }, 1),
                      "Event loop is closed");
  REQUIRE_THROWS_WITH(loop.call_soon_threadsafe(cb), "Event loop is closed");
  REQUIRE_THROWS_WITH(loop.call_soon_threadsafe([&](int) { ++runs; }, 1), "Event loop is closed");
  REQUIRE_THROWS_AS(loop.run_forever(), asyncuv::RuntimeError);
  REQUIRE_THROWS_WITH(loop.run_forever(), "Event loop is closed");

  // create_future(), time() and stop() still work.
  auto future = loop.create_future<int>();
  CHECK_FALSE(future.done());
  REQUIRE_THROWS_WITH(loop.run_until_complete(future), "Event loop is closed");
  double t = loop.time();
  CHECK(loop.time() >= t);
  loop.stop();
  CHECK(loop.is_closed());
  CHECK_FALSE(loop.is_running());
  CHECK(runs == 0);
}

TEST_CASE("15: a fatal exception propagates out of run_forever, the rest stays queued", "[fatal]") {
  EventLoop loop;
  std::vector<std::string> seen;
  std::vector<std::string> handled;
  loop.set_exception_handler(
      [&](EventLoop&, const asyncuv::ExceptionContext& c) { handled.push_back(c.message()); });
  loop.call_soon([&] { seen.push_back("a"); });
  loop.call_soon([&] {
    seen.push_back("raise");
    throw asyncuv::KeyboardInterrupt();
  });
  loop.call_soon([&] { seen.push_back("b"); });
  loop.call_soon([&] {
    seen.push_back("c");
    loop.stop();
  });
  REQUIRE_THROWS_AS(loop.run_forever(), asyncuv::KeyboardInterrupt);
  CHECK(seen == std::vector<std::string>{"a", "raise"});
  CHECK(handled.empty());
  CHECK_FALSE(loop.is_closed());
  CHECK_FALSE(loop.is_running());
  CHECK(asyncuv::running_loop() == nullptr);

  // The rest of the batch runs first in the next run.
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"a", "raise", "b", "c"});
  CHECK(handled.empty());
}

TEST_CASE("15: a user type deriving from FatalError, SystemExit and bad_alloc are fatal",
          "[fatal]") {
  EventLoop loop;
  int handled = 0;
  loop.set_exception_handler([&](EventLoop&, const asyncuv::ExceptionContext&) { ++handled; });

  loop.call_soon([] { throw rsc::Abort(); });
  REQUIRE_THROWS_AS(loop.run_forever(), rsc::Abort);
  loop.call_soon([] { throw rsc::Abort(); });
  REQUIRE_THROWS_WITH(loop.run_forever(), "abort!");

  loop.call_later(0, [] { throw asyncuv::SystemExit(3); });
  try {
    loop.run_forever();
    FAIL("SystemExit did not propagate");
  } catch (const asyncuv::SystemExit& e) {
    CHECK(e.code() == 3);
  }

  loop.call_soon([] { throw std::bad_alloc(); });
  REQUIRE_THROWS_AS(loop.run_forever(), std::bad_alloc);

  // An ordinary exception is not fatal: the handler gets it and the loop goes on.
  loop.call_soon([] { throw std::runtime_error("ordinary"); });
  rsc::run_once(loop);
  CHECK(handled == 1);
}

TEST_CASE("15: a fatal exception after stop() does not leave the next run pre-stopped",
          "[fatal][stop]") {
  EventLoop loop;
  loop.call_soon([&] {
    loop.stop();
    throw asyncuv::KeyboardInterrupt();
  });
  REQUIRE_THROWS_AS(loop.run_forever(), asyncuv::KeyboardInterrupt);
  std::vector<int> seen;
  loop.call_soon([&] {
    seen.push_back(1);
    loop.call_soon([&] {
      seen.push_back(2);
      loop.stop();
    });
  });
  loop.run_forever();
  CHECK(seen == std::vector<int>{1, 2});
}

TEST_CASE("15: a fatal exception thrown by the exception handler propagates", "[fatal]") {
  EventLoop loop;
  std::vector<std::string> seen;
  loop.set_exception_handler(
      [&](EventLoop&, const asyncuv::ExceptionContext&) { throw asyncuv::KeyboardInterrupt(); });
  loop.call_soon([] { throw std::runtime_error("ordinary"); });
  loop.call_soon([&] { seen.push_back("rest"), loop.stop(); });
  REQUIRE_THROWS_AS(loop.run_forever(), asyncuv::KeyboardInterrupt);
  CHECK(seen.empty());
  CHECK_FALSE(loop.is_running());
  loop.set_exception_handler(nullptr);
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"rest"});
}
