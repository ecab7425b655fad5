// Executors: scenario 59 of asyncio-semantics.md (run_in_executor, the default executor,
// ThreadPoolExecutor, shutdown_default_executor, asyncuv::run's executor shutdown).
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "log_capture.hpp"

using asyncuv::EventLoop;
using asyncuv::Future;
using asyncuv::Task;
using asyncuv::ThreadPoolExecutor;
using asyncuv::TimerHandle;

namespace executors_test {

/// A one-shot gate jobs wait on (for at most 30 s, so a bug cannot hang the suite).
class Gate {
 public:
  void open() {
    if (!opened_.exchange(true)) promise_.set_value();
  }
  /// True if the gate was opened, false after the 30 s limit.
  bool wait() const {
    return future_.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  }

 private:
  std::atomic<bool> opened_{false};
  std::promise<void> promise_;
  std::shared_future<void> future_ = promise_.get_future().share();
};

/// run_until_complete with a watchdog: a task that does not finish within `limit` seconds makes
/// it throw ("Event loop stopped before Future completed.") instead of hanging.
template <class T>
T run_guarded(EventLoop& loop, Task<T> task, double limit = 30) {
  TimerHandle watchdog = loop.call_later(limit, [&loop] { loop.stop(); });
  struct Disarm {
    TimerHandle& timer;
    ~Disarm() { timer.cancel(); }
  } disarm{watchdog};
  return loop.run_until_complete(std::move(task));
}
template <class T>
T run_guarded(EventLoop& loop, Future<T> future, double limit = 30) {
  TimerHandle watchdog = loop.call_later(limit, [&loop] { loop.stop(); });
  struct Disarm {
    TimerHandle& timer;
    ~Disarm() { timer.cancel(); }
  } disarm{watchdog};
  return loop.run_until_complete(std::move(future));
}

/// A custom executor: every job on a thread of its own.
class ThreadPerJobExecutor final : public asyncuv::Executor {
 public:
  ~ThreadPerJobExecutor() override { shutdown(true, false); }
  void submit(asyncuv::Work work) override {
    std::lock_guard lock(mutex_);
    if (shut_) throw asyncuv::RuntimeError("cannot schedule new futures after shutdown");
    threads_.emplace_back(std::move(work));
    ++submitted;
  }
  void shutdown(bool wait, bool) override {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      shut_ = true;
      if (wait) threads.swap(threads_);
    }
    for (std::thread& t : threads)
      t.join();
  }
  std::atomic<int> submitted{0};

 private:
  std::mutex mutex_;
  std::vector<std::thread> threads_;
  bool shut_ = false;
};

asyncuv::detail::ExecutorService* executors_of(EventLoop& loop) {
  return loop.find_service<asyncuv::detail::ExecutorService>();
}

Task<std::string> await_error(EventLoop& loop) {
  auto fails = []() -> int { throw asyncuv::ValueError("bad value"); };
  try {
    co_await loop.run_in_executor(nullptr, fails);
  } catch (const asyncuv::ValueError& e) {
    co_return std::string("ValueError: ") + e.what();
  }
  co_return "no exception";
}

Task<long> sum_of_squares(EventLoop& loop, int jobs) {
  std::vector<Future<long>> futures;
  auto square = [](long i) { return i * i; };
  for (int i = 0; i < jobs; ++i)
    futures.push_back(loop.run_in_executor(nullptr, square, static_cast<long>(i)));
  long total = 0;
  for (int i = 0; i < jobs; ++i) {
    long value = co_await futures[static_cast<std::size_t>(i)];
    if (value != static_cast<long>(i) * i) co_return -1;
    total += value;
  }
  co_return total;
}

Task<void> await_void(EventLoop& loop, std::atomic<int>& counter) {
  auto bump = [&counter] { ++counter; };
  co_await loop.run_in_executor(nullptr, bump);
  co_await loop.run_in_executor(nullptr, bump);
}

