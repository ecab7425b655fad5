// loop.shutdown_asyncgens() and asyncuv::run's use of it (asyncio base_events; test_asyncgen.py
// and test_base_events.py): concurrent aclose of the open generators, failures reported to
// the exception handler, the warning for a generator first iterated afterwards.
#include <catch2/catch.hpp>

#include <asyncuv/async_generator.hpp>
#include <asyncuv/asyncuv.hpp>
#include <asyncuv/tasks.hpp>

#include <optional>
#include <string>
#include <vector>

#include "log_capture.hpp"
#include "loop_support.hpp"

using asyncuv::AnyAsyncGenerator;
using asyncuv::AsyncGenerator;
using asyncuv::EventLoop;
using asyncuv::ExceptionContext;
using asyncuv::Future;
using asyncuv::GeneratorExit;
using asyncuv::Task;
using asyncuv::ValueError;
using test_support::run_task;

namespace {

/// Waits at co_yield; when closed, signals `mine`, then waits for `other` before finishing:
/// two of them can only close if their aclose() calls run concurrently.
AsyncGenerator<int> waits_for_partner(Future<void> mine, Future<void> other, int* closed) {
  bool closing = false;
  try {
    co_yield 1;
  } catch (const GeneratorExit&) {
    closing = true;
  }
  if (closing) {
    mine.set_result();
    co_await other;
    ++*closed;
  }
}

AsyncGenerator<int> fails_to_close() {
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

Task<int> first_value(AsyncGenerator<int> gen) {
  std::optional<int> v = co_await gen.next();
  co_return *v;
}

TEST_CASE(
    "shutdown_asyncgens closes the open generators concurrently; an error goes to the "
    "exception handler",
    "[asyncgen]") {
  EventLoop loop;
  std::vector<ExceptionContext> reports;
  loop.set_exception_handler(
      [&reports](EventLoop&, const ExceptionContext& c) { reports.push_back(c); });
  Future<void> a_closing = loop.create_future<void>();
  Future<void> b_closing = loop.create_future<void>();
  int closed = 0;
  AsyncGenerator<int> a = waits_for_partner(a_closing, b_closing, &closed);
  AsyncGenerator<int> b = waits_for_partner(b_closing, a_closing, &closed);
  AsyncGenerator<int> c = fails_to_close();
  AsyncGenerator<int> never_iterated = fails_to_close();  // not tracked: never iterated
  CHECK(run_task(loop, first_value(a)) == 1);
  CHECK(run_task(loop, first_value(b)) == 1);
  CHECK(run_task(loop, first_value(c)) == 1);

  run_task(loop, loop.shutdown_asyncgens());
  CHECK(closed == 2);
  CHECK(a.closed());
  CHECK(b.closed());
  CHECK(c.closed());
  CHECK_FALSE(never_iterated.closed());
  REQUIRE(reports.size() == 1);
  const ExceptionContext& report = reports[0];
  CHECK(report.message() ==
        "an error occurred during closing of asynchronous generator " + c.repr());
  REQUIRE(report.exception());
  CHECK_THROWS_WITH(std::rethrow_exception(report.exception()), "cleanup failed");
  CHECK_THROWS_AS(std::rethrow_exception(report.exception()), ValueError);
  const auto* gen = report.get<AnyAsyncGenerator>("asyncgen");
  REQUIRE(gen != nullptr);
  CHECK(*gen == AnyAsyncGenerator(c));
  CHECK(gen->as<int>() == c);
  CHECK_FALSE(static_cast<bool>(gen->as<std::string>()));
  CHECK(report.items().size() == 3);
}

AsyncGenerator<int> counted(int* cleanups) {
  bool closing = false;
  try {
    co_yield 1;
    co_yield 2;
  } catch (const GeneratorExit&) {
    closing = true;
  }
  if (closing) {
    co_await asyncuv::sleep(0);
    ++*cleanups;
  }
}

TEST_CASE("shutdown_asyncgens: finished and closed generators are left alone", "[asyncgen]") {
  EventLoop loop;
  int handler_calls = 0;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { ++handler_calls; });
  int cleanups = 0;
  AsyncGenerator<int> closed_one = counted(&cleanups);
  CHECK(run_task(loop, first_value(closed_one)) == 1);
  run_task(loop, closed_one.aclose());
  CHECK(cleanups == 1);
  AsyncGenerator<int> finished = counted(&cleanups);
  auto drain = [](AsyncGenerator<int> g) -> Task<int> {
    int n = 0;
    while (co_await g.next())
      ++n;
    co_return n;
  };
  CHECK(run_task(loop, drain(finished)) == 2);
  run_task(loop, loop.shutdown_asyncgens());
  CHECK(cleanups == 1);
  CHECK(handler_calls == 0);
}

TEST_CASE(
    "shutdown_asyncgens: a generator first iterated afterwards logs a warning and is "
    "still tracked",
    "[asyncgen]") {
  EventLoop loop;
  run_task(loop, loop.shutdown_asyncgens());
  int cleanups = 0;
  AsyncGenerator<int> late = counted(&cleanups);
  {
    test_support::LogCapture capture;
    CHECK(run_task(loop, first_value(late)) == 1);
    std::vector<std::string> warnings;
    for (const auto& record : capture.records()) {
      if (record.level >= spdlog::level::warn) warnings.push_back(record.text);
    }
    CHECK(warnings == std::vector<std::string>{"asynchronous generator " + late.repr() +
                                               " was scheduled after loop.shutdown_asyncgens() "
                                               "call"});
  }
  // Tracked all the same: a second shutdown closes it.
  run_task(loop, loop.shutdown_asyncgens());
  CHECK(cleanups == 1);
  CHECK(late.closed());
}

TEST_CASE("asyncuv::run closes a generator left open by main", "[asyncgen]") {
  int cleanups = 0;
  std::optional<AsyncGenerator<int>> forgotten;
  auto main_coro = [](std::optional<AsyncGenerator<int>>* keep, int* count) -> Task<int> {
    *keep = counted(count);
    std::optional<int> v = co_await (*keep)->next();
    co_return *v;
  };
  CHECK(asyncuv::run(main_coro(&forgotten, &cleanups)) == 1);
  CHECK(cleanups == 1);  // the asynchronous part of its cleanup ran inside the loop
  CHECK(forgotten->closed());
}

/// Counts its destructions.
struct Guard {
  int* count;
  explicit Guard(int* c) : count(c) {}
  Guard(const Guard&) = delete;
  ~Guard() { ++*count; }
};

AsyncGenerator<int> guarded(int* destroyed) {
  Guard guard(destroyed);
  co_yield 1;
  co_yield 2;
}

TEST_CASE("asyncuv::run: a generator dropped by main while suspended is cleaned up once",
          "[asyncgen]") {
  int destroyed = 0;
  auto main_coro = [](int* count) -> Task<int> {
    AsyncGenerator<int> gen = guarded(count);
    std::optional<int> v = co_await gen.next();
    co_return *v;  // gen goes away suspended at its first co_yield
  };
  CHECK(asyncuv::run(main_coro(&destroyed)) == 1);
  CHECK(destroyed == 1);
}

}  // namespace
