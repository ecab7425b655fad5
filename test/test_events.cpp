// Per-thread loop functions (asyncio events.py): new_event_loop, get_event_loop,
// set_event_loop, get_running_loop / running_loop.
#include <catch2/catch.hpp>

#include <asyncuv/event_loop.hpp>
#include <asyncuv/events.hpp>
#include <asyncuv/exception_context.hpp>
#include <asyncuv/exceptions.hpp>
#include <asyncuv/futures.hpp>
#include <asyncuv/handle.hpp>
#include <asyncuv/tasks.hpp>

#include <memory>
#include <string>
#include <thread>

using asyncuv::EventLoop;

namespace evt {
/// Clears this thread's current loop when the test ends, whatever happens.
struct ResetCurrentLoop {
  ~ResetCurrentLoop() { asyncuv::set_event_loop(nullptr); }
};
}  // namespace evt

TEST_CASE("new_event_loop returns a fresh, open loop owning its uv loop", "[events]") {
  std::shared_ptr<EventLoop> a = asyncuv::new_event_loop();
  std::shared_ptr<EventLoop> b = asyncuv::new_event_loop();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a != b);
  CHECK(a->uv_loop() != b->uv_loop());
  CHECK(a->owns_uv_loop());
  CHECK_FALSE(a->is_closed());
  CHECK_FALSE(a->is_running());
  // new_event_loop does not make it the current loop.
  REQUIRE_THROWS_AS(asyncuv::get_event_loop(), asyncuv::RuntimeError);
  int runs = 0;
  a->call_soon([&] { ++runs; });
  a->stop();
  a->run_forever();
  CHECK(runs == 1);
}

TEST_CASE("get_running_loop outside a running loop: RuntimeError no running event loop",
          "[events]") {
  CHECK(asyncuv::running_loop() == nullptr);
  REQUIRE_THROWS_AS(asyncuv::get_running_loop(), asyncuv::RuntimeError);
  REQUIRE_THROWS_WITH(asyncuv::get_running_loop(), "no running event loop");

  // A loop that exists but is not running is not "running".
  EventLoop loop;
  CHECK(asyncuv::running_loop() == nullptr);
  REQUIRE_THROWS_WITH(asyncuv::get_running_loop(), "no running event loop");
}

TEST_CASE("inside a callback get_running_loop() is the loop; cleared afterwards", "[events]") {
  EventLoop loop;
  EventLoop* from_callback = nullptr;
  EventLoop* from_timer = nullptr;
  EventLoop* raw_from_callback = nullptr;
  loop.call_soon([&] {
    from_callback = &asyncuv::get_running_loop();
    raw_from_callback = asyncuv::running_loop();
  });
  loop.call_later(0.001, [&] {
    from_timer = &asyncuv::get_running_loop();
    loop.stop();
  });
  loop.run_forever();
  CHECK(from_callback == &loop);
  CHECK(raw_from_callback == &loop);
  CHECK(from_timer == &loop);
  CHECK(asyncuv::running_loop() == nullptr);
  REQUIRE_THROWS_WITH(asyncuv::get_running_loop(), "no running event loop");
}

TEST_CASE("the running loop is cleared when run_forever ends with an exception", "[events]") {
  EventLoop loop;
  loop.call_soon([] { throw asyncuv::KeyboardInterrupt(); });
  REQUIRE_THROWS_AS(loop.run_forever(), asyncuv::KeyboardInterrupt);
  CHECK(asyncuv::running_loop() == nullptr);
}

TEST_CASE("the running loop is per thread", "[events][threads]") {
  EventLoop loop;
  EventLoop* seen_in_other_thread = &loop;
  std::string other_error;
  loop.call_soon([&] {
    std::thread other([&] {
      seen_in_other_thread = asyncuv::running_loop();
      try {
        asyncuv::get_running_loop();
      } catch (const asyncuv::RuntimeError& e) {
        other_error = e.what();
      }
    });
    other.join();
    loop.stop();
  });
  loop.run_forever();
  CHECK(seen_in_other_thread == nullptr);
  CHECK(other_error == "no running event loop");
}

TEST_CASE("get_event_loop without a current loop throws; no loop is created implicitly",
          "[events]") {
  evt::ResetCurrentLoop reset;
  asyncuv::set_event_loop(nullptr);
  REQUIRE_THROWS_AS(asyncuv::get_event_loop(), asyncuv::RuntimeError);
  REQUIRE_THROWS_WITH(
      asyncuv::get_event_loop(),
      Catch::StartsWith("There is no current event loop in thread '") && Catch::EndsWith("'."));
  REQUIRE_THROWS_AS(asyncuv::get_event_loop(), asyncuv::RuntimeError);
}

TEST_CASE("set_event_loop makes get_event_loop return that loop, per thread", "[events]") {
  evt::ResetCurrentLoop reset;
  auto loop = asyncuv::new_event_loop();
  asyncuv::set_event_loop(loop);
  CHECK(&asyncuv::get_event_loop() == loop.get());
  CHECK(&asyncuv::get_event_loop() == loop.get());
  // Setting a loop does not make it running.
  CHECK(asyncuv::running_loop() == nullptr);

  // Another thread has its own (empty) current loop.
  bool other_threw = false;
  std::thread other([&] {
    try {
      asyncuv::get_event_loop();
    } catch (const asyncuv::RuntimeError&) {
      other_threw = true;
    }
  });
  other.join();
  CHECK(other_threw);

  auto second = asyncuv::new_event_loop();
  asyncuv::set_event_loop(second);
  CHECK(&asyncuv::get_event_loop() == second.get());

  asyncuv::set_event_loop(nullptr);
  REQUIRE_THROWS_AS(asyncuv::get_event_loop(), asyncuv::RuntimeError);
}

TEST_CASE("get_event_loop inside a callback is the running loop, not the current one", "[events]") {
  evt::ResetCurrentLoop reset;
  auto current = asyncuv::new_event_loop();
  asyncuv::set_event_loop(current);
  EventLoop running;
  EventLoop* seen = nullptr;
  running.call_soon([&] {
    seen = &asyncuv::get_event_loop();
    running.stop();
  });
  running.run_forever();
  CHECK(seen == &running);
  CHECK(&asyncuv::get_event_loop() == current.get());
}

TEST_CASE("set_event_loop keeps the loop alive until replaced", "[events]") {
  evt::ResetCurrentLoop reset;
  std::weak_ptr<EventLoop> weak;
  {
    auto loop = asyncuv::new_event_loop();
    weak = loop;
    asyncuv::set_event_loop(loop);
  }
  CHECK_FALSE(weak.expired());
  CHECK(&asyncuv::get_event_loop() == weak.lock().get());
  asyncuv::set_event_loop(nullptr);
  CHECK(weak.expired());
}
