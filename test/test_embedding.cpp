// Embedding: an EventLoop adopting a uv_loop_t that the host program drives with its own
// uv_run (asyncio-semantics.md section 2, item 9: uvloop cannot do this, #593).
#include <catch2/catch.hpp>

#include <asyncuv/event_loop.hpp>
#include <asyncuv/events.hpp>
#include <asyncuv/exception_context.hpp>
#include <asyncuv/exceptions.hpp>
#include <asyncuv/futures.hpp>
#include <asyncuv/handle.hpp>
#include <asyncuv/tasks.hpp>

#include <uv.h>

#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using asyncuv::EventLoop;

namespace emb {

/// The host's own libuv loop, closed by the test (never by asyncuv).
struct HostLoop {
  uv_loop_t loop{};
  HostLoop() { REQUIRE(uv_loop_init(&loop) == 0); }
  /// Runs the host loop until nothing keeps it alive (close callbacks included), then closes it.
  ~HostLoop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    CHECK(rc == 0);
  }
};

/// A host-owned timer; `on_fire` runs in libuv's timer phase.
struct HostTimer {
  uv_timer_t* timer = new uv_timer_t{};
  std::function<void()> on_fire;

  explicit HostTimer(uv_loop_t* loop) {
    REQUIRE(uv_timer_init(loop, timer) == 0);
    timer->data = this;
  }
  void start(uint64_t ms, std::function<void()> fn) {
    on_fire = std::move(fn);
    uv_timer_start(
        timer, [](uv_timer_t* t) { static_cast<HostTimer*>(t->data)->on_fire(); }, ms, 0);
  }
  void stop() { uv_timer_stop(timer); }
  ~HostTimer() {
    uv_close(reinterpret_cast<uv_handle_t*>(timer),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
};

}  // namespace emb

TEST_CASE("Embedding: uv_loop() is the host loop and the EventLoop does not own it",
          "[embedding]") {
  emb::HostLoop host;
  {
    EventLoop loop(&host.loop);
    CHECK(loop.uv_loop() == &host.loop);
    CHECK_FALSE(loop.owns_uv_loop());
    CHECK_FALSE(loop.is_running());
    CHECK_FALSE(loop.is_closed());
  }
  EventLoop owning;
  CHECK(owning.owns_uv_loop());
  CHECK(owning.uv_loop() != nullptr);
  CHECK(owning.uv_loop() != &host.loop);
}

TEST_CASE("Embedding: EventLoop(nullptr) is a ValueError", "[embedding]") {
  REQUIRE_THROWS_AS(EventLoop(static_cast<uv_loop_t*>(nullptr)), asyncuv::ValueError);
}

TEST_CASE("Embedding: call_soon and call_later run while the host calls uv_run", "[embedding]") {
  emb::HostLoop host;
  std::vector<std::string> seen;
  bool running_inside = false;
  EventLoop* running_loop_inside = nullptr;
  {
    EventLoop loop(&host.loop);
    emb::HostTimer host_timer(&host.loop);
    loop.call_soon([&] {
      seen.push_back("a");
      running_inside = loop.is_running();
      running_loop_inside = &asyncuv::get_running_loop();
      // The host's timer schedules into the asyncuv loop, which schedules a timer of its own.
      host_timer.start(10, [&] {
        seen.push_back("host");
        loop.call_later(0.01, [&] {
          seen.push_back("b");
          loop.call_soon([&] { seen.push_back("c"); });
        });
      });
    });
    double start = loop.time();
    // The host's uv_run returns once neither it nor asyncuv has anything pending.
    uv_run(&host.loop, UV_RUN_DEFAULT);
    double elapsed = loop.time() - start;
    CHECK(seen == std::vector<std::string>{"a", "host", "b", "c"});
    CHECK(running_inside);
    CHECK(running_loop_inside == &loop);
    CHECK_FALSE(loop.is_running());
    CHECK(asyncuv::running_loop() == nullptr);
    CHECK(elapsed >= 0.015);  // 10 ms host timer, then a 10 ms asyncuv timer
    CHECK(elapsed < 10.0);
    loop.close();
  }
}

TEST_CASE("Embedding: close() leaves the host loop to free the handles", "[embedding]") {
  auto host = std::make_unique<uv_loop_t>();
  REQUIRE(uv_loop_init(host.get()) == 0);
  auto token = std::make_shared<int>(0);
  {
    EventLoop loop(host.get());
    loop.call_soon([token] {});
    loop.call_later(5, [token] {});
    loop.close();
    CHECK(loop.is_closed());
    CHECK(token.use_count() == 1);
    // asyncuv did not run the host loop: its handles are still closing.
    CHECK(uv_loop_close(host.get()) == UV_EBUSY);
    loop.close();  // idempotent
  }
  // The host's next iteration runs the close callbacks and frees everything (ASan checks).
  uv_run(host.get(), UV_RUN_DEFAULT);
  CHECK(uv_loop_close(host.get()) == 0);
}

TEST_CASE("Embedding: destroying an unclosed adopted loop closes it; the host frees it",
          "[embedding]") {
  auto host = std::make_unique<uv_loop_t>();
  REQUIRE(uv_loop_init(host.get()) == 0);
  int runs = 0;
  {
    EventLoop loop(host.get());
    loop.call_soon([&] { ++runs; });
    uv_run(host.get(), UV_RUN_NOWAIT);
    CHECK(runs == 1);
    loop.call_soon([&] { ++runs; });
  }
  uv_run(host.get(), UV_RUN_DEFAULT);
  CHECK(runs == 1);
  CHECK(uv_loop_close(host.get()) == 0);
}

TEST_CASE("Embedding: an idle adopted loop does not keep the host's uv_run alive", "[embedding]") {
  emb::HostLoop host;
  EventLoop loop(&host.loop);
  // Nothing scheduled: uv_run returns at once.
  double start = loop.time();
  CHECK(uv_run(&host.loop, UV_RUN_DEFAULT) == 0);
  CHECK(loop.time() - start < 1.0);
  // A cancelled timer does not keep it alive either.
  asyncuv::TimerHandle t = loop.call_later(30, [] {});
  t.cancel();
  start = loop.time();
  uv_run(&host.loop, UV_RUN_DEFAULT);
  CHECK(loop.time() - start < 10.0);
  loop.close();
}

TEST_CASE("Embedding: call_soon_threadsafe wakes the host's uv_run", "[embedding][threads]") {
  emb::HostLoop host;
  std::vector<std::string> seen;
  {
    EventLoop loop(&host.loop);
    emb::HostTimer keep_alive(&host.loop);
    keep_alive.start(20000, [&] { seen.push_back("keep_alive fired"); });
    std::thread other([&] {
      loop.call_soon_threadsafe([&] {
        seen.push_back("from thread");
        keep_alive.stop();
      });
    });
    double start = loop.time();
    uv_run(&host.loop, UV_RUN_DEFAULT);
    other.join();
    CHECK(loop.time() - start < 10.0);
    CHECK(seen == std::vector<std::string>{"from thread"});
    loop.close();
  }
}

TEST_CASE("Embedding: run_forever on an adopted loop also runs the host's handles", "[embedding]") {
  emb::HostLoop host;
  std::vector<std::string> seen;
  {
    EventLoop loop(&host.loop);
    emb::HostTimer host_timer(&host.loop);
    host_timer.start(5, [&] {
      seen.push_back("host");
      loop.call_soon([&] {
        seen.push_back("asyncuv");
        loop.stop();
      });
    });
    loop.run_forever();
    CHECK(seen == std::vector<std::string>{"host", "asyncuv"});
    CHECK_FALSE(loop.is_running());
    loop.close();
  }
}

TEST_CASE("Embedding: a fatal exception stops the host's uv_run; the batch's rest stays queued",
          "[embedding][fatal]") {
  emb::HostLoop host;
  std::vector<std::string> seen;
  {
    EventLoop loop(&host.loop);
    loop.call_soon([&] {
      seen.push_back("raise");
      throw asyncuv::KeyboardInterrupt();
    });
    loop.call_soon([&] { seen.push_back("rest"); });
    uv_run(&host.loop, UV_RUN_DEFAULT);
    CHECK(seen == std::vector<std::string>{"raise"});
    // The next run_forever() reports it.
    REQUIRE_THROWS_AS(loop.run_forever(), asyncuv::KeyboardInterrupt);
    CHECK_FALSE(loop.is_running());
    loop.stop();
    loop.run_forever();
    CHECK(seen == std::vector<std::string>{"raise", "rest"});
    loop.close();
  }
}

TEST_CASE("Embedding: a host's own uv_stop() does not end run_forever", "[embedding][stop]") {
  emb::HostLoop host;
  std::vector<std::string> seen;
  {
    EventLoop loop(&host.loop);
    emb::HostTimer host_timer(&host.loop);
    host_timer.start(1, [&] {
      seen.push_back("host uv_stop");
      uv_stop(&host.loop);
      loop.call_soon([&] {
        seen.push_back("still running");
        loop.call_soon([&] {
          seen.push_back("stop");
          loop.stop();
        });
      });
    });
    loop.run_forever();
    CHECK(seen == std::vector<std::string>{"host uv_stop", "still running", "stop"});
    loop.close();
  }
}

TEST_CASE("Embedding: while the host dispatches a batch the loop counts as running",
          "[embedding][reentrant]") {
  emb::HostLoop host;
  std::vector<std::string> errors;
  {
    EventLoop loop(&host.loop);
    loop.call_soon([&] {
      for (auto* what : {"close", "run_forever"}) {
        try {
          if (std::string(what) == "close") {
            loop.close();
          } else {
            loop.run_forever();
          }
        } catch (const asyncuv::RuntimeError& e) {
          errors.push_back(e.what());
        }
      }
    });
    uv_run(&host.loop, UV_RUN_DEFAULT);
    CHECK(errors == std::vector<std::string>{"Cannot close a running event loop",
                                             "This event loop is already running"});
    CHECK_FALSE(loop.is_closed());
    loop.close();
  }
}
