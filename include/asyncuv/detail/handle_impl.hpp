// The reference-counted object behind asyncuv::Handle and asyncuv::TimerHandle: a small header
// plus the user's callable, allocated in one block. The loop's ready queue and timer heap hold
// raw pointers that own one reference each.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include "asyncuv/source_location.hpp"

#include "asyncuv/detail/context_impl.hpp"
#include "asyncuv/detail/describe.hpp"
#include "asyncuv/detail/handle_pool.hpp"
#include "asyncuv/detail/not_a_coroutine.hpp"
#include "asyncuv/exceptions.hpp"

namespace asyncuv::detail {

class TimerHeap;
struct HandleImpl;

/// Per-callable-type operations (a hand-made vtable keeps the header small and POD).
struct HandleOps {
  void (*invoke)(HandleImpl*);
  void (*destroy_callback)(HandleImpl*) noexcept;
  std::string (*describe)(const HandleImpl*);
  void (*deallocate)(HandleImpl*) noexcept;
};

struct HandleImpl {
  const HandleOps* ops;
  /// Starts at 2: one for the queue/heap that will hold it, one for the returned Handle.
  std::atomic<std::uint32_t> refs{2};
  bool cancelled = false;
  bool callback_alive = true;          // the callable (and its captures) still exists
  bool running = false;                // the callable is executing right now
  bool shared_across_threads = false;  // refs must be updated atomically
  bool is_timer = false;
  bool in_heap = false;     // a timer currently scheduled in its loop's heap
  bool persistent = false;  // runs again and again (fd watchers, signal handlers): the callable
                            // is kept after each run, dropped on cancel
  asyncuv::source_location where;
  TimerHeap* heap = nullptr;  // timers only: the heap holding it (null once its loop closed)
  double when = 0;            // timers only: deadline in loop.time() seconds
  /// The context the callback runs in (one reference), or null for a fresh empty one: null
  /// costs nothing, so a program that never uses contexts pays no atomics here.
  ContextImpl* context = nullptr;

  HandleImpl(const HandleOps* o, asyncuv::source_location w) : ops(o), where(w) {}
};

inline void retain(HandleImpl* h) noexcept {
  if (h->shared_across_threads) {
    h->refs.fetch_add(1, std::memory_order_relaxed);
  } else {
    h->refs.store(h->refs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
}

/// Drops one reference; the last frees the handle (and its context, if it may hold one).
template <bool MayHoldContext = true>
inline void release(HandleImpl* h) noexcept {
  std::uint32_t left;
  if (h->shared_across_threads) {
    left = h->refs.fetch_sub(1, std::memory_order_acq_rel) - 1;
  } else {
    left = h->refs.load(std::memory_order_relaxed) - 1;
    h->refs.store(left, std::memory_order_relaxed);
  }
  if (left == 0) {
    if (h->callback_alive) h->ops->destroy_callback(h);
    if constexpr (MayHoldContext) {
      if (h->context != nullptr) [[unlikely]]
        release_context(h->context);
    }
    h->ops->deallocate(h);
  }
}
/// release() for a handle known to hold no context (the loop's batch before any existed).
inline void release_without_context(HandleImpl* h) noexcept {
  release<false>(h);
}

/// Destroys the callable now (after it ran, or on cancel), freeing what it captured.
inline void drop_callback(HandleImpl* h) noexcept {
  if (h->callback_alive && !h->running) {
    h->callback_alive = false;
    h->ops->destroy_callback(h);
  }
}

/// A callable with bound positional arguments, like functools.partial: call_soon(f, a, b).
template <class F, class... Args>
struct BoundCall {
  F f;
  std::tuple<Args...> args;
  void operator()() { std::apply(f, args); }
};

template <class Fn>
struct Describe {
  static std::string args(const Fn&) { return "()"; }
};

template <class F, class... Args>
struct Describe<BoundCall<F, Args...>> {
  static std::string args(const BoundCall<F, Args...>& b) {
    std::string out = "(";
    std::apply(
        [&](const auto&... a) {
          bool first = true;
          ((out += (first ? "" : ", ") + describe_value(a), first = false), ...);
        },
        b.args);
    return out + ")";
  }
};

template <class Fn>
struct CallbackHandle final : HandleImpl {
  union {
    Fn fn;
  };

  template <class U>
  CallbackHandle(U&& f, asyncuv::source_location w)
      : HandleImpl(&ops_table, w), fn(std::forward<U>(f)) {}
  ~CallbackHandle() {}

  static void invoke(HandleImpl* h) { static_cast<CallbackHandle*>(h)->fn(); }
  static void destroy_callback(HandleImpl* h) noexcept {
    static_cast<CallbackHandle*>(h)->fn.~Fn();
  }
  static std::string describe(const HandleImpl* h);
  static void deallocate(HandleImpl* h) noexcept {
    auto* self = static_cast<CallbackHandle*>(h);
    self->~CallbackHandle();
    free_block<CallbackHandle>(self);
  }

  static constexpr HandleOps ops_table{&invoke, &destroy_callback, &describe, &deallocate};
};

template <class Fn>
struct FunctionName {
  static std::string get() { return type_name<Fn>(); }
};
template <class F, class... Args>
struct FunctionName<BoundCall<F, Args...>> {
  static std::string get() { return type_name<F>(); }
};

template <class Fn>
std::string CallbackHandle<Fn>::describe(const HandleImpl* h) {
  auto* self = static_cast<const CallbackHandle*>(h);
  std::string text = FunctionName<Fn>::get();
  text += self->callback_alive ? Describe<Fn>::args(self->fn) : std::string("()");
  return text;
}

template <class Fn>
struct IsStdFunction : std::false_type {};
template <class R, class... As>
struct IsStdFunction<std::function<R(As...)>> : std::true_type {};

/// A null function or member pointer, or an empty std::function, cannot be scheduled
/// (asyncio: "a callable object was expected"); calling it would crash the loop.
template <class Fn>
void check_callable(const Fn& f) {
  bool null = false;
  if constexpr (std::is_pointer_v<Fn> || std::is_member_pointer_v<Fn>) {
    null = f == nullptr;
  } else if constexpr (IsStdFunction<Fn>::value) {
    null = !f;
  }
  if (null) throw TypeError("a callable object was expected, got nullptr");
}

/// Allocates the handle for `f(args...)`. Zero arguments store the callable as is.
template <class F, class... Args>
HandleImpl* make_handle(asyncuv::source_location where, F&& f, Args&&... args) {
  static_assert(!returns_task_v<std::decay_t<F>, std::decay_t<Args>...>,
                "a coroutine function cannot be a callback (asyncio: TypeError \"coroutines "
                "cannot be used with call_soon()\"): its body would never run. Schedule it "
                "with loop.create_task(coro()), or from the callback: "
                "call_soon([&] { loop.create_task(coro()); })");
  check_callable<std::decay_t<F>>(f);
  if constexpr (sizeof...(Args) == 0) {
    using H = CallbackHandle<std::decay_t<F>>;
    void* block = allocate_block<H>();
    try {
      return new (block) H(std::forward<F>(f), where);
    } catch (...) {
      free_block<H>(block);
      throw;
    }
  } else {
    using Fn = BoundCall<std::decay_t<F>, std::decay_t<Args>...>;
    using H = CallbackHandle<Fn>;
    void* block = allocate_block<H>();
    try {
      return new (block)
          H(Fn{std::forward<F>(f), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)},
            where);
    } catch (...) {
      free_block<H>(block);
      throw;
    }
  }
}

}  // namespace asyncuv::detail
