// Timers: scenarios 16-24 of asyncio-semantics.md.
#include <catch2/catch.hpp>

#include "loop_support.hpp"

#include <asyncuv/event_loop.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using asyncuv::EventLoop;
using asyncuv::Handle;
using asyncuv::TimerHandle;

namespace timers_test {

using Names = std::vector<std::string>;

using test_support::run_with_watchdog;

}  // namespace timers_test

using namespace timers_test;

TEST_CASE("16: call_later callbacks fire in deadline order", "[timers]") {
  EventLoop loop;
  Names seen;
  auto rec = [&](const std::string& s) {
    seen.push_back(s);
    if (seen.size() == 3) loop.stop();
  };
  loop.call_later(0.03, rec, std::string("c"));
  loop.call_later(0.01, rec, std::string("a"));
  loop.call_later(0.02, rec, std::string("b"));
  run_with_watchdog(loop);
  CHECK(seen == Names{"a", "b", "c"});
}

TEST_CASE("17: negative delays are TimerHandles in deadline order", "[timers]") {
  EventLoop loop;
  Names seen;
  auto rec = [&](const std::string& s) { seen.push_back(s); };

  double t0 = loop.time();
  TimerHandle a = loop.call_later(-1, rec, std::string("a"));
  TimerHandle b = loop.call_later(-2, rec, std::string("b"));
  TimerHandle z = loop.call_later(0, rec, std::string("zero"));
  double t1 = loop.time();

  // Deadlines are now+delay even when that is in the past (uvloop turns these into call_soon).
  CHECK(a.when() >= t0 - 1);
  CHECK(a.when() <= t1 - 1);
  CHECK(b.when() >= t0 - 2);
  CHECK(b.when() <= t1 - 2);
  CHECK(z.when() >= t0);
  CHECK(z.when() <= t1);
  CHECK(a.repr().rfind("<TimerHandle when=", 0) == 0);

  loop.call_later(0.0, [&] { loop.stop(); });
  run_with_watchdog(loop);
  // Deadline order, not FIFO: b (now-2) before a (now-1) before zero (now).
  CHECK(seen == Names{"b", "a", "zero"});
}

TEST_CASE("18: expired timers run after the callbacks already queued", "[timers]") {
  EventLoop loop;
  Names seen;
  auto rec = [&](const std::string& s) { seen.push_back(s); };
  loop.call_soon([&] {
    loop.call_later(0, rec, std::string("later0"));
    loop.call_soon(rec, std::string("soon"));
    loop.call_at(loop.time() - 1, rec, std::string("at-past"));
    loop.call_soon([&] { loop.stop(); });
  });
  run_with_watchdog(loop);
  CHECK(seen == Names{"soon", "at-past", "later0"});
}

TEST_CASE("19: timers with equal deadlines all run (no order asserted)", "[timers]") {
  EventLoop loop;
  std::multiset<std::string> seen;
  auto rec = [&](const std::string& s) { seen.insert(s); };
  double when = loop.time() + 0.01;
  TimerHandle h1 = loop.call_at(when, rec, std::string("x"));
  TimerHandle h2 = loop.call_at(when, rec, std::string("y"));
  TimerHandle h3 = loop.call_at(when, rec, std::string("z"));
  CHECK(h1.when() == when);
  CHECK(h2.when() == when);
  CHECK(h3.when() == when);
  loop.call_at(when + 0.01, [&] { loop.stop(); });
  run_with_watchdog(loop);
  CHECK(seen == std::multiset<std::string>{"x", "y", "z"});
}

