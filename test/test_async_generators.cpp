// Asynchronous generators (PEP 525; test_asyncgen.py): values and exceptions across co_yield
// and co_await, athrow, aclose and GeneratorExit, the "already running" checks, and the loop's
// finalizer hook for a generator dropped while suspended.
#include <catch2/catch.hpp>

#include <asyncuv/async_generator.hpp>
#include <asyncuv/asyncuv.hpp>
#include <asyncuv/tasks.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loop_support.hpp"

using asyncuv::AsyncGenerator;
using asyncuv::CancelledError;
using asyncuv::EventLoop;
using asyncuv::Future;
using asyncuv::GeneratorExit;
using asyncuv::RuntimeError;
using asyncuv::Task;
using asyncuv::ValueError;
using test_support::run_task;

namespace {

/// Counts its destructions (moved-from objects do not count).
struct Cleanup {
  int* count;
  explicit Cleanup(int* c) : count(c) {}
  Cleanup(Cleanup&& other) noexcept : count(std::exchange(other.count, nullptr)) {}
  Cleanup(const Cleanup&) = delete;
  ~Cleanup() {
    if (count != nullptr) ++*count;
  }
};

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  }
}

/// Awaits `task` inline and returns the exception it ended with (null if none).
template <class T>
Task<std::exception_ptr> failure_of_inline(Task<T> task) {
  try {
    co_await std::move(task);
  } catch (...) {
    co_return std::current_exception();
  }
  co_return nullptr;
}

/// 1, then (after sleep(0)) 2, then (after a future set by a callback) 3.
AsyncGenerator<int> one_two_three() {
  co_yield 1;
  co_await asyncuv::sleep(0);
  co_yield 2;
  EventLoop& loop = asyncuv::get_running_loop();
  Future<int> later = loop.create_future<int>();
  loop.call_soon([later] { later.set_result(3); });
  int three = co_await later;
  co_yield three;
}

Task<std::vector<int>> drain(AsyncGenerator<int> gen) {
  std::vector<int> out;
  while (std::optional<int> v = co_await gen.next())
    out.push_back(*v);
  co_return out;
}

TEST_CASE("async generator: values cross co_yield, co_await between them runs in the task",
          "[asyncgen]") {
  EventLoop loop;
  AsyncGenerator<int> gen = one_two_three();
  CHECK_FALSE(gen.closed());
  CHECK(run_task(loop, drain(gen)) == std::vector<int>{1, 2, 3});
  CHECK(gen.closed());
  // Exhausted: StopAsyncIteration every time.
  auto again = [](AsyncGenerator<int> g) -> Task<bool> {
    std::optional<int> v = co_await g.next();
    co_return v.has_value();
  };
  CHECK_FALSE(run_task(loop, again(gen)));
}

AsyncGenerator<std::string> fails_after_await() {
  co_yield "first";
  co_await asyncuv::sleep(0);
  throw ValueError("generator failed");
}

Task<void> consume_failing(std::vector<std::string>* log) {
  AsyncGenerator<std::string> gen = fails_after_await();
  std::optional<std::string> first = co_await gen.next();
  log->push_back(*first);
  try {
    co_await gen.next();
    log->push_back("no exception");
  } catch (const ValueError& e) {
    log->push_back(std::string("caught ") + e.what());
  }
  std::optional<std::string> after = co_await gen.next();
  log->push_back(after ? "value" : "exhausted");
  CHECK(gen.closed());
}

TEST_CASE("async generator: an exception thrown after a co_await comes out of next()",
          "[asyncgen]") {
  EventLoop loop;
  std::vector<std::string> log;
  run_task(loop, consume_failing(&log));
  CHECK(log == std::vector<std::string>{"first", "caught generator failed", "exhausted"});
}

AsyncGenerator<int> waits_forever(Future<void> entered, std::vector<std::string>* log) {
  co_yield 1;
  try {
    entered.set_result();
    co_await asyncuv::sleep(3600);
  } catch (const CancelledError& e) {
    log->push_back(std::string("generator cancelled: ") + e.what());
    throw;
  }
  co_yield 2;
}

