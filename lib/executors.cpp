// ThreadPoolExecutor: concurrent.futures.ThreadPoolExecutor's lazily grown pool of threads.
#include "asyncuv/executors.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "asyncuv/exception_context.hpp"
#include "asyncuv/log.hpp"

namespace asyncuv {

/// Shared by the executor and its threads, so that threads left running (shutdown from one of
/// them) never outlive what they use.
struct ThreadPoolExecutor::State {
  explicit State(std::size_t max) : max_workers(max) {}

  const std::size_t max_workers;
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<Work> queue;
  std::vector<std::thread> threads;  // started, not yet joined or detached
  std::size_t idle = 0;              // threads waiting for work
  std::size_t alive = 0;             // threads that have not exited their loop yet
  bool shutdown = false;
  std::mutex join_mutex;  // one shutdown(wait=true) joins at a time; later ones wait for it
};

namespace {

thread_local const void* t_worker_of = nullptr;  // the pool state of this worker thread

std::size_t default_max_workers() {
  unsigned cpus = std::thread::hardware_concurrency();
  return std::min<std::size_t>(32, std::max(1u, cpus) + 4);
}

void run_work(Work& work) noexcept {
  try {
    work();
  } catch (...) {
    try {
      logger()->error("Exception in ThreadPoolExecutor work item: {}",
                      describe_exception(std::current_exception()));
    } catch (...) {
      // Nothing left to report it with.
    }
  }
}

}  // namespace

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers)
    : state_(std::make_shared<State>(max_workers == 0 ? default_max_workers() : max_workers)) {}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  if (t_worker_of == state_.get()) {
    // The last reference died in a job: the threads cannot be joined from one of them. They
    // finish the queue and exit on their own, keeping the state alive until then.
    shutdown(false, false);
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(state_->mutex);
      threads.swap(state_->threads);
    }
    for (std::thread& t : threads)
      t.detach();
    return;
  }
  shutdown(true, false);
}

std::size_t ThreadPoolExecutor::max_workers() const noexcept {
  return state_->max_workers;
}

std::size_t ThreadPoolExecutor::thread_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->alive;
}

void ThreadPoolExecutor::submit(Work work) {
  if (!work) throw TypeError("submit() needs a callable");
  State& s = *state_;
  Work refused;  // destroyed after the lock is released
  std::unique_lock lock(s.mutex);
  if (s.shutdown) {
    refused = std::move(work);
    lock.unlock();
    throw RuntimeError("cannot schedule new futures after shutdown");
  }
  s.queue.push_back(std::move(work));
  // Enough idle threads for everything queued: wake one. Otherwise grow the pool.
  if (s.idle < s.queue.size() && s.threads.size() < s.max_workers) {
    try {
      s.threads.emplace_back([state = state_] { work_loop(*state); });
      ++s.alive;
    } catch (...) {
      if (!s.threads.empty()) return;  // the running threads will get to it
      refused = std::move(s.queue.back());
      s.queue.pop_back();
      lock.unlock();
      throw;
    }
    return;
  }
  s.wake.notify_one();
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) {
  State& s = *state_;
  std::deque<Work> dropped;  // destroyed outside the lock: that cancels their Futures
  {
    std::lock_guard lock(s.mutex);
    s.shutdown = true;
    if (cancel_futures) dropped.swap(s.queue);
    s.wake.notify_all();
  }
  dropped.clear();
  if (!wait || t_worker_of == state_.get()) return;
  std::lock_guard join_lock(s.join_mutex);
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(s.mutex);
    threads.swap(s.threads);
  }
  for (std::thread& t : threads)
    t.join();
}

void ThreadPoolExecutor::work_loop(State& s) {
  t_worker_of = &s;
  std::unique_lock lock(s.mutex);
  for (;;) {
    if (!s.queue.empty()) {
      Work work = std::move(s.queue.front());
      s.queue.pop_front();
      lock.unlock();
      run_work(work);
      work = Work();  // its captures are released before the next job, outside the lock
      lock.lock();
      continue;
    }
    if (s.shutdown) break;
    ++s.idle;
    s.wake.wait(lock);
    --s.idle;
  }
  --s.alive;
}

}  // namespace asyncuv
