// Semantics 64: eager tasks (eager_task_factory, create_eager_task_factory, create_task's
// eager_start).
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "loop_support.hpp"

using asyncuv::AnyTask;
using asyncuv::EventLoop;
using asyncuv::Task;

namespace {
Task<int> no_suspension(std::vector<std::string>* log) {
  log->push_back("ran");
  co_return 7;
}

Task<int> suspends(std::vector<std::string>* log) {
  log->push_back("first step");
  co_await asyncuv::sleep(0);
  log->push_back("second step");
  co_return 8;
}

Task<void> raises() {
  throw std::runtime_error("eager boom");
  co_return;
}

// The running task's name, not the task itself: a task whose result holds the task is a
// reference cycle (asyncio leaves it to the garbage collector; here it would leak).
Task<std::string> current_task_name() {
  co_return asyncuv::current_task().get_name();
}
}  // namespace

TEST_CASE("64: eager_start runs the first step inside create_task", "[task][eager]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    std::vector<std::string> log;
    Task<int> done = loop.create_task(no_suspension(&log), {}, true);
    CHECK(log == std::vector<std::string>{"ran"});
    CHECK(done.done());  // finished eagerly: never scheduled, not in all_tasks()
    CHECK(done.result() == 7);
    for (const AnyTask& t : asyncuv::all_tasks())
      CHECK_FALSE(t == AnyTask(done));

    log.clear();
    Task<int> later = loop.create_task(suspends(&log), {}, true);
    CHECK(log == std::vector<std::string>{"first step"});
    CHECK_FALSE(later.done());
    CHECK(co_await later == 8);
    CHECK(log.back() == "second step");

    Task<void> failed = loop.create_task(raises(), {}, true);
    CHECK(failed.done());
    CHECK_THROWS_WITH(failed.result(), "eager boom");

    // current_task() is the new task during its eager step, the creator afterwards.
    AnyTask self = asyncuv::current_task();
    Task<std::string> who = loop.create_task(current_task_name(), "eager-who", true);
    CHECK(who.result() == "eager-who");
    CHECK(asyncuv::current_task() == self);

    log.clear();
    Task<int> lazy = loop.create_task(no_suspension(&log), {}, false);
    CHECK(log.empty());
    CHECK(co_await lazy == 7);
  };
  test_support::run_task(loop, body());
}

TEST_CASE("64: eager_task_factory makes every create_task eager unless eager_start=false",
          "[task][eager]") {
  EventLoop loop;
  loop.set_task_factory(asyncuv::eager_task_factory);
  auto body = [&]() -> Task<void> {
    std::vector<std::string> log;
    Task<int> t = loop.create_task(no_suspension(&log));
    CHECK(t.done());
    CHECK(log.size() == 1);
    Task<int> lazy = loop.create_task(no_suspension(&log), {}, false);
    CHECK_FALSE(lazy.done());
    CHECK(log.size() == 1);
    CHECK(co_await lazy == 7);
    Task<int> named = loop.create_task(suspends(&log), "named");
    CHECK(named.get_name() == "named");
    CHECK(co_await named == 8);
  };
  test_support::run_task(loop, body());
}

TEST_CASE("64: without a running loop an eager task is scheduled as usual", "[task][eager]") {
  EventLoop loop;
  std::vector<std::string> log;
  Task<int> t = loop.create_task(no_suspension(&log), {}, true);
  CHECK(log.empty());
  CHECK_FALSE(t.done());
  CHECK(loop.run_until_complete(t) == 7);
}

TEST_CASE("64: create_eager_task_factory(custom) calls the constructor with eager_start",
          "[task][eager]") {
  EventLoop loop;
  std::vector<bool> seen;
  loop.set_task_factory(
      asyncuv::create_eager_task_factory([&seen](EventLoop& l, AnyTask coro, bool eager_start) {
        seen.push_back(eager_start);
        return asyncuv::make_task(l, std::move(coro), "custom", eager_start);
      }));
  auto body = [&]() -> Task<void> {
    std::vector<std::string> log;
    Task<int> t = loop.create_task(no_suspension(&log));
    CHECK(t.done());
    CHECK(t.get_name() == "custom");
    Task<int> lazy = loop.create_task(no_suspension(&log), {}, false);
    CHECK_FALSE(lazy.done());
    co_await lazy;
  };
  test_support::run_task(loop, body());
  // The first entry is run_task's own task (created before the loop ran: eager but lazy).
  REQUIRE(seen.size() == 3);
  CHECK(seen[1]);
  CHECK_FALSE(seen[2]);
  CHECK_THROWS_AS(asyncuv::create_eager_task_factory({}), asyncuv::TypeError);
}