Task<void> consumer_of(AsyncGenerator<int> gen, std::vector<std::string>* log) {
  std::optional<int> first = co_await gen.next();
  log->push_back("got " + std::to_string(*first));
  co_await gen.next();
  log->push_back("unreachable");
}

Task<void> cancel_consumer(std::vector<std::string>* log, AsyncGenerator<int>* out) {
  EventLoop& loop = asyncuv::get_running_loop();
  Future<void> entered = loop.create_future<void>();
  AsyncGenerator<int> gen = waits_forever(entered, log);
  *out = gen;
  Task<void> consumer = loop.create_task(consumer_of(gen, log));
  co_await entered;
  CHECK(gen.running());
  consumer.cancel("stop it");
  try {
    co_await consumer;
  } catch (const CancelledError& e) {
    log->push_back(std::string("consumer cancelled: ") + e.what());
  }
}

TEST_CASE("async generator: cancelling the consuming task surfaces at the generator's co_await",
          "[asyncgen]") {
  EventLoop loop;
  std::vector<std::string> log;
  AsyncGenerator<int> gen;
  run_task(loop, cancel_consumer(&log, &gen));
  CHECK(log == std::vector<std::string>{"got 1", "generator cancelled: stop it",
                                        "consumer cancelled: stop it"});
  CHECK(gen.closed());
  CHECK_FALSE(gen.running());
}

AsyncGenerator<int> recovers(std::vector<std::string>* log) {
  int v = 1;
  while (true) {
    try {
      co_yield v;
      ++v;
    } catch (const ValueError& e) {
      log->push_back(std::string("thrown in: ") + e.what());
      v = 100;
    }
  }
}

Task<void> athrow_cases(std::vector<std::string>* log) {
  AsyncGenerator<int> gen = recovers(log);
  std::optional<int> a = co_await gen.next();
  std::optional<int> b = co_await gen.athrow(std::make_exception_ptr(ValueError("oops")));
  std::optional<int> c = co_await gen.next();
  log->push_back(std::to_string(*a) + " " + std::to_string(*b) + " " + std::to_string(*c));
  // Not caught by the generator: comes back out and finishes it.
  try {
    co_await gen.athrow(std::make_exception_ptr(RuntimeError("fatal")));
  } catch (const RuntimeError& e) {
    log->push_back(std::string("rethrown: ") + e.what());
  }
  CHECK(gen.closed());
  std::optional<int> after = co_await gen.athrow(std::make_exception_ptr(ValueError("late")));
  log->push_back(after ? "value" : "nullopt");
  // Not started: the body never runs, the exception comes back, the generator is closed.
  AsyncGenerator<int> fresh = recovers(log);
  try {
    co_await fresh.athrow(std::make_exception_ptr(ValueError("early")));
  } catch (const ValueError& e) {
    log->push_back(std::string("not started: ") + e.what());
  }
  CHECK(fresh.closed());
}

TEST_CASE("async generator: athrow throws at the co_yield, before the start, after the end",
          "[asyncgen]") {
  EventLoop loop;
  std::vector<std::string> log;
  run_task(loop, athrow_cases(&log));
  CHECK(log == std::vector<std::string>{"thrown in: oops", "1 100 101", "rethrown: fatal",
                                        "nullopt", "not started: early"});
}

AsyncGenerator<int> guarded(int* cleanups, int* finally_runs) {
  Cleanup guard(cleanups);
  try {
    for (int i = 1;; ++i)
      co_yield i;
  } catch (const GeneratorExit&) {
    ++*finally_runs;
    throw;
  }
}

Task<void> close_at_yield(int* cleanups, int* finally_runs) {
  AsyncGenerator<int> gen = guarded(cleanups, finally_runs);
  std::optional<int> v1 = co_await gen.next();
  std::optional<int> v2 = co_await gen.next();
  CHECK(*v1 + *v2 == 3);
  CHECK(*cleanups == 0);
  co_await gen.aclose();
  CHECK(*cleanups == 1);
  CHECK(*finally_runs == 1);
  CHECK(gen.closed());
  std::optional<int> after = co_await gen.next();
  CHECK_FALSE(after.has_value());
  co_await gen.aclose();  // closing again does nothing
}

