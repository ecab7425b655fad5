// asyncio's queues (asyncio/queues.py): Queue (FIFO), PriorityQueue (smallest first, like
// heapq) and LifoQueue, with put/get waiters woken in FIFO order, task_done()/join() and
// Python 3.13's shutdown(). Like asyncio (3.10+), a queue binds to the running loop the first
// time it has to wait. Not thread-safe; a queue must outlive the tasks that wait on it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/locks.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

/// asyncio.QueueEmpty: get_nowait() on an empty queue.
class QueueEmpty : public Exception {
 public:
  QueueEmpty() : Exception("") {}
};

/// asyncio.QueueFull: put_nowait() on a full queue.
class QueueFull : public Exception {
 public:
  QueueFull() : Exception("") {}
};

/// asyncio.QueueShutDown (3.13): put or get on a queue that was shut down.
class QueueShutDown : public Exception {
 public:
  QueueShutDown() : Exception("") {}
};

namespace detail {

/// The item-type independent part of a queue: maxsize, waiters, the unfinished-task count,
/// shutdown state.
class QueueCore : public LoopBound {
 public:
  /// maxsize <= 0 means unbounded.
  explicit QueueCore(long maxsize) : maxsize_(maxsize) { finished_.set(); }

  /// Number of items in the queue.
  virtual std::size_t qsize() const noexcept = 0;
  /// Number of items allowed (<= 0: unbounded).
  long maxsize() const noexcept { return maxsize_; }
  /// True if the queue holds no item.
  bool empty() const noexcept { return qsize() == 0; }
  /// True if the queue holds maxsize items (never for maxsize <= 0).
  bool full() const noexcept {
    return maxsize_ > 0 && qsize() >= static_cast<std::size_t>(maxsize_);
  }

  /// Marks one item taken by get() as processed; when none is left unfinished, join()
  /// returns. ValueError("task_done() called too many times") if none is unfinished.
  void task_done();
  /// co_await q.join(): waits until every item put was matched by a task_done().
  Task<void> join();
  /// Number of items put but not yet marked task_done().
  std::size_t unfinished_tasks() const noexcept { return unfinished_; }

  /// Shuts the queue down (3.13): put()s raise QueueShutDown, get()s raise it once the queue
  /// is empty, and blocked put()s and get()s are woken to find out. With `immediate`, the
  /// items left are discarded (each counted as task_done()), so get()s raise at once.
  void shutdown(bool immediate = false);
  /// True once shutdown() was called.
  bool is_shutdown() const noexcept { return is_shutdown_; }

  /// "<Queue maxsize=0 _getters[1] tasks=2>"-style text.
  std::string repr() const override;

 protected:
  /// Waits (FIFO among putters) until the queue is not full; QueueShutDown if shut down.
  Task<void> wait_not_full();
  /// Waits (FIFO among getters) until the queue is not empty; QueueShutDown if it is shut
  /// down and empty.
  Task<void> wait_not_empty();
  /// put_nowait()'s checks: QueueShutDown, QueueFull.
  void check_put() const;
  /// get_nowait()'s checks: QueueShutDown (shut down and empty), QueueEmpty.
  void check_get() const;
  /// Book-keeping after an item was added: counts it unfinished, wakes a getter.
  void after_put();
  /// Book-keeping after an item was removed: wakes a putter.
  void after_get() { wakeup_next(putters_); }
  /// Removes one item without returning it (for shutdown(immediate)).
  virtual void discard_one() = 0;
  /// The class name shown by repr().
  virtual const char* kind() const noexcept = 0;

 private:
  static void wakeup_next(std::deque<Future<void>>& waiters);
  Task<void> wait_in(std::deque<Future<void>>& waiters, bool for_put);

