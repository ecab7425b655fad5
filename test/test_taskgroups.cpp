// asyncio.TaskGroup (taskgroups.py; test_taskgroups.py).
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <memory>
#include <string>
#include <vector>

using asyncuv::CancelledError;
using asyncuv::EventLoop;
using asyncuv::ExceptionGroup;
using asyncuv::Task;
using asyncuv::TaskGroup;

namespace {

Task<int> value_after(double delay, int value) {
  co_await asyncuv::sleep(delay);
  co_return value;
}

Task<void> fail_now(std::string message) {
  throw asyncuv::ValueError(message);
  co_return;
}

Task<void> fail_after(double delay, std::string message) {
  co_await asyncuv::sleep(delay);
  throw asyncuv::ValueError(message);
}

/// Sleeps; on cancellation records it in *log and rethrows.
Task<void> sleeper(double delay, std::vector<std::string>* log, std::string name) {
  try {
    co_await asyncuv::sleep(delay);
  } catch (const CancelledError&) {
    log->push_back(name + " cancelled");
    throw;
  }
  log->push_back(name + " done");
}

std::vector<std::string> whats(const ExceptionGroup& group) {
  std::vector<std::string> out;
  for (const std::exception_ptr& e : group.exceptions()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      out.emplace_back(ex.what());
    }
  }
  return out;
}

struct Collect {
  std::vector<asyncuv::ExceptionContext> reports;
  void install(EventLoop& loop) {
    loop.set_exception_handler(
        [this](EventLoop&, const asyncuv::ExceptionContext& c) { reports.push_back(c); });
  }
};

Task<int> group_sum(Task<int>* t1_out) {
  Task<int> t1;
  Task<int> t2;
  co_await asyncuv::task_group([&](TaskGroup& tg) -> Task<void> {
    t1 = tg.create_task(value_after(0.02, 42));
    t2 = tg.create_task(value_after(0.01, 11));
    CHECK(tg.pending() == 2);
    co_return;
  });
  CHECK(t1.done());
  CHECK(t2.done());
  *t1_out = t1;
  co_return t1.result() + t2.result();
}

TEST_CASE("TaskGroup: the block ends when every child is done (test_taskgroup_01)", "[taskgroup]") {
  EventLoop loop;
  Task<int> t1;
  CHECK(loop.run_until_complete(group_sum(&t1)) == 53);
  CHECK(t1.result() == 42);
}

Task<std::string> body_value() {
  co_return co_await asyncuv::task_group([](TaskGroup& tg) -> Task<std::string> {
    tg.create_task(value_after(0.001, 1));
    return asyncuv::sleep(0.001, std::string("body"));
  });
}

TEST_CASE("TaskGroup: task_group returns the body's value", "[taskgroup]") {
  EventLoop loop;
  CHECK(loop.run_until_complete(body_value()) == "body");
}

Task<void> two_failures(std::vector<std::string>* log) {
  co_await asyncuv::task_group([log](TaskGroup& tg) -> Task<void> {
    tg.create_task(fail_now("first"));
    tg.create_task(fail_now("second"));
    tg.create_task(sleeper(10, log, "sibling"));
    try {
      co_await asyncuv::sleep(10);
    } catch (const CancelledError&) {
      log->push_back("body cancelled");
      throw;
    }
  });
}

Task<std::string> catches_group(std::vector<std::string>* log) {
  try {
    co_await two_failures(log);
  } catch (const ExceptionGroup& group) {
    CHECK(whats(group) == std::vector<std::string>{"first", "second"});
    CHECK(group.message() == "unhandled errors in a TaskGroup");
    // The group took back the cancellation it sent to the body: the task goes on.
    CHECK(asyncuv::current_task().cancelling() == 0);
    co_return group.what();
  }
  co_return "no error";
}

TEST_CASE(
    "TaskGroup: two failing children are both surfaced; siblings and the body are "
    "cancelled (test_taskgroup_03/07)",
    "[taskgroup]") {
  EventLoop loop;
  std::vector<std::string> log;
  auto t = loop.create_task(catches_group(&log));
  CHECK(loop.run_until_complete(t) == "unhandled errors in a TaskGroup (2 sub-exceptions)");
  CHECK_FALSE(t.cancelled());
  std::sort(log.begin(), log.end());
  CHECK(log == std::vector<std::string>{"body cancelled", "sibling cancelled"});
}

Task<void> body_fails(std::vector<std::string>* log) {
  co_await asyncuv::task_group([log](TaskGroup& tg) -> Task<void> {
    tg.create_task(sleeper(10, log, "child"));
    co_await asyncuv::sleep(0.001);
    throw asyncuv::RuntimeError("body error");
  });
}

TEST_CASE("TaskGroup: an error in the body cancels the children and is surfaced in the group",
          "[taskgroup]") {
  EventLoop loop;
  std::vector<std::string> log;
  try {
    loop.run_until_complete(body_fails(&log));
    FAIL("no ExceptionGroup");
  } catch (const ExceptionGroup& group) {
    CHECK(std::string(group.what()) == "unhandled errors in a TaskGroup (1 sub-exception)");
    CHECK(whats(group) == std::vector<std::string>{"body error"});
  }
  CHECK(log == std::vector<std::string>{"child cancelled"});
}