TEST_CASE("async generator: aclose at a co_yield runs the generator's cleanup exactly once",
          "[asyncgen]") {
  EventLoop loop;
  int cleanups = 0;
  int finally_runs = 0;
  run_task(loop, close_at_yield(&cleanups, &finally_runs));
  loop.close();
  CHECK(cleanups == 1);
  CHECK(finally_runs == 1);
}

AsyncGenerator<int> records_start(Cleanup, bool* started) {
  *started = true;
  co_yield 1;
}

Task<void> close_before_start(int* param_cleanups, bool* started) {
  AsyncGenerator<int> gen = records_start(Cleanup(param_cleanups), started);
  CHECK(*param_cleanups == 0);
  co_await gen.aclose();
  CHECK(gen.closed());
  CHECK(*param_cleanups == 1);  // the frame (holding the parameter) is gone
  std::optional<int> v = co_await gen.next();
  CHECK_FALSE(v.has_value());
}

TEST_CASE("async generator: aclose before the first iteration closes it without running it",
          "[asyncgen]") {
  EventLoop loop;
  int param_cleanups = 0;
  bool started = false;
  run_task(loop, close_before_start(&param_cleanups, &started));
  CHECK_FALSE(started);
  CHECK(param_cleanups == 1);
}

AsyncGenerator<int> two_values(int* cleanups) {
  Cleanup guard(cleanups);
  co_yield 1;
  co_yield 2;
}

Task<void> close_after_end(int* cleanups) {
  AsyncGenerator<int> gen = two_values(cleanups);
  std::vector<int> values = co_await drain(gen);
  CHECK(values.size() == 2);
  CHECK(*cleanups == 1);
  co_await gen.aclose();
  CHECK(*cleanups == 1);
  CHECK(gen.closed());
}

TEST_CASE("async generator: aclose after exhaustion does nothing", "[asyncgen]") {
  EventLoop loop;
  int cleanups = 0;
  run_task(loop, close_after_end(&cleanups));
  CHECK(cleanups == 1);
}

/// Asynchronous cleanup: co_await is not allowed in a catch block, so it follows it.
AsyncGenerator<int> flushes_on_close(std::vector<std::string>* log) {
  bool closing = false;
  try {
    co_yield 1;
    co_yield 2;
  } catch (const GeneratorExit&) {
    closing = true;
  }
  if (closing) {
    log->push_back("closing");
    co_await asyncuv::sleep(0.01);
    co_await asyncuv::sleep(0);
    log->push_back("flushed");
  }
}

Task<void> async_cleanup(std::vector<std::string>* log) {
  AsyncGenerator<int> gen = flushes_on_close(log);
  co_await gen.next();
  co_await gen.aclose();
  log->push_back("aclose returned");
  CHECK(gen.closed());
}

TEST_CASE("async generator: asynchronous cleanup after catching GeneratorExit", "[asyncgen]") {
  EventLoop loop;
  std::vector<std::string> log;
  run_task(loop, async_cleanup(&log));
  CHECK(log == std::vector<std::string>{"closing", "flushed", "aclose returned"});
}

AsyncGenerator<int> ignores_exit(int* cleanups) {
  Cleanup guard(cleanups);
  try {
    co_yield 1;
  } catch (const GeneratorExit&) {
  }
  co_yield 2;  // yields again while being closed
  co_yield 3;
}

Task<void> ignored_exit(int* cleanups) {
  AsyncGenerator<int> gen = ignores_exit(cleanups);
  co_await gen.next();
  std::exception_ptr e = co_await failure_of_inline(gen.aclose());
  REQUIRE(e);
  CHECK_THROWS_AS(std::rethrow_exception(e), RuntimeError);
  CHECK(what_of(e) == "async generator ignored GeneratorExit");
  CHECK_FALSE(gen.closed());  // suspended at the second co_yield, as in Python
  // Closing again throws GeneratorExit at `co_yield 2`, which lets it through.
  co_await gen.aclose();
  CHECK(gen.closed());
  CHECK(*cleanups == 1);
}