Task<void> shutdown_then_use(EventLoop& loop, std::shared_ptr<ThreadPoolExecutor> pool,
                             std::vector<std::string>& log) {
  auto one = [] { return 1; };
  int first = co_await loop.run_in_executor(nullptr, one);
  log.push_back("default " + std::to_string(first));
  co_await loop.shutdown_default_executor();
  log.push_back("shut down");
  try {
    (void)loop.run_in_executor(nullptr, one);
    log.push_back("default accepted");
  } catch (const asyncuv::RuntimeError& e) {
    log.push_back(e.what());
  }
  int explicit_result = co_await loop.run_in_executor(pool, one);
  log.push_back("explicit " + std::to_string(explicit_result));
  co_await loop.shutdown_default_executor();
  log.push_back("shut down again");
}

Task<void> shutdown_while_job_blocks(EventLoop& loop, Gate& gate, std::vector<std::string>& log) {
  Task<void> shutdown = loop.create_task(loop.shutdown_default_executor());
  co_await asyncuv::sleep(0);
  co_await asyncuv::sleep(0);
  // The loop still runs callbacks and coroutines while the executor is being joined.
  log.push_back(shutdown.done() ? "shutdown done early" : "loop running, shutdown pending");
  gate.open();
  co_await shutdown;
  log.push_back("shutdown done");
}

Task<double> shutdown_with_timeout(EventLoop& loop, double timeout) {
  double start = loop.time();
  co_await loop.shutdown_default_executor(timeout);
  co_return loop.time() - start;
}

Task<void> cancel_before_start(EventLoop& loop, std::shared_ptr<ThreadPoolExecutor> pool,
                               Gate& gate, std::atomic<bool>& second_ran, std::string& outcome) {
  auto blocker = [&gate] { return gate.wait(); };
  auto second = [&second_ran] {
    second_ran = true;
    return 2;
  };
  Future<bool> first = loop.run_in_executor(pool, blocker);
  Future<int> queued = loop.run_in_executor(pool, second);
  queued.cancel();
  co_await asyncuv::sleep(0);  // the cancellation reaches the job
  gate.open();
  bool opened = co_await first;
  try {
    co_await queued;
    outcome = "not cancelled";
  } catch (const asyncuv::CancelledError&) {
    outcome = opened ? "cancelled" : "gate timed out";
  }
}

Task<void> run_main_with_default(std::shared_ptr<asyncuv::Executor>& seen, Gate& gate,
                                 std::atomic<bool>& finished) {
  EventLoop& loop = asyncuv::get_running_loop();
  auto blocked = [&gate, &finished] {
    gate.wait();
    finished = true;
  };
  // Started and never awaited: asyncuv::run must wait for it while joining the executor.
  (void)loop.run_in_executor(nullptr, blocked);
  seen = executors_of(loop)->current_default();
  // Opens the gate once run() is already shutting the executor down: the loop still runs then.
  loop.call_later(0.02, [&gate] { gate.open(); });
  co_return;
}

Task<int> run_main_with_pool(std::shared_ptr<ThreadPoolExecutor> pool) {
  EventLoop& loop = asyncuv::get_running_loop();
  loop.set_default_executor(pool);
  auto seven = [] { return 7; };
  co_return co_await loop.run_in_executor(nullptr, seven);
}

}  // namespace executors_test

using namespace executors_test;

TEST_CASE("59. run_in_executor returns a Future of this loop with the callable's result",
          "[executor]") {
  EventLoop loop;
  auto add = [](int a, const std::string& b) { return b + std::to_string(a); };
  Future<std::string> f = loop.run_in_executor(nullptr, add, 2, std::string("x"));
  CHECK(&f.get_loop() == &loop);
  CHECK(run_guarded(loop, f) == "x2");

  // The job runs on another thread; arguments are stored by value, move-only ones too.
  auto where = [](std::unique_ptr<int> p) {
    return std::make_pair(std::this_thread::get_id(), *p);
  };
  auto holder = [where](std::unique_ptr<int>& p) { return where(std::move(p)); };
  auto pair = run_guarded(loop, loop.run_in_executor(nullptr, holder, std::make_unique<int>(5)));
  CHECK(pair.first != std::this_thread::get_id());
  CHECK(pair.second == 5);

  // A reference result is copied into the Future.
  static const std::string text = "kept";
  auto ref = []() -> const std::string& { return text; };
  Future<std::string> copied = loop.run_in_executor(nullptr, ref);
  CHECK(run_guarded(loop, copied) == "kept");
}

