// Asynchronous generators (PEP 525): coroutines that both co_await and co_yield.
//
//   asyncuv::AsyncGenerator<int> ticks(int n, double every) {
//     for (int i = 0; i < n; ++i) {
//       co_await asyncuv::sleep(every);
//       co_yield i;
//     }
//   }
//   ...
//   auto gen = ticks(10, 0.1);
//   while (std::optional<int> tick = co_await gen.next()) use(*tick);   // Python's async for
//   co_await gen.aclose();
//
// Calling the function creates the generator without running it. Each `co_await gen.next()`
// runs the body, inside the awaiting task, up to its next co_yield (giving that value) or to
// its end (giving std::nullopt, Python's StopAsyncIteration). Exceptions cross both ways: what
// the body throws comes out of next(); a cancellation of the consuming task surfaces at the
// co_await the generator waits at.
//
// Cleanup: aclose() throws GeneratorExit at the co_yield the generator waits at, so its RAII
// destructors run inside the loop. C++ cannot co_await inside a catch block; asynchronous
// cleanup goes after it:
//
//   bool closing = false;
//   try { co_yield v; } catch (const asyncuv::GeneratorExit&) { closing = true; }
//   if (closing) { co_await flush(); co_return; }    // co_yield again: RuntimeError
//
// The loop tracks every generator first iterated on it: loop.shutdown_asyncgens() (called by
// asyncuv::run before it closes the loop) closes those still open; and when the last handle of
// a generator waiting at a co_yield goes away, the loop schedules its aclose() as a task.
#pragma once

#include <concepts>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncuv/detail/async_generator_core.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

/// Python's GeneratorExit: thrown at the co_yield of a generator being closed by aclose().
/// Like Python, a BaseException and not an Exception.
class GeneratorExit : public BaseException {
 public:
  GeneratorExit() : BaseException("") {}
};

/// An asynchronous generator producing values of type T: the return type of a coroutine that
/// uses co_yield (and may co_await). A shared handle: copies refer to the same generator,
/// which is finalized (see the header comment) when the last copy goes away. An empty
/// (default-constructed) handle may only be assigned to.
template <class T>
class AsyncGenerator {
  static_assert(!std::is_reference_v<T> && !std::is_void_v<T>,
                "AsyncGenerator<T> yields values: T must be an object type");

 public:
  using promise_type = detail::AsyncGenPromise<T>;
  using value_type = T;

  AsyncGenerator() = default;
  explicit AsyncGenerator(std::shared_ptr<detail::AsyncGenOwner> owner) noexcept
      : owner_(std::move(owner)) {}

  /// Awaitable: `co_await gen.next()` runs the generator to its next co_yield and gives that
  /// value, or std::nullopt once the generator finished or was closed (Python's anext()).
  /// What the body throws is rethrown (the generator is then finished). RuntimeError("anext():
  /// asynchronous generator is already running") while another resumption is in progress.
  [[nodiscard]] detail::NextAwaiter<T> next() const { return {owner_, nullptr}; }

  /// Awaitable (Python's athrow()): throws `e` at the co_yield the generator waits at and
  /// gives the next value it yields, or std::nullopt if it then returns. An exception that
  /// leaves the body (`e` itself if not caught) is rethrown. A generator not started yet is
  /// closed and `e` rethrown without running the body; a finished one gives std::nullopt.
  [[nodiscard]] detail::NextAwaiter<T> athrow(std::exception_ptr e) const {
    if (!e) throw TypeError("athrow() needs an exception");
    return {owner_, std::move(e)};
  }

  /// Coroutine (Python's aclose()): closes the generator. One waiting at a co_yield gets
  /// GeneratorExit thrown there and must finish (possibly after asynchronous cleanup); if it
  /// yields again instead: RuntimeError("async generator ignored GeneratorExit") (it stays
  /// suspended). Another exception leaving the body is rethrown. A generator not started, or
  /// finished, is just marked closed. RuntimeError("aclose(): asynchronous generator is already
  /// running") during another resumption.
  Task<void> aclose() const { return detail::aclose_generator(owner_); }

  /// Coroutine: calls fn(value) for each value until the generator finishes. fn may return
  /// void, bool (false stops the iteration), Task<void> or Task<bool> (awaited). Stopping
  /// early leaves the generator open, as `break` in Python's async for does.
  template <class F>
  Task<void> for_each(F fn) const {
    return for_each_of(*this, std::move(fn));
  }

