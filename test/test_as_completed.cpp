// Semantics 65: as_completed (3.13): plain iteration yields awaitables of the results in
// completion order, the async form the original tasks; timeout raises TimeoutError, cancels
// nothing.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <stdexcept>
#include <vector>

#include "loop_support.hpp"

using asyncuv::EventLoop;
using asyncuv::Future;
using asyncuv::Task;

namespace {
Task<int> after(double delay, int v) {
  co_await asyncuv::sleep(delay);
  co_return v;
}
}  // namespace

TEST_CASE("65: as_completed yields results in completion order", "[as_completed]") {
  EventLoop loop;
  auto body = [&]() -> Task<std::vector<int>> {
    std::vector<Future<int>> futures;
    for (int i = 0; i < 3; ++i)
      futures.push_back(loop.create_future<int>());
    std::vector<Future<int>> copy = futures;
    copy.push_back(futures[0]);  // a duplicate counts once
    auto it = asyncuv::as_completed(std::move(copy));
    CHECK(it.remaining() == 3);
    loop.call_soon([futures] { futures[2].set_result(2); });
    loop.call_soon([futures] { futures[0].set_result(0); });
    loop.call_soon([futures] { futures[1].set_exception(std::runtime_error("one")); });
    std::vector<int> order;
    for (Task<int> next : it) {
      try {
        order.push_back(co_await next);
      } catch (const std::runtime_error&) {
        order.push_back(-1);
      }
    }
    CHECK(it.remaining() == 0);
    co_return order;
  };
  CHECK(test_support::run_task(loop, body()) == std::vector<int>{2, 0, -1});
}

TEST_CASE("65: the async form yields the original tasks; coroutines become tasks",
          "[as_completed]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    Task<int> slow = loop.create_task(after(0.05, 1));
    std::vector<Task<int>> aws{slow, after(0, 2)};  // the second is not scheduled yet
    auto it = asyncuv::as_completed(std::move(aws));
    std::vector<int> got;
    while (auto t = co_await it.next()) {
      got.push_back(t->result());
      if (t->result() == 1) CHECK(*t == slow);
    }
    CHECK(got == std::vector<int>{2, 1});
    auto again = co_await it.next();
    CHECK_FALSE(again);
  };
  test_support::run_task(loop, body());
}

TEST_CASE("65: after the timeout every remaining await raises TimeoutError; nothing is cancelled",
          "[as_completed]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    Task<int> fast = loop.create_task(after(0, 1));
    Task<int> slow = loop.create_task(after(3600, 2));
    std::vector<Task<int>> aws{fast, slow};
    auto it = asyncuv::as_completed(std::move(aws), 0.02);
    std::vector<Task<int>> nexts;
    for (Task<int> next : it)
      nexts.push_back(next);
    REQUIRE(nexts.size() == 2);
    CHECK(co_await nexts[0] == 1);
    CHECK_THROWS_AS(co_await nexts[1], asyncuv::TimeoutError);
    CHECK_FALSE(slow.done());  // not cancelled
    slow.cancel();
  };
  test_support::run_task(loop, body());
}

TEST_CASE("65: bad input", "[as_completed]") {
  EventLoop loop;
  std::vector<Task<int>> empty_one{Task<int>()};
  CHECK_THROWS_AS(asyncuv::as_completed(std::move(empty_one)), asyncuv::TypeError);
  auto body = [&]() -> Task<void> {
    auto none = asyncuv::as_completed(std::vector<Future<int>>{});
    CHECK(none.remaining() == 0);
    CHECK(none.begin() == none.end());
    CHECK_THROWS_AS(none.next_result(), asyncuv::RuntimeError);
    auto end = co_await none.next();
    CHECK_FALSE(end);
  };
  test_support::run_task(loop, body());
}
