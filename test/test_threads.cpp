// Threads: scenarios 5 and 6 of asyncio-semantics.md.
#include <catch2/catch.hpp>

#include <asyncuv/event_loop.hpp>
#include <asyncuv/events.hpp>
#include <asyncuv/exception_context.hpp>
#include <asyncuv/exceptions.hpp>
#include <asyncuv/futures.hpp>
#include <asyncuv/handle.hpp>
#include <asyncuv/tasks.hpp>

#include <uv.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using asyncuv::EventLoop;

namespace th {

/// Resolves `sleeping` the first time the loop is about to block in its I/O poll (libuv's
/// prepare phase, with no callback ready: the loop's only work is a far timer). A thread that
/// waits for it then acts on a loop that sleeps or is about to.
struct SleepProbe {
  uv_prepare_t* prepare = new uv_prepare_t{};
  std::promise<void> sleeping;
  bool fired = false;

  explicit SleepProbe(EventLoop& loop) {
    REQUIRE(uv_prepare_init(loop.uv_loop(), prepare) == 0);
    prepare->data = this;
    uv_prepare_start(prepare, [](uv_prepare_t* p) {
      auto* self = static_cast<SleepProbe*>(p->data);
      if (!self->fired) {
        self->fired = true;
        self->sleeping.set_value();
      }
    });
    uv_unref(reinterpret_cast<uv_handle_t*>(prepare));
  }
  /// Closed before the loop is (the loop's close() runs the close callback).
  ~SleepProbe() {
    uv_close(reinterpret_cast<uv_handle_t*>(prepare),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); });
  }
};

}  // namespace th

TEST_CASE("5: call_soon_threadsafe then call_soon from the loop's thread keep FIFO order",
          "[threads]") {
  EventLoop loop;
  std::vector<std::string> seen;
  loop.call_soon_threadsafe([&] { seen.push_back("x"); });
  loop.call_soon([&] { seen.push_back("y"); });
  loop.call_soon_threadsafe([&](const std::string& s) { seen.push_back(s); }, std::string("z"));
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"x", "y", "z"});
}

TEST_CASE("5: callbacks from another thread run on the loop's thread in FIFO order", "[threads]") {
  EventLoop loop;
  std::vector<int> seen;
  std::vector<std::thread::id> ran_on;
  const auto loop_thread = std::this_thread::get_id();
  loop.call_later(30, [] {});  // the loop sleeps until woken
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i)
      loop.call_soon_threadsafe([&, i] {
        seen.push_back(i);
        ran_on.push_back(std::this_thread::get_id());
      });
    loop.call_soon_threadsafe([&] { loop.stop(); });
  });
  double start = loop.time();
  loop.run_forever();
  producer.join();
  CHECK(loop.time() - start < 10.0);
  REQUIRE(seen.size() == 100);
  for (int i = 0; i < 100; ++i)
    REQUIRE(seen[static_cast<std::size_t>(i)] == i);
  for (auto id : ran_on)
    REQUIRE(id == loop_thread);
}

TEST_CASE("5: call_soon_threadsafe wakes a loop sleeping on a 10 s timer", "[threads]") {
  EventLoop loop;
  int far_runs = 0;
  asyncuv::TimerHandle far = loop.call_later(10, [&] { ++far_runs; });
  std::string handle_repr;
  std::thread waker;
  {
    th::SleepProbe probe(loop);
    std::future<void> sleeping = probe.sleeping.get_future();
    waker = std::thread([&] {
      sleeping.wait();
      asyncuv::Handle h = loop.call_soon_threadsafe([&] { loop.stop(); });
      handle_repr = h.repr();
    });
    double start = loop.time();
    loop.run_forever();
    double elapsed = loop.time() - start;
    waker.join();
    // Within milliseconds when idle; the bound is generous for loaded machines.
    CHECK(elapsed < 1.0);
    CHECK(probe.fired);
  }
  CHECK(far_runs == 0);
  CHECK_THAT(handle_repr, Catch::StartsWith("<Handle "));
  far.cancel();
  loop.close();
}

TEST_CASE("5: a plain stop() from another thread does not wake the loop", "[threads][stop]") {
  EventLoop loop;
  std::vector<std::string> seen;
  std::promise<void> stop_called;
  std::future<void> stop_done = stop_called.get_future();
  std::thread stopper;
  double start = loop.time();
  asyncuv::TimerHandle timer = loop.call_later(0.3, [&] {
    // The loop slept until this timer: the other thread's stop() did not wake it.
    stop_done.wait();
    seen.push_back("timer");
  });
  {
    th::SleepProbe probe(loop);
    std::future<void> sleeping = probe.sleeping.get_future();
    stopper = std::thread([&] {
      sleeping.wait();
      loop.stop();
      stop_called.set_value();
    });
    loop.run_forever();
    stopper.join();
  }
  double elapsed = loop.time() - start;
  // The stop() took effect at the end of the batch that the timer woke.
  CHECK(seen == std::vector<std::string>{"timer"});
  CHECK(elapsed >= timer.when() - start);
  CHECK(elapsed < 10.0);
  loop.close();
}