TEST_CASE("async generator: yielding after GeneratorExit gives RuntimeError", "[asyncgen]") {
  EventLoop loop;
  int cleanups = 0;
  run_task(loop, ignored_exit(&cleanups));
  CHECK(cleanups == 1);
}

AsyncGenerator<int> cleanup_fails() {
  bool closing = false;
  try {
    co_yield 1;
  } catch (const GeneratorExit&) {
    closing = true;
  }
  if (closing) {
    co_await asyncuv::sleep(0);
    throw ValueError("cleanup failed");
  }
}

Task<void> failing_cleanup() {
  AsyncGenerator<int> gen = cleanup_fails();
  co_await gen.next();
  std::exception_ptr e = co_await failure_of_inline(gen.aclose());
  REQUIRE(e);
  CHECK_THROWS_AS(std::rethrow_exception(e), ValueError);
  CHECK(what_of(e) == "cleanup failed");
  CHECK(gen.closed());
}

TEST_CASE("async generator: another exception during aclose comes out of aclose", "[asyncgen]") {
  EventLoop loop;
  run_task(loop, failing_cleanup());
}

AsyncGenerator<int> slow_values(Future<void> entered, Future<void> release) {
  co_yield 1;
  entered.set_result();
  co_await release;
  co_yield 2;
}

Task<void> already_running(std::vector<std::string>* log) {
  EventLoop& loop = asyncuv::get_running_loop();
  Future<void> entered = loop.create_future<void>();
  Future<void> release = loop.create_future<void>();
  AsyncGenerator<int> gen = slow_values(entered, release);
  co_await gen.next();
  Task<std::optional<int>> first = loop.create_task(asyncuv::anext(gen));
  co_await entered;
  CHECK(gen.running());
  std::exception_ptr e1 = co_await failure_of_inline(asyncuv::anext(gen));
  std::exception_ptr e2 = co_await failure_of_inline(gen.aclose());
  std::exception_ptr e3 =
      co_await failure_of_inline(asyncuv::anext(gen));  // the generator is unaffected
  log->push_back(what_of(e1));
  log->push_back(what_of(e2));
  log->push_back(what_of(e3));
  release.set_result();
  std::optional<int> second = co_await first;
  log->push_back(std::to_string(*second));
  CHECK_FALSE(gen.running());
  co_await gen.aclose();
}

TEST_CASE("async generator: a second resumption while one is in progress is a RuntimeError",
          "[asyncgen]") {
  EventLoop loop;
  std::vector<std::string> log;
  run_task(loop, already_running(&log));
  CHECK(log == std::vector<std::string>{"anext(): asynchronous generator is already running",
                                        "aclose(): asynchronous generator is already running",
                                        "anext(): asynchronous generator is already running", "2"});
}

AsyncGenerator<int> counting(int n) {
  for (int i = 0; i < n; ++i)
    co_yield i;
}

TEST_CASE("async generator: repr names the generator function", "[asyncgen]") {
  AsyncGenerator<int> gen = counting(3);
  std::string text = gen.repr();
  CHECK(text.rfind("<async_generator object ", 0) == 0);
  CHECK(text.find("counting at 0x") != std::string::npos);
  CHECK(text.back() == '>');
  CHECK(asyncuv::detail::function_name_of("asyncuv::AsyncGenerator<std::pair<int, int> > "
                                          "ns::ticks(std::vector<int>, double)") == "ns::ticks");
}

Task<std::vector<int>> for_each_cases() {
  std::vector<int> seen;
  auto plain = [&seen](int v) { seen.push_back(v); };
  co_await counting(3).for_each(plain);
  auto stopping = [&seen](int v) {
    seen.push_back(v * 10);
    return v < 1;  // stops after 1
  };
  co_await counting(10).for_each(stopping);
  auto async_fn = [&seen](int v) -> Task<void> {
    co_await asyncuv::sleep(0);
    seen.push_back(v * 100);
  };
  co_await counting(2).for_each(async_fn);
  co_return seen;
}