  /// True while a next()/athrow()/aclose() is in progress (Python's ag_running).
  bool running() const noexcept { return owner_->core().running(); }
  /// True once the generator finished or was closed.
  bool closed() const noexcept { return owner_->core().done(); }

  /// "<async_generator object ticks at 0x55d0c8a1b2c0>".
  std::string repr() const { return owner_->core().repr(); }

  explicit operator bool() const noexcept { return owner_ != nullptr; }
  friend bool operator==(const AsyncGenerator& a, const AsyncGenerator& b) noexcept {
    return a.owner_ == b.owner_;
  }

  /// The shared owner (internal).
  const std::shared_ptr<detail::AsyncGenOwner>& owner() const noexcept { return owner_; }

 private:
  template <class F>
  static Task<void> for_each_of(AsyncGenerator gen, F fn) {
    using R = std::invoke_result_t<F&, T&&>;
    while (true) {
      std::optional<T> value = co_await gen.next();
      if (!value) co_return;
      if constexpr (std::is_void_v<R>) {
        fn(std::move(*value));
      } else if constexpr (std::is_same_v<R, bool>) {
        if (!fn(std::move(*value))) co_return;
      } else if constexpr (std::is_same_v<R, Task<void>>) {
        co_await fn(std::move(*value));
      } else {
        static_assert(std::is_same_v<R, Task<bool>>,
                      "for_each: fn must return void, bool, Task<void> or Task<bool>");
        bool go_on = co_await fn(std::move(*value));
        if (!go_on) co_return;
      }
    }
  }

  std::shared_ptr<detail::AsyncGenOwner> owner_;
};

/// A generator of any value type: what shutdown_asyncgens puts in an exception context under
/// "asyncgen" (`context.get<AnyAsyncGenerator>("asyncgen")`).
class AnyAsyncGenerator {
 public:
  AnyAsyncGenerator() = default;
  explicit AnyAsyncGenerator(std::shared_ptr<detail::AsyncGenOwner> owner) noexcept
      : owner_(std::move(owner)) {}
  template <class T>
  AnyAsyncGenerator(const AsyncGenerator<T>& gen) : owner_(gen.owner()) {}  // NOLINT: implicit

  /// See AsyncGenerator::aclose().
  Task<void> aclose() const { return detail::aclose_generator(owner_); }
  bool running() const noexcept { return owner_->core().running(); }
  bool closed() const noexcept { return owner_->core().done(); }
  std::string repr() const { return owner_->core().repr(); }

  /// The typed generator, if this one yields T (empty otherwise).
  template <class T>
  AsyncGenerator<T> as() const {
    if (owner_ && dynamic_cast<detail::AsyncGenState<T>*>(&owner_->core()) != nullptr) {
      return AsyncGenerator<T>(owner_);
    }
    return AsyncGenerator<T>();
  }

  explicit operator bool() const noexcept { return owner_ != nullptr; }
  friend bool operator==(const AnyAsyncGenerator& a, const AnyAsyncGenerator& b) noexcept {
    return a.owner_ == b.owner_;
  }

 private:
  std::shared_ptr<detail::AsyncGenOwner> owner_;
};

/// Coroutine: `gen.next()` as a Task<std::optional<T>>, for helpers that take tasks
/// (Python's anext(gen)): `co_await asyncuv::wait_for(asyncuv::anext(gen), 1.0)`.
template <class T>
Task<std::optional<T>> anext(AsyncGenerator<T> gen) {
  co_return co_await gen.next();
}

namespace detail {
template <class T>
AsyncGenerator<T> AsyncGenPromise<T>::get_return_object() {
  auto s = std::allocate_shared<AsyncGenState<T>>(PoolAllocator<AsyncGenState<T>>());
  s->set_function(function);
  state = s.get();
  auto owner = std::make_shared<AsyncGenOwner>(s);
  // Last: from here on the state owns (and destroys) the frame.
  s->set_frame(std::coroutine_handle<AsyncGenPromise<T>>::from_promise(*this));
  return AsyncGenerator<T>(std::move(owner));
}
}  // namespace detail

}  // namespace asyncuv
