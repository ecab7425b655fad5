// asyncio.Task for C++20 coroutines: Task<T> is the coroutine return type. Calling a coroutine
// function creates the coroutine without running it; loop.create_task(coro()) schedules it as
// a task (its first step runs on the next iteration), and `co_await coro()` inside another
// coroutine runs it inline, as Python's `await coro()` does.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/futures.hpp"

namespace asyncuv {

template <class T = void>
class Task;
class AnyTask;

namespace detail {

struct TaskPromiseBase;

/// The type-independent state of a task: the coroutine frame it owns and the step machinery
/// of asyncio's Task.__step / __wakeup.
class TaskStateBase : public FutureCore {
 public:
  TaskStateBase();
  /// A task destroyed while pending reports "Task was destroyed but it is pending!"; the
  /// coroutine frame is destroyed with it (never resumed afterwards).
  ~TaskStateBase() override;

  /// Attaches to `loop`, registers in its task list and schedules the first step; `eager`
  /// with a running loop runs the first step now instead (asyncio's Task.__eager_start): a
  /// coroutine that finishes without suspending leaves a done task that is never scheduled.
  void start(EventLoop& loop, std::string name, bool eager = false);
  /// True once scheduled on a loop as a task.
  bool started() const noexcept { return started_; }

  bool cancel(std::string message) override;
  int cancelling() const noexcept { return cancels_requested_; }
  int uncancel() noexcept;

  /// The name; "Task-N" (N from a global counter) is only formatted when first asked for.
  const std::string& name() const;
  void set_name(std::string name) {
    name_ = std::move(name);
    number_ = 0;
  }

  std::string repr() const override;

  /// The coroutine frame (null once it finished).
  std::coroutine_handle<> frame() const noexcept { return frame_; }
  void set_frame(std::coroutine_handle<> h, TaskPromiseBase* promise) noexcept {
    frame_ = h;
    root_promise_ = promise;
  }
  /// The outermost coroutine's promise while the frame exists (the call graph's root).
  TaskPromiseBase* root_promise() const noexcept { return frame_ ? root_promise_ : nullptr; }
  /// The future the task waits for now (asyncio's _fut_waiter), or null.
  const FutureCore* awaited_future() const noexcept { return waiting_on_.get(); }

  /// Suspends this task until `future` is done; `at` is the coroutine to resume then.
  void wait_for_future(FutureCore& future, std::coroutine_handle<> at);
  /// Suspends this task for one loop iteration (sleep(0)).
  void yield_once(std::coroutine_handle<> at);

  /// Called by the promise when the coroutine threw: finishes the future part with that
  /// exception (CancelledError: cancelled), even when a cancellation is pending.
  void complete_with_exception(std::exception_ptr e);
  /// Called by the promise before storing a returned value: false if a pending cancellation
  /// turns the return into a cancellation.
  bool complete_cancelled_instead();

  /// Throws CancelledError if this step was started to deliver a cancellation (internal).
  void throw_if_cancel_delivered();

  /// Runs one step: resumes the coroutine where it waits (asyncio Task.__step).
  void step();

  /// The context every step runs in (asyncio 3.12 Task.get_context()).
  Context get_context();
  /// create_task(..., context=): runs the task in `context` itself (before start()).
  void set_context(const Context& context);

  // Intrusive list of a loop's pending tasks (EventLoop::all_tasks).
  TaskStateBase* prev_task = nullptr;
  TaskStateBase* next_task = nullptr;
  std::shared_ptr<TaskStateBase> keep_alive;  // set while registered with a loop

 private:
  void unregister() noexcept;
  void schedule_step();
  void run_step();
  void step_in_context();