TEST_CASE("20: when() is time()+delay at scheduling and never changes", "[timers]") {
  EventLoop loop;
  double t0 = loop.time();
  TimerHandle fired = loop.call_later(0.02, [] {});
  TimerHandle cancelled = loop.call_later(0.5, [] {});
  double t1 = loop.time();
  CHECK(fired.when() >= t0 + 0.02);
  CHECK(fired.when() <= t1 + 0.02);
  CHECK(cancelled.when() >= t0 + 0.5);
  CHECK(cancelled.when() <= t1 + 0.5);

  double at = loop.time() + 0.25;
  TimerHandle absolute = loop.call_at(at, [] {});
  CHECK(absolute.when() == at);

  double fired_when = fired.when();
  double cancelled_when = cancelled.when();
  cancelled.cancel();
  CHECK(cancelled.cancelled());
  CHECK(cancelled.when() == cancelled_when);
  CHECK(cancelled.repr().rfind("<TimerHandle cancelled when=", 0) == 0);

  loop.call_later(0.03, [&] { loop.stop(); });
  run_with_watchdog(loop);
  CHECK(fired.when() == fired_when);
  CHECK(absolute.when() == at);
  absolute.cancel();
  CHECK(absolute.when() == at);
}

TEST_CASE("21: cancelled timers never run and the heap is compacted", "[timers]") {
  SECTION("1000 timers, 600 cancelled: the rest fire in deadline order") {
    EventLoop loop;
    constexpr int kCount = 1000;
    std::vector<int> fired;
    std::vector<TimerHandle> handles;
    handles.reserve(kCount);
    for (int i = 0; i < kCount; ++i) {
      // Strictly increasing deadlines, all within ~30 ms.
      handles.push_back(loop.call_later(0.001 + i * 3e-5, [&fired, i] { fired.push_back(i); }));
    }
    std::vector<int> expected;
    for (int i = 0; i < kCount; ++i) {
      if (i % 5 < 3) {
        handles[i].cancel();
      } else {
        expected.push_back(i);
      }
    }
    REQUIRE(expected.size() == 400);
    for (int i = 0; i < kCount; ++i)
      CHECK(handles[i].cancelled() == (i % 5 < 3));
    loop.call_at(handles.back().when() + 0.001, [&] { loop.stop(); });
    run_with_watchdog(loop);
    CHECK(fired == expected);
  }

  SECTION("a timer cancelled by an earlier timer of the same batch does not run") {
    EventLoop loop;
    Names seen;
    double when = loop.time() + 0.005;
    TimerHandle second;
    loop.call_at(when, [&] {
      seen.push_back("first");
      second.cancel();
    });
    second = loop.call_at(when, [&] { seen.push_back("second"); });
    loop.call_at(when, [&] { seen.push_back("third"); });
    loop.call_at(when + 0.005, [&] { loop.stop(); });
    run_with_watchdog(loop);
    // Equal deadlines: which ran first is unspecified, but "second" was cancelled either by
    // "first" before it ran or ran before "first"; both cannot happen.
    std::multiset<std::string> got(seen.begin(), seen.end());
    bool second_skipped = got == std::multiset<std::string>{"first", "third"};
    bool second_first = got == std::multiset<std::string>{"first", "second", "third"} &&
                        std::find(seen.begin(), seen.end(), "second") <
                            std::find(seen.begin(), seen.end(), "first");
    CHECK((second_skipped || second_first));
  }

  SECTION("a heap of only cancelled timers lets run_forever stop promptly") {
    EventLoop loop;
    int ran = 0;
    std::vector<TimerHandle> handles;
    for (int i = 0; i < 500; ++i) {
      // Early deadlines (1-50 ms) and far ones (1000+ s), cancelled in creation order so most
      // are not the heap's last leaf.
      double delay = i % 2 ? 0.001 + i * 1e-4 : 1000.0 + i;
      handles.push_back(loop.call_later(delay, [&ran] { ++ran; }));
    }
    for (auto& h : handles)
      h.cancel();
    std::uint64_t before = loop.iteration_count();
    loop.call_later(0.06, [&] { loop.stop(); });
    double took = run_with_watchdog(loop);
    CHECK(ran == 0);
    CHECK(took >= 0.06);
    CHECK(took < 3.0);
    // Cancelled deadlines do not cause a wake-up each: a handful of iterations.
    CHECK(loop.iteration_count() - before <= 20);
  }

  SECTION("cancelling the only timer leaves nothing that fires") {
    EventLoop loop;
    int ran = 0;
    TimerHandle h = loop.call_later(0.001, [&] { ++ran; });
    h.cancel();
    loop.call_later(0.02, [&] { loop.stop(); });
    run_with_watchdog(loop);
    CHECK(ran == 0);
  }
}

