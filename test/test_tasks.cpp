// asyncio.Task semantics over C++20 coroutines: scenarios 12-14 and 34-37.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using asyncuv::EventLoop;
using asyncuv::Future;
using asyncuv::Task;

namespace {
Task<int> answer() {
  co_return 42;
}

Task<int> add_after_sleep(int a, int b) {
  co_await asyncuv::sleep(0.001);
  co_return a + b;
}

Task<int> nested() {
  int x = co_await answer();
  int y = co_await add_after_sleep(1, 2);
  co_return x + y;
}

Task<void> thrower() {
  co_await asyncuv::sleep(0);
  throw std::runtime_error("boom");
}

Task<std::string> catches_child_error() {
  try {
    co_await thrower();
  } catch (const std::runtime_error& e) {
    co_return std::string("caught ") + e.what();
  }
  co_return "not reached";
}

struct Collect {
  std::vector<asyncuv::ExceptionContext> reports;
  void install(EventLoop& loop) {
    loop.set_exception_handler(
        [this](EventLoop&, const asyncuv::ExceptionContext& c) { reports.push_back(c); });
  }
};
}  // namespace

TEST_CASE("12: run_until_complete returns a coroutine's result", "[task]") {
  EventLoop loop;
  CHECK(loop.run_until_complete(answer()) == 42);
  CHECK(loop.run_until_complete(nested()) == 45);
  CHECK(loop.run_until_complete(catches_child_error()) == "caught boom");
}

TEST_CASE("12: run_until_complete rethrows the exception; cancelled gives CancelledError",
          "[task]") {
  EventLoop loop;
  REQUIRE_THROWS_WITH(loop.run_until_complete(thrower()), "boom");
  auto f = loop.create_future<int>();
  loop.call_soon([f] { f.cancel("bye"); });
  REQUIRE_THROWS_AS(loop.run_until_complete(f), asyncuv::CancelledError);
}

TEST_CASE("12: run_until_complete of a future of another loop is ValueError", "[task]") {
  EventLoop a;
  EventLoop b;
  auto f = b.create_future<int>();
  REQUIRE_THROWS_AS(a.run_until_complete(f), asyncuv::ValueError);
}

TEST_CASE("13: run_until_complete stops through a call_soon'd done-callback", "[task]") {
  EventLoop loop;
  auto f = loop.create_future<int>();
  std::vector<std::string> order;
  loop.call_soon([&] {
    f.set_result(1);
    loop.call_soon([&] { order.push_back("x"); });
  });
  CHECK(loop.run_until_complete(f) == 1);
  CHECK(order == std::vector<std::string>{"x"});
}

TEST_CASE("14: stop() inside a coroutine: 'Event loop stopped before Future completed.'",
          "[task]") {
  EventLoop loop;
  auto stopper = [&loop]() -> Task<void> {
    loop.stop();
    co_await asyncuv::sleep(0.1);
  };
  auto task = loop.create_task(stopper());
  REQUIRE_THROWS_WITH(loop.run_until_complete(task), "Event loop stopped before Future completed.");
  CHECK_FALSE(task.done());
  loop.run_until_complete(task);  // the loop can be reused
  CHECK(task.done());
}

TEST_CASE("34: create_task runs nothing synchronously; names default to Task-N", "[task]") {
  EventLoop loop;
  bool started = false;
  auto body = [&]() -> Task<void> {
    started = true;
    co_return;
  };
  auto t = loop.create_task(body());
  CHECK_FALSE(started);
  CHECK(t.get_name().rfind("Task-", 0) == 0);
  auto t2 = loop.create_task(body(), "worker");
  CHECK(t2.get_name() == "worker");
  t2.set_name("renamed");
  CHECK(t2.get_name() == "renamed");
  int n1 = std::stoi(t.get_name().substr(5));
  auto t3 = loop.create_task(body());
  CHECK(std::stoi(t3.get_name().substr(5)) > n1);
  loop.run_until_complete(t3);
  CHECK(started);
  loop.run_until_complete(t);
  loop.run_until_complete(t2);
}

TEST_CASE("35: cancel() delivers CancelledError(msg) at the await point", "[task][cancel]") {
  EventLoop loop;
  std::string seen;
  auto sleeper = [&]() -> Task<int> {
    try {
      co_await asyncuv::sleep(10);
    } catch (const asyncuv::CancelledError& e) {
      seen = e.what();
      throw;
    }
    co_return 1;
  };
  auto t = loop.create_task(sleeper());
  loop.call_later(0.001, [t] { CHECK(t.cancel("enough")); });
  double start = loop.time();
  REQUIRE_THROWS_AS(loop.run_until_complete(t), asyncuv::CancelledError);
  CHECK(loop.time() - start < 5.0);
  CHECK(seen == "enough");
  CHECK(t.cancelled());
  CHECK_FALSE(t.cancel());
}