  std::coroutine_handle<> frame_;
  TaskPromiseBase* root_promise_ = nullptr;
  std::coroutine_handle<> resume_at_;
  std::shared_ptr<FutureCore> waiting_on_;  // asyncio _fut_waiter
  mutable std::string name_;
  mutable std::uint64_t number_ = 0;  // N of a default "Task-N" name not formatted yet
  std::string pending_cancel_message_;
  int cancels_requested_ = 0;
  bool started_ = false;
  bool must_cancel_ = false;
  bool deliver_cancel_ = false;
};

template <class T>
using TaskState = FutureValue<T, TaskStateBase>;

/// The task whose step runs in this thread, or nullptr.
TaskStateBase* current_task_state() noexcept;

/// Awaiter for the start of a coroutine: always suspends; delivers a cancellation requested
/// before the first step (the body then never runs).
struct InitialAwaiter {
  TaskStateBase* state;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const {
    if (state->started()) state->throw_if_cancel_delivered();
  }
};

struct TaskPromiseBase;

/// Awaiter for the end of a coroutine: resumes the coroutine that awaited it inline, if any.
struct FinalAwaiter {
  std::coroutine_handle<> continuation;
  TaskPromiseBase* parent;  // the awaiting coroutine's promise, if it is a task coroutine
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept;
  void await_resume() const noexcept {}
};

struct TaskPromiseBase {
  TaskStateBase* state = nullptr;
  std::coroutine_handle<> continuation;
  // The call graph (capture_call_graph, <asyncuv/graph.hpp>): where this coroutine last
  // awaited, and the task coroutine it runs inline now (`co_await child()`), linked both ways.
  asyncuv::source_location await_site;
  TaskPromiseBase* awaiting_child = nullptr;
  TaskPromiseBase* parent_promise = nullptr;

  /// Records the co_await's location and passes the awaitable on unchanged: one store per
  /// co_await, no copy or wrapper of the awaitable (which g++ 12 mishandles in co_await
  /// full-expressions). The default argument is evaluated where the co_await is written.
  template <class A>
  A&& await_transform(A&& awaitable, asyncuv::source_location where =
                                         asyncuv::source_location::current()) noexcept {
    await_site = where;
    return static_cast<A&&>(awaitable);
  }

  // Coroutine frames come from the handle pool.
  static void* operator new(std::size_t size) { return allocate_sized(size); }
  static void operator delete(void* frame, std::size_t size) noexcept { free_sized(frame, size); }

  InitialAwaiter initial_suspend() const noexcept { return {state}; }
  FinalAwaiter final_suspend() const noexcept { return {continuation, parent_promise}; }
  void unhandled_exception() const { state->complete_with_exception(std::current_exception()); }
};

template <class T>
struct TaskPromise : TaskPromiseBase {
  Task<T> get_return_object();
  template <class U>
  requires std::convertible_to<U&&, T>
  void return_value(U&& value) {
    if (!state->complete_cancelled_instead()) {
      static_cast<TaskState<T>*>(state)->set_result(T(std::forward<U>(value)));
    }
  }
};

template <>
struct TaskPromise<void> : TaskPromiseBase {
  Task<void> get_return_object();
  void return_void() {
    if (!state->complete_cancelled_instead()) static_cast<TaskState<void>*>(state)->set_result();
  }
};

inline std::coroutine_handle<> FinalAwaiter::await_suspend(std::coroutine_handle<>) const noexcept {
  if (parent != nullptr) parent->awaiting_child = nullptr;
  return continuation ? continuation : std::noop_coroutine();
}

/// Awaits a future from inside a task.
template <class State>
struct FutureAwaiter {
  std::shared_ptr<State> state;
  bool await_ready() const noexcept { return state->done(); }
  void await_suspend(std::coroutine_handle<> h) const;
  decltype(auto) await_resume() const {
    if (TaskStateBase* task = current_task_state()) task->throw_if_cancel_delivered();
    if constexpr (copyable_result_v<typename State::value_type>) {
      return state->result();
    } else {
      return state->take_result();  // a move-only result can be awaited once
    }
  }
};

/// Suspends the current task until the next iteration (sleep(0)).
struct YieldAwaiter {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const;
  void await_resume() const;
};

[[noreturn]] void throw_not_in_task();

template <class State>
void FutureAwaiter<State>::await_suspend(std::coroutine_handle<> h) const {
  TaskStateBase* task = current_task_state();
  if (task == nullptr) throw_not_in_task();
  task->wait_for_future(*state, h);
}

/// The next N for a default "Task-N" task name.
std::uint64_t next_task_number() noexcept;

/// create_task's eager_start, handed to the task factory it calls (asyncio passes it as a
/// keyword argument): set for the duration of the factory call; make_task and the eager task
/// factories take() it.
class EagerStartRequest {
 public:
  explicit EagerStartRequest(std::optional<bool> eager_start) noexcept;
  ~EagerStartRequest();
  EagerStartRequest(const EagerStartRequest&) = delete;
  EagerStartRequest& operator=(const EagerStartRequest&) = delete;
  /// What the innermost create_task asked for, cleared so that nested calls do not see it.
  static std::optional<bool> take() noexcept;

