// asyncio's gather, wait_for, wait and shield (tasks.py; test_tasks.py, test_waitfor.py).
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <memory>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

using asyncuv::AnyTask;
using asyncuv::CancelledError;
using asyncuv::EventLoop;
using asyncuv::Future;
using asyncuv::Task;

namespace {

Task<int> value_after(double delay, int value) {
  co_await asyncuv::sleep(delay);
  co_return value;
}

Task<void> nothing_after(double delay) {
  co_await asyncuv::sleep(delay);
}

Task<int> fail_after(double delay, std::string message) {
  co_await asyncuv::sleep(delay);
  throw asyncuv::ValueError(message);
}

/// Sleeps; on cancellation records it in *log, then rethrows.
Task<int> sleeper(double delay, int value, std::vector<std::string>* log, std::string name) {
  try {
    co_await asyncuv::sleep(delay);
  } catch (const CancelledError&) {
    log->push_back(name + " cancelled");
    throw;
  }
  log->push_back(name + " done");
  co_return value;
}

/// Like sleeper, but finishes only once the test sets `gate`: it cannot complete early, however
/// late the loop's iterations run.
Task<int> gated(Future<void> gate, int value, std::vector<std::string>* log, std::string name) {
  try {
    co_await gate;
  } catch (const CancelledError&) {
    log->push_back(name + " cancelled");
    throw;
  }
  log->push_back(name + " done");
  co_return value;
}

/// Swallows a cancellation and returns `value` anyway.
Task<int> swallows_cancel(double delay, int value) {
  try {
    co_await asyncuv::sleep(delay);
  } catch (const CancelledError&) {
  }
  co_return value;
}

/// On cancellation, cleans up for `cleanup` seconds (recording it) and rethrows.
Task<int> slow_to_cancel(double cleanup, bool* cleaned) {
  try {
    co_await asyncuv::sleep(100);
  } catch (const CancelledError&) {
    *cleaned = false;
  }
  co_await asyncuv::sleep(cleanup);
  *cleaned = true;
  throw CancelledError();
}

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

template <class E>
std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const E& ex) {
    return ex.what();
  } catch (...) {
    return "<other type>";
  }
}

// ---- gather --------------------------------------------------------------------------------

Task<void> gather_mixed(EventLoop* loop) {
  Future<std::string> f = loop->create_future<std::string>();
  loop->call_later(0.01, [f] { f.set_result("later"); });
  auto [a, b, c] = co_await asyncuv::gather(value_after(0.02, 1), f, nothing_after(0.001));
  CHECK(a == 1);
  CHECK(b == "later");
  CHECK(c == std::monostate{});
}

TEST_CASE("gather: heterogeneous tasks and futures give a tuple in argument order",
          "[helpers][gather]") {
  EventLoop loop;
  loop.run_until_complete(gather_mixed(&loop));
}

Task<std::vector<int>> gather_vector() {
  std::vector<Task<int>> tasks;
  tasks.push_back(value_after(0.03, 1));
  tasks.push_back(value_after(0.01, 2));
  tasks.push_back(value_after(0.02, 3));
  co_return co_await asyncuv::gather(std::move(tasks));
}

TEST_CASE("gather: a vector of tasks gives the results in input order", "[helpers][gather]") {
  EventLoop loop;
  CHECK(loop.run_until_complete(gather_vector()) == std::vector<int>{1, 2, 3});
}

Task<void> gather_empty() {
  std::vector<int> none = co_await asyncuv::gather(std::vector<Task<int>>{});
  CHECK(none.empty());
  auto empty = asyncuv::gather();
  CHECK(empty.done());
  CHECK(std::tuple_size_v<std::decay_t<decltype(empty.result())>> == 0);
}

TEST_CASE("gather: no children gives an already finished future", "[helpers][gather]") {
  EventLoop loop;
  loop.run_until_complete(gather_empty());
}

