// The item-type independent half of asyncio's queues.py: waiting for room or for an item,
// handing a wake-up on when a woken waiter is cancelled, task_done()/join() and shutdown().
#include "asyncuv/queues.hpp"

#include <algorithm>

namespace asyncuv::detail {

void QueueCore::wakeup_next(std::deque<Future<void>>& waiters) {
  while (!waiters.empty()) {
    Future<void> waiter = std::move(waiters.front());
    waiters.pop_front();
    if (!waiter.done()) {
      waiter.set_result();
      break;
    }
  }
}

Task<void> QueueCore::wait_not_full() {
  return wait_in(putters_, true);
}

Task<void> QueueCore::wait_not_empty() {
  return wait_in(getters_, false);
}

Task<void> QueueCore::wait_in(std::deque<Future<void>>& waiters, bool for_put) {
  auto blocked = [this, for_put] { return for_put ? full() : empty(); };
  while (blocked()) {
    if (is_shutdown_) throw QueueShutDown();
    auto waiter = get_loop().create_future<void>();
    waiters.push_back(waiter);
    try {
      co_await waiter;
    } catch (...) {
      // Cancelled (the only way here). The waiter is out of the list if a put/get woke it.
      auto it = std::find(waiters.begin(), waiters.end(), waiter);
      if (it != waiters.end()) waiters.erase(it);
      // Woken, but cancelled before acting on it: pass the wake-up to the next in line.
      // (A still-pending waiter needs no cancel(): nothing refers to it any more.)
      bool woken = waiter.done() && !waiter.cancelled();
      if (woken && !blocked()) wakeup_next(waiters);
      throw;
    }
  }
}

void QueueCore::check_put() const {
  if (is_shutdown_) throw QueueShutDown();
  if (full()) throw QueueFull();
}

void QueueCore::check_get() const {
  if (empty()) {
    if (is_shutdown_) throw QueueShutDown();
    throw QueueEmpty();
  }
}

void QueueCore::after_put() {
  ++unfinished_;
  finished_.clear();
  wakeup_next(getters_);
}

void QueueCore::task_done() {
  if (unfinished_ == 0) throw ValueError("task_done() called too many times");
  if (--unfinished_ == 0) finished_.set();
}

Task<void> QueueCore::join() {
  if (unfinished_ > 0) co_await finished_.wait();
}

void QueueCore::shutdown(bool immediate) {
  is_shutdown_ = true;
  if (immediate) {
    while (!empty()) {
      discard_one();
      if (unfinished_ > 0) --unfinished_;
    }
    if (unfinished_ == 0) finished_.set();
  }
  // Every blocked getter and putter re-checks and finds out about the shutdown.
  for (auto* waiters : {&getters_, &putters_}) {
    while (!waiters->empty()) {
      Future<void> waiter = std::move(waiters->front());
      waiters->pop_front();
      if (!waiter.done()) waiter.set_result();
    }
  }
}

std::string QueueCore::repr() const {
  std::string text = std::string("<") + kind() + " maxsize=" + std::to_string(maxsize_);
  if (!empty()) text += " qsize=" + std::to_string(qsize());
  if (!getters_.empty()) text += " _getters[" + std::to_string(getters_.size()) + "]";
  if (!putters_.empty()) text += " _putters[" + std::to_string(putters_.size()) + "]";
  if (unfinished_ > 0) text += " tasks=" + std::to_string(unfinished_);
  if (is_shutdown_) text += " shutdown";
  return text + ">";
}

}  // namespace asyncuv::detail