 private:
  std::optional<bool> previous_;
};

}  // namespace detail

/// A coroutine returning T, and (once scheduled with create_task) an asyncio Task: a Future
/// whose result is the coroutine's. Copies share one state.
template <class T>
class Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;
  using State = detail::TaskState<T>;

  Task() = default;
  explicit Task(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}

  /// The coroutine's result (a const reference for non-void T); throws InvalidStateError while
  /// pending, CancelledError if cancelled, or the coroutine's exception.
  decltype(auto) result() const { return state_->result(); }
  std::exception_ptr exception() const { return state_->exception(); }
  bool done() const noexcept { return state_->done(); }
  /// True once the coroutine finished with CancelledError (not merely after cancel()).
  bool cancelled() const noexcept { return state_->cancelled(); }

  /// Requests cancellation: CancelledError(message) is thrown into the coroutine at its current
  /// co_await (or before its first step). True if the task was not done.
  bool cancel(std::string message = {}) const { return state_->cancel(std::move(message)); }
  /// How many cancellations are pending (asyncio 3.11 cancelling()).
  int cancelling() const noexcept { return state_->cancelling(); }
  /// Decrements the pending-cancellation count and returns it (asyncio 3.11 uncancel()).
  int uncancel() const noexcept { return state_->uncancel(); }

  /// The task's name: "Task-N" by default.
  const std::string& get_name() const { return state_->name(); }
  void set_name(std::string name) const { state_->set_name(std::move(name)); }

  /// The coroutine frame (null once finished), asyncio's get_coro().
  std::coroutine_handle<> get_coro() const noexcept { return state_->frame(); }

  /// The loop the task runs on.
  EventLoop& get_loop() const { return state_->loop(); }

  /// The context the task's steps run in (asyncio 3.12 Task.get_context()): a copy of the
  /// context current at create_task, or the one given to it.
  Context get_context() const { return state_->get_context(); }

  /// Adds fn(task) as a done-callback (through call_soon, registration order); returns an id.
  template <class F>
  requires std::invocable<F&, Task<T>> std::uint64_t add_done_callback(F fn)
  const {
    return state_->add_callback(
        [fn = std::move(fn)](const std::shared_ptr<detail::FutureCore>& core) mutable {
          fn(Task<T>(std::static_pointer_cast<State>(core)));
        });
  }
  /// add_done_callback(fn, context=context): fn(task) runs inside `context` itself.
  template <class F>
  requires std::invocable<F&, Task<T>> std::uint64_t add_done_callback(F fn, const Context& context)
  const {
    return state_->add_callback_in_context(
        [fn = std::move(fn)](const std::shared_ptr<detail::FutureCore>& core) mutable {
          fn(Task<T>(std::static_pointer_cast<State>(core)));
        },
        context.impl());
  }
  std::size_t remove_done_callback(std::uint64_t id) const { return state_->remove_callback(id); }

  /// "<Task pending name='Task-1'>", "<Task finished name='x' result=3>".
  std::string repr() const { return state_->repr(); }

