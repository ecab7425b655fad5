// Semantics 66: TaskGroup.cancel() (3.15, gh-108951): a non-exceptional early exit.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <string>
#include <vector>

#include "loop_support.hpp"

using asyncuv::CancelledError;
using asyncuv::EventLoop;
using asyncuv::Task;
using asyncuv::TaskGroup;

namespace {
Task<void> sleeper(std::vector<std::string>* log, std::string name) {
  try {
    co_await asyncuv::sleep(3600);
  } catch (const CancelledError&) {
    log->push_back(name + " cancelled");
    throw;
  }
}
}  // namespace

TEST_CASE("66: TaskGroup.cancel() from a child stops the children and the body, no error",
          "[taskgroup][tg-cancel]") {
  EventLoop loop;
  std::vector<std::string> log;
  auto body = [&]() -> Task<std::string> {
    auto group_body = [&](TaskGroup& tg) -> Task<void> {
      tg.create_task(sleeper(&log, "a"));
      tg.create_task(sleeper(&log, "b"));
      auto stopper = [](TaskGroup g) -> Task<void> {
        co_await asyncuv::sleep(0);
        g.cancel();
        g.cancel();  // idempotent
      };
      tg.create_task(stopper(tg));
      try {
        co_await asyncuv::sleep(3600);
      } catch (const CancelledError&) {
        log.push_back("body cancelled");
        throw;
      }
    };
    co_await asyncuv::task_group(group_body);
    CHECK(asyncuv::current_task().cancelling() == 0);
    co_return "exited normally";
  };
  CHECK(test_support::run_task(loop, body()) == "exited normally");
  CHECK(log.size() == 3);
}

TEST_CASE("66: TaskGroup.cancel() before entry cancels on entry; after exit it does nothing",
          "[taskgroup][tg-cancel]") {
  EventLoop loop;
  std::vector<std::string> log;
  auto body = [&]() -> Task<std::string> {
    TaskGroup tg;
    tg.cancel();
    tg.enter();
    std::exception_ptr error;
    try {
      tg.create_task(sleeper(&log, "child"));
    } catch (...) {
      error = std::current_exception();  // "is shutting down": the group is cancelled
    }
    try {
      co_await asyncuv::sleep(3600);
    } catch (...) {
      error = std::current_exception();
    }
    co_await tg.exit(error);
    tg.cancel();  // after exit: nothing
    co_await asyncuv::sleep(0);
    co_return "done";
  };
  CHECK(test_support::run_task(loop, body()) == "done");
}

TEST_CASE("66: TaskGroup.cancel() from the body while children run; errors still win",
          "[taskgroup][tg-cancel]") {
  EventLoop loop;
  std::vector<std::string> log;
  auto quiet = [&]() -> Task<void> {
    auto group_body = [&](TaskGroup& tg) -> Task<void> {
      tg.create_task(sleeper(&log, "a"));
      co_await asyncuv::sleep(0);
      tg.cancel();
    };
    co_await asyncuv::task_group(group_body);
  };
  test_support::run_task(loop, quiet());
  CHECK(log == std::vector<std::string>{"a cancelled"});

  auto failing = [&]() -> Task<void> {
    auto group_body = [&](TaskGroup& tg) -> Task<void> {
      auto bad = []() -> Task<void> {
        try {
          co_await asyncuv::sleep(3600);
        } catch (const CancelledError&) {
          throw std::runtime_error("cleanup failed");
        }
      };
      tg.create_task(bad());
      co_await asyncuv::sleep(0);
      tg.cancel();
    };
    co_await asyncuv::task_group(group_body);
  };
  CHECK_THROWS_AS(test_support::run_task(loop, failing()), asyncuv::ExceptionGroup);
}

TEST_CASE("66: an outside cancellation still propagates through a cancel()ed group",
          "[taskgroup][tg-cancel]") {
  EventLoop loop;
  std::vector<std::string> log;
  auto body = [&]() -> Task<void> {
    auto group_body = [&](TaskGroup& tg) -> Task<void> {
      tg.create_task(sleeper(&log, "a"));
      asyncuv::current_task().cancel();  // from outside the group
      tg.cancel();
      co_await asyncuv::sleep(0);
    };
    co_await asyncuv::task_group(group_body);
  };
  Task<void> t = loop.create_task(body());
  CHECK_THROWS_AS(test_support::run_task(loop, t), CancelledError);
  CHECK(t.cancelled());
}