TEST_CASE("35: cancelled() stays false until the coroutine finishes", "[task][cancel]") {
  EventLoop loop;
  auto sleeper = []() -> Task<void> { co_await asyncuv::sleep(10); };
  auto t = loop.create_task(sleeper());
  loop.call_soon([t] {
    CHECK(t.cancel());
    CHECK_FALSE(t.cancelled());
    CHECK(t.cancelling() == 1);
  });
  REQUIRE_THROWS_AS(loop.run_until_complete(t), asyncuv::CancelledError);
  CHECK(t.cancelled());
}

TEST_CASE("35: a task cancelled before its first step never runs its body", "[task][cancel]") {
  EventLoop loop;
  bool ran = false;
  auto body = [&]() -> Task<void> {
    ran = true;
    co_return;
  };
  auto t = loop.create_task(body());
  CHECK(t.cancel());
  REQUIRE_THROWS_AS(loop.run_until_complete(t), asyncuv::CancelledError);
  CHECK_FALSE(ran);
  CHECK(t.cancelled());
}

TEST_CASE("35: a coroutine that swallows CancelledError completes normally", "[task][cancel]") {
  EventLoop loop;
  auto swallows_cancel = []() -> Task<std::string> {
    try {
      co_await asyncuv::sleep(10);
    } catch (const asyncuv::CancelledError&) {
    }
    co_return "survived";
  };
  auto t = loop.create_task(swallows_cancel());
  loop.call_soon([t] { t.cancel(); });
  CHECK(loop.run_until_complete(t) == "survived");
  CHECK_FALSE(t.cancelled());
}

TEST_CASE("35: cancellation at sleep(0), at a nested await and at a future", "[task][cancel]") {
  EventLoop loop;
  std::vector<std::string> where;
  auto at_yield = [&]() -> Task<void> {
    try {
      for (;;)
        co_await asyncuv::sleep(0);
    } catch (const asyncuv::CancelledError&) {
      where.push_back("yield");
      throw;
    }
  };
  auto inner = [&]() -> Task<void> {
    try {
      co_await asyncuv::sleep(10);
    } catch (const asyncuv::CancelledError&) {
      where.push_back("inner");
      throw;
    }
  };
  auto outer = [&]() -> Task<void> {
    try {
      co_await inner();
    } catch (const asyncuv::CancelledError&) {
      where.push_back("outer");
      throw;
    }
  };
  auto fut = loop.create_future<int>();
  auto on_future = [&]() -> Task<void> {
    try {
      co_await fut;
    } catch (const asyncuv::CancelledError&) {
      where.push_back("future");
      throw;
    }
  };
  auto t1 = loop.create_task(at_yield());
  auto t2 = loop.create_task(outer());
  auto t3 = loop.create_task(on_future());
  loop.call_later(0.002, [&] {
    t1.cancel();
    t2.cancel();
    t3.cancel();
  });
  REQUIRE_THROWS_AS(loop.run_until_complete(t1), asyncuv::CancelledError);
  REQUIRE_THROWS_AS(loop.run_until_complete(t2), asyncuv::CancelledError);
  REQUIRE_THROWS_AS(loop.run_until_complete(t3), asyncuv::CancelledError);
  CHECK(fut.cancelled());  // cancelling the task cancelled the future it awaited
  std::sort(where.begin(), where.end());
  CHECK(where == std::vector<std::string>{"future", "inner", "outer", "yield"});
}

TEST_CASE("35: exceptions cross several awaits", "[task]") {
  EventLoop loop;
  auto level3 = []() -> Task<int> {
    co_await asyncuv::sleep(0.001);
    throw asyncuv::ValueError("deep");
    co_return 0;
  };
  auto level2 = [&]() -> Task<int> { co_return 1 + co_await level3(); };
  auto level1 = [&]() -> Task<int> {
    co_await asyncuv::sleep(0);
    co_return 1 + co_await level2();
  };
  REQUIRE_THROWS_AS(loop.run_until_complete(level1()), asyncuv::ValueError);
}