Task<void> child_and_body_fail() {
  co_await asyncuv::task_group([](TaskGroup& tg) -> Task<void> {
    tg.create_task(fail_after(0.001, "child error"));
    try {
      co_await asyncuv::sleep(10);
    } catch (const CancelledError&) {
    }
    throw asyncuv::RuntimeError("body error");
  });
}

TEST_CASE("TaskGroup: the children's errors come first, the body's last", "[taskgroup]") {
  EventLoop loop;
  try {
    loop.run_until_complete(child_and_body_fail());
    FAIL("no ExceptionGroup");
  } catch (const ExceptionGroup& group) {
    CHECK(whats(group) == std::vector<std::string>{"child error", "body error"});
  }
}

Task<void> group_cancelled_from_outside(std::vector<std::string>* log) {
  co_await asyncuv::task_group([log](TaskGroup& tg) -> Task<void> {
    tg.create_task(sleeper(10, log, "a"));
    tg.create_task(sleeper(10, log, "b"));
    co_return;  // the group waits for the children in exit()
  });
  log->push_back("not reached");
}

TEST_CASE(
    "TaskGroup: a cancellation of the parent cancels the children and propagates as "
    "CancelledError",
    "[taskgroup]") {
  EventLoop loop;
  std::vector<std::string> log;
  auto t = loop.create_task(group_cancelled_from_outside(&log));
  loop.call_later(0.01, [t] { t.cancel("outer"); });
  try {
    loop.run_until_complete(t);
    FAIL("no CancelledError");
  } catch (const CancelledError& e) {
    CHECK(std::string(e.what()) == "outer");
  }
  CHECK(t.cancelled());
  std::sort(log.begin(), log.end());
  CHECK(log == std::vector<std::string>{"a cancelled", "b cancelled"});
}

Task<void> cancelled_in_body(std::vector<std::string>* log) {
  co_await asyncuv::task_group([log](TaskGroup& tg) -> Task<void> {
    tg.create_task(sleeper(10, log, "child"));
    try {
      co_await asyncuv::sleep(10);
    } catch (const CancelledError&) {
      log->push_back("body cancelled");
      throw;
    }
  });
}

TEST_CASE("TaskGroup: the parent cancelled while the body awaits", "[taskgroup]") {
  EventLoop loop;
  std::vector<std::string> log;
  auto t = loop.create_task(cancelled_in_body(&log));
  loop.call_later(0.01, [t] { t.cancel(); });
  REQUIRE_THROWS_AS(loop.run_until_complete(t), CancelledError);
  CHECK(t.cancelled());
  CHECK(log == std::vector<std::string>{"body cancelled", "child cancelled"});
}

/// On cancellation, sets `cancelled` and keeps running until `gate` is set, then rethrows.
Task<void> slow_to_cancel(asyncuv::Future<void> cancelled, asyncuv::Future<void> gate) {
  try {
    co_await asyncuv::sleep(100);
  } catch (const CancelledError&) {
  }
  cancelled.set_result();
  co_await gate;
  throw CancelledError();
}

Task<std::string> error_and_outer_cancel(EventLoop* loop) {
  asyncuv::AnyTask self = asyncuv::current_task();
  std::string caught;
  auto child_cancelled = loop->create_future<void>();
  auto gate = loop->create_future<void>();
  // The group cancels the slow child and this task (the body) in one callback; the body's
  // CancelledError reaches exit() in the iteration in which the child sets `child_cancelled`.
  // This callback runs one iteration later, while exit() waits for the child, and only then
  // lets the child finish: the order does not depend on timing.
  child_cancelled.add_done_callback([self, gate](asyncuv::Future<void>) {
    self.cancel("outer");
    gate.set_result();
  });
  try {
    // A named lambda: GCC 12 destroys a closure temporary written inside a co_await
    // expression twice (`self` is not trivially destructible).
    auto body = [child_cancelled, gate](TaskGroup& tg) -> Task<void> {
      tg.create_task(fail_now("child error"));
      // The group is still waiting for it when the outer cancellation arrives.
      tg.create_task(slow_to_cancel(child_cancelled, gate));
      co_await asyncuv::sleep(10);
    };
    co_await asyncuv::task_group(body);
  } catch (const ExceptionGroup& group) {
    caught = group.what();
  }
  // The errors had priority, but the outer cancellation is still requested: the next await
  // raises it.
  CHECK(asyncuv::current_task().cancelling() == 1);
  try {
    co_await asyncuv::sleep(10);
  } catch (const CancelledError&) {
    co_return caught + " / then CancelledError";
  }
  co_return caught;
}