TEST_CASE("59. void jobs complete their Future<void>", "[executor]") {
  EventLoop loop;
  std::atomic<int> counter{0};
  run_guarded(loop, await_void(loop, counter));
  CHECK(counter == 2);
  auto nothing = [] {};
  Future<void> f = loop.run_in_executor(nullptr, nothing);
  run_guarded(loop, f);
  CHECK(f.done());
  CHECK_FALSE(f.cancelled());
}

TEST_CASE("59. an exception thrown by the job propagates through co_await", "[executor]") {
  EventLoop loop;
  CHECK(run_guarded(loop, await_error(loop)) == "ValueError: bad value");

  struct Custom : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  auto custom = []() -> int { throw Custom("custom failure"); };
  Future<int> f = loop.run_in_executor(nullptr, custom);
  REQUIRE_THROWS_AS(run_guarded(loop, f), Custom);
  REQUIRE_THROWS_WITH(f.result(), "custom failure");
}

TEST_CASE("59. a thousand concurrent jobs each deliver their own result", "[executor]") {
  EventLoop loop;
  long expected = 0;
  for (long i = 0; i < 1000; ++i)
    expected += i * i;
  CHECK(run_guarded(loop, sum_of_squares(loop, 1000)) == expected);
}

TEST_CASE("59. ThreadPoolExecutor never runs more than max_workers jobs at once", "[executor]") {
  auto pool = std::make_shared<ThreadPoolExecutor>(3);
  CHECK(pool->max_workers() == 3);
  CHECK(ThreadPoolExecutor().max_workers() ==
        std::min<std::size_t>(32, std::max(1u, std::thread::hardware_concurrency()) + 4));

  EventLoop loop;
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::mutex ids_mutex;
  std::set<std::thread::id> ids;
  auto job = [&](int i) {
    int now = ++running;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    {
      std::lock_guard lock(ids_mutex);
      ids.insert(std::this_thread::get_id());
    }
    // Some work, so that jobs overlap (the check below holds however they are scheduled).
    volatile long sink = 0;
    for (long k = 0; k < 200000; ++k)
      sink = sink + k * i;
    --running;
    return i;
  };
  std::vector<Future<int>> futures;
  for (int i = 0; i < 60; ++i)
    futures.push_back(loop.run_in_executor(pool, job, i));
  for (int i = 0; i < 60; ++i)
    REQUIRE(run_guarded(loop, futures[static_cast<std::size_t>(i)]) == i);
  CHECK(most.load() >= 1);
  CHECK(most.load() <= 3);
  CHECK(ids.size() <= 3);
  CHECK(pool->thread_count() <= 3);
  pool->shutdown();
  CHECK(pool->thread_count() == 0);
}

TEST_CASE("59. ThreadPoolExecutor starts threads lazily, one only when none is idle",
          "[executor]") {
  Gate gate;
  auto pool = std::make_shared<ThreadPoolExecutor>(4);
  CHECK(pool->thread_count() == 0);
  std::atomic<int> done{0};
  pool->submit([&] {
    gate.wait();
    ++done;
  });
  CHECK(pool->thread_count() == 1);
  // The only thread is busy with the first job: a second job needs a second thread.
  pool->submit([&] {
    gate.wait();
    ++done;
  });
  CHECK(pool->thread_count() == 2);
  gate.open();
  pool->shutdown(true);
  CHECK(done == 2);
  CHECK(pool->thread_count() == 0);
  REQUIRE_THROWS_AS(pool->submit([] {}), asyncuv::RuntimeError);
  REQUIRE_THROWS_WITH(pool->submit([] {}), "cannot schedule new futures after shutdown");
  pool->shutdown(true);  // again: harmless
}