  explicit operator bool() const noexcept { return state_ != nullptr; }
  friend bool operator==(const Task& a, const Task& b) noexcept { return a.state_ == b.state_; }

  /// Scheduled task: waits for it like a future. Unscheduled coroutine: runs it inline.
  auto operator co_await() const& { return Awaiter{state_, false}; }
  auto operator co_await() && { return Awaiter{state_, true}; }

  const std::shared_ptr<State>& state() const noexcept { return state_; }

 private:
  struct Awaiter {
    std::shared_ptr<State> state;
    bool sole_owner;  // awaiting a temporary: the result may be moved out
    bool inline_run = false;

    bool await_ready() const noexcept { return state->done(); }
    template <class ParentPromise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<ParentPromise> parent) {
      if (state->started()) {
        detail::FutureAwaiter<State>{state}.await_suspend(parent);
        return std::noop_coroutine();
      }
      auto frame = std::coroutine_handle<promise_type>::from_address(state->frame().address());
      if (!frame || frame.promise().continuation) {
        throw RuntimeError("coroutine is already being awaited");
      }
      inline_run = true;
      frame.promise().continuation = parent;
      if constexpr (std::is_base_of_v<detail::TaskPromiseBase, ParentPromise>) {
        // The call graph's links: known at compile time, so no cost for other coroutines.
        parent.promise().awaiting_child = &frame.promise();
        frame.promise().parent_promise = &parent.promise();
      }
      return frame;
    }
    T await_resume() {
      if (!inline_run) {
        if (detail::TaskStateBase* task = detail::current_task_state()) {
          task->throw_if_cancel_delivered();
        }
      }
      if constexpr (std::is_void_v<T>) {
        state->result();
      } else if constexpr (!detail::copyable_result_v<T>) {
        return state->take_result();  // a move-only result can be awaited once
      } else {
        if (sole_owner || inline_run) return state->take_result();
        return state->result();
      }
    }
  };

  std::shared_ptr<State> state_;
};

template <class T>
auto operator co_await(const Future<T>& f) {
  return detail::FutureAwaiter<typename Future<T>::State>{f.state()};
}

/// A task of any result type: what all_tasks(), current_task() and task factories use.
class AnyTask {
 public:
  AnyTask() = default;
  explicit AnyTask(std::shared_ptr<detail::TaskStateBase> state) noexcept
      : state_(std::move(state)) {}
  template <class T>
  AnyTask(const Task<T>& task) : state_(task.state()) {}  // NOLINT: implicit on purpose

  bool done() const noexcept { return state_->done(); }
  bool cancelled() const noexcept { return state_->cancelled(); }
  bool cancel(std::string message = {}) const { return state_->cancel(std::move(message)); }
  int cancelling() const noexcept { return state_->cancelling(); }
  int uncancel() const noexcept { return state_->uncancel(); }
  std::exception_ptr exception() const { return state_->exception(); }
  const std::string& get_name() const { return state_->name(); }
  void set_name(std::string name) const { state_->set_name(std::move(name)); }
  std::string repr() const { return state_->repr(); }
  EventLoop& get_loop() const { return state_->loop(); }
  Context get_context() const { return state_->get_context(); }

  /// The typed task, if this is a Task<T> (empty otherwise).
  template <class T>
  Task<T> as() const {
    return Task<T>(std::dynamic_pointer_cast<detail::TaskState<T>>(state_));
  }

  explicit operator bool() const noexcept { return state_ != nullptr; }
  friend bool operator==(const AnyTask& a, const AnyTask& b) noexcept {
    return a.state_ == b.state_;
  }
  const std::shared_ptr<detail::TaskStateBase>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<detail::TaskStateBase> state_;
};

/// Schedules `coro` on `loop` as a task, bypassing the loop's task factory (what the default
/// factory does; a custom factory calls it). `eager_start` unset: what the create_task call
/// that invoked the factory asked for, else false.
AnyTask make_task(EventLoop& loop, AnyTask coro, std::string name = {},
                  std::optional<bool> eager_start = std::nullopt);

