// asyncio.Future semantics: scenarios 31-33 of asyncio-semantics.md.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using asyncuv::EventLoop;
using asyncuv::Future;

namespace {
/// Runs the loop until every callback scheduled so far (and what they schedule) has run.
void run_pending(EventLoop& loop, int iterations = 5) {
  for (int i = 0; i < iterations; ++i) {
    loop.stop();
    loop.run_forever();
  }
}

std::vector<int>* g_order = nullptr;
void record_one(Future<int>) {
  g_order->push_back(1);
}
void record_two(Future<int>) {
  g_order->push_back(2);
}
}  // namespace

TEST_CASE("31: result() and exception() while pending raise InvalidStateError", "[future]") {
  EventLoop loop;
  auto f = loop.create_future<int>();
  CHECK_FALSE(f.done());
  CHECK_FALSE(f.cancelled());
  REQUIRE_THROWS_AS(f.result(), asyncuv::InvalidStateError);
  REQUIRE_THROWS_WITH(f.result(), "Result is not set.");
  REQUIRE_THROWS_WITH(f.exception(), "Exception is not set.");
  CHECK(f.repr() == "<Future pending>");
}

TEST_CASE("31: set_result once; a second set_result or set_exception is InvalidStateError",
          "[future]") {
  EventLoop loop;
  auto f = loop.create_future<int>();
  f.set_result(42);
  CHECK(f.done());
  CHECK(f.result() == 42);
  CHECK(f.exception() == nullptr);
  REQUIRE_THROWS_AS(f.set_result(1), asyncuv::InvalidStateError);
  REQUIRE_THROWS_AS(f.set_exception(std::runtime_error("x")), asyncuv::InvalidStateError);
  CHECK(f.result() == 42);
  CHECK(f.repr() == "<Future finished result=42>");
  CHECK_FALSE(f.cancel());
}

TEST_CASE("31: cancel() is true on a pending future, then false; result() raises CancelledError",
          "[future]") {
  EventLoop loop;
  auto f = loop.create_future<std::string>();
  CHECK(f.cancel("stop it"));
  CHECK(f.cancelled());
  CHECK(f.done());
  CHECK_FALSE(f.cancel("again"));
  REQUIRE_THROWS_AS(f.result(), asyncuv::CancelledError);
  REQUIRE_THROWS_WITH(f.result(), "stop it");
  REQUIRE_THROWS_AS(f.exception(), asyncuv::CancelledError);
  REQUIRE_THROWS_AS(f.set_result("late"), asyncuv::InvalidStateError);
  REQUIRE_THROWS_AS(f.set_exception(std::runtime_error("late")), asyncuv::InvalidStateError);
  CHECK(f.repr() == "<Future cancelled>");
}

TEST_CASE("31: an exception is rethrown by result() and returned by exception()", "[future]") {
  EventLoop loop;
  auto f = loop.create_future<void>();
  f.set_exception(asyncuv::ValueError("bad"));
  REQUIRE_THROWS_AS(f.result(), asyncuv::ValueError);
  REQUIRE_THROWS_WITH(f.result(), "bad");
  auto e = f.exception();
  REQUIRE(e != nullptr);
  REQUIRE_THROWS_AS(std::rethrow_exception(e), asyncuv::ValueError);
  REQUIRE_THROWS_AS(f.set_exception(std::exception_ptr{}), asyncuv::InvalidStateError);
  auto g = loop.create_future<void>();
  REQUIRE_THROWS_AS(g.set_exception(std::exception_ptr{}), asyncuv::TypeError);
  g.set_result();
  CHECK_NOTHROW(g.result());
}

TEST_CASE("32: done-callbacks run through call_soon, in registration order", "[future]") {
  EventLoop loop;
  auto f = loop.create_future<int>();
  std::vector<std::string> order;
  f.add_done_callback(
      [&](Future<int> done) { order.push_back("a" + std::to_string(done.result())); });
  f.add_done_callback(
      [&](Future<int> done) { order.push_back("b" + std::to_string(done.result())); });
  loop.call_soon([&] {
    f.set_result(7);
    order.push_back("set");  // callbacks are deferred: they run after this callback returns
  });
  run_pending(loop);
  CHECK(order == std::vector<std::string>{"set", "a7", "b7"});
}