TEST_CASE("async generator: for_each with plain, stopping and coroutine callbacks", "[asyncgen]") {
  EventLoop loop;
  CHECK(run_task(loop, for_each_cases()) == std::vector<int>{0, 1, 2, 0, 10, 0, 100});
}

Task<void> anext_with_timeout(std::vector<std::string>* log) {
  EventLoop& loop = asyncuv::get_running_loop();
  Future<void> entered = loop.create_future<void>();
  AsyncGenerator<int> gen = waits_forever(entered, log);
  co_await gen.next();
  try {
    co_await asyncuv::wait_for(asyncuv::anext(gen), 0.05);
  } catch (const asyncuv::TimeoutError&) {
    log->push_back("timeout");
  }
  CHECK(gen.closed());
}

TEST_CASE("async generator: anext() is a task for wait_for; the timeout cancels the generator",
          "[asyncgen]") {
  EventLoop loop;
  std::vector<std::string> log;
  run_task(loop, anext_with_timeout(&log));
  REQUIRE(log.size() == 2);
  CHECK(log[0].rfind("generator cancelled", 0) == 0);
  CHECK(log[1] == "timeout");
}

/// Its cleanup, asynchronous too, sets `cleaned` when done.
AsyncGenerator<int> closes_slowly(int* cleanups, Future<void> cleaned) {
  Cleanup guard(cleanups);
  bool closing = false;
  try {
    co_yield 1;
    co_yield 2;
  } catch (const GeneratorExit&) {
    closing = true;
  }
  if (closing) {
    co_await asyncuv::sleep(0);
    cleaned.set_result();
  }
}

Task<void> drop_suspended(int* cleanups) {
  EventLoop& loop = asyncuv::get_running_loop();
  Future<void> cleaned = loop.create_future<void>();
  {
    AsyncGenerator<int> gen = closes_slowly(cleanups, cleaned);
    std::optional<int> v = co_await gen.next();
    CHECK(*v == 1);
  }                       // the last handle goes away while the generator waits at a co_yield
  CHECK(*cleanups == 0);  // not closed synchronously: the loop schedules aclose()
  co_await asyncuv::wait_for(cleaned, 10.0);
  CHECK(*cleanups == 1);
}

TEST_CASE("async generator: a dropped suspended generator is closed by its loop in a task",
          "[asyncgen]") {
  EventLoop loop;
  int cleanups = 0;
  run_task(loop, drop_suspended(&cleanups));
  loop.close();
  CHECK(cleanups == 1);
}

TEST_CASE("async generator: dropped after its loop closed, the frame is destroyed", "[asyncgen]") {
  int cleanups = 0;
  std::optional<AsyncGenerator<int>> gen;
  {
    EventLoop loop;
    Future<void> cleaned = loop.create_future<void>();
    gen = closes_slowly(&cleanups, cleaned);
    auto first = [](AsyncGenerator<int> g) -> Task<int> {
      std::optional<int> v = co_await g.next();
      co_return *v;
    };
    CHECK(run_task(loop, first(*gen)) == 1);
    loop.close();
  }
  CHECK(cleanups == 0);
  gen.reset();
  CHECK(cleanups == 1);
}

Task<std::vector<int>> two_tasks_one_generator() {
  EventLoop& loop = asyncuv::get_running_loop();
  AsyncGenerator<int> gen = one_two_three();
  std::vector<int> out;
  auto take_one = [](AsyncGenerator<int> g) -> Task<int> {
    std::optional<int> v = co_await g.next();
    co_return *v;
  };
  Task<int> a = loop.create_task(take_one(gen));
  out.push_back(co_await a);
  Task<int> b = loop.create_task(take_one(gen));
  out.push_back(co_await b);
  std::optional<int> c = co_await gen.next();
  out.push_back(*c);
  co_await gen.aclose();
  co_return out;
}

TEST_CASE("async generator: successive resumptions may come from different tasks", "[asyncgen]") {
  EventLoop loop;
  CHECK(run_task(loop, two_tasks_one_generator()) == std::vector<int>{1, 2, 3});
}

}  // namespace