TEST_CASE("59. the default executor is created on first use and reused", "[executor]") {
  EventLoop loop;
  CHECK(executors_of(loop) == nullptr);
  auto id = [] { return std::this_thread::get_id(); };
  run_guarded(loop, loop.run_in_executor(nullptr, id));
  REQUIRE(executors_of(loop) != nullptr);
  std::shared_ptr<asyncuv::Executor> first = executors_of(loop)->current_default();
  REQUIRE(first != nullptr);
  auto pool = std::dynamic_pointer_cast<ThreadPoolExecutor>(first);
  REQUIRE(pool != nullptr);
  CHECK(pool->thread_count() == 1);
  run_guarded(loop, loop.run_in_executor(nullptr, id));
  CHECK(executors_of(loop)->current_default() == first);

  // set_default_executor replaces it (any Executor will do); nullptr is a TypeError.
  auto custom = std::make_shared<ThreadPerJobExecutor>();
  loop.set_default_executor(custom);
  auto five = [] { return 5; };
  CHECK(run_guarded(loop, loop.run_in_executor(nullptr, five)) == 5);
  CHECK(custom->submitted == 1);
  REQUIRE_THROWS_AS(loop.set_default_executor(nullptr), asyncuv::TypeError);
}

TEST_CASE("59. after shutdown_default_executor the default executor is refused", "[executor]") {
  auto pool = std::make_shared<ThreadPoolExecutor>(2);
  EventLoop loop;
  std::vector<std::string> log;
  run_guarded(loop, shutdown_then_use(loop, pool, log));
  CHECK(log == std::vector<std::string>{"default 1", "shut down",
                                        "Executor shutdown has been called", "explicit 1",
                                        "shut down again"});
  auto default_pool =
      std::dynamic_pointer_cast<ThreadPoolExecutor>(executors_of(loop)->current_default());
  REQUIRE(default_pool != nullptr);
  CHECK(default_pool->thread_count() == 0);

  SECTION("without a default executor ever created, it returns at once and still refuses") {
    EventLoop other;
    run_guarded(other, other.shutdown_default_executor());
    auto one = [] { return 1; };
    REQUIRE_THROWS_WITH(other.run_in_executor(nullptr, one), "Executor shutdown has been called");
    CHECK(run_guarded(other, other.run_in_executor(pool, one)) == 1);
  }
}

TEST_CASE("59. shutdown_default_executor joins on a helper thread: the loop keeps running",
          "[executor]") {
  Gate gate;
  std::atomic<bool> finished{false};
  EventLoop loop;
  auto blocked = [&] {
    gate.wait();
    finished = true;
  };
  Future<void> job = loop.run_in_executor(nullptr, blocked);
  auto pool = std::dynamic_pointer_cast<ThreadPoolExecutor>(executors_of(loop)->current_default());
  std::vector<std::string> log;
  run_guarded(loop, shutdown_while_job_blocks(loop, gate, log));
  CHECK(log == std::vector<std::string>{"loop running, shutdown pending", "shutdown done"});
  CHECK(finished);
  CHECK(pool->thread_count() == 0);
  run_guarded(loop, job);  // its result still arrives
}

