// One run_in_executor job as both sides see it: the worker runs the callable and stores the
// outcome; the loop's thread moves that outcome into the job's Future. The worker side holds
// no loop object: it reaches the loop only through the anchor, under its mutex, with
// call_soon_threadsafe (as wrap_future does), so a closed or destroyed loop is never touched.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"

namespace asyncuv::detail {

/// The type-independent part of a job.
class ExecutorJob : public std::enable_shared_from_this<ExecutorJob> {
 public:
  /// `id` names the job's Future in its loop's ExecutorService.
  ExecutorJob(std::shared_ptr<LoopAnchor> anchor, std::uint64_t id) noexcept
      : anchor_(std::move(anchor)), id_(id) {}
  ExecutorJob(const ExecutorJob&) = delete;
  ExecutorJob& operator=(const ExecutorJob&) = delete;
  virtual ~ExecutorJob() = default;

  std::uint64_t id() const noexcept { return id_; }

  /// Worker side: claims the job before running it; false if its Future was cancelled first
  /// (the callable must then not run).
  bool try_start() noexcept;
  /// Worker side: the callable threw `e`.
  void set_error(std::exception_ptr e) noexcept { error_ = std::move(e); }
  /// Worker side: the callable returned (or threw); sends the outcome to the loop.
  void finish() noexcept { post(); }
  /// Worker side: the executor destroyed the job without running it; the Future is cancelled
  /// (unless it was cancelled already).
  void drop() noexcept;

  /// Loop side, the Future's done-callback: a cancelled Future stops a job not started yet.
  void on_future_done(FutureCore& future) noexcept;

 protected:
  /// Loop side: sets the stored value as `future`'s result.
  virtual void deliver(FutureCore& future) = 0;

 private:
  enum State : int { pending, running, cancelled, dropped };

  void post() noexcept;
  /// Loop side: completes the Future (if it is still waiting for this job).
  void complete(EventLoop& loop);

  std::shared_ptr<LoopAnchor> anchor_;
  std::uint64_t id_;
  std::atomic<int> state_{pending};
  std::exception_ptr error_;
};

/// A job whose callable returns R (void allowed).
template <class R>
class ExecutorJobOf final : public ExecutorJob {
 public:
  using ExecutorJob::ExecutorJob;

  /// Worker side: runs `call` and stores its result.
  template <class Call>
  void run(Call& call) {
    if constexpr (std::is_void_v<R>) {
      call();
    } else {
      value_.emplace(call());
    }
  }

 private:
  void deliver(FutureCore& future) override {
    if constexpr (std::is_void_v<R>) {
      static_cast<FutureValue<void>&>(future).set_result();
    } else {
      static_cast<FutureValue<R>&>(future).set_result(std::move(*value_));
    }
  }

  struct NoValue {};
  std::conditional_t<std::is_void_v<R>, NoValue, std::optional<R>> value_;
};

/// The callable handed to Executor::submit: runs `call` for the job; destroyed unrun, it
/// cancels the job's Future.
template <class R, class Call>
class ExecutorRunner {
 public:
  ExecutorRunner(std::shared_ptr<ExecutorJobOf<R>> job, Call call)
      : job_(std::move(job)), call_(std::move(call)) {}
  ExecutorRunner(ExecutorRunner&& other) noexcept(std::is_nothrow_move_constructible_v<Call>)
      : job_(std::move(other.job_)), call_(std::move(other.call_)) {}
  ExecutorRunner& operator=(ExecutorRunner&&) = delete;
  ~ExecutorRunner() {
    if (job_) job_->drop();
  }

  void operator()() {
    std::shared_ptr<ExecutorJobOf<R>> job = std::move(job_);
    if (!job || !job->try_start()) return;
    try {
      job->run(call_);
    } catch (...) {
      job->set_error(std::current_exception());
    }
    job->finish();
  }

 private:
  std::shared_ptr<ExecutorJobOf<R>> job_;
  Call call_;
};

}  // namespace asyncuv::detail