TEST_CASE("22: timers never fire before when() by loop.time()", "[timers]") {
  EventLoop loop;
  constexpr int kCount = 300;
  std::mt19937 rng(22);
  std::uniform_real_distribution<double> delay(0.0, 0.003);
  std::vector<double> when(kCount);
  std::vector<double> at(kCount, -1);
  int fired = 0;
  for (int i = 0; i < kCount; ++i) {
    TimerHandle h = loop.call_later(delay(rng), [&, i] {
      at[i] = loop.time();
      if (++fired == kCount) loop.stop();
    });
    when[i] = h.when();
  }
  run_with_watchdog(loop);
  REQUIRE(fired == kCount);
  int early = 0;
  for (int i = 0; i < kCount; ++i)
    early += at[i] < when[i];
  CHECK(early == 0);

  // loop.time() has sub-millisecond resolution (uvloop: whole milliseconds of uv_now()).
  double smallest_step = 1;
  for (int i = 0; i < 100; ++i) {
    double a = loop.time();
    double b = loop.time();
    while (b == a)
      b = loop.time();
    smallest_step = std::min(smallest_step, b - a);
  }
  CHECK(smallest_step < 1e-4);
}

TEST_CASE("23: tiny delays do not busy-spin the loop", "[timers]") {
  EventLoop loop;
  const std::vector<double> delays{1e-2, 1e-4, 1e-6, 1e-8, 1e-10};
  std::size_t step = 0;
  std::function<void()> next = [&] {
    if (step == delays.size()) {
      loop.stop();
      return;
    }
    loop.call_later(delays[step++], next);
  };
  loop.call_soon(next);
  std::uint64_t before = loop.iteration_count();
  double took = run_with_watchdog(loop);
  std::uint64_t iterations = loop.iteration_count() - before;
  CHECK(step == delays.size());
  CHECK(took >= 1e-2);
  CHECK(iterations <= 20);
}

TEST_CASE("24: call_later(infinity) has when()==inf and can be cancelled", "[timers]") {
  EventLoop loop;
  const double inf = std::numeric_limits<double>::infinity();
  int ran = 0;
  TimerHandle forever = loop.call_later(inf, [&] { ++ran; });
  TimerHandle at_inf = loop.call_at(inf, [&] { ++ran; });
  CHECK(std::isinf(forever.when()));
  CHECK(forever.when() > 0);
  CHECK(at_inf.when() == inf);

  // The loop sleeps on the capped timeout, not forever: a finite timer still stops it.
  loop.call_later(0.02, [&] { loop.stop(); });
  double took = run_with_watchdog(loop);
  CHECK(took < 5.0);
  CHECK(ran == 0);

  forever.cancel();
  CHECK(forever.cancelled());
  CHECK(forever.when() == inf);
  at_inf.cancel();
  loop.call_later(0.01, [&] { loop.stop(); });
  run_with_watchdog(loop);
  CHECK(ran == 0);
}

TEST_CASE("24: a running loop wakes for a finite timer while an infinite one is pending",
          "[timers]") {
  EventLoop loop;
  Names seen;
  TimerHandle forever = loop.call_later(std::numeric_limits<double>::infinity(), [] {});
  loop.call_soon([&] {
    // Scheduled from inside a batch, after the infinite timer armed the wake-up.
    loop.call_later(0.01, [&] {
      seen.push_back("finite");
      loop.stop();
    });
  });
  double took = run_with_watchdog(loop);
  CHECK(seen == Names{"finite"});
  CHECK(took < 5.0);
  forever.cancel();
}

TEST_CASE("18: a deadline of -1 (or any past value) wakes an idle loop", "[timers]") {
  // Nothing else is scheduled, so only the timer itself can wake the loop. A thread stops the
  // loop after 10 s if the timer never fires, so a bug fails the test instead of hanging it.
  for (double when : {-1.0, -2.5, 0.0}) {
    EventLoop loop;
    Names seen;
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    bool watchdog_fired = false;
    std::thread watchdog([&] {
      std::unique_lock lock(m);
      if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; })) {
        watchdog_fired = true;
        loop.call_soon_threadsafe([&] { loop.stop(); });
      }
    });
    loop.call_at(when, [&] {
      seen.push_back("past");
      loop.stop();
    });
    loop.run_forever();
    {
      std::lock_guard lock(m);
      done = true;
    }
    cv.notify_one();
    watchdog.join();
    INFO("when=" << when);
    CHECK_FALSE(watchdog_fired);
    CHECK(seen == Names{"past"});
  }
}