/// The task running in this thread (empty if none), asyncio.current_task().
AnyTask current_task();

/// The pending tasks of `loop` (default: the running loop), asyncio.all_tasks().
std::vector<AnyTask> all_tasks(EventLoop& loop);
std::vector<AnyTask> all_tasks();

/// co_await sleep(delay): suspends the current task for `delay` seconds; sleep(0) (or any
/// delay <= 0) yields for exactly one loop iteration.
Task<void> sleep(Seconds delay);
/// sleep that returns `result` afterwards.
template <class T>
Task<T> sleep(Seconds delay, T result) {
  co_await sleep(delay);
  co_return result;
}

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() {
  auto s = std::allocate_shared<TaskState<T>>(PoolAllocator<TaskState<T>>());
  s->set_frame(std::coroutine_handle<TaskPromise<T>>::from_promise(*this), this);
  state = s.get();
  return Task<T>(std::move(s));
}

inline Task<void> TaskPromise<void>::get_return_object() {
  auto s = std::allocate_shared<TaskState<void>>(PoolAllocator<TaskState<void>>());
  s->set_frame(std::coroutine_handle<TaskPromise<void>>::from_promise(*this), this);
  state = s.get();
  return Task<void>(std::move(s));
}
}  // namespace detail

template <class T>
Task<T> EventLoop::create_task(Task<T> coro, std::string name, std::optional<bool> eager_start) {
  check_schedulable();
  if (!coro) throw ValueError("create_task() needs a coroutine");
  if (coro.state()->started() || coro.state()->done()) {
    throw RuntimeError("the coroutine was already scheduled or awaited");
  }
  if (task_factory_) {
    detail::EagerStartRequest request(eager_start);
    AnyTask made = task_factory_(*this, AnyTask(coro));
    Task<T> task = made.as<T>();
    if (!task) throw TypeError("the task factory returned a task of another type");
    if (!name.empty()) task.set_name(std::move(name));
    return task;
  }
  coro.state()->start(*this, std::move(name), eager_start.value_or(false));
  return coro;
}

template <class T>
Task<T> EventLoop::create_task(Task<T> coro, const Context& context, std::string name,
                               std::optional<bool> eager_start) {
  if (coro && !coro.state()->started() && !coro.state()->done()) {
    coro.state()->set_context(context);
  }
  return create_task(std::move(coro), std::move(name), eager_start);
}

template <class T>
T EventLoop::run_until_complete(Future<T> future) {
  return complete_and_return<T>(future.state(), false);
}

template <class T>
T EventLoop::run_until_complete(Task<T> task) {
  bool created = false;
  if (!task.state()->started() && !task.state()->done()) {
    task = create_task(std::move(task));
    created = true;
  }
  return complete_and_return<T>(task.state(), created);
}

template <class T, class State>
T EventLoop::complete_and_return(const std::shared_ptr<State>& state, bool new_task) {
  run_until_done(*state, new_task);
  return detail::pass_on_result(*state);
}

/// asyncio.run(): runs `main` on a new event loop (from the event loop policy's
/// new_event_loop()), then cancels the tasks left, closes the asynchronous generators still
/// open (loop.shutdown_asyncgens()), shuts the default executor down, closes the loop and
/// returns main's result (or rethrows its exception). `debug` sets the loop's debug mode.
template <class T>
T run(Task<T> main, std::optional<bool> debug = std::nullopt) {
  if (running_loop() != nullptr) {
    throw RuntimeError("asyncuv::run() cannot be called from a running event loop");
  }
  auto loop = new_event_loop();
  if (debug) loop->set_debug(*debug);
  set_event_loop(loop);
  struct Cleanup {
    std::shared_ptr<EventLoop>& loop;
    ~Cleanup() { detail::finish_run(*loop); }
  } cleanup{loop};
  return loop->run_until_complete(std::move(main));
}

}  // namespace asyncuv
