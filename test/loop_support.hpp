// Helpers shared by the test files that drive a loop with run_forever().
#pragma once

#include <catch2/catch.hpp>

#include <asyncuv/event_loop.hpp>
#include <asyncuv/tasks.hpp>

#include <exception>
#include <type_traits>
#include <utility>

namespace test_support {

/// Runs `loop` until stop(), failing the test if a watchdog timer has to stop it after `limit`
/// seconds (so a bug cannot hang the suite). Returns how long the run took in loop time.
inline double run_with_watchdog(asyncuv::EventLoop& loop, double limit = 20.0) {
  bool fired = false;
  asyncuv::TimerHandle watchdog = loop.call_later(limit, [&] {
    fired = true;
    loop.stop();
  });
  double start = loop.time();
  loop.run_forever();
  double took = loop.time() - start;
  watchdog.cancel();
  CHECK_FALSE(fired);
  return took;
}

/// Runs `coro` as a task on `loop` (or, if it already is a scheduled task, waits for it) and
/// returns its result or rethrows its exception. A watchdog cancels it, failing the test,
/// after `limit` seconds.
template <class T>
T run_task(asyncuv::EventLoop& loop, asyncuv::Task<T> coro, double limit = 30.0) {
  asyncuv::Task<T> task = coro.state()->started() ? coro : loop.create_task(std::move(coro));
  bool fired = false;
  asyncuv::TimerHandle watchdog = loop.call_later(limit, [&] {
    fired = true;
    task.cancel();
  });
  struct Disarm {
    asyncuv::TimerHandle& timer;
    bool& fired;
    ~Disarm() {
      timer.cancel();
      CHECK_FALSE(fired);
    }
  } disarm{watchdog, fired};
  return loop.run_until_complete(task);
}

/// Runs `coro` (with run_task's watchdog) and returns the exception it ended with, or null
/// if it returned.
template <class T>
std::exception_ptr failure_of(asyncuv::EventLoop& loop, asyncuv::Task<T> coro,
                              double limit = 30.0) {
  auto wrapper = [](asyncuv::Task<T> inner) -> asyncuv::Task<std::exception_ptr> {
    try {
      co_await std::move(inner);
    } catch (...) {
      co_return std::current_exception();
    }
    co_return nullptr;
  };
  return run_task(loop, wrapper(std::move(coro)), limit);
}

}  // namespace test_support
