// asyncio's locks.py over Future<void> waiters: the same wake-up order, fairness and
// cancellation hand-offs. A coroutine cannot co_await inside a catch block, so the waits
// record the exception and act on it afterwards.
#include "asyncuv/locks.hpp"

#include <algorithm>
#include <exception>

#include "asyncuv/events.hpp"

namespace asyncuv {

namespace detail {

EventLoop& LoopBound::get_loop() {
  EventLoop& loop = get_running_loop();
  if (!anchor_) {
    anchor_ = loop.anchor();
  } else if (anchor_ != loop.anchor()) {
    throw RuntimeError(repr() + " is bound to a different event loop");
  }
  return loop;
}

std::string waiters_suffix(const WaiterList& waiters) {
  if (waiters.empty()) return {};
  return ", waiters:" + std::to_string(waiters.size());
}

namespace {
bool is_cancelled_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace

}  // namespace detail

// ---- Lock ---------------------------------------------------------------------------------

Task<void> Lock::acquire() {
  // Fair: wait for our turn unless the lock is free and every waiter gave up.
  if (!locked_ && std::all_of(waiters_.begin(), waiters_.end(),
                              [](const Future<void>& w) { return w.cancelled(); })) {
    locked_ = true;
    co_return;
  }
  auto fut = get_loop().create_future<void>();
  auto entry = waiters_.insert(waiters_.end(), fut);
  try {
    co_await fut;
  } catch (const CancelledError&) {
    waiters_.erase(entry);
    // Woken but cancelled before running (or cancelled while first in line): make sure the
    // next waiter runs if the lock is free.
    if (!locked_) wake_up_first();
    throw;
  } catch (...) {
    waiters_.erase(entry);
    throw;
  }
  waiters_.erase(entry);
  locked_ = true;
}

void Lock::release() {
  if (!locked_) throw RuntimeError("Lock is not acquired.");
  locked_ = false;
  wake_up_first();
}

void Lock::wake_up_first() {
  if (waiters_.empty()) return;
  // A done first waiter is already on its way (woken, or cancelled: it hands on itself).
  const Future<void>& first = waiters_.front();
  if (!first.done()) first.set_result();
}

Task<ScopedRelease<Lock>> Lock::scoped() {
  co_await acquire();
  co_return ScopedRelease<Lock>(*this);
}

std::string Lock::repr() const {
  return std::string("<Lock [") + (locked_ ? "locked" : "unlocked") +
         detail::waiters_suffix(waiters_) + "]>";
}

// ---- Event --------------------------------------------------------------------------------

void Event::set() {
  if (value_) return;
  value_ = true;
  for (const Future<void>& fut : waiters_) {
    if (!fut.done()) fut.set_result();
  }
}

Task<void> Event::wait() {
  if (value_) co_return;
  auto fut = get_loop().create_future<void>();
  auto entry = waiters_.insert(waiters_.end(), fut);
  try {
    co_await fut;
  } catch (...) {
    waiters_.erase(entry);
    throw;
  }
  waiters_.erase(entry);
}

std::string Event::repr() const {
  return std::string("<Event [") + (value_ ? "set" : "unset") + detail::waiters_suffix(waiters_) +
         "]>";
}

// ---- Condition ----------------------------------------------------------------------------

Condition::Condition() : own_lock_(std::make_unique<Lock>()), lock_(own_lock_.get()) {}

Task<ScopedRelease<Condition>> Condition::scoped() {
  co_await acquire();
  co_return ScopedRelease<Condition>(*this);
}

Task<void> Condition::wait() {
  if (!locked()) throw RuntimeError("cannot wait on un-acquired lock");
  auto fut = get_loop().create_future<void>();
  release();
  std::exception_ptr error;  // what wait() ends with, if anything
  {
    auto entry = waiters_.insert(waiters_.end(), fut);
    try {
      co_await fut;
    } catch (...) {
      error = std::current_exception();
    }
    waiters_.erase(entry);
  }
  // The lock must be held again on return, even when cancelled: retry after each
  // cancellation and report the last one; any other error ends the attempts.
  std::exception_ptr cancelled;
  for (;;) {
    try {
      co_await lock_->acquire();
      break;
    } catch (const CancelledError&) {
      cancelled = std::current_exception();
    } catch (...) {
      error = std::current_exception();
      cancelled = nullptr;
      break;
    }
  }
  if (cancelled) error = cancelled;
  if (error) {
    // This task may have consumed a notify() it will not act on: pass one on (a spurious
    // wake-up at worst, which the protocol allows).
    notify_quietly(1);
    std::rethrow_exception(error);
  }
}

void Condition::notify(std::size_t n) {
  if (!locked()) throw RuntimeError("cannot notify on un-acquired lock");
  notify_quietly(n);
}

void Condition::notify_quietly(std::size_t n) {
  std::size_t woken = 0;
  for (const Future<void>& fut : waiters_) {
    if (woken >= n) break;
    if (!fut.done()) {
      ++woken;
      fut.set_result();
    }
  }
}

std::string Condition::repr() const {
  return std::string("<Condition [") + (locked() ? "locked" : "unlocked") +
         detail::waiters_suffix(waiters_) + "]>";
}

// ---- Semaphore ----------------------------------------------------------------------------

Semaphore::Semaphore(int value) : value_(value) {
  if (value < 0) throw ValueError("Semaphore initial value must be >= 0");
}

bool Semaphore::locked() const noexcept {
  // Locked by the counter, or by FIFO: tasks already waiting go first.
  return value_ == 0 || std::any_of(waiters_.begin(), waiters_.end(),
                                    [](const Future<void>& w) { return !w.cancelled(); });
}

Task<void> Semaphore::acquire() {
  if (!locked()) {
    --value_;
    co_return;
  }
  auto fut = get_loop().create_future<void>();
  auto entry = waiters_.insert(waiters_.end(), fut);
  std::exception_ptr error;
  try {
    co_await fut;
  } catch (...) {
    error = std::current_exception();
  }
  waiters_.erase(entry);
  if (error && detail::is_cancelled_error(error) && fut.done() && !fut.cancelled()) {
    // Woken (the counter was decremented for us) but cancelled before running: give the
    // unit back so that it goes to the next waiter below.
    ++value_;
  }
  // Waiters that queued up behind us because of FIFO may proceed now: wake as many as the
  // counter allows.
  while (value_ > 0) {
    if (!wake_up_next()) break;
  }
  if (error) std::rethrow_exception(error);
}

void Semaphore::release() {
  ++value_;
  wake_up_next();
}

bool Semaphore::wake_up_next() {
  for (const Future<void>& fut : waiters_) {
    if (!fut.done()) {
      --value_;
      fut.set_result();
      return true;
    }
  }
  return false;
}

Task<ScopedRelease<Semaphore>> Semaphore::scoped() {
  co_await acquire();
  co_return ScopedRelease<Semaphore>(*this);
}

std::string Semaphore::repr() const {
  std::string state = locked() ? "locked" : "unlocked, value:" + std::to_string(value_);
  return std::string("<") + kind() + " [" + state + detail::waiters_suffix(waiters_) + "]>";
}

void BoundedSemaphore::release() {
  if (value_ >= bound_) throw ValueError("BoundedSemaphore released too many times");
  Semaphore::release();
}

}  // namespace asyncuv
