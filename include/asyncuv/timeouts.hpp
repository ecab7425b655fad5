// asyncio.timeout / asyncio.timeout_at (asyncio 3.11+ timeouts.py): a deadline for a block of
// code inside a task. When the deadline passes, the current task is cancelled; at the end of
// the block the CancelledError this produced becomes TimeoutError. uncancel() and the task's
// cancelling() count at entry tell the timeout's own cancellation apart from one requested by
// somebody else, which stays a CancelledError.
//
// Shapes (C++ has no `async with`):
//
//   // The block is a callable returning a Task<R> (or Future<R>); it may take the Timeout&.
//   int v = co_await asyncuv::timeout(0.5, [&](asyncuv::Timeout& cm) -> Task<int> {
//     cm.reschedule(cm.when().value() + 1);  // optional
//     co_return co_await fetch();
//   });
//   co_await asyncuv::timeout_at(loop.time() + 2, []() -> Task<void> { ... });
//   co_await asyncuv::timeout(std::nullopt, body);  // no deadline (Python's None)
//
//   // The async-context-manager protocol, by hand (what the helpers above do):
//   asyncuv::Timeout cm(loop.time() + 0.5);  // timeout_at semantics: an absolute loop time
//   cm.enter();                              // __aenter__
//   std::exception_ptr error;
//   try { co_await work(); } catch (...) { error = std::current_exception(); }
//   if (auto out = cm.exit(error)) std::rethrow_exception(out);  // __aexit__
//
// The body runs inline in the current task (its awaits are the task's awaits). The lambda is
// moved into the timeout coroutine's frame and lives until the body has finished.
//
// GCC 12 caveat: GCC 12 destroys an aggregate temporary -- a lambda closure included -- that
// is written inside a co_await expression twice. With captures that are not trivially
// destructible (a Future, a Task, a std::string, a shared_ptr), name the lambda first:
//   auto body = [fut](...) -> Task<int> {...};   co_await asyncuv::timeout(..., body);
// Captures by reference or of pointers are not affected.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/handle.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

/// asyncio.Timeout: the deadline of one block. Not copyable or movable (its scheduled callback
/// refers to it); it must outlive the block it guards.
class Timeout {
 public:
  /// asyncio's _State values: "created", "active", "expiring", "expired", "finished".
  enum class State { created, active, expiring, expired, finished };

  /// A timeout at absolute loop time `when` (std::nullopt: no deadline). Not active until
  /// enter().
  explicit Timeout(std::optional<LoopTime> when);
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;
  /// Cancels the pending deadline callback, if any.
  ~Timeout();

  /// The deadline in loop.time() seconds, or std::nullopt for none.
  std::optional<double> when() const noexcept { return when_; }

  /// Moves the deadline (std::nullopt removes it). A deadline already in the past cancels the
  /// task on the next iteration. RuntimeError("Timeout has not been entered") before enter();
  /// RuntimeError("Cannot change state of <state> Timeout") once expiring, expired or finished.
  void reschedule(std::optional<LoopTime> when);

  /// True once the deadline passed while the block ran (it cancelled the task).
  bool expired() const noexcept { return state_ == State::expiring || state_ == State::expired; }

  State state() const noexcept { return state_; }

  /// "<Timeout [active] when=12.345>", "<Timeout [active] when=None>", "<Timeout [expired]>".
  std::string repr() const;

  /// __aenter__: binds the timeout to the current task and schedules the deadline.
  /// RuntimeError("Timeout has already been entered") the second time, RuntimeError("Timeout
  /// should be used inside a task") outside a task.
  void enter();

  /// __aexit__: `error` is the exception that ended the block (null if it ended normally).
  /// Returns the exception to propagate: TimeoutError("") when the block ended with the
  /// CancelledError this timeout caused and no other cancellation is pending; else `error`
  /// unchanged (null: nothing to propagate).
  std::exception_ptr exit(std::exception_ptr error);

 private:
  void on_timeout();

  State state_ = State::created;
  std::optional<double> when_;
  Handle handler_;
  std::weak_ptr<detail::TaskStateBase> task_;
  int cancelling_ = 0;
};

namespace detail {

/// The awaitable a timeout body returns: body(cm) if it takes the Timeout&, else body().
template <class F>
decltype(auto) invoke_timeout_body(F& body, Timeout& cm) {
  if constexpr (std::is_invocable_v<F&, Timeout&>) {
    return body(cm);
  } else {
    return body();
  }
}

template <class F>
using timeout_body_result_t = typename std::remove_cvref_t<decltype(invoke_timeout_body(
    std::declval<F&>(), std::declval<Timeout&>()))>::value_type;

/// Runs `body()` (an awaitable producing R) between cm.enter() and cm.exit(). `cm` and `body`
/// belong to the coroutine that co_awaits this one, so they outlive it.
template <class R, class Body>
Task<R> run_in_timeout(Timeout& cm, Body& body) {
  cm.enter();
  std::exception_ptr error;
  if constexpr (std::is_void_v<R>) {
    try {
      co_await body();
    } catch (...) {
      error = std::current_exception();
    }
    if (auto out = cm.exit(std::move(error))) std::rethrow_exception(out);
  } else {
    std::optional<R> result;
    try {
      result.emplace(co_await body());
    } catch (...) {
      error = std::current_exception();
    }
    // A timeout never swallows an exception: a null answer means the block succeeded.
    if (auto out = cm.exit(std::move(error))) std::rethrow_exception(out);
    co_return std::move(*result);
  }
}

}  // namespace detail

/// asyncio.timeout_at(when) around `body`: returns what the body returns; TimeoutError("") if
/// the deadline cancelled it. `body` is a callable returning Task<R> / Future<R>, taking
/// either the Timeout& or nothing.
template <class F>
Task<detail::timeout_body_result_t<F>> timeout_at(std::optional<LoopTime> when, F body) {
  Timeout cm(when);
  auto call = [&body, &cm]() -> decltype(auto) { return detail::invoke_timeout_body(body, cm); };
  co_return co_await detail::run_in_timeout<detail::timeout_body_result_t<F>>(cm, call);
}

/// asyncio.timeout(delay) around `body`: the deadline is loop.time() + delay when the block
/// starts (std::nullopt: none; delay <= 0: the task is cancelled on the next iteration).
template <class F>
Task<detail::timeout_body_result_t<F>> timeout(std::optional<Seconds> delay, F body) {
  std::optional<LoopTime> when;
  if (delay) when = LoopTime(get_running_loop().time() + delay->value);
  Timeout cm(when);
  auto call = [&body, &cm]() -> decltype(auto) { return detail::invoke_timeout_body(body, cm); };
  co_return co_await detail::run_in_timeout<detail::timeout_body_result_t<F>>(cm, call);
}

}  // namespace asyncuv
