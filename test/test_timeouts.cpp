// asyncio.timeout / timeout_at (timeouts.py; test_timeouts.py).
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

using asyncuv::CancelledError;
using asyncuv::EventLoop;
using asyncuv::Task;
using asyncuv::Timeout;
using asyncuv::TimeoutError;

namespace {

/// Awaits `aw`: "caught: <what()>" if it raised E, "other" for another exception, else
/// "none". (Keeps co_await out of the assertion macros.)
template <class E, class A>
Task<std::string> raised(A aw) {
  try {
    co_await aw;
  } catch (const E& e) {
    co_return std::string("caught: ") + e.what();
  } catch (...) {
    co_return std::string("other");
  }
  co_return std::string("none");
}

Task<void> sleep_recording_cancel(double delay, std::vector<std::string>* log, std::string name) {
  try {
    co_await asyncuv::sleep(delay);
  } catch (const CancelledError&) {
    log->push_back(name + " cancelled");
    throw;
  }
}

/// The manual protocol around sleep(delay): the block's exception, after cm.exit().
Task<void> sleep_in(Timeout* cm, double delay) {
  cm->enter();
  std::exception_ptr error;
  try {
    co_await asyncuv::sleep(delay);
  } catch (...) {
    error = std::current_exception();
  }
  if (auto out = cm->exit(error)) std::rethrow_exception(out);
}

Task<void> timeout_basic(std::vector<std::string>* log) {
  co_await asyncuv::timeout(0.01, [log]() { return sleep_recording_cancel(10, log, "body"); });
}

TEST_CASE(
    "timeout: the deadline cancels the block and raises TimeoutError (test_timeout_basic, "
    "test_waiter_cancelled)",
    "[timeouts]") {
  EventLoop loop;
  std::vector<std::string> log;
  auto t = loop.create_task(timeout_basic(&log));
  REQUIRE_THROWS_AS(loop.run_until_complete(t), TimeoutError);
  CHECK(log == std::vector<std::string>{"body cancelled"});
  CHECK_FALSE(t.cancelled());  // the task failed with TimeoutError, it is not cancelled
}

Task<void> timeout_at_basic(Timeout* cm) {
  co_await sleep_in(cm, 10);
}

TEST_CASE("timeout_at: expired() and when() (test_timeout_at_basic)", "[timeouts]") {
  EventLoop loop;
  double deadline = loop.time() + 0.01;
  Timeout cm(deadline);
  CHECK(cm.repr() == "<Timeout [created]>");
  REQUIRE_THROWS_AS(loop.run_until_complete(timeout_at_basic(&cm)), TimeoutError);
  CHECK(cm.expired());
  CHECK(cm.when() == deadline);
  CHECK(cm.repr() == "<Timeout [expired]>");
}

Task<int> returns_value_within(EventLoop* loop, Timeout* seen) {
  int v = co_await asyncuv::timeout_at(loop->time() + 10, [seen](Timeout& cm) -> Task<int> {
    CHECK(cm.state() == Timeout::State::active);
    CHECK(cm.repr().rfind("<Timeout [active] when=", 0) == 0);
    CHECK_FALSE(seen->expired());
    return asyncuv::sleep(0.001, 5);
  });
  co_return v;
}

TEST_CASE("timeout: a block that finishes in time returns its value (test_timeout_not_called)",
          "[timeouts]") {
  EventLoop loop;
  Timeout unused(std::nullopt);
  CHECK(loop.run_until_complete(returns_value_within(&loop, &unused)) == 5);

  Timeout cm(loop.time() + 10);
  loop.run_until_complete(sleep_in(&cm, 0.001));
  CHECK_FALSE(cm.expired());
  CHECK(*cm.when() > loop.time());
  CHECK(cm.repr() == "<Timeout [finished]>");
}

Task<void> disabled_timeouts() {
  co_await asyncuv::timeout(std::nullopt, [](Timeout& cm) -> Task<void> {
    CHECK_FALSE(cm.when());
    CHECK(cm.repr() == "<Timeout [active] when=None>");
    return asyncuv::sleep(0.001);
  });
  co_await asyncuv::timeout_at(std::nullopt, []() { return asyncuv::sleep(0.001); });
}

TEST_CASE("timeout(std::nullopt) / timeout_at(std::nullopt): no deadline (test_timeout_disabled)",
          "[timeouts]") {
  EventLoop loop;
  loop.run_until_complete(disabled_timeouts());
}

TEST_CASE(
    "timeout: zero and negative delays expire at once (test_timeout_zero*, "
    "test_timeout_in_the_past_sleep_zero)",
    "[timeouts]") {
  EventLoop loop;
  for (double delay : {0.0, -11.0}) {
    for (double sleep_for : {10.0, 0.0}) {
      double t0 = loop.time();
      Timeout cm(t0 + delay);
      REQUIRE_THROWS_AS(loop.run_until_complete(sleep_in(&cm, sleep_for)), TimeoutError);
      double t1 = loop.time();
      CHECK(cm.expired());
      CHECK(t1 - t0 < 2);
    }
  }
}

Task<void> throws_value_error() {
  co_await asyncuv::sleep(0);
  throw asyncuv::ValueError("foreign");
}

Task<void> crash_on_cancel() {
  try {
    co_await asyncuv::sleep(1);
  } catch (const CancelledError&) {
  }
  throw std::logic_error("1/0");
}

TEST_CASE(
    "timeout: other exceptions pass through, before and at expiry "
    "(test_foreign_exception_passed, test_foreign_exception_on_timeout)",
    "[timeouts]") {
  EventLoop loop;
  auto passed = []() -> Task<void> { co_await asyncuv::timeout(0.01, throws_value_error); };
  REQUIRE_THROWS_WITH(loop.run_until_complete(passed()), "foreign");
  auto on_timeout = []() -> Task<void> { co_await asyncuv::timeout(0.01, crash_on_cancel); };
  REQUIRE_THROWS_AS(loop.run_until_complete(on_timeout()), std::logic_error);
}

Task<void> cancel_self_then_sleep() {
  asyncuv::current_task().cancel();
  co_await asyncuv::sleep(10);
}

Task<void> foreign_cancel(Timeout* cm) {
  cm->enter();
  std::exception_ptr error;
  try {
    co_await cancel_self_then_sleep();
  } catch (...) {
    error = std::current_exception();
  }
  if (auto out = cm->exit(error)) std::rethrow_exception(out);
}

TEST_CASE(
    "timeout: a cancellation from elsewhere is not a timeout "
    "(test_foreign_cancel_doesnt_timeout_if_not_expired)",
    "[timeouts]") {
  EventLoop loop;
  Timeout cm(loop.time() + 10);
  REQUIRE_THROWS_AS(loop.run_until_complete(foreign_cancel(&cm)), CancelledError);
  CHECK_FALSE(cm.expired());
}

Task<std::string> outer_catches_timeout() {
  std::string r =
      co_await raised<TimeoutError>(asyncuv::timeout(0.001, []() { return asyncuv::sleep(10); }));
  // The timeout's own cancellation was taken back: the task goes on normally.
  CHECK(asyncuv::current_task().cancelling() == 0);
  co_await asyncuv::sleep(0.001);
  co_return r;
}

TEST_CASE("timeout: the task is not left cancelled (test_outer_task_is_not_cancelled)",
          "[timeouts]") {
  EventLoop loop;
  auto t = loop.create_task(outer_catches_timeout());
  CHECK(loop.run_until_complete(t) == "caught: ");
  CHECK_FALSE(t.cancelled());
}

Task<void> nested_same_deadline(Timeout* cm1, Timeout* cm2, std::vector<std::string>* log) {
  cm1->enter();
  std::exception_ptr error;
  try {
    co_await sleep_in(cm2, 10);  // inner: the same deadline
  } catch (const CancelledError&) {
    log->push_back("inner raised CancelledError");
    error = std::current_exception();
  } catch (...) {
    error = std::current_exception();
  }
  if (auto out = cm1->exit(error)) std::rethrow_exception(out);
}

TEST_CASE(
    "timeout: nested timeouts with one deadline: only the outermost raises TimeoutError "
    "(test_nested_timeouts)",
    "[timeouts]") {
  EventLoop loop;
  double deadline = loop.time() + 0.01;
  Timeout cm1(deadline);
  Timeout cm2(deadline);
  std::vector<std::string> log;
  REQUIRE_THROWS_AS(loop.run_until_complete(nested_same_deadline(&cm1, &cm2, &log)), TimeoutError);
  CHECK(log == std::vector<std::string>{"inner raised CancelledError"});
  CHECK(cm1.expired());
  CHECK(cm2.expired());
}

Task<std::vector<std::string>> nested_inner_first() {
  std::vector<std::string> log;
  // The outer deadline stays far away until the inner timeout has expired and been handled;
  // only then is it moved close. (With a fixed short outer deadline, a loop running late could
  // see both deadlines pass in one iteration.)
  auto body = [&log](Timeout& outer_cm) -> Task<void> {
    std::string inner =
        co_await raised<TimeoutError>(asyncuv::timeout(0.01, []() { return asyncuv::sleep(10); }));
    log.push_back("inner: " + inner);
    outer_cm.reschedule(asyncuv::get_running_loop().time() + 0.01);
    co_await asyncuv::sleep(10);  // interrupted by the outer timeout
    log.push_back("not reached");
  };
  std::string outer = co_await raised<TimeoutError>(asyncuv::timeout(10, body));
  log.push_back("outer: " + outer);
  co_return log;
}

TEST_CASE("timeout: nested timeouts, the inner one expiring first, then the outer one",
          "[timeouts]") {
  EventLoop loop;
  CHECK(loop.run_until_complete(nested_inner_first()) ==
        std::vector<std::string>{"inner: caught: ", "outer: caught: "});
}

Task<std::string> timeout_and_outer_cancel(EventLoop* loop) {
  asyncuv::AnyTask self = asyncuv::current_task();
  // timeout(0) schedules its expiry with call_soon; the outer cancel comes right after it,
  // in the same iteration, before the task resumes.
  auto body = [loop, self]() -> Task<void> {  // named: see result_vs_expiry
    loop->call_soon([self] { self.cancel("from outside"); });
    return asyncuv::sleep(10);
  };
  co_return co_await raised<CancelledError>(asyncuv::timeout(0, body));
}

TEST_CASE(
    "timeout: an outer cancellation inside a timeout block stays a CancelledError, even "
    "when the timeout expired too",
    "[timeouts]") {
  EventLoop loop;
  auto t = loop.create_task(timeout_and_outer_cancel(&loop));
  CHECK(loop.run_until_complete(t) == "caught: from outside");
  CHECK(t.cancelling() == 1);  // the outer request is still pending, as it must be
}

Task<void> cancelled_from_outside(std::vector<std::string>* log) {
  co_await asyncuv::timeout(10, [log]() { return sleep_recording_cancel(100, log, "body"); });
}

TEST_CASE("timeout: an outer cancellation of a task inside a timeout is a CancelledError",
          "[timeouts]") {
  EventLoop loop;
  std::vector<std::string> log;
  auto t = loop.create_task(cancelled_from_outside(&log));
  loop.call_later(0.01, [t] { t.cancel("stop"); });
  try {
    loop.run_until_complete(t);
    FAIL("no CancelledError");
  } catch (const CancelledError& e) {
    CHECK(std::string(e.what()) == "stop");
  }
  CHECK(t.cancelled());
  CHECK(log == std::vector<std::string>{"body cancelled"});
}

Task<int> await_future(asyncuv::Future<int> f) {
  co_return co_await f;
}

Task<int> result_vs_expiry(EventLoop* loop, bool result_first) {
  auto fut = loop->create_future<int>();
  // A named lambda: GCC 12 destroys a closure temporary written inside a co_await expression
  // twice (its captures here are not trivially destructible).
  auto body = [loop, fut, result_first](Timeout& cm) -> Task<int> {
    Timeout* scope = &cm;
    loop->call_soon([fut, scope, result_first, loop] {
      // One callback: the result arrives and the deadline passes in the same iteration.
      if (result_first) fut.set_result(7);
      scope->reschedule(loop->time());
      if (!result_first) fut.set_result(7);
    });
    return await_future(fut);
  };
  co_return co_await asyncuv::timeout(10, body);
}

TEST_CASE(
    "timeout: a deadline passing exactly as the result arrives: the first to reach the "
    "task wins (3.12 semantics)",
    "[timeouts]") {
  EventLoop loop;
  // The result's wake-up is queued before the expiry: the block returns the result.
  CHECK(loop.run_until_complete(result_vs_expiry(&loop, true)) == 7);
  // The expiry is queued first: it cancels the task before it resumes: TimeoutError.
  REQUIRE_THROWS_AS(loop.run_until_complete(result_vs_expiry(&loop, false)), TimeoutError);
}

Task<void> sleeps_in_scope(Timeout* cm, asyncuv::Future<Timeout*> entered) {
  cm->enter();
  entered.set_result(cm);
  std::exception_ptr error;
  try {
    co_await asyncuv::sleep(50);
  } catch (...) {
    error = std::current_exception();
  }
  if (auto out = cm->exit(error)) std::rethrow_exception(out);
}

Task<void> reschedule_from_outside(EventLoop* loop) {
  double deadline1 = loop->time() + 10;
  double deadline2 = deadline1 + 20;
  Timeout cm(deadline1);
  auto entered = loop->create_future<Timeout*>();
  auto task = loop->create_task(sleeps_in_scope(&cm, entered));
  Timeout* seen = co_await entered;
  CHECK(seen == &cm);
  CHECK(cm.when() == deadline1);
  cm.reschedule(deadline2);
  CHECK(cm.when() == deadline2);
  cm.reschedule(std::nullopt);
  CHECK_FALSE(cm.when());
  task.cancel();
  std::string r = co_await raised<CancelledError>(task);
  CHECK(r == "caught: ");
  CHECK_FALSE(cm.expired());
}

TEST_CASE("timeout: reschedule() from another task (test_reschedule)", "[timeouts]") {
  EventLoop loop;
  loop.run_until_complete(reschedule_from_outside(&loop));
}

Task<void> enter_twice(Timeout* cm) {
  cm->enter();
  REQUIRE_THROWS_WITH(cm->enter(), "Timeout has already been entered");
  CHECK(cm->exit(nullptr) == nullptr);
  REQUIRE_THROWS_WITH(cm->reschedule(1.0), "Cannot change state of finished Timeout");
  REQUIRE_THROWS_WITH(cm->enter(), "Timeout has already been entered");
  co_return;
}

TEST_CASE(
    "timeout: state errors (test_timeout_already_entered, _double_enter, _finished, "
    "_not_entered, _without_task)",
    "[timeouts]") {
  EventLoop loop;
  Timeout fresh(1.0);
  REQUIRE_THROWS_WITH(fresh.reschedule(2.0), "Timeout has not been entered");
  REQUIRE_THROWS_WITH(fresh.enter(), "Timeout should be used inside a task");
  REQUIRE_THROWS_WITH(fresh.reschedule(2.0), "Timeout has not been entered");
  Timeout cm(loop.time() + 10);
  loop.run_until_complete(enter_twice(&cm));
}

Task<void> timeout_after_cancellation() {
  try {
    asyncuv::current_task().cancel();
    co_await asyncuv::sleep(1);
  } catch (const CancelledError&) {
  }
  // The task still counts one cancellation request; the timeout is measured against it.
  CHECK(asyncuv::current_task().cancelling() == 1);
  std::string r =
      co_await raised<TimeoutError>(asyncuv::timeout(0.0, []() { return asyncuv::sleep(1); }));
  CHECK(r == "caught: ");
  r = co_await raised<CancelledError>(asyncuv::timeout(1.0, []() -> Task<void> {
    asyncuv::current_task().cancel();
    return asyncuv::sleep(2);
  }));
  CHECK(r == "caught: ");
}

TEST_CASE(
    "timeout: after a swallowed cancellation (test_timeout_after_cancellation, "
    "test_cancel_in_timeout_after_cancellation)",
    "[timeouts]") {
  EventLoop loop;
  loop.run_until_complete(timeout_after_cancellation());
}

Task<std::vector<std::string>> nested_timeout_in_cleanup() {
  std::vector<std::string> log;
  std::string outer = co_await raised<TimeoutError>(asyncuv::timeout(0.01, [&log]() -> Task<void> {
    std::exception_ptr error;
    try {
      co_await asyncuv::sleep(1);
    } catch (...) {
      error = std::current_exception();
    }
    // "finally": a timeout used during the clean-up of the cancelled block.
    log.push_back("cleanup: " + co_await raised<TimeoutError>(
                                    asyncuv::timeout(0.01, []() { return asyncuv::sleep(10); })));
    if (error) std::rethrow_exception(error);
  }));
  log.push_back("outer: " + outer);
  co_return log;
}

TEST_CASE(
    "timeout: a timeout inside the clean-up of an expired one (test_nested_timeout_in_"
    "finally)",
    "[timeouts]") {
  EventLoop loop;
  CHECK(loop.run_until_complete(nested_timeout_in_cleanup()) ==
        std::vector<std::string>{"cleanup: caught: ", "outer: caught: "});
}

}  // namespace
