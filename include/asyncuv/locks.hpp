// asyncio's synchronisation primitives (asyncio/locks.py): Lock, Event, Condition, Semaphore
// and BoundedSemaphore. Waiters are Future<void>s woken in FIFO order; a waiter cancelled
// after being woken passes the wake-up on, as in asyncio 3.12+. Like asyncio (3.10+), each
// object binds to the running loop the first time it has to wait; using it from another loop
// later is a RuntimeError. None of them is thread-safe, and every object must outlive the
// tasks that wait on it.
#pragma once

#include <concepts>
#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

namespace detail {

/// asyncio's _LoopBoundMixin: binds to the running loop at the first wait.
class LoopBound {
 public:
  LoopBound() = default;
  LoopBound(const LoopBound&) = delete;
  LoopBound& operator=(const LoopBound&) = delete;
  virtual ~LoopBound() = default;

  /// asyncio-style text, used in the "bound to a different event loop" message.
  virtual std::string repr() const = 0;

 protected:
  /// The running loop; binds to it on first use. RuntimeError("<repr> is bound to a
  /// different event loop") if another loop runs, RuntimeError("no running event loop") if
  /// none does.
  EventLoop& get_loop();

 private:
  std::shared_ptr<LoopAnchor> anchor_;
};

/// A FIFO list of waiter futures; entries stay valid while others are added or removed.
using WaiterList = std::list<Future<void>>;

/// " waiters:N" suffix for reprs (empty when there are none).
std::string waiters_suffix(const WaiterList& waiters);

}  // namespace detail

/// Releases a held Lock, Condition or Semaphore when it goes out of scope (asyncio's
/// `async with`). Obtained from `co_await x.scoped()`. Movable, not copyable.
template <class L>
class [[nodiscard]] ScopedRelease {
 public:
  /// Takes over the responsibility to release `held`, which the caller has acquired.
  explicit ScopedRelease(L& held) noexcept : held_(&held) {}
  ScopedRelease(ScopedRelease&& other) noexcept : held_(std::exchange(other.held_, nullptr)) {}
  ScopedRelease& operator=(ScopedRelease&& other) noexcept {
    if (this != &other) {
      reset_quietly();
      held_ = std::exchange(other.held_, nullptr);
    }
    return *this;
  }
  ScopedRelease(const ScopedRelease&) = delete;
  ScopedRelease& operator=(const ScopedRelease&) = delete;
  /// Releases if still owned. An error from release() (e.g. the lock was already released by
  /// hand) cannot propagate from a destructor and is ignored: call release() to see it.
  ~ScopedRelease() { reset_quietly(); }

  /// Releases now (exceptions from the primitive's release() propagate); no-op once done.
  void release() {
    if (held_ != nullptr) std::exchange(held_, nullptr)->release();
  }
  /// Gives up ownership without releasing.
  void dismiss() noexcept { held_ = nullptr; }
  /// True while this guard still has to release.
  bool owns() const noexcept { return held_ != nullptr; }

 private:
  void reset_quietly() noexcept {
    try {
      release();
    } catch (...) {  // NOLINT(bugprone-empty-catch): documented above
    }
  }
  L* held_;
};

/// asyncio.Lock: a non-reentrant mutual-exclusion lock not owned by any task. Waiters acquire
/// it in FIFO order; a new acquire() never jumps ahead of a waiter that was already woken.
class Lock : public detail::LoopBound {
 public:
  /// An unlocked lock.
  Lock() = default;

  /// co_await lock.acquire(): waits until the lock is free, then locks it. Returns at once
  /// (without yielding) when it is free and nobody waits.
  Task<void> acquire();
  /// Unlocks and wakes the first waiter. RuntimeError("Lock is not acquired.") if unlocked.
  void release();
  /// True while locked.
  bool locked() const noexcept { return locked_; }
  /// auto guard = co_await lock.scoped(): acquire(), with release() when `guard` is
  /// destroyed.
  Task<ScopedRelease<Lock>> scoped();

  /// "<Lock [unlocked]>", "<Lock [locked, waiters:2]>".
  std::string repr() const override;

 private:
  void wake_up_first();

  detail::WaiterList waiters_;
  bool locked_ = false;
};

/// asyncio.Event: a flag that tasks can wait for.
class Event : public detail::LoopBound {
 public:
  /// An event whose flag is clear.
  Event() = default;

