// Executors: running blocking functions off the loop (asyncio's loop.run_in_executor and the
// default executor, concurrent.futures.ThreadPoolExecutor).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "asyncuv/detail/executor_job.hpp"
#include "asyncuv/detail/executor_service.hpp"
#include "asyncuv/detail/not_a_coroutine.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

/// A move-only `void()` callable: the unit of work an Executor runs. Built implicitly from any
/// callable (lambdas capturing move-only objects included).
class Work {
 public:
  /// An empty Work (calling it throws std::bad_function_call).
  Work() noexcept = default;
  /// Wraps `f`, which is moved (or copied) in.
  template <class F>
  requires(!std::is_same_v<std::decay_t<F>, Work> && std::invocable<std::decay_t<F>&>)
      Work(F&& f)  // NOLINT: implicit on purpose
      : impl_(std::make_unique<Model<std::decay_t<F>>>(std::forward<F>(f))) {}
  Work(Work&&) noexcept = default;
  Work& operator=(Work&&) noexcept = default;

  /// Runs the callable.
  void operator()() {
    if (!impl_) throw std::bad_function_call();
    impl_->call();
  }
  /// True if it holds a callable.
  explicit operator bool() const noexcept { return impl_ != nullptr; }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual void call() = 0;
  };
  template <class F>
  struct Model final : Concept {
    template <class U>
    explicit Model(U&& u) : f(std::forward<U>(u)) {}
    void call() override { f(); }
    F f;
  };
  std::unique_ptr<Concept> impl_;
};

/// What loop.run_in_executor() hands work to (concurrent.futures.Executor). Implement it to
/// run jobs your own way (a thread pool of your framework, a dedicated thread, ...).
///
/// Thread-safety: both members may be called from any thread, concurrently with each other:
/// the loop calls submit() from its own thread, shutdown_default_executor() calls
/// shutdown(true) from a helper thread, and loop.close() calls shutdown(false) from the loop's
/// thread. The work itself may run on any thread, the caller's included.
class Executor {
 public:
  virtual ~Executor() = default;

  /// Runs `work` once, now or later, on any thread. An executor may also destroy `work`
  /// without running it (shutdown with cancel_futures): the Future that run_in_executor()
  /// returned for it is then cancelled. After shutdown() it must throw
  /// RuntimeError("cannot schedule new futures after shutdown").
  virtual void submit(Work work) = 0;

  /// Refuses new work from now on. cancel_futures: drops the work not started yet. wait: also
  /// returns only once the work already started (and, without cancel_futures, the queued
  /// work) is finished. Calling it again is harmless.
  virtual void shutdown(bool wait = true, bool cancel_futures = false) = 0;
};

/// concurrent.futures.ThreadPoolExecutor: up to max_workers threads, started lazily (a new
/// thread only when a job arrives and no thread is idle), running jobs in submission order.
/// A job that throws is logged (run_in_executor's jobs never throw: their exceptions go to the
/// Future). Thread-safe.
class ThreadPoolExecutor final : public Executor {
 public:
  /// max_workers 0 means min(32, hardware threads + 4), Python's default.
  explicit ThreadPoolExecutor(std::size_t max_workers = 0);
  /// Shuts down and waits for the work already submitted, as leaving Python's
  /// `with ThreadPoolExecutor()` block does. Called on one of its own threads (the last
  /// reference dropped by a job), it cannot wait: the threads finish the queue and exit alone.
  ~ThreadPoolExecutor() override;
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  /// Queues `work`, starting a thread if none is idle and fewer than max_workers run. Throws
  /// RuntimeError("cannot schedule new futures after shutdown") after shutdown(), TypeError
  /// for an empty Work.
  void submit(Work work) override;

  /// See Executor::shutdown. Called from one of the pool's own threads, it does not wait (a
  /// thread cannot wait for itself).
  void shutdown(bool wait = true, bool cancel_futures = false) override;

  /// The maximum number of threads.
  std::size_t max_workers() const noexcept;
  /// The worker threads alive right now (started and not exited yet); 0 once shutdown(true)
  /// returned.
  std::size_t thread_count() const;

 private:
  struct State;
  /// The body of each thread: runs queued work until shutdown leaves the queue empty.
  static void work_loop(State& state);
  std::shared_ptr<State> state_;
};

template <class F, class... As>
auto EventLoop::run_in_executor(std::shared_ptr<Executor> executor, F&& f, As&&... args)
    -> Future<std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>&, std::decay_t<As>&...>>> {
  using R = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>&, std::decay_t<As>&...>>;
  static_assert(!detail::returns_task_v<std::decay_t<F>, std::decay_t<As>...>,
                "run_in_executor() takes a blocking function, not a coroutine function (asyncio: "
                "TypeError \"coroutines cannot be used with run_in_executor()\"): co_await "
                "the coroutine on the loop, or schedule it with loop.create_task(coro())");
  check_closed();
  auto& executors = service<detail::ExecutorService>();
  if (!executor) executor = executors.default_executor();
  Future<R> future = create_future<R>();
  auto job = executors.start_job(future);
  auto call = [fn = std::decay_t<F>(std::forward<F>(f)),
               bound = std::tuple<std::decay_t<As>...>(std::forward<As>(
                   args)...)]() mutable -> decltype(auto) { return std::apply(fn, bound); };
  try {
    executor->submit(detail::ExecutorRunner<R, decltype(call)>(job, std::move(call)));
  } catch (...) {
    executors.untrack(job->id());
    throw;
  }
  return future;
}

}  // namespace asyncuv