TEST_CASE("59. shutdown_default_executor(timeout) warns and stops waiting after the timeout",
          "[executor]") {
  test_support::LogCapture capture;
  Gate gate;
  std::atomic<bool> finished{false};
  auto pool = std::make_shared<ThreadPoolExecutor>(1);
  {
    EventLoop loop;
    loop.set_default_executor(pool);
    auto blocked = [&] {
      gate.wait();
      finished = true;
      return 3;
    };
    Future<int> job = loop.run_in_executor(nullptr, blocked);
    double took = run_guarded(loop, shutdown_with_timeout(loop, 0.05));
    CHECK(took >= 0.05);
    CHECK(took < 20);
    CHECK_FALSE(finished);
    bool warned = false;
    for (const auto& record : capture.records()) {
      if (record.level == spdlog::level::warn &&
          record.text ==
              "The executor did not finishing joining its threads within 0.05 seconds.") {
        warned = true;
      }
    }
    CHECK(warned);
    // The executor is shut down all the same, and the job's result still arrives.
    auto one = [] { return 1; };
    REQUIRE_THROWS_WITH(loop.run_in_executor(nullptr, one), "Executor shutdown has been called");
    REQUIRE_THROWS_WITH(pool->submit([] {}), "cannot schedule new futures after shutdown");
    gate.open();
    CHECK(run_guarded(loop, job) == 3);
  }
  pool->shutdown(true);
  CHECK(finished);
  CHECK(pool->thread_count() == 0);
}

TEST_CASE("59. a custom Executor implementation runs the jobs its own way", "[executor]") {
  auto custom = std::make_shared<ThreadPerJobExecutor>();
  EventLoop loop;
  auto id = [] { return std::this_thread::get_id(); };
  Future<std::thread::id> a = loop.run_in_executor(custom, id);
  Future<std::thread::id> b = loop.run_in_executor(custom, id);
  std::thread::id first = run_guarded(loop, a);
  std::thread::id second = run_guarded(loop, b);
  CHECK(first != second);
  CHECK(first != std::this_thread::get_id());
  CHECK(custom->submitted == 2);
  auto fails = []() -> int { throw asyncuv::ValueError("from custom"); };
  Future<int> failed = loop.run_in_executor(custom, fails);
  REQUIRE_THROWS_WITH(run_guarded(loop, failed), "from custom");
  custom->shutdown(true, false);
  REQUIRE_THROWS_WITH(loop.run_in_executor(custom, id),
                      "cannot schedule new futures after shutdown");
}