  /// True once set() was called (and clear() was not called since).
  bool is_set() const noexcept { return value_; }
  /// Sets the flag and wakes every waiter; later wait()s return at once.
  void set();
  /// Clears the flag: later wait()s block until set() is called again.
  void clear() noexcept { value_ = false; }
  /// co_await event.wait(): returns when the flag is set (at once if it is already set).
  Task<void> wait();

  /// "<Event [unset]>", "<Event [set, waiters:1]>".
  std::string repr() const override;

 private:
  detail::WaiterList waiters_;
  bool value_ = false;
};

/// asyncio.Condition: a condition variable over a Lock (its own, or one given).
class Condition : public detail::LoopBound {
 public:
  /// A condition with its own Lock.
  Condition();
  /// A condition sharing `lock`, which must outlive it.
  explicit Condition(Lock& lock) noexcept : lock_(&lock) {}

  /// co_await cond.acquire(): acquires the underlying lock.
  Task<void> acquire() { return lock_->acquire(); }
  /// Releases the underlying lock (RuntimeError("Lock is not acquired.") if unlocked).
  void release() { lock_->release(); }
  /// True while the underlying lock is held.
  bool locked() const noexcept { return lock_->locked(); }
  /// auto guard = co_await cond.scoped(): acquire(), with release() when `guard` dies.
  Task<ScopedRelease<Condition>> scoped();

  /// co_await cond.wait(): releases the lock, waits for notify(), then re-acquires the lock
  /// (even when cancelled). RuntimeError("cannot wait on un-acquired lock") without the lock.
  /// May wake spuriously: re-check the state afterwards.
  Task<void> wait();
  /// co_await cond.wait_for(pred): wait()s until pred() is truthy; returns pred()'s final
  /// value. The lock must be held (unless pred() is truthy at once).
  template <std::invocable Pred>
  Task<std::decay_t<std::invoke_result_t<Pred&>>> wait_for(Pred pred);
  /// Wakes up to `n` waiters (FIFO). RuntimeError("cannot notify on un-acquired lock")
  /// without the lock.
  void notify(std::size_t n = 1);
  /// Wakes every waiter. Same error as notify().
  void notify_all() { notify(waiters_.size()); }

  /// "<Condition [unlocked]>", "<Condition [locked, waiters:1]>".
  std::string repr() const override;

 private:
  void notify_quietly(std::size_t n);

  std::unique_ptr<Lock> own_lock_;
  Lock* lock_;
  detail::WaiterList waiters_;
};

/// asyncio.Semaphore: a counter decremented by acquire() and incremented by release();
/// acquire() waits while it is zero. Acquisitions are granted in FIFO order.
class Semaphore : public detail::LoopBound {
 public:
  /// A semaphore with counter `value`; ValueError("Semaphore initial value must be >= 0")
  /// if negative.
  explicit Semaphore(int value = 1);

  /// True if acquire() would wait: the counter is zero, or some (uncancelled) task is
  /// already waiting.
  bool locked() const noexcept;
  /// co_await sem.acquire(): decrements the counter, first waiting (FIFO) if locked().
  Task<void> acquire();
  /// Increments the counter and wakes the first waiter.
  virtual void release();
  /// auto guard = co_await sem.scoped(): acquire(), with release() when `guard` dies.
  Task<ScopedRelease<Semaphore>> scoped();
  /// The current counter (asyncio's _value).
  int value() const noexcept { return value_; }

  /// "<Semaphore [unlocked, value:2]>", "<Semaphore [locked, waiters:1]>".
  std::string repr() const override;

 protected:
  /// The class name shown by repr().
  virtual const char* kind() const noexcept { return "Semaphore"; }
  int value_;

 private:
  bool wake_up_next();

  detail::WaiterList waiters_;
};

/// asyncio.BoundedSemaphore: a Semaphore whose release() refuses to go above the initial
/// value.
class BoundedSemaphore : public Semaphore {
 public:
  /// A bounded semaphore with counter and bound `value` (ValueError if negative).
  explicit BoundedSemaphore(int value = 1) : Semaphore(value), bound_(value) {}
  /// ValueError("BoundedSemaphore released too many times") above the bound.
  void release() override;

 protected:
  const char* kind() const noexcept override { return "BoundedSemaphore"; }

 private:
  int bound_;
};

template <std::invocable Pred>
Task<std::decay_t<std::invoke_result_t<Pred&>>> Condition::wait_for(Pred pred) {
  auto result = pred();
  while (!result) {
    co_await wait();
    result = pred();
  }
  co_return result;
}

}  // namespace asyncuv