TEST_CASE("5: call_soon_threadsafe on a closed loop throws, from any thread", "[threads][close]") {
  EventLoop loop;
  loop.close();
  REQUIRE_THROWS_AS(loop.call_soon_threadsafe([] {}), asyncuv::RuntimeError);
  REQUIRE_THROWS_WITH(loop.call_soon_threadsafe([] {}), "Event loop is closed");
  std::string message;
  std::thread other([&] {
    try {
      loop.call_soon_threadsafe([](int) {}, 1);
    } catch (const asyncuv::RuntimeError& e) {
      message = e.what();
    }
  });
  other.join();
  CHECK(message == "Event loop is closed");
}

TEST_CASE("5: callbacks posted from another thread are dropped (not run) by close()",
          "[threads][close]") {
  auto token = std::make_shared<int>(0);
  int runs = 0;
  {
    EventLoop loop;
    std::thread other([&] { loop.call_soon_threadsafe([&runs, token] { ++runs; }); });
    other.join();
    CHECK(token.use_count() == 2);
    loop.close();
    CHECK(token.use_count() == 1);
  }
  CHECK(runs == 0);
}

TEST_CASE("6: debug mode: non-thread-safe calls from another thread throw", "[threads][debug]") {
  EventLoop loop;
  loop.set_debug(true);
  const std::string expected =
      "Non-thread-safe operation invoked on an event loop other than the current one";
  std::vector<std::string> errors;
  bool future_ok = false;
  asyncuv::TimerHandle far = loop.call_later(10, [] {});
  std::thread other;
  {
    th::SleepProbe probe(loop);
    std::future<void> sleeping = probe.sleeping.get_future();
    other = std::thread([&] {
      sleeping.wait();
      auto record = [&](auto&& call) {
        try {
          call();
          errors.push_back("no error");
        } catch (const asyncuv::RuntimeError& e) {
          errors.push_back(e.what());
        }
      };
      record([&] { loop.call_soon([] {}); });
      record([&] { loop.call_soon([](int) {}, 1); });
      record([&] { loop.call_later(0, [] {}); });
      record([&] {
        loop.call_later(
            0, [](int) {}, 1);
      });
      record([&] { loop.call_at(0.0, [] {}); });
      record([&] {
        loop.call_at(
            0.0, [](int) {}, 1);
      });
      auto f = loop.create_future<int>();
      future_ok = !f.done();
      loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    double start = loop.time();
    loop.run_forever();
    other.join();
    CHECK(loop.time() - start < 5.0);
  }
  CHECK(errors == std::vector<std::string>(6, expected));
  CHECK(future_ok);
  far.cancel();
  loop.close();
}

TEST_CASE("6: without debug mode, or when the loop is not running, no thread check",
          "[threads][debug]") {
  EventLoop loop;
  SECTION("debug on, loop not running: another thread may schedule") {
    loop.set_debug(true);
  }
  SECTION("debug off") {
    loop.set_debug(false);
  }
  int runs = 0;
  std::thread other([&] { loop.call_soon([&] { ++runs; }); });
  other.join();
  loop.stop();
  loop.run_forever();
  CHECK(runs == 1);
}

TEST_CASE("5: a callback posted from another thread before a call_soon runs before it",
          "[threads]") {
  // asyncio appends both to the one ready deque, so causal order is FIFO order.
  EventLoop loop;
  std::vector<std::string> seen;

  SECTION("loop not running") {
    std::thread other([&] { loop.call_soon_threadsafe([&] { seen.push_back("x"); }); });
    other.join();
    loop.call_soon([&] { seen.push_back("y"); });
    loop.stop();
    loop.run_forever();
    CHECK(seen == std::vector<std::string>{"x", "y"});
  }

  SECTION("from inside a callback") {
    loop.call_soon([&] {
      std::thread other([&] { loop.call_soon_threadsafe([&] { seen.push_back("x"); }); });
      other.join();
      loop.call_soon([&] { seen.push_back("y"); });
    });
    for (int i = 0; i < 3; ++i) {
      loop.stop();
      loop.run_forever();
    }
    CHECK(seen == std::vector<std::string>{"x", "y"});
  }
}