TEST_CASE("gather: unscheduled coroutines become tasks, scheduled in argument order",
          "[helpers][gather]") {
  EventLoop loop;
  std::vector<std::string> order;
  auto record = [&order](std::string name) -> Task<void> {
    order.push_back(name);
    co_return;
  };
  auto main = [&]() -> Task<void> {
    co_await asyncuv::gather(record("a"), record("b"), record("c"));
  };
  loop.run_until_complete(main());
  CHECK(order == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("gather: children already done finish the gather at once", "[helpers][gather]") {
  EventLoop loop;
  auto f1 = loop.create_future<int>();
  auto f2 = loop.create_future<std::string>();
  f1.set_result(5);
  f2.set_result("x");
  auto g = asyncuv::gather(f1, f2);
  CHECK(g.done());
  CHECK(g.result() == std::make_tuple(5, std::string("x")));
  CHECK_FALSE(g.cancel());  // done: nothing to cancel
}

Task<void> gather_first_exception(std::vector<std::string>* log, Task<int>* slow_out) {
  EventLoop& loop = asyncuv::get_running_loop();
  // The slow child waits for a gate opened only after the check below (not for a timer).
  auto gate = loop.create_future<void>();
  Task<int> slow = loop.create_task(gated(gate, 7, log, "slow"));
  *slow_out = slow;
  try {
    co_await asyncuv::gather(fail_after(0.001, "bad"), slow);
    FAIL("gather did not raise");
  } catch (const asyncuv::ValueError& e) {
    CHECK(std::string(e.what()) == "bad");
  }
  CHECK_FALSE(slow.done());  // the other child keeps running
  gate.set_result();
  int seven = co_await slow;
  CHECK(seven == 7);
}

TEST_CASE("gather: the first exception propagates, the other children keep running",
          "[helpers][gather]") {
  EventLoop loop;
  std::vector<std::string> log;
  Task<int> slow;
  loop.run_until_complete(gather_first_exception(&log, &slow));
  CHECK(log == std::vector<std::string>{"slow done"});
  CHECK(slow.result() == 7);
}

Task<void> gather_collects(EventLoop* loop) {
  Task<int> doomed = loop->create_task(value_after(10, 0));
  loop->call_later(0.01, [doomed] { doomed.cancel("go away"); });
  auto [a, b, c, d] =
      co_await asyncuv::gather(asyncuv::return_exceptions, value_after(0.001, 1),
                               fail_after(0.002, "bad"), doomed, nothing_after(0.001));
  REQUIRE(a.index() == 0);
  CHECK(std::get<0>(a) == 1);
  REQUIRE(b.index() == 1);
  CHECK(what_of<asyncuv::ValueError>(std::get<1>(b)) == "bad");
  REQUIRE(c.index() == 1);
  CHECK(what_of<CancelledError>(std::get<1>(c)) == "go away");
  CHECK(d.index() == 0);
}

TEST_CASE("gather(return_exceptions): values, exceptions and cancellations as outcomes",
          "[helpers][gather]") {
  EventLoop loop;
  loop.run_until_complete(gather_collects(&loop));
}

Task<void> gather_vector_collects() {
  std::vector<Task<int>> tasks;
  tasks.push_back(fail_after(0.001, "first"));
  tasks.push_back(value_after(0.002, 2));
  auto out = co_await asyncuv::gather(asyncuv::return_exceptions, std::move(tasks));
  REQUIRE(out.size() == 2);
  CHECK(what_of<asyncuv::ValueError>(std::get<1>(out[0])) == "first");
  CHECK(std::get<0>(out[1]) == 2);
}

TEST_CASE("gather(return_exceptions) over a vector", "[helpers][gather]") {
  EventLoop loop;
  loop.run_until_complete(gather_vector_collects());
}

Task<std::string> gather_with_cancelled_child(EventLoop* loop, Future<void> gate,
                                              std::vector<std::string>* log, Task<int>* other_out) {
  Task<int> victim = loop->create_task(value_after(10, 1));
  // The sibling waits for a gate the test opens afterwards, so it is still running then.
  Task<int> other = loop->create_task(gated(gate, 2, log, "other"));
  *other_out = other;
  loop->call_later(0.01, [victim] { victim.cancel("child stop"); });
  try {
    co_await asyncuv::gather(victim, other);
  } catch (const CancelledError& e) {
    CHECK(asyncuv::current_task().cancelling() == 0);  // nobody cancelled this task
    CHECK_FALSE(other.done());
    co_return std::string("CancelledError: ") + e.what();
  }
  co_return "no error";
}

TEST_CASE("gather: a cancelled child makes the gather raise CancelledError", "[helpers][gather]") {
  EventLoop loop;
  Task<int> other;
  auto gate = loop.create_future<void>();
  std::vector<std::string> log;
  CHECK(loop.run_until_complete(gather_with_cancelled_child(&loop, gate, &log, &other)) ==
        "CancelledError: child stop");
  gate.set_result();
  CHECK(loop.run_until_complete(other) == 2);  // the sibling was not cancelled
  CHECK(log == std::vector<std::string>{"other done"});
}

Task<void> await_gather_of(std::vector<std::string>* log) {
  co_await asyncuv::gather(sleeper(10, 1, log, "a"), sleeper(10, 2, log, "b"));
}

TEST_CASE("gather: cancelling the task awaiting a gather cancels the children",
          "[helpers][gather]") {
  EventLoop loop;
  std::vector<std::string> log;
  Task<void> t = loop.create_task(await_gather_of(&log));
  // Cancel only once the children are asleep (a child cancelled before its first step never
  // runs, and logs nothing): t's first step creates them, they start in the next iteration,
  // which is also the one in which this sleep(0) ends.
  loop.run_until_complete(asyncuv::sleep(0));
  CHECK(log.empty());
  CHECK(t.cancel("outside"));
  REQUIRE_THROWS_AS(loop.run_until_complete(t), CancelledError);
  CHECK(t.cancelled());
  CHECK(log == std::vector<std::string>{"a cancelled", "b cancelled"});
}

TEST_CASE("gather: cancel() on the gathering future cancels the children", "[helpers][gather]") {
  EventLoop loop;
  std::vector<std::string> log;
  auto a = loop.create_task(sleeper(10, 1, &log, "a"));
  auto b = loop.create_task(sleeper(10, 2, &log, "b"));
  auto g = asyncuv::gather(a, b);
  loop.call_later(0.01, [g] { CHECK(g.cancel("halt")); });
  try {
    loop.run_until_complete(g);
    FAIL("no CancelledError");
  } catch (const CancelledError& e) {
    CHECK(std::string(e.what()) == "halt");
  }
  CHECK_FALSE(g.cancelled());  // asyncio: the gather finished with CancelledError
  CHECK(a.cancelled());
  loop.run_until_complete(asyncuv::sleep(0));
  CHECK(b.cancelled());
}

TEST_CASE(
    "gather(return_exceptions): cancelled from outside raises CancelledError after all "
    "children are done",
    "[helpers][gather]") {
  EventLoop loop;
  auto a = loop.create_task(swallows_cancel(10, 5));  // swallows the cancellation
  auto b = loop.create_task(value_after(10, 6));
  auto g = asyncuv::gather(asyncuv::return_exceptions, a, b);
  loop.call_later(0.01, [g] { CHECK(g.cancel()); });
  REQUIRE_THROWS_AS(loop.run_until_complete(g), CancelledError);
  CHECK(a.result() == 5);
  CHECK(b.cancelled());
}

// ---- wait_for ------------------------------------------------------------------------------

Task<int> wait_for_in_time() {
  co_return co_await asyncuv::wait_for(value_after(0.001, 3), 10.0);
}

Task<int> wait_for_no_limit() {
  co_return co_await asyncuv::wait_for(value_after(0.001, 4), std::nullopt);
}

TEST_CASE("wait_for: a result before the timeout; std::nullopt waits without limit",
          "[helpers][wait_for]") {
  EventLoop loop;
  CHECK(loop.run_until_complete(wait_for_in_time()) == 3);
  CHECK(loop.run_until_complete(wait_for_no_limit()) == 4);
}

Task<void> wait_for_times_out(Task<int> inner, bool* cleaned) {
  EventLoop& loop = asyncuv::get_running_loop();
  double t0 = loop.time();
  std::string outcome = co_await raised<asyncuv::TimeoutError>(asyncuv::wait_for(inner, 0.01));
  CHECK(outcome == "caught: ");
  CHECK(loop.time() - t0 < 5);
  CHECK(*cleaned);  // waited for the inner task to finish its cancellation
  CHECK(inner.cancelled());
  CHECK(asyncuv::current_task().cancelling() == 0);
}

TEST_CASE(
    "wait_for: on timeout the task is cancelled and waited for (test_waitfor "
    "waits_for_task_cancellation)",
    "[helpers][wait_for]") {
  EventLoop loop;
  bool cleaned = false;
  Task<int> inner = loop.create_task(slow_to_cancel(0.02, &cleaned));
  loop.run_until_complete(wait_for_times_out(inner, &cleaned));
}

Task<void> wait_for_coroutine_times_out(std::vector<std::string>* log) {
  try {
    co_await asyncuv::wait_for(sleeper(10, 1, log, "inner"), 0.01);
    FAIL("no TimeoutError");
  } catch (const asyncuv::TimeoutError& e) {
    CHECK(std::string(e.what()).empty());
  }
  // The calling task is not left cancelled: it goes on awaiting.
  co_await asyncuv::sleep(0.001);
  log->push_back("after");
}

TEST_CASE("wait_for: a coroutine is run inline and cancelled on timeout", "[helpers][wait_for]") {
  EventLoop loop;
  std::vector<std::string> log;
  loop.run_until_complete(wait_for_coroutine_times_out(&log));
  CHECK(log == std::vector<std::string>{"inner cancelled", "after"});
}

Task<int> wait_for_suppressed() {
  co_return co_await asyncuv::wait_for(swallows_cancel(10, 42), 0.01);
}

TEST_CASE(
    "wait_for: an inner coroutine that returns a value despite the timeout gives that "
    "value (test_wait_for_cancellation_race_condition)",
    "[helpers][wait_for]") {
  EventLoop loop;
  CHECK(loop.run_until_complete(wait_for_suppressed()) == 42);
}

Task<int> wait_for_task_int(Task<int> inner, double timeout) {
  co_return co_await asyncuv::wait_for(inner, timeout);
}

TEST_CASE(
    "wait_for: a task that swallows the timeout's cancellation gives its value "
    "(test_wait_for_cancel_suppressed)",
    "[helpers][wait_for]") {
  EventLoop loop;
  auto inner = loop.create_task(swallows_cancel(10, 9));
  CHECK(loop.run_until_complete(wait_for_task_int(inner, 0.01)) == 9);
  CHECK_FALSE(inner.cancelled());
}

/// A CPU-bound step: returns only once `duration` seconds passed since it started (no await in
/// between).
Task<int> busy_for(double duration, int value) {
  EventLoop& loop = asyncuv::get_running_loop();
  double until = loop.time() + duration;
  while (loop.time() < until) {
  }
  co_return value;
}

/// wait_for(*inner, timeout): *inner is read when this task first runs.
Task<int> wait_for_task_at(const Task<int>* inner, double timeout) {
  co_return co_await asyncuv::wait_for(*inner, timeout);
}

TEST_CASE(
    "wait_for: a result that arrives as the deadline passes is returned, not "
    "TimeoutError (3.12 semantics)",
    "[helpers][wait_for]") {
  EventLoop loop;
  // Deterministic by construction: the waiter's first step arms the deadline and suspends;
  // the inner task's only step runs right after it, in the same iteration, keeps going past
  // the deadline and completes. The waiter's wake-up is queued then, before the next
  // iteration moves the expired timer to the ready queue, so the result wins over the
  // timeout however late the iterations run.
  double start = loop.time();
  Task<int> inner;
  auto waiter = loop.create_task(wait_for_task_at(&inner, 0.2));
  inner = loop.create_task(busy_for(0.25, 8));
  CHECK(loop.run_until_complete(waiter) == 8);
  CHECK(loop.time() - start >= 0.25);
}

Task<void> set_flag(bool* flag) {
  *flag = true;
  co_return;
}

Task<void> wait_for_zero(EventLoop* loop, bool* started) {
  auto done = loop->create_future<std::string>();
  done.set_result("done");
  std::string value = co_await asyncuv::wait_for(done, 0);
  CHECK(value == "done");

  std::string outcome =
      co_await raised<asyncuv::TimeoutError>(asyncuv::wait_for(set_flag(started), 0));
  CHECK(outcome == "caught: ");

  std::vector<std::string> log;
  auto running = loop->create_task(sleeper(10, 1, &log, "running"));
  co_await asyncuv::sleep(0);
  outcome = co_await raised<asyncuv::TimeoutError>(asyncuv::wait_for(running, -1));
  CHECK(outcome == "caught: ");
  CHECK(running.cancelled());
  CHECK(log == std::vector<std::string>{"running cancelled"});
}

TEST_CASE("wait_for: timeout <= 0 (test_wait_for_timeout_less_then_0_or_0*)",
          "[helpers][wait_for]") {
  EventLoop loop;
  bool started = false;
  loop.run_until_complete(wait_for_zero(&loop, &started));
  CHECK_FALSE(started);
}

Task<void> never_done() {
  EventLoop& loop = asyncuv::get_running_loop();
  co_await loop.create_future<void>();
}

Task<void> wait_for_task(Task<void> t, std::optional<asyncuv::Seconds> timeout) {
  co_await asyncuv::wait_for(t, timeout);
}

TEST_CASE("wait_for: cancelling the waiter cancels the task (test_cancel_wait_for)",
          "[helpers][wait_for]") {
  EventLoop loop;
  for (std::optional<asyncuv::Seconds> timeout :
       {std::optional<asyncuv::Seconds>(60.0), std::optional<asyncuv::Seconds>()}) {
    auto inner = loop.create_task(never_done());
    auto waiter = loop.create_task(wait_for_task(inner, timeout));
    loop.call_soon([waiter] { waiter.cancel(); });
    REQUIRE_THROWS_AS(loop.run_until_complete(waiter), CancelledError);
    CHECK(inner.cancelled());
  }
}

Task<void> raise_during_cancel() {
  try {
    co_await asyncuv::sleep(10);
  } catch (const CancelledError&) {
  }
  throw asyncuv::ValueError("while cancelling");
}

Task<void> wait_for_reraises(EventLoop* loop) {
  auto inner = loop->create_task(raise_during_cancel());
  co_await asyncuv::wait_for(inner, 0.01);
}

TEST_CASE("wait_for: an exception raised during the cancellation propagates",
          "[helpers][wait_for]") {
  EventLoop loop;
  REQUIRE_THROWS_WITH(loop.run_until_complete(wait_for_reraises(&loop)), "while cancelling");
}

Task<bool> wait_for_then_sleep(Future<void> past_wait_for, bool* reached_end) {
  co_await asyncuv::wait_for(value_after(0, 1), 100);
  past_wait_for.set_result();
  co_await asyncuv::sleep(10);
  *reached_end = true;
  co_return true;
}

TEST_CASE("wait_for: a cancelled caller stays cancelled (test_wait_for_issue86296)",
          "[helpers][wait_for]") {
  EventLoop loop;
  bool reached_end = false;
  auto past_wait_for = loop.create_future<void>();
  auto t = loop.create_task(wait_for_then_sleep(past_wait_for, &reached_end));
  // wait_for has returned and t sleeps when the loop stops: cancel it there.
  loop.run_until_complete(past_wait_for);
  CHECK(t.cancel());
  REQUIRE_THROWS_AS(loop.run_until_complete(t), CancelledError);
  CHECK_FALSE(reached_end);
}

// ---- wait ----------------------------------------------------------------------------------

Task<void> wait_first_completed(EventLoop* loop) {
  auto fast = loop->create_task(value_after(0.01, 1));
  auto slow = loop->create_task(value_after(10, 2));
  // (Vectors built outside co_await expressions: GCC 12 mishandles initializer lists there.)
  std::vector<Task<int>> both{slow, fast};
  auto [done, pending] = co_await asyncuv::wait(both, std::nullopt, asyncuv::FIRST_COMPLETED);
  CHECK(done == std::vector<Task<int>>{fast});
  CHECK(pending == std::vector<Task<int>>{slow});
  CHECK_FALSE(slow.done());  // wait never cancels
  slow.cancel();
  std::vector<Task<int>> just_slow{slow};
  co_await asyncuv::wait(just_slow);
  CHECK(slow.cancelled());
}

TEST_CASE("wait: FIRST_COMPLETED", "[helpers][wait]") {
  EventLoop loop;
  loop.run_until_complete(wait_first_completed(&loop));
}

Task<void> wait_first_exception(EventLoop* loop) {
  auto ok = loop->create_task(value_after(0.001, 1));
  auto bad = loop->create_task(fail_after(0.02, "x"));
  auto slow = loop->create_task(value_after(10, 3));
  std::vector<AnyTask> all{ok, bad, slow};
  auto [done, pending] = co_await asyncuv::wait(all, 10.0, asyncuv::FIRST_EXCEPTION);
  CHECK(done == std::vector<AnyTask>{ok, bad});
  CHECK(pending == std::vector<AnyTask>{slow});
  slow.cancel();
  // ALL_COMPLETED: a cancelled task counts as completed.
  auto [all_done, none_pending] = co_await asyncuv::wait(all);
  CHECK(all_done.size() == 3);
  CHECK(none_pending.empty());
}

TEST_CASE("wait: FIRST_EXCEPTION and ALL_COMPLETED", "[helpers][wait]") {
  EventLoop loop;
  loop.run_until_complete(wait_first_exception(&loop));
}

Task<void> wait_times_out(EventLoop* loop) {
  auto slow = loop->create_task(value_after(10, 1));
  auto fut = loop->create_future<int>();
  double t0 = loop->time();
  std::vector<Task<int>> twice{slow, slow};
  auto [done, pending] = co_await asyncuv::wait(twice, 0.01);
  CHECK(loop->time() - t0 >= 0.01);
  CHECK(done.empty());
  CHECK(pending == std::vector<Task<int>>{slow});  // duplicates removed
  CHECK_FALSE(slow.done());
  slow.cancel();
  std::vector<Task<int>> just_slow{slow};
  co_await asyncuv::wait(just_slow);
  std::vector<Future<int>> just_fut{fut};
  auto [fdone, fpending] = co_await asyncuv::wait(just_fut, 0.001);
  CHECK(fpending.size() == 1);
  fut.set_result(1);
}

TEST_CASE("wait: a timeout returns what is pending, without TimeoutError or cancelling",
          "[helpers][wait]") {
  EventLoop loop;
  loop.run_until_complete(wait_times_out(&loop));
}

Task<void> wait_bad_arguments() {
  std::vector<Task<int>> none;
  std::vector<Task<int>> coroutine;
  coroutine.push_back(value_after(0, 1));
  try {
    co_await asyncuv::wait(none);
    FAIL("no ValueError");
  } catch (const asyncuv::ValueError& e) {
    CHECK(std::string(e.what()) == "Set of Tasks/Futures is empty.");
  }
  try {
    co_await asyncuv::wait(coroutine);
    FAIL("no TypeError");
  } catch (const asyncuv::TypeError& e) {
    CHECK(std::string(e.what()) == "Passing coroutines is forbidden, use tasks explicitly.");
  }
}

TEST_CASE("wait: empty input is ValueError; coroutines are TypeError", "[helpers][wait]") {
  EventLoop loop;
  loop.run_until_complete(wait_bad_arguments());
}

// ---- shield --------------------------------------------------------------------------------

Task<int> await_shielded(Task<int> inner) {
  co_return co_await asyncuv::shield(inner);
}

TEST_CASE("shield: cancelling the awaiting task leaves the inner task running",
          "[helpers][shield]") {
  EventLoop loop;
  // The inner task waits for a gate the test opens only after the outer task is cancelled, so
  // the outcome does not depend on timing.
  auto gate = loop.create_future<int>();
  auto wait_for_gate = [](asyncuv::Future<int> g) -> Task<int> { co_return co_await g; };
  auto inner = loop.create_task(wait_for_gate(gate));
  auto outer = loop.create_task(await_shielded(inner));
  loop.call_soon([outer] { outer.cancel(); });
  REQUIRE_THROWS_AS(loop.run_until_complete(outer), CancelledError);
  CHECK(outer.cancelled());
  CHECK_FALSE(inner.done());
  gate.set_result(11);
  CHECK(loop.run_until_complete(inner) == 11);
}

TEST_CASE("shield: results, exceptions and cancellation of the inner task pass through",
          "[helpers][shield]") {
  EventLoop loop;
  CHECK(loop.run_until_complete(asyncuv::shield(loop.create_task(value_after(0.001, 5)))) == 5);
  REQUIRE_THROWS_WITH(
      loop.run_until_complete(asyncuv::shield(loop.create_task(fail_after(0, "e")))), "e");
  auto inner = loop.create_task(value_after(10, 1));
  auto outer = asyncuv::shield(inner);
  loop.call_later(0.01, [inner] { inner.cancel(); });
  REQUIRE_THROWS_AS(loop.run_until_complete(outer), CancelledError);
  CHECK(outer.cancelled());
  // Cancelling the shield itself does not touch the inner task.
  auto inner2 = loop.create_task(value_after(0.02, 2));
  auto outer2 = asyncuv::shield(inner2);
  CHECK(outer2.cancel());
  CHECK(loop.run_until_complete(inner2) == 2);
  // An inner already done gives a finished future at once.
  auto f = loop.create_future<int>();
  f.set_result(3);
  auto outer3 = asyncuv::shield(f);
  CHECK(outer3.done());
  CHECK(outer3.result() == 3);
}

}  // namespace
