// Semantics 67: asyncio.Runner (3.11): one loop for several run() calls, asyncio.run's
// cleanup on close(), "Runner is closed" afterwards.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <memory>
#include <stdexcept>
#include <string>

using asyncuv::EventLoop;
using asyncuv::Runner;
using asyncuv::Task;

namespace {
Task<int> value(int v) {
  co_await asyncuv::sleep(0);
  co_return v;
}

Task<EventLoop*> running() {
  co_return &asyncuv::get_running_loop();
}

Task<void> forever(bool* cancelled) {
  try {
    co_await asyncuv::sleep(3600);
  } catch (const asyncuv::CancelledError&) {
    *cancelled = true;
    throw;
  }
}

Task<void> fails() {
  co_await asyncuv::sleep(0);
  throw std::runtime_error("boom");
}
}  // namespace

TEST_CASE("67: Runner.run() runs coroutines one after another on the same loop", "[runner]") {
  Runner runner;
  EventLoop& loop = runner.get_loop();
  CHECK(runner.run(value(1)) == 1);
  CHECK(runner.run(value(2)) == 2);
  CHECK(runner.run(running()) == &loop);
  CHECK(&runner.get_loop() == &loop);
  CHECK(&asyncuv::get_event_loop() == &loop);  // the thread's current loop meanwhile
  // An exception comes out of run(); the runner stays usable.
  CHECK_THROWS_WITH(runner.run(fails()), "boom");
  CHECK(runner.run(value(3)) == 3);
  runner.close();
  CHECK_THROWS_AS(asyncuv::get_event_loop(), asyncuv::RuntimeError);  // unset again
}

TEST_CASE("67: a task left pending by one run() goes on in the next and is cancelled by close()",
          "[runner]") {
  bool cancelled = false;
  Runner runner;
  auto start = [&]() -> Task<void> {
    asyncuv::get_running_loop().create_task(forever(&cancelled));
    co_return;
  };
  runner.run(start());
  CHECK(runner.run(value(4)) == 4);
  CHECK_FALSE(cancelled);
  runner.close();
  CHECK(cancelled);
}

TEST_CASE("67: close() closes the loop; run() and get_loop() then raise 'Runner is closed'",
          "[runner]") {
  std::shared_ptr<EventLoop> kept;  // the runner drops its loop on close(): keep one to look at
  Runner runner(std::nullopt, [&kept] {
    kept = asyncuv::new_event_loop();
    return kept;
  });
  runner.run(value(0));
  runner.close();
  CHECK(kept->is_closed());
  CHECK_THROWS_WITH(runner.run(value(1)), "Runner is closed");
  CHECK_THROWS_AS(runner.run(value(1)), asyncuv::RuntimeError);
  CHECK_THROWS_WITH(runner.get_loop(), "Runner is closed");
  runner.close();  // idempotent
}

TEST_CASE("67: close() before any use does nothing; the runner is still usable", "[runner]") {
  Runner runner;
  runner.close();
  CHECK(runner.run(value(5)) == 5);
}

TEST_CASE("67: run() from inside a running loop is RuntimeError", "[runner]") {
  Runner outer;
  Runner inner;
  auto nested = [&]() -> Task<std::string> {
    try {
      inner.run(value(1));
    } catch (const asyncuv::RuntimeError& e) {
      co_return e.what();
    }
    co_return "ran";
  };
  CHECK(outer.run(nested()) == "Runner.run() cannot be called from a running event loop");
}

TEST_CASE("67: debug and loop_factory", "[runner]") {
  {
    Runner runner(true);
    CHECK(runner.get_loop().get_debug());
  }
  {
    Runner runner(false);
    CHECK_FALSE(runner.get_loop().get_debug());
  }
  std::shared_ptr<EventLoop> made;
  {
    Runner runner(std::nullopt, [&made] {
      made = std::make_shared<EventLoop>();
      return made;
    });
    EventLoop& loop = runner.get_loop();  // made here: read `made` only afterwards
    CHECK(&loop == made.get());
    CHECK(runner.run(running()) == made.get());
    // A loop from the factory does not become the thread's current loop.
    CHECK_THROWS_AS(asyncuv::get_event_loop(), asyncuv::RuntimeError);
  }  // the destructor closes
  CHECK(made->is_closed());
}
