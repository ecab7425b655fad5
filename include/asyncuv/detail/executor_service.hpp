// A loop's executor state: the default executor (created lazily, shut down by close()) and the
// Futures of run_in_executor jobs still running, kept here so that they live, and die, on the
// loop's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "asyncuv/detail/executor_job.hpp"
#include "asyncuv/detail/loop_service.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"

namespace asyncuv {
class Executor;
}

namespace asyncuv::detail {

class ExecutorService final : public LoopService {
 public:
  explicit ExecutorService(EventLoop& loop) : loop_(loop) {}

  /// asyncio's close(): marks the executor shut down, calls shutdown(wait=false) on the
  /// default executor and forgets the running jobs' Futures (they stay pending).
  void close() noexcept override;

  /// The default executor, created (a ThreadPoolExecutor) on first use. Throws
  /// RuntimeError("Executor shutdown has been called") after shutdown_default_executor().
  std::shared_ptr<Executor> default_executor();
  /// The default executor if one was set or created, else null.
  const std::shared_ptr<Executor>& current_default() const noexcept { return default_; }
  void set_default(std::shared_ptr<Executor> executor) noexcept { default_ = std::move(executor); }

  /// shutdown_default_executor() or close() was called.
  bool shutdown_called() const noexcept { return shutdown_called_; }
  void mark_shutdown_called() noexcept { shutdown_called_ = true; }

  /// A job completing `future`, which is kept alive here until the job reports back.
  template <class R>
  std::shared_ptr<ExecutorJobOf<R>> start_job(const Future<R>& future) {
    std::uint64_t id = next_id_++;
    auto job = std::make_shared<ExecutorJobOf<R>>(loop_.anchor(), id);
    future.state()->add_callback(
        [job](const std::shared_ptr<FutureCore>& done) { job->on_future_done(*done); });
    in_flight_.emplace(id, future.state());
    return job;
  }
  /// Removes job `id`'s Future (null if it is gone already).
  std::shared_ptr<FutureCore> untrack(std::uint64_t id) noexcept;

  /// How many jobs still have their Future here.
  std::size_t jobs_in_flight() const noexcept { return in_flight_.size(); }

 private:
  EventLoop& loop_;
  std::shared_ptr<Executor> default_;
  bool shutdown_called_ = false;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, std::shared_ptr<FutureCore>> in_flight_;
};

}  // namespace asyncuv::detail
