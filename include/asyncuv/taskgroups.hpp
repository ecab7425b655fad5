// asyncio.TaskGroup (asyncio 3.11+ taskgroups.py): structured concurrency. Every task created
// in the group is awaited before the group's block is left. The first child that fails with
// an error other than CancelledError cancels its siblings and the body (the parent task); all
// such errors come out together as one ExceptionGroup. A cancellation of the parent task from
// outside cancels the children and leaves as CancelledError.
//
// Shapes (C++ has no `async with`):
//
//   co_await asyncuv::task_group([&](asyncuv::TaskGroup& tg) -> Task<void> {
//     tg.create_task(fetch(1));
//     Task<int> t = tg.create_task(fetch(2));
//     co_return;
//   });  // every child is done here; t.result() is available
//
//   // The async-context-manager protocol, by hand (what task_group() does):
//   asyncuv::TaskGroup tg;
//   tg.enter();                      // __aenter__
//   std::exception_ptr error;
//   try { tg.create_task(work()); co_await other(); } catch (...) { error = ...; }
//   co_await tg.exit(error);         // __aexit__: throws what propagates
//
// The body may return a value: task_group returns it. TaskGroup is a handle: copies share one
// group, so a child may receive the group to add siblings to it.
//
// GCC 12 caveat: GCC 12 destroys an aggregate temporary -- a lambda closure included -- that
// is written inside a co_await expression twice. With captures that are not trivially
// destructible (a Future, a Task, a std::string, a shared_ptr), name the lambda first:
//   auto body = [fut](...) -> Task<int> {...};   co_await asyncuv::task_group(..., body);
// Captures by reference or of pointers are not affected.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

/// Python's ExceptionGroup: several exceptions raised together. what() reads
/// "message (N sub-exceptions)", e.g. "unhandled errors in a TaskGroup (2 sub-exceptions)".
class ExceptionGroup : public Exception {
 public:
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions);

  /// The message without the "(N sub-exceptions)" suffix.
  const std::string& message() const noexcept { return message_; }
  /// The exceptions, in the order they happened (the body's own error last).
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

 private:
  std::string message_;
  std::vector<std::exception_ptr> exceptions_;
};

namespace detail {
struct TaskGroupState;
}

/// asyncio.TaskGroup. A cheap handle: copies share one group.
class TaskGroup {
 public:
  TaskGroup();

  /// __aenter__: binds the group to the current task (its parent). RuntimeError("TaskGroup
  /// <TaskGroup entered> has already been entered") the second time; RuntimeError("TaskGroup
  /// <TaskGroup> cannot determine the parent task") outside a task.
  void enter();

  /// __aexit__: `error` is the exception that ended the body (null if none). Waits for every
  /// child, then throws what must propagate (ExceptionGroup of the children's and the body's
  /// errors; the body's / parent's CancelledError; a fatal error) or returns if nothing does.
  Task<void> exit(std::exception_ptr error);

  /// Schedules `coro` as a task of the group (through the loop's create_task). RuntimeError
  /// "TaskGroup <...> has not been entered" / "... is finished" / "... is shutting down".
  template <class T>
  Task<T> create_task(Task<T> coro, std::string name = {}) {
    EventLoop& loop = check_can_create();
    Task<T> task = loop.create_task(std::move(coro), std::move(name));
    adopt(AnyTask(task));
    return task;
  }

  /// TaskGroup.cancel() (asyncio 3.15, gh-108951): a non-exceptional early exit. Cancels the
  /// unfinished children and the body (the parent task); the group's exit then returns
  /// normally instead of raising CancelledError (a cancellation of the parent from elsewhere
  /// still propagates; children's errors still make an ExceptionGroup). Idempotent. Called
  /// before enter(), the group cancels itself on entry; after the group exited it does nothing.
  /// task_group(body) with a body returning a value has nothing to return when cancel() stopped
  /// the body: it raises the body's CancelledError then (use a void body for early exits).
  void cancel();

  /// How many children are not done yet (as the group knows it: a child leaves the count in
  /// its done-callback).
  std::size_t pending() const noexcept;

  /// "<TaskGroup tasks=2 errors=1 cancelling>", "<TaskGroup entered>", "<TaskGroup>".
  std::string repr() const;

 private:
  EventLoop& check_can_create() const;
  void adopt(AnyTask task);

  std::shared_ptr<detail::TaskGroupState> state_;
};

namespace detail {
template <class F>
using task_group_body_result_t =
    typename std::remove_cvref_t<std::invoke_result_t<F&, TaskGroup&>>::value_type;
}

/// `async with TaskGroup() as tg: <body>`: enters a new group, runs body(tg) inline in the
/// current task, then waits for the children (TaskGroup::exit) and returns the body's result.
template <class F>
Task<detail::task_group_body_result_t<F>> task_group(F body) {
  using R = detail::task_group_body_result_t<F>;
  TaskGroup tg;
  tg.enter();
  std::exception_ptr error;
  if constexpr (std::is_void_v<R>) {
    try {
      co_await body(tg);
    } catch (...) {
      error = std::current_exception();
    }
    co_await tg.exit(error);
  } else {
    std::optional<R> result;
    try {
      result.emplace(co_await body(tg));
    } catch (...) {
      error = std::current_exception();
    }
    co_await tg.exit(error);
    // exit() swallowed the body's exception: there is no value to return.
    if (!result) std::rethrow_exception(error);
    co_return std::move(*result);
  }
}

}  // namespace asyncuv