  long maxsize_;
  std::deque<Future<void>> getters_;
  std::deque<Future<void>> putters_;
  std::size_t unfinished_ = 0;
  Event finished_;
  bool is_shutdown_ = false;
};

/// FIFO storage.
template <class T>
struct FifoStore {
  std::deque<T> items;
  void push(T item) { items.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items.front());
    items.pop_front();
    return item;
  }
};

/// LIFO storage.
template <class T>
struct LifoStore {
  std::vector<T> items;
  void push(T item) { items.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items.back());
    items.pop_back();
    return item;
  }
};

/// Binary-heap storage: pop() returns the smallest item by Compare (heapq's order).
template <class T, class Compare>
struct HeapStore {
  std::vector<T> items;
  Compare less;
  // std::*_heap build a max-heap for their comparator: reversing it gives a min-heap.
  bool greater(const T& a, const T& b) const { return less(b, a); }
  void push(T item) {
    items.push_back(std::move(item));
    std::push_heap(items.begin(), items.end(),
                   [this](const T& a, const T& b) { return greater(a, b); });
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(),
                  [this](const T& a, const T& b) { return greater(a, b); });
    T item = std::move(items.back());
    items.pop_back();
    return item;
  }
};

/// A queue over storage `Store` (the common body of Queue, LifoQueue and PriorityQueue).
template <class T, class Store>
class BasicQueue : public QueueCore {
 public:
  using value_type = T;

  /// A queue holding at most `maxsize` items (<= 0: unbounded).
  explicit BasicQueue(long maxsize = 0) : QueueCore(maxsize) {}

  std::size_t qsize() const noexcept override { return store_.items.size(); }

  /// co_await q.put(x): waits while the queue is full, then adds x. QueueShutDown once the
  /// queue is shut down.
  Task<void> put(T item) {
    co_await wait_not_full();
    put_nowait(std::move(item));
  }
  /// Adds x without waiting: QueueFull if full, QueueShutDown if shut down.
  void put_nowait(T item) {
    check_put();
    store_.push(std::move(item));
    after_put();
  }
  /// co_await q.get(): waits while the queue is empty, then removes and returns an item.
  /// QueueShutDown once the queue is shut down and empty.
  Task<T> get() {
    co_await wait_not_empty();
    co_return get_nowait();
  }
  /// Removes and returns an item without waiting: QueueEmpty if empty, QueueShutDown if shut
  /// down and empty.
  T get_nowait() {
    check_get();
    T item = store_.pop();
    after_get();
    return item;
  }

 protected:
  void discard_one() override { (void)store_.pop(); }

 private:
  Store store_;
};

}  // namespace detail

/// asyncio.Queue: first in, first out.
template <class T>
class Queue : public detail::BasicQueue<T, detail::FifoStore<T>> {
 public:
  /// A FIFO queue holding at most `maxsize` items (<= 0: unbounded).
  explicit Queue(long maxsize = 0) : detail::BasicQueue<T, detail::FifoStore<T>>(maxsize) {}

 protected:
  const char* kind() const noexcept override { return "Queue"; }
};

/// asyncio.LifoQueue: last in, first out.
template <class T>
class LifoQueue : public detail::BasicQueue<T, detail::LifoStore<T>> {
 public:
  /// A LIFO queue holding at most `maxsize` items (<= 0: unbounded).
  explicit LifoQueue(long maxsize = 0) : detail::BasicQueue<T, detail::LifoStore<T>>(maxsize) {}

 protected:
  const char* kind() const noexcept override { return "LifoQueue"; }
};

/// asyncio.PriorityQueue: the smallest item by Compare first (heapq order; std::greater<T>
/// gives the largest first). Equal items come out in no particular order.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::HeapStore<T, Compare>> {
 public:
  /// A priority queue holding at most `maxsize` items (<= 0: unbounded).
  explicit PriorityQueue(long maxsize = 0)
      : detail::BasicQueue<T, detail::HeapStore<T, Compare>>(maxsize) {}

 protected:
  const char* kind() const noexcept override { return "PriorityQueue"; }
};

}  // namespace asyncuv