TEST_CASE("35: awaiting a scheduled task waits for it like a future", "[task]") {
  EventLoop loop;
  auto child = loop.create_task(add_after_sleep(2, 3));
  auto parent = [&]() -> Task<int> {
    int a = co_await child;
    int b = co_await child;  // already done: no suspension, same result
    co_return a + b;
  };
  CHECK(loop.run_until_complete(parent()) == 10);
}

TEST_CASE("36: task factory", "[task]") {
  EventLoop loop;
  CHECK_FALSE(loop.get_task_factory());
  int calls = 0;
  loop.set_task_factory([&](EventLoop& l, asyncuv::AnyTask coro) {
    ++calls;
    return asyncuv::make_task(l, coro, "from-factory");
  });
  auto t = loop.create_task(answer());
  CHECK(calls == 1);
  CHECK(t.get_name() == "from-factory");
  auto named = loop.create_task(answer(), "explicit");
  CHECK(named.get_name() == "explicit");  // the name is applied afterwards
  CHECK(loop.run_until_complete(t) == 42);
  CHECK(loop.run_until_complete(named) == 42);
  loop.set_task_factory(nullptr);
  CHECK_FALSE(loop.get_task_factory());
}

TEST_CASE("37: a pending task destroyed when the loop closes is reported", "[task]") {
  Collect collect;
  {
    EventLoop loop;
    collect.install(loop);
    auto forever = []() -> Task<void> { co_await asyncuv::sleep(1000); };
    loop.create_task(forever());
    loop.stop();
    loop.run_forever();  // the first step runs; the task now sleeps
    loop.close();
    REQUIRE(collect.reports.size() == 1);
    CHECK(collect.reports[0].message() == "Task was destroyed but it is pending!");
    CHECK(collect.reports[0].contains("task"));
  }
}

TEST_CASE("33: a task whose exception nobody retrieved is reported", "[task]") {
  Collect collect;
  EventLoop loop;
  collect.install(loop);
  {
    auto t = loop.create_task(thrower());
    loop.run_until_complete(asyncuv::sleep(0.01));
    CHECK(t.done());
  }
  REQUIRE(collect.reports.size() == 1);
  CHECK(collect.reports[0].message() == "Task exception was never retrieved");
}

TEST_CASE("current_task and all_tasks", "[task]") {
  EventLoop loop;
  CHECK_FALSE(asyncuv::current_task());
  asyncuv::AnyTask seen;
  std::size_t count_inside = 0;
  auto body = [&]() -> Task<void> {
    seen = asyncuv::current_task();
    count_inside = asyncuv::all_tasks().size();
    co_return;
  };
  auto sleeper = loop.create_task(asyncuv::sleep(0.05));
  auto t = loop.create_task(body());
  loop.run_until_complete(t);
  CHECK(seen == asyncuv::AnyTask(t));
  CHECK(count_inside == 2);
  loop.run_until_complete(sleeper);
  CHECK(asyncuv::all_tasks(loop).empty());
}

// Coroutine parameters are copied into the frame; captures of a lambda coroutine are not, so
// a task that can outlive the lambda object takes what it needs as parameters.
Task<void> sleep_and_record_cancel(bool* cancelled) {
  try {
    co_await asyncuv::sleep(100);
  } catch (const asyncuv::CancelledError&) {
    *cancelled = true;
    throw;
  }
}

Task<int> main_leaving_a_task(bool* leftover_cancelled) {
  asyncuv::get_running_loop().create_task(sleep_and_record_cancel(leftover_cancelled));
  co_await asyncuv::sleep(0.001);
  co_return 7;
}

TEST_CASE("asyncuv::run runs main on a new loop and cancels what is left", "[task][run]") {
  bool leftover_cancelled = false;
  CHECK(asyncuv::run(main_leaving_a_task(&leftover_cancelled)) == 7);
  CHECK(leftover_cancelled);
  REQUIRE_THROWS_AS(asyncuv::get_event_loop(), asyncuv::RuntimeError);
}

TEST_CASE("awaiting a future outside of a task is a clear error", "[task]") {
  EventLoop loop;
  auto f = loop.create_future<int>();
  auto coro = [&]() -> Task<int> { co_return co_await f; };
  // A coroutine awaited inline only runs inside a task; a bare resume has no task.
  auto t = coro();
  auto h = t.get_coro();
  h.resume();  // initial suspend -> body -> co_await f throws (no current task)
  CHECK(t.done());
  REQUIRE_THROWS_AS(t.result(), asyncuv::RuntimeError);
}