TEST_CASE("59. submit after shutdown raises; cancel_futures drops (and cancels) queued jobs",
          "[executor]") {
  Gate gate;
  std::promise<void> started;
  std::atomic<int> queued_ran{0};
  auto pool = std::make_shared<ThreadPoolExecutor>(1);
  EventLoop loop;
  auto blocker = [&] {
    started.set_value();
    return gate.wait();
  };
  auto queued = [&queued_ran] { ++queued_ran; };
  Future<bool> first = loop.run_in_executor(pool, blocker);
  REQUIRE(started.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  Future<void> second = loop.run_in_executor(pool, queued);
  Future<void> third = loop.run_in_executor(pool, queued);
  pool->shutdown(false, true);
  REQUIRE_THROWS_AS(loop.run_in_executor(pool, queued), asyncuv::RuntimeError);
  REQUIRE_THROWS_WITH(loop.run_in_executor(pool, queued),
                      "cannot schedule new futures after shutdown");
  REQUIRE_THROWS_AS(run_guarded(loop, second), asyncuv::CancelledError);
  REQUIRE_THROWS_AS(run_guarded(loop, third), asyncuv::CancelledError);
  gate.open();
  CHECK(run_guarded(loop, first));
  pool->shutdown(true);
  CHECK(queued_ran == 0);
}

TEST_CASE("59. cancelling the Future before the job starts keeps the job from running",
          "[executor]") {
  Gate gate;
  std::atomic<bool> second_ran{false};
  auto pool = std::make_shared<ThreadPoolExecutor>(1);
  EventLoop loop;
  std::string outcome;
  run_guarded(loop, cancel_before_start(loop, pool, gate, second_ran, outcome));
  CHECK(outcome == "cancelled");
  pool->shutdown(true);
  CHECK_FALSE(second_ran);
}

TEST_CASE("59. cancelling the Future while the job runs drops its result safely", "[executor]") {
  Gate gate;
  std::promise<void> started;
  auto pool = std::make_shared<ThreadPoolExecutor>(1);
  EventLoop loop;
  auto job = [&] {
    started.set_value();
    gate.wait();
    return std::string("dropped");
  };
  Future<std::string> f = loop.run_in_executor(pool, job);
  REQUIRE(started.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(f.cancel());
  gate.open();
  pool->shutdown(true);  // the job has finished and posted its result
  auto nothing = [] {};
  run_guarded(loop, loop.run_in_executor(nullptr, nothing));  // the posted result was handled
  CHECK(f.cancelled());
  CHECK(executors_of(loop)->jobs_in_flight() == 0);
}

TEST_CASE("59. closing the loop while a job runs: the job finishes, the loop is not touched",
          "[executor]") {
  Gate gate;
  std::promise<void> started;
  std::atomic<bool> finished{false};
  auto job = [&] {
    started.set_value();
    gate.wait();
    finished = true;
    return 1;
  };

  SECTION("an explicit executor outliving the destroyed loop") {
    auto pool = std::make_shared<ThreadPoolExecutor>(1);
    auto loop = std::make_unique<EventLoop>();
    Future<int> f = loop->run_in_executor(pool, job);
    REQUIRE(started.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    loop->close();
    loop.reset();
    gate.open();
    pool->shutdown(true);  // the job reported to a loop that no longer exists
    CHECK(finished);
    CHECK_FALSE(f.done());
  }

  SECTION("the default executor: close() shuts it down without waiting") {
    auto loop = std::make_unique<EventLoop>();
    Future<int> f = loop->run_in_executor(nullptr, job);
    std::weak_ptr<ThreadPoolExecutor> pool =
        std::dynamic_pointer_cast<ThreadPoolExecutor>(executors_of(*loop)->current_default());
    REQUIRE(started.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    loop->close();
    CHECK_FALSE(finished);  // close() did not wait for the job
    REQUIRE_THROWS_WITH(pool.lock()->submit([] {}), "cannot schedule new futures after shutdown");
    auto one = [] { return 1; };
    REQUIRE_THROWS_WITH(loop->run_in_executor(nullptr, one), "Event loop is closed");
    gate.open();
    loop.reset();  // the loop held the last reference: releasing the executor joins its thread
    CHECK(pool.expired());
    CHECK(finished);
    CHECK_FALSE(f.done());
  }
}

TEST_CASE("59. run_in_executor on a closed loop raises RuntimeError", "[executor]") {
  auto pool = std::make_shared<ThreadPoolExecutor>(1);
  EventLoop loop;
  loop.close();
  auto one = [] { return 1; };
  REQUIRE_THROWS_AS(loop.run_in_executor(nullptr, one), asyncuv::RuntimeError);
  REQUIRE_THROWS_WITH(loop.run_in_executor(nullptr, one), "Event loop is closed");
  REQUIRE_THROWS_WITH(loop.run_in_executor(pool, one), "Event loop is closed");
  CHECK(pool->thread_count() == 0);
}

TEST_CASE("59. asyncuv::run shuts the default executor down before closing the loop",
          "[executor]") {
  SECTION("a default executor set by the program") {
    auto pool = std::make_shared<ThreadPoolExecutor>(2);
    CHECK(asyncuv::run(run_main_with_pool(pool)) == 7);
    CHECK(pool->thread_count() == 0);
    REQUIRE_THROWS_WITH(pool->submit([] {}), "cannot schedule new futures after shutdown");
  }
  SECTION("the lazily created one, with a job still running when main returns") {
    Gate gate;
    std::atomic<bool> finished{false};
    std::shared_ptr<asyncuv::Executor> seen;
    asyncuv::run(run_main_with_default(seen, gate, finished));
    CHECK(finished);
    auto pool = std::dynamic_pointer_cast<ThreadPoolExecutor>(seen);
    REQUIRE(pool != nullptr);
    CHECK(pool->thread_count() == 0);
  }
}