TEST_CASE("32: a callback added to a done future is still deferred", "[future]") {
  EventLoop loop;
  auto f = loop.create_future<int>();
  f.set_result(1);
  bool ran = false;
  f.add_done_callback([&](Future<int>) { ran = true; });
  CHECK_FALSE(ran);
  run_pending(loop);
  CHECK(ran);
}

TEST_CASE("32: cancel() schedules the callbacks too", "[future]") {
  EventLoop loop;
  auto f = loop.create_future<int>();
  bool saw_cancelled = false;
  f.add_done_callback([&](Future<int> done) { saw_cancelled = done.cancelled(); });
  f.cancel();
  run_pending(loop);
  CHECK(saw_cancelled);
}

TEST_CASE("32: remove_done_callback returns how many were removed", "[future]") {
  EventLoop loop;
  std::vector<int> order;
  g_order = &order;
  auto f = loop.create_future<int>();
  f.add_done_callback(&record_one);
  f.add_done_callback(&record_two);
  f.add_done_callback(&record_one);
  auto id = f.add_done_callback([&](Future<int>) { order.push_back(3); });
  CHECK(f.remove_done_callback(&record_one) == 2);
  CHECK(f.remove_done_callback(&record_one) == 0);
  CHECK(f.remove_done_callback(id) == 1);
  CHECK(f.remove_done_callback(id) == 0);
  f.set_result(0);
  run_pending(loop);
  CHECK(order == std::vector<int>{2});
  g_order = nullptr;
}

TEST_CASE("32: copies share one state; get_loop() is the creating loop", "[future]") {
  EventLoop loop;
  auto f = loop.create_future<int>();
  Future<int> g = f;
  g.set_result(5);
  CHECK(f.done());
  CHECK(f.result() == 5);
  CHECK(f == g);
  CHECK(&f.get_loop() == &loop);
}

TEST_CASE("33: a future destroyed with an unretrieved exception is reported", "[future]") {
  EventLoop loop;
  std::vector<asyncuv::ExceptionContext> reports;
  loop.set_exception_handler(
      [&](EventLoop&, const asyncuv::ExceptionContext& c) { reports.push_back(c); });
  {
    auto f = loop.create_future<int>();
    f.set_exception(std::runtime_error("lost"));
  }
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].message() == "Future exception was never retrieved");
  REQUIRE(reports[0].exception() != nullptr);
  REQUIRE_THROWS_WITH(std::rethrow_exception(reports[0].exception()), "lost");
  CHECK(reports[0].contains("future"));

  {
    auto f = loop.create_future<int>();
    f.set_exception(std::runtime_error("seen"));
    CHECK(f.exception() != nullptr);  // retrieved: no report
  }
  {
    auto f = loop.create_future<int>();
    f.set_exception(std::runtime_error("seen"));
    REQUIRE_THROWS(f.result());  // retrieved through result()
  }
  CHECK(reports.size() == 1);
}

TEST_CASE("11: create_future works on a closed loop", "[future][closed]") {
  EventLoop loop;
  loop.close();
  auto f = loop.create_future<int>();
  CHECK_FALSE(f.done());
  f.set_result(3);  // no callbacks: nothing is scheduled
  CHECK(f.result() == 3);
}

TEST_CASE("futures pending in a closed loop's queue are released without leaks", "[future]") {
  auto loop = std::make_unique<EventLoop>();
  auto f = loop->create_future<std::string>();
  f.add_done_callback([](Future<std::string>) {});
  f.set_result("x");  // schedules the callback, which holds the future
  loop->close();      // discards it
  f = Future<std::string>();
  loop.reset();
  SUCCEED();
}
