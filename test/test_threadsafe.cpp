// run_coroutine_threadsafe and wrap_future: handing work between threads and a loop.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/threads.hpp>

#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

using asyncuv::EventLoop;
using asyncuv::Task;

namespace {
Task<int> add_later(int a, int b) {
  co_await asyncuv::sleep(0.001);
  co_return a + b;
}

Task<void> fail_later() {
  co_await asyncuv::sleep(0);
  throw asyncuv::ValueError("from the loop");
}

/// Runs `loop` in a thread until stop() is requested through call_soon_threadsafe.
struct LoopThread {
  EventLoop loop;
  std::promise<void> started;
  std::thread thread;
  LoopThread() {
    auto ready = started.get_future();
    thread = std::thread([this] {
      loop.call_soon([this] { started.set_value(); });
      loop.run_forever();
    });
    ready.wait();
  }
  ~LoopThread() {
    loop.call_soon_threadsafe([this] { loop.stop(); });
    thread.join();
    loop.close();
  }
};
}  // namespace

TEST_CASE("run_coroutine_threadsafe returns the result to another thread", "[threads][task]") {
  LoopThread lt;
  std::future<int> result = asyncuv::run_coroutine_threadsafe(add_later(20, 22), lt.loop);
  REQUIRE(result.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(result.get() == 42);
}

TEST_CASE("run_coroutine_threadsafe carries the exception", "[threads][task]") {
  LoopThread lt;
  std::future<void> result = asyncuv::run_coroutine_threadsafe(fail_later(), lt.loop);
  REQUIRE(result.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  REQUIRE_THROWS_AS(result.get(), asyncuv::ValueError);
}

TEST_CASE(
    "run_coroutine_threadsafe on a closed loop throws; a loop closed before the task "
    "started breaks the promise",
    "[threads][task]") {
  EventLoop closed;
  closed.close();
  REQUIRE_THROWS_WITH(asyncuv::run_coroutine_threadsafe(add_later(1, 2), closed),
                      "Event loop is closed");

  EventLoop never_run;
  std::future<int> result;
  std::thread other(
      [&] { result = asyncuv::run_coroutine_threadsafe(add_later(1, 2), never_run); });
  other.join();
  never_run.close();  // discards the pending hand-off
  REQUIRE(result.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
  REQUIRE_THROWS_AS(result.get(), std::future_error);
}

TEST_CASE("wrap_future completes a loop Future from a std::future", "[threads][future]") {
  EventLoop loop;
  std::promise<std::string> promise;
  auto wrapped = asyncuv::wrap_future(promise.get_future(), loop);
  CHECK_FALSE(wrapped.done());
  std::thread producer([&] { promise.set_value("made elsewhere"); });
  CHECK(loop.run_until_complete(wrapped) == "made elsewhere");
  producer.join();

  std::promise<int> failing;
  auto wrapped_error = asyncuv::wrap_future(failing.get_future(), loop);
  std::thread thrower(
      [&] { failing.set_exception(std::make_exception_ptr(std::out_of_range("x"))); });
  REQUIRE_THROWS_AS(loop.run_until_complete(wrapped_error), std::out_of_range);
  thrower.join();
}

TEST_CASE("wrap_future awaited from a coroutine", "[threads][future]") {
  EventLoop loop;
  std::promise<int> promise;
  auto wrapped = asyncuv::wrap_future(promise.get_future(), loop);
  auto waiter = [](asyncuv::Future<int> f) -> Task<int> { co_return 1 + co_await f; };
  auto task = loop.create_task(waiter(wrapped));
  std::thread producer([&] { promise.set_value(41); });
  CHECK(loop.run_until_complete(task) == 42);
  producer.join();
}
