// The loop side of executors: job completion, the default executor, and
// set_default_executor / shutdown_default_executor.
#include <spdlog/spdlog.h>

#include <thread>

#include "asyncuv/detail/executor_service.hpp"
#include "asyncuv/executors.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

namespace detail {

bool ExecutorJob::try_start() noexcept {
  int expected = pending;
  return state_.compare_exchange_strong(expected, running, std::memory_order_acq_rel);
}

void ExecutorJob::drop() noexcept {
  int expected = pending;
  if (state_.compare_exchange_strong(expected, dropped, std::memory_order_acq_rel)) post();
}

void ExecutorJob::on_future_done(FutureCore& future) noexcept {
  if (future.cancelled()) {
    int expected = pending;
    state_.compare_exchange_strong(expected, cancelled, std::memory_order_acq_rel);
  }
  if (EventLoop* loop = future.loop_if_alive()) {
    if (auto* service = loop->find_service<ExecutorService>()) service->untrack(id_);
  }
}

void ExecutorJob::post() noexcept {
  std::shared_ptr<ExecutorJob> self = shared_from_this();
  std::lock_guard lock(anchor_->mutex);
  EventLoop* loop = anchor_->loop;
  if (loop == nullptr) return;  // destroyed: nobody waits for the outcome
  try {
    loop->call_soon_threadsafe([self, loop] { self->complete(*loop); });
  } catch (...) {
    // Closed (or out of memory): the Future stays pending, as asyncio's does.
  }
}

void ExecutorJob::complete(EventLoop& loop) {
  auto* service = loop.find_service<ExecutorService>();
  if (service == nullptr) return;
  std::shared_ptr<FutureCore> future = service->untrack(id_);
  if (!future || future->done()) return;  // cancelled meanwhile: the outcome is dropped
  if (state_.load(std::memory_order_acquire) == dropped) {
    future->cancel({});
  } else if (error_) {
    future->set_exception(error_);
  } else {
    deliver(*future);
  }
}

void ExecutorService::close() noexcept {
  shutdown_called_ = true;
  if (default_) {
    try {
      default_->shutdown(false, false);
    } catch (const std::exception& e) {
      logger()->error("Error while shutting down the default executor: {}", e.what());
    } catch (...) {
      logger()->error("Error while shutting down the default executor");
    }
  }
  // The executor itself is released with the loop: releasing a ThreadPoolExecutor waits for
  // its jobs, which close() must not do.
  in_flight_.clear();
}

std::shared_ptr<Executor> ExecutorService::default_executor() {
  if (shutdown_called_) throw RuntimeError("Executor shutdown has been called");
  if (!default_) default_ = std::make_shared<ThreadPoolExecutor>();
  return default_;
}

std::shared_ptr<FutureCore> ExecutorService::untrack(std::uint64_t id) noexcept {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return nullptr;
  std::shared_ptr<FutureCore> future = std::move(it->second);
  in_flight_.erase(it);
  return future;
}

}  // namespace detail

namespace {

/// The thread joining the default executor: joined once it reported back, detached when the
/// wait is abandoned (timeout, cancellation, loop closed), since it only holds shared objects.
struct JoinerThread {
  std::thread thread;
  ~JoinerThread() {
    if (thread.joinable()) thread.detach();
  }
};

}  // namespace

void EventLoop::set_default_executor(std::shared_ptr<Executor> executor) {
  if (!executor) throw TypeError("executor must be an Executor, got nullptr");
  if (closed_ && find_service<detail::ExecutorService>() == nullptr) return;  // never used
  service<detail::ExecutorService>().set_default(std::move(executor));
}

Task<void> EventLoop::shutdown_default_executor(std::optional<Seconds> timeout) {
  auto* executors = find_service<detail::ExecutorService>();
  if (executors == nullptr) {
    if (closed_) co_return;  // close() did it
    executors = &service<detail::ExecutorService>();
  }
  executors->mark_shutdown_called();
  std::shared_ptr<Executor> executor = executors->current_default();
  if (!executor) co_return;

  Future<void> joined = create_future<void>();
  auto job = executors->start_job(joined);
  auto join_all = [executor] { executor->shutdown(true, false); };
  JoinerThread joiner{std::thread(detail::ExecutorRunner<void, decltype(join_all)>(job, join_all))};

  if (!timeout) {
    co_await joined;
    joiner.thread.join();
    co_return;
  }
  // Wait for `joined` or the timeout, whichever comes first; the loop keeps running.
  Future<void> waited = create_future<void>();
  auto timed_out = std::make_shared<bool>(false);
  joined.add_done_callback([waited](const Future<void>&) {
    if (!waited.done()) waited.set_result();
  });
  auto on_timeout = [waited, timed_out] {
    if (waited.done()) return;
    *timed_out = true;
    waited.set_result();
  };
  TimerHandle timer = call_later(*timeout, on_timeout);
  try {
    co_await waited;
  } catch (...) {
    timer.cancel();
    throw;
  }
  timer.cancel();
  if (*timed_out) {
    logger()->warn("The executor did not finishing joining its threads within {} seconds.",
                   timeout->value);
    executor->shutdown(false, false);
    co_return;
  }
  joined.result();
  joiner.thread.join();
}

}  // namespace asyncuv