TEST_CASE("20: std::chrono durations and steady_clock time points are accepted", "[timers]") {
  using namespace std::chrono;
  EventLoop loop;
  Names seen;
  auto rec = [&](const std::string& s) { seen.push_back(s); };

  double t0 = loop.time();
  TimerHandle ms = loop.call_later(milliseconds(20), rec, std::string("ms"));
  TimerHandle us = loop.call_later(microseconds(10000), rec, std::string("us"));
  double t1 = loop.time();
  CHECK(ms.when() >= t0 + 0.02);
  CHECK(ms.when() <= t1 + 0.02);
  CHECK(us.when() >= t0 + 0.01);
  CHECK(us.when() <= t1 + 0.01);

  // A steady_clock time point maps onto loop time (allow a few microseconds of conversion).
  double t2 = loop.time();
  TimerHandle tp = loop.call_at(steady_clock::now() + milliseconds(30), rec, std::string("tp"));
  double t3 = loop.time();
  CHECK(tp.when() >= t2 + 0.03 - 1e-4);
  CHECK(tp.when() <= t3 + 0.03 + 1e-4);

  TimerHandle fractional = loop.call_later(duration<double>(0.005), rec, std::string("frac"));
  CHECK(fractional.when() >= t1 + 0.005);

  loop.call_at(steady_clock::now() + milliseconds(40), [&] { loop.stop(); });
  run_with_watchdog(loop);
  CHECK(seen == Names{"frac", "us", "ms", "tp"});
}

TEST_CASE("20: a NaN delay or deadline is a ValueError", "[timers]") {
  EventLoop loop;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  int ran = 0;
  CHECK_THROWS_AS(loop.call_later(nan, [&] { ++ran; }), asyncuv::ValueError);
  CHECK_THROWS_AS(loop.call_at(nan, [&] { ++ran; }), asyncuv::ValueError);
  CHECK_THROWS_AS(loop.call_later(
                      nan, [&](int) { ++ran; }, 1),
                  asyncuv::ValueError);
  loop.call_later(0.005, [&] { loop.stop(); });
  run_with_watchdog(loop);
  CHECK(ran == 0);
}

TEST_CASE("11: call_later and call_at on a closed loop raise RuntimeError", "[timers]") {
  EventLoop loop;
  loop.close();
  CHECK_THROWS_MATCHES(loop.call_later(0.01, [] {}), asyncuv::RuntimeError,
                       Catch::Matchers::Message("Event loop is closed"));
  CHECK_THROWS_MATCHES(loop.call_at(loop.time(), [] {}), asyncuv::RuntimeError,
                       Catch::Matchers::Message("Event loop is closed"));
  CHECK_THROWS_MATCHES(loop.call_later(
                           0.01, [](int) {}, 1),
                       asyncuv::RuntimeError, Catch::Matchers::Message("Event loop is closed"));
  CHECK_THROWS_MATCHES(loop.call_later(std::chrono::milliseconds(1), [] {}), asyncuv::RuntimeError,
                       Catch::Matchers::Message("Event loop is closed"));
}

TEST_CASE("10: closing a loop with pending and cancelled timers runs none of them", "[timers]") {
  int ran = 0;
  TimerHandle survivor;
  {
    EventLoop loop;
    for (int i = 0; i < 200; ++i) {
      TimerHandle h = loop.call_later(0.001 * i, [&] { ++ran; });
      if (i % 3 == 0) h.cancel();
    }
    survivor = loop.call_later(1.0, [&] { ++ran; });
    loop.close();
  }
  CHECK(ran == 0);
  // A handle outliving its loop can still be cancelled.
  survivor.cancel();
  CHECK(survivor.cancelled());
}