TEST_CASE("TaskGroup: errors win over an outer cancellation, which stays requested",
          "[taskgroup]") {
  EventLoop loop;
  CHECK(loop.run_until_complete(error_and_outer_cancel(&loop)) ==
        "unhandled errors in a TaskGroup (1 sub-exception) / then CancelledError");
}

Task<void> cancelled_child_is_not_an_error(std::vector<std::string>* log) {
  co_await asyncuv::task_group([log](TaskGroup& tg) -> Task<void> {
    auto victim = tg.create_task(sleeper(10, log, "victim"));
    tg.create_task(sleeper(0.02, log, "survivor"));
    // One iteration, not a timer: the victim, asleep by then, is cancelled in the iteration in
    // which the survivor arms its timer, so it logs before that timer can fire.
    co_await asyncuv::sleep(0);
    victim.cancel();
  });
}

TEST_CASE("TaskGroup: a child cancelled on its own does not fail the group", "[taskgroup]") {
  EventLoop loop;
  std::vector<std::string> log;
  loop.run_until_complete(cancelled_child_is_not_an_error(&log));
  CHECK(log == std::vector<std::string>{"victim cancelled", "survivor done"});
}

Task<void> keep_group(TaskGroup* out) {
  co_await asyncuv::task_group([out](TaskGroup& tg) -> Task<void> {
    *out = tg;
    tg.create_task(value_after(0.001, 1));
    co_return;
  });
}

Task<void> create_while_shutting_down(std::string* message) {
  co_await asyncuv::task_group([message](TaskGroup& tg) -> Task<void> {
    tg.create_task(fail_now("boom"));
    try {
      co_await asyncuv::sleep(10);
    } catch (const CancelledError&) {
      try {
        tg.create_task(value_after(0, 1));
      } catch (const asyncuv::RuntimeError& e) {
        *message = e.what();
      }
      throw;
    }
  });
}

TEST_CASE(
    "TaskGroup: create_task before entering, while shutting down, after finishing is "
    "RuntimeError",
    "[taskgroup]") {
  EventLoop loop;
  TaskGroup fresh;
  REQUIRE_THROWS_WITH(fresh.create_task(value_after(0, 1)),
                      "TaskGroup <TaskGroup> has not been entered");
  REQUIRE_THROWS_WITH(fresh.enter(), "no running event loop");

  TaskGroup kept;
  loop.run_until_complete(keep_group(&kept));
  CHECK(kept.repr() == "<TaskGroup entered>");
  REQUIRE_THROWS_WITH(kept.create_task(value_after(0, 1)),
                      "TaskGroup <TaskGroup entered> is finished");

  std::string message;
  REQUIRE_THROWS_AS(loop.run_until_complete(create_while_shutting_down(&message)), ExceptionGroup);
  CHECK(message == "TaskGroup <TaskGroup errors=1 cancelling> is shutting down");
}

Task<void> enter_twice() {
  TaskGroup tg;
  tg.enter();
  REQUIRE_THROWS_WITH(tg.enter(), "TaskGroup <TaskGroup entered> has already been entered");
  co_await tg.exit(nullptr);
}

TEST_CASE("TaskGroup: entering twice is RuntimeError", "[taskgroup]") {
  EventLoop loop;
  loop.run_until_complete(enter_twice());
}

struct Abort : std::runtime_error, asyncuv::FatalError {
  Abort() : std::runtime_error("abort") {}
};

Task<void> fatal_now() {
  throw Abort();
  co_return;
}

Task<void> fatal_in_group() {
  co_await asyncuv::task_group([](TaskGroup& tg) -> Task<void> {
    tg.create_task(fail_now("ordinary"));
    tg.create_task(fatal_now());
    co_await asyncuv::sleep(10);
  });
}

TEST_CASE(
    "TaskGroup: a fatal error of a child propagates as itself; the other errors are "
    "reported",
    "[taskgroup]") {
  EventLoop loop;
  Collect collect;
  collect.install(loop);
  auto t = loop.create_task(fatal_in_group());
  REQUIRE_THROWS_AS(loop.run_until_complete(t), Abort);
  REQUIRE(collect.reports.size() == 1);
  CHECK(collect.reports[0].message() ==
        "TaskGroup task exception was not propagated because the TaskGroup body is being "
        "closed with a BaseException");
}

Task<void> adds_sibling(TaskGroup tg, std::vector<std::string>* log) {
  co_await asyncuv::sleep(0.001);
  tg.create_task(sleeper(0.001, log, "added by a child"));
}

Task<void> children_add_children(std::vector<std::string>* log) {
  co_await asyncuv::task_group([log](TaskGroup& tg) -> Task<void> {
    tg.create_task(adds_sibling(tg, log));
    co_return;
  });
  log->push_back("after");
}

TEST_CASE("TaskGroup: a child may add siblings while the group waits", "[taskgroup]") {
  EventLoop loop;
  std::vector<std::string> log;
  loop.run_until_complete(children_add_children(&log));
  CHECK(log == std::vector<std::string>{"added by a child done", "after"});
}

}  // namespace
