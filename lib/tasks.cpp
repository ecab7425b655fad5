// asyncio.Task's machinery: stepping coroutines, delivering cancellation, the per-loop task
// list, run_until_complete and asyncuv::run's shutdown.
#include "asyncuv/tasks.hpp"

#include <spdlog/spdlog.h>

#include <atomic>

#include "asyncuv/log.hpp"
#include "internal.hpp"

namespace asyncuv {

namespace detail {

namespace {
thread_local TaskStateBase* t_current_task ASYNCUV_FAST_TLS = nullptr;
std::atomic<std::uint64_t> g_task_counter{0};
}  // namespace

TaskStateBase* current_task_state() noexcept {
  return t_current_task;
}

namespace {
thread_local std::optional<bool> t_eager_start_request;
}

EagerStartRequest::EagerStartRequest(std::optional<bool> eager_start) noexcept
    : previous_(std::exchange(t_eager_start_request, eager_start)) {}

EagerStartRequest::~EagerStartRequest() {
  t_eager_start_request = previous_;
}

std::optional<bool> EagerStartRequest::take() noexcept {
  return std::exchange(t_eager_start_request, std::nullopt);
}

std::uint64_t next_task_number() noexcept {
  return g_task_counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

const std::string& TaskStateBase::name() const {
  if (number_ != 0) {
    name_ = "Task-" + std::to_string(number_);
    number_ = 0;
  }
  return name_;
}

void throw_not_in_task() {
  throw RuntimeError(
      "co_await on a future outside of a task: schedule the coroutine with "
      "create_task() or run_until_complete()");
}

TaskStateBase::TaskStateBase() {
  kind_ = "Task";
}

TaskStateBase::~TaskStateBase() {
  if (started_ && !done()) {
    std::string text = "<Task pending name='" + name() + "'>";
    if (EventLoop* loop = loop_if_alive()) {
      ExceptionContext context("Task was destroyed but it is pending!");
      context.set("task", text);
      if (context_ != nullptr) context.set_run_context(Context(ContextRef::share(context_)));
      try {
        loop->call_exception_handler(context);
      } catch (...) {
        logger()->critical("fatal exception in exception handler during Task destruction");
      }
    } else {
      logger()->error("Task was destroyed but it is pending!\ntask: {}", text);
    }
  }
  // The frame is destroyed, never resumed again: its locals are released here.
  if (frame_) std::exchange(frame_, nullptr).destroy();
}

void TaskStateBase::start(EventLoop& loop, std::string name, bool eager) {
  attach(loop);
  // asyncio's Task.__init__: self._context = copy_context() unless context= was given.
  if (context_ == nullptr && contexts_in_use()) [[unlikely]]
    context_ = capture_context();
  started_ = true;
  if (name.empty()) {
    number_ = next_task_number();  // formatted lazily by name()
  } else {
    name_ = std::move(name);
  }
  // Registered with the loop: the loop keeps the task alive while it is pending.
  keep_alive = std::static_pointer_cast<TaskStateBase>(shared_from_this());
  next_task = loop.tasks_;
  if (loop.tasks_ != nullptr) loop.tasks_->prev_task = this;
  loop.tasks_ = this;
  resume_at_ = frame_;
  if (eager && loop.is_running()) {
    // asyncio's __eager_start: the first step runs now, with this task as current_task();
    // one that returns or raises without suspending is never scheduled.
    step();
    return;
  }
  schedule_step();
}

void TaskStateBase::unregister() noexcept {
  if (!keep_alive) return;
  if (EventLoop* loop = loop_if_alive()) {
    if (prev_task != nullptr) {
      prev_task->next_task = next_task;
    } else if (loop->tasks_ == this) {
      loop->tasks_ = next_task;
    }
    if (next_task != nullptr) next_task->prev_task = prev_task;
  }
  prev_task = next_task = nullptr;
  // Last: this may destroy the task.
  std::shared_ptr<TaskStateBase> self = std::move(keep_alive);
}

void TaskStateBase::schedule_step() {
  auto self = std::static_pointer_cast<TaskStateBase>(shared_from_this());
  // In the task's own context (asyncio: call_soon(self.__step, context=self._context)): no
  // copy, and step() then finds it current already.
  loop().call_soon_in(context_, [self = std::move(self)] { self->step(); });
}

bool TaskStateBase::cancel(std::string message) {
  if (done()) return false;
  ++cancels_requested_;
  if (waiting_on_ && waiting_on_->cancel(message)) {
    // The awaited future is cancelled: the wake-up resumes the coroutine, whose co_await
    // throws CancelledError(message).
    return true;
  }
  must_cancel_ = true;
  pending_cancel_message_ = std::move(message);
  return true;
}

int TaskStateBase::uncancel() noexcept {
  if (cancels_requested_ > 0) {
    --cancels_requested_;
    if (cancels_requested_ == 0) must_cancel_ = false;
  }
  return cancels_requested_;
}

void TaskStateBase::throw_if_cancel_delivered() {
  if (deliver_cancel_) {
    deliver_cancel_ = false;
    throw CancelledError(pending_cancel_message_);
  }
}

void TaskStateBase::wait_for_future(FutureCore& future, std::coroutine_handle<> at) {
  if (&future == this) throw RuntimeError("Task cannot await on itself: " + repr());
  if (future.has_loop() && future.loop_if_alive() != loop_if_alive()) {
    throw RuntimeError("Task got Future attached to a different loop");
  }
  resume_at_ = at;
  waiting_on_ = future.shared_from_this();
  std::weak_ptr<TaskStateBase> weak = std::static_pointer_cast<TaskStateBase>(shared_from_this());
  future.add_callback_in_context(
      [weak](const std::shared_ptr<FutureCore>&) {
        if (auto task = weak.lock()) task->step();
      },
      context_);
  if (must_cancel_) {
    // cancel() came before this await: asyncio cancels the awaited future right away.
    if (waiting_on_->cancel(pending_cancel_message_)) must_cancel_ = false;
  }
}

void TaskStateBase::yield_once(std::coroutine_handle<> at) {
  resume_at_ = at;
  schedule_step();
}

void TaskStateBase::step() {
  if (done() || !resume_at_) return;
  auto self = std::static_pointer_cast<TaskStateBase>(shared_from_this());
  if (contexts_in_use()) [[unlikely]] {
    step_in_context();
    return;
  }
  run_step();
  // The step created the first context of the process: what it set belongs to the task.
  if (contexts_in_use()) [[unlikely]]
    context_ = claim_current_context();
}

void TaskStateBase::step_in_context() {
  // Every step runs in the task's context (asyncio's Task.__step under self._context); a set
  // made while it was still null materializes it, and the task keeps it for the next steps.
  ContextSwitch in_context(context_);
  struct Leave {
    TaskStateBase* task;
    ContextSwitch& in;
    ~Leave() {
      if (ContextImpl* made = in.leave()) task->context_ = made;
    }
  } leave{this, in_context};
  run_step();
}

Context TaskStateBase::get_context() {
  if (context_ == nullptr) {
    if (current_task_state() == this) {
      // Running in a context not materialized yet: the one a set would make; step() keeps it.
      return Context(ContextRef::share(materialize_current_context()));
    }
    context_ = new_context(nullptr);
  }
  return Context(ContextRef::share(context_));
}

void TaskStateBase::set_context(const Context& context) {
  ContextImpl* c = context.impl();
  retain_context(c);
  if (context_ != nullptr) release_context(context_);
  context_ = c;
}

void TaskStateBase::run_step() {
  deliver_cancel_ = must_cancel_;
  must_cancel_ = false;
  waiting_on_.reset();
  TaskStateBase* previous = std::exchange(t_current_task, this);
  std::exchange(resume_at_, nullptr).resume();
  t_current_task = previous;
  deliver_cancel_ = false;
  if (frame_ && frame_.done()) {
    std::exchange(frame_, nullptr).destroy();
    unregister();
  }
}

bool TaskStateBase::complete_cancelled_instead() {
  if (!must_cancel_) return false;
  must_cancel_ = false;
  FutureCore::cancel(pending_cancel_message_);
  return true;
}

void TaskStateBase::complete_with_exception(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError& cancelled) {
    FutureCore::cancel(cancelled.what());
    return;
  } catch (...) {
  }
  // asyncio's Task.__step turns only a normal return into a cancellation: a coroutine that
  // raises while a cancel is pending ends with what it raised (semantics 60). TaskGroup relies
  // on this to surface its ExceptionGroup when the parent's cancellation stays requested.
  must_cancel_ = false;
  set_exception(std::move(e));
}

std::string TaskStateBase::repr() const {
  std::string text = FutureCore::repr();  // "<Task pending>" / "<Task finished result=..>"
  std::string name_part = " name='" + name() + "'";
  auto space = text.find(' ');
  if (space == std::string::npos) space = text.size() - 1;
  std::size_t state_end = text.find_first_of(" >", space + 1);
  text.insert(state_end, name_part);
  if (!done() && cancels_requested_ > 0) text.insert(text.size() - 1, " cancelling");
  return text;
}

void YieldAwaiter::await_suspend(std::coroutine_handle<> h) const {
  TaskStateBase* task = current_task_state();
  if (task == nullptr) throw_not_in_task();
  task->yield_once(h);
}

void YieldAwaiter::await_resume() const {
  if (TaskStateBase* task = current_task_state()) task->throw_if_cancel_delivered();
}

void finish_run(EventLoop& loop, bool unset_event_loop) noexcept {
  try {
    std::vector<AnyTask> left = all_tasks(loop);
    if (!left.empty()) {
      for (const AnyTask& t : left)
        t.cancel();
      auto all_done = loop.create_future<void>();
      auto remaining = std::make_shared<std::size_t>(left.size());
      for (const AnyTask& t : left) {
        t.state()->add_callback([all_done, remaining](const std::shared_ptr<FutureCore>&) {
          if (--*remaining == 0 && !all_done.done()) all_done.set_result();
        });
      }
      loop.run_until_complete(all_done);
      for (const AnyTask& t : left) {
        if (t.cancelled()) continue;
        if (auto e = t.exception()) {
          ExceptionContext context("unhandled exception during asyncuv::run() shutdown", e);
          context.set("task", t.repr());
          context.set_run_context(t.get_context());
          loop.call_exception_handler(context);
        }
      }
    }
  } catch (const std::exception& e) {
    logger()->error("error while cancelling the remaining tasks: {}", e.what());
  }
  try {
    // As asyncio.run: the asynchronous generators still open are closed inside the loop.
    if (!loop.is_closed()) loop.run_until_complete(loop.shutdown_asyncgens());
  } catch (const std::exception& e) {
    logger()->error("error while closing the asynchronous generators: {}", e.what());
  }
  try {
    // As asyncio.run (3.12+): the default executor's threads are joined, for up to 300 s.
    if (!loop.is_closed()) loop.run_until_complete(loop.shutdown_default_executor(300.0));
  } catch (const std::exception& e) {
    logger()->error("error while shutting down the default executor: {}", e.what());
  }
  if (unset_event_loop) set_event_loop(nullptr);
  try {
    loop.close();
  } catch (const std::exception& e) {
    logger()->error("error while closing the loop: {}", e.what());
  }
}

}  // namespace detail

AnyTask make_task(EventLoop& loop, AnyTask coro, std::string name,
                  std::optional<bool> eager_start) {
  std::optional<bool> requested = detail::EagerStartRequest::take();
  if (!coro) throw ValueError("make_task() needs a coroutine");
  if (coro.state()->started() || coro.done()) {
    throw RuntimeError("the coroutine was already scheduled or awaited");
  }
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  const bool eager = eager_start ? *eager_start : requested.value_or(false);
  coro.state()->start(loop, std::move(name), eager);
  return coro;
}

AnyTask current_task() {
  detail::TaskStateBase* t = detail::current_task_state();
  if (t == nullptr) return AnyTask();
  return AnyTask(std::static_pointer_cast<detail::TaskStateBase>(t->shared_from_this()));
}

std::vector<AnyTask> all_tasks(EventLoop& loop) {
  std::vector<AnyTask> out;
  for (detail::TaskStateBase* t = loop.tasks_; t != nullptr; t = t->next_task) {
    if (!t->done()) out.emplace_back(t->keep_alive);
  }
  return out;
}

std::vector<AnyTask> all_tasks() {
  return all_tasks(get_running_loop());
}

Task<void> sleep(Seconds delay) {
  if (!(delay.value > 0)) {
    co_await detail::YieldAwaiter{};
    co_return;
  }
  EventLoop& loop = get_running_loop();
  auto done = loop.create_future<void>();
  TimerHandle timer = loop.call_later(delay, [done] {
    if (!done.done()) done.set_result();
  });
  try {
    co_await done;
  } catch (...) {
    timer.cancel();
    throw;
  }
}

void EventLoop::run_until_done(detail::FutureCore& future, bool new_task) {
  check_closed();
  if (is_running()) throw RuntimeError("This event loop is already running");
  if (future.has_loop() && future.loop_if_alive() != this) {
    throw ValueError(
        "The future belongs to a different loop than the one specified as the loop "
        "argument");
  }
  if (!future.has_loop()) throw ValueError("the future is not attached to an event loop");
  std::uint64_t id = future.add_callback([](const std::shared_ptr<detail::FutureCore>& f) {
    if (EventLoop* loop = f->loop_if_alive()) loop->stop();
  });
  try {
    run_forever();
  } catch (...) {
    if (new_task && future.done() && !future.cancelled()) {
      future.exception();  // retrieved: the caller sees the fatal error instead
    }
    future.remove_callback(id);
    throw;
  }
  future.remove_callback(id);
  if (!future.done()) throw RuntimeError("Event loop stopped before Future completed.");
}

void EventLoop::release_tasks() noexcept {
  // Pending tasks are no longer kept alive by the loop; a task nobody else holds is destroyed
  // now and reports "Task was destroyed but it is pending!".
  while (tasks_ != nullptr) {
    detail::TaskStateBase* t = tasks_;
    tasks_ = t->next_task;
    if (tasks_ != nullptr) tasks_->prev_task = nullptr;
    t->prev_task = t->next_task = nullptr;
    std::shared_ptr<detail::TaskStateBase> keep = std::move(t->keep_alive);
  }
}

}  // namespace asyncuv
