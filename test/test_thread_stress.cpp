// Threads against the loop (issue 19): the scenarios the ThreadSanitizer stage
// (scripts/test-tsan) exists for, tagged [tsan]. They assert behaviour in every build; under
// TSan they must also run without a reported race.
#include <catch2/catch.hpp>

#include "loop_support.hpp"

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/event_loop.hpp>
#include <asyncuv/exceptions.hpp>
#include <asyncuv/process.hpp>
#include <asyncuv/tasks.hpp>
#include <asyncuv/threads.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

using asyncuv::EventLoop;
using asyncuv::Task;

TEST_CASE("5: call_soon_threadsafe from eight threads while the loop runs, stops and closes",
          "[threads][tsan]") {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  constexpr int kStopAfter = 5000;
  EventLoop loop;
  std::atomic<int> posted{0};
  std::atomic<int> refused{0};
  int ran = 0;  // loop thread only
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        try {
          loop.call_soon_threadsafe([&] {
            if (++ran == kStopAfter) loop.stop();
          });
          posted.fetch_add(1);
        } catch (const asyncuv::RuntimeError&) {
          refused.fetch_add(1);  // "Event loop is closed": this thread is done
          return;
        }
        if (i % 64 == 0) std::this_thread::yield();
      }
    });
  }
  test_support::run_with_watchdog(loop, 60.0);
  CHECK(ran >= kStopAfter);
  // The threads are still posting: close() drops what is queued and refuses the rest.
  loop.close();
  for (auto& t : threads)
    t.join();
  CHECK(ran <= posted.load());
  CHECK(posted.load() + refused.load() <= kThreads * kPerThread);
  CHECK_THROWS_AS(loop.call_soon_threadsafe([] {}), asyncuv::RuntimeError);
}

namespace {
Task<int> add_after_yields(int a, int b) {
  co_await asyncuv::sleep(0);
  co_await asyncuv::sleep(0.001);
  co_return a + b;
}
}  // namespace

TEST_CASE("run_coroutine_threadsafe from four threads, 50 coroutines each", "[threads][tsan]") {
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  EventLoop loop;
  std::atomic<int> finished_threads{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<int>> futures;
      for (int i = 0; i < kEach; ++i)
        futures.push_back(asyncuv::run_coroutine_threadsafe(add_after_yields(t, i), loop));
      for (int i = 0; i < kEach; ++i)
        if (futures[i].get() != t + i) wrong.fetch_add(1);
      if (finished_threads.fetch_add(1) + 1 == kThreads) {
        loop.call_soon_threadsafe([&] { loop.stop(); });
      }
    });
  }
  test_support::run_with_watchdog(loop, 60.0);
  for (auto& t : threads)
    t.join();
  CHECK(wrong.load() == 0);
  CHECK(finished_threads.load() == kThreads);
  loop.close();
}

namespace {
/// One thread's loop: a signal handler for its own signal, a subprocess, a DNS lookup.
Task<std::string> busy_loop_body(EventLoop& loop, int sig) {
  std::string log;
  asyncuv::Future<void> got_signal = loop.create_future<void>();
  loop.add_signal_handler(sig, [&got_signal] {
    if (!got_signal.done()) got_signal.set_result();
  });
  ::kill(::getpid(), sig);
  co_await got_signal;
  log += "signal ";

  auto starting = asyncuv::create_subprocess_exec({"sh", "-c", "exit 3"});
  asyncuv::Process proc = co_await std::move(starting);
  int rc = co_await proc.wait();
  log += "exit " + std::to_string(rc) + " ";

  auto resolving = loop.getaddrinfo("localhost", "80");
  auto infos = co_await std::move(resolving);
  log += infos.empty() ? "no-dns" : "dns";
  loop.remove_signal_handler(sig);
  co_return log;
}
}  // namespace

TEST_CASE("40. four loops in four threads, each with a signal, a subprocess and DNS",
          "[threads][signals][subprocess][dns][tsan]") {
  constexpr int kLoops = 4;
  std::vector<std::string> logs(kLoops);
  std::vector<std::thread> threads;
  for (int i = 0; i < kLoops; ++i) {
    threads.emplace_back([&logs, i] {
      // No Catch2 assertion in here: they are not thread-safe. A watchdog cancels a stuck run.
      EventLoop loop;
      try {
        Task<std::string> task = loop.create_task(busy_loop_body(loop, SIGRTMIN + 2 + i));
        asyncuv::TimerHandle watchdog = loop.call_later(60.0, [task]() mutable { task.cancel(); });
        logs[i] = loop.run_until_complete(task);
        watchdog.cancel();
      } catch (const std::exception& e) {
        logs[i] = std::string("failed: ") + e.what();
      }
      loop.close();
    });
  }
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < kLoops; ++i) {
    INFO("loop " << i);
    CHECK(logs[i] == "signal exit 3 dns");
  }
}
