// Semantics 60: a task whose coroutine raises while a cancellation is pending ends with the
// raised exception; only a normal return becomes a cancellation (asyncio's Task.__step).
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <stdexcept>
#include <string>

#include "loop_support.hpp"

using asyncuv::CancelledError;
using asyncuv::EventLoop;
using asyncuv::Task;
using asyncuv::TaskGroup;

namespace {
struct MyExc : std::runtime_error {
  MyExc() : std::runtime_error("my exc") {}
};

Task<void> cancels_itself_then_raises() {
  asyncuv::current_task().cancel();
  throw MyExc();
  co_return;
}

Task<int> cancels_itself_then_returns() {
  asyncuv::current_task().cancel();
  co_return 1;
}

// Catches the first cancellation; the second cancel() stays pending while it raises.
Task<void> catches_cancel_then_raises(asyncuv::Future<void>* gate) {
  try {
    co_await *gate;
  } catch (const CancelledError&) {
    asyncuv::current_task().cancel();  // pending again: must not swallow MyExc
    throw MyExc();
  }
}
}  // namespace

TEST_CASE("60: a coroutine that raises while a cancel is pending ends with its exception",
          "[task][cancel-raise]") {
  EventLoop loop;
  Task<void> t = loop.create_task(cancels_itself_then_raises());
  std::exception_ptr e = test_support::failure_of(loop, t);
  CHECK_FALSE(t.cancelled());
  REQUIRE(e);
  CHECK_THROWS_AS(std::rethrow_exception(e), MyExc);
  CHECK(t.cancelling() == 1);
}

TEST_CASE("60: a coroutine that returns while a cancel is pending is cancelled",
          "[task][cancel-raise]") {
  EventLoop loop;
  Task<int> t = loop.create_task(cancels_itself_then_returns());
  CHECK_THROWS_AS(test_support::run_task(loop, t), CancelledError);
  CHECK(t.cancelled());
}

TEST_CASE("60: catching the cancellation and raising with another cancel pending",
          "[task][cancel-raise]") {
  EventLoop loop;
  auto gate = loop.create_future<void>();
  Task<void> t = loop.create_task(catches_cancel_then_raises(&gate));
  loop.call_soon([t] { t.cancel(); });
  std::exception_ptr e = test_support::failure_of(loop, t);
  CHECK_FALSE(t.cancelled());
  REQUIRE(e);
  CHECK_THROWS_AS(std::rethrow_exception(e), MyExc);
}

namespace {
// CPython test_taskgroups case 18: the body catches the parent's cancellation and raises
// MyExc: the group ends with ExceptionGroup[MyExc] although the outer cancel stays requested.
Task<std::string> body_raises_after_outer_cancel() {
  try {
    co_await asyncuv::task_group([](TaskGroup& tg) -> Task<void> {
      tg.create_task(asyncuv::sleep(10));
      try {
        co_await asyncuv::sleep(10);
      } catch (const CancelledError&) {
        throw MyExc();
      }
    });
  } catch (const asyncuv::ExceptionGroup& group) {
    REQUIRE(group.exceptions().size() == 1);
    CHECK_THROWS_AS(std::rethrow_exception(group.exceptions()[0]), MyExc);
    CHECK(asyncuv::current_task().cancelling() == 1);
    throw;
  }
  co_return "not reached";
}
}  // namespace

TEST_CASE("60: TaskGroup surfaces ExceptionGroup when the body raises after an outer cancel",
          "[taskgroup][cancel-raise]") {
  EventLoop loop;
  Task<std::string> t = loop.create_task(body_raises_after_outer_cancel());
  loop.call_later(0.01, [t] { t.cancel(); });
  std::exception_ptr e = test_support::failure_of(loop, t);
  CHECK_FALSE(t.cancelled());
  REQUIRE(e);
  CHECK_THROWS_AS(std::rethrow_exception(e), asyncuv::ExceptionGroup);
}
