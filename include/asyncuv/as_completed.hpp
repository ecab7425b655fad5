// asyncio.as_completed (3.13 form): the given tasks and futures in the order they complete.
//
//   auto it = asyncuv::as_completed(std::move(tasks), 5.0);   // timeout optional
//   for (asyncuv::Task<int> next : it) {       // Python: for aw in as_completed(aws, timeout=t)
//     int r = co_await next;                   //   the next result (or its exception)
//   }
//   while (auto done = co_await it.next()) {   // Python: async for t in as_completed(aws)
//     use(*done);                              //   the original Task / Future itself
//   }
//
// As asyncio: unscheduled coroutines are scheduled as tasks (on the first scheduled one's
// loop, else the current loop); duplicates count once; each form yields at most as many items
// as there are distinct awaitables, one per completion, in completion order. When `timeout`
// seconds pass before everything completed, every later await (of either form) raises
// TimeoutError; nothing is cancelled. One iterator serves either form (or both, interleaved:
// each item is handed out once).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncuv/durations.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/handle.hpp"
#include "asyncuv/helpers.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

namespace detail {

/// asyncio's _AsCompletedIterator state: `done` is its queue (std::nullopt: the timeout's
/// sentinel), `todo` what has not completed yet.
template <class A>
struct AsCompletedState {
  EventLoop* loop = nullptr;
  std::vector<A> todo;
  std::vector<std::uint64_t> callback_ids;  // todo[i]'s done-callback
  std::deque<std::optional<A>> done;
  std::vector<Future<void>> waiters;  // awaits blocked on an empty queue
  std::size_t left = 0;               // items still to hand out
  TimerHandle timeout;

  void put(std::optional<A> item) {
    done.push_back(std::move(item));
    for (Future<void>& w : waiters) {
      if (!w.done()) w.set_result();
    }
    waiters.clear();
  }

  void completed(const std::shared_ptr<FutureCore>& core) {
    for (std::size_t i = 0; i < todo.size(); ++i) {
      if (todo[i].state() != core) continue;
      A f = std::move(todo[i]);
      todo.erase(todo.begin() + static_cast<std::ptrdiff_t>(i));
      callback_ids.erase(callback_ids.begin() + static_cast<std::ptrdiff_t>(i));
      put(std::move(f));
      if (todo.empty()) timeout.cancel();
      return;
    }
  }

  void timed_out() {
    for (std::size_t i = 0; i < todo.size(); ++i) {
      todo[i].state()->remove_callback(callback_ids[i]);
      put(std::nullopt);  // one sentinel per awaitable that did not complete
    }
    todo.clear();
    callback_ids.clear();
  }
};

template <class A>
Task<A> as_completed_wait_one(std::shared_ptr<AsCompletedState<A>> s) {
  while (s->done.empty()) {
    Future<void> waiter = s->loop->template create_future<void>();
    s->waiters.push_back(waiter);
    co_await waiter;
  }
  std::optional<A> item = std::move(s->done.front());
  s->done.pop_front();
  if (!item) throw TimeoutError(std::string());
  co_return std::move(*item);
}

template <class A>
Task<awaited_t<A>> as_completed_resolve(std::shared_ptr<AsCompletedState<A>> s) {
  A f = co_await as_completed_wait_one(std::move(s));
  if constexpr (std::is_void_v<awaited_t<A>>) {
    f.result();
  } else {
    co_return f.result();
  }
}

template <class A>
Task<std::optional<A>> as_completed_next(std::shared_ptr<AsCompletedState<A>> s) {
  A f = co_await as_completed_wait_one(std::move(s));
  co_return std::optional<A>(std::move(f));
}

template <class A>
Task<std::optional<A>> as_completed_exhausted() {
  co_return std::nullopt;
}

}  // namespace detail

/// What as_completed() returns: iterate it for awaitables of the results, or co_await next()
/// for the original tasks and futures. A handle: copies share the iteration.
template <class A>
class AsCompleted {
 public:
  using State = detail::AsCompletedState<A>;
  using value_type = detail::awaited_t<A>;

  explicit AsCompleted(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}

  /// Plain iteration: each item is a coroutine that waits for the next completion and returns
  /// its result (rethrowing its exception), or raises TimeoutError after the timeout.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Task<detail::awaited_t<A>>;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    iterator(AsCompleted* owner, std::size_t remaining) : owner_(owner), remaining_(remaining) {}
    value_type operator*() const { return owner_->next_result(); }
    iterator& operator++() {
      --remaining_;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) noexcept {
      return a.remaining_ == b.remaining_;
    }

   private:
    AsCompleted* owner_ = nullptr;
    std::size_t remaining_ = 0;
  };

  iterator begin() { return iterator(this, state_->left); }
  iterator end() { return iterator(this, 0); }

  /// One awaitable of the plain form (what the iterator yields): the next completion's result.
  /// RuntimeError once every item was handed out (Python's StopIteration).
  Task<value_type> next_result() {
    if (state_->left == 0) throw RuntimeError("as_completed() has no more items");
    --state_->left;
    return detail::as_completed_resolve(state_);
  }

  /// The async-iteration form: the next task or future to complete (the original object), or
  /// std::nullopt once every one was handed out; TimeoutError after the timeout.
  Task<std::optional<A>> next() {
    if (state_->left == 0) return detail::as_completed_exhausted<A>();
    --state_->left;
    return detail::as_completed_next(state_);
  }

  /// How many items are still to be handed out.
  std::size_t remaining() const noexcept { return state_->left; }

 private:
  std::shared_ptr<State> state_;
};

/// asyncio.as_completed(aws, timeout): see the top of this file. `aws` holds Task<T>s or
/// Future<T>s (scheduled or not); TypeError for an empty one.
template <detail::TaskOrFuture A>
AsCompleted<A> as_completed(std::vector<A> aws, std::optional<Seconds> timeout = std::nullopt) {
  using State = detail::AsCompletedState<A>;
  auto s = std::make_shared<State>();
  for (const A& a : aws) {
    if (!a) throw TypeError("as_completed() got an empty task or future");
  }
  EventLoop& loop = [&]() -> EventLoop& {
    for (const A& a : aws) {
      if (a.state()->has_loop()) return a.state()->loop();
    }
    return get_event_loop();
  }();
  s->loop = &loop;
  for (A& a : aws) {
    bool seen = false;
    for (const A& t : s->todo)
      seen = seen || t.state() == a.state();
    if (!seen) s->todo.push_back(detail::ensure_future(loop, std::move(a)));
  }
  s->left = s->todo.size();
  // A weak reference: the futures' callbacks never keep the iteration alive.
  std::weak_ptr<State> weak = s;
  // Registered on a copy: a future already done calls back (through call_soon) later.
  for (const A& f : std::vector<A>(s->todo)) {
    s->callback_ids.push_back(
        f.state()->add_callback([weak](const std::shared_ptr<detail::FutureCore>& core) {
          if (std::shared_ptr<State> state = weak.lock()) state->completed(core);
        }));
  }
  if (!s->todo.empty() && timeout) {
    s->timeout = loop.call_later(*timeout, [weak] {
      if (std::shared_ptr<State> state = weak.lock()) state->timed_out();
    });
  }
  return AsCompleted<A>(std::move(s));
}

}  // namespace asyncuv
