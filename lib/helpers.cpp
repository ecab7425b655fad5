// The non-template parts of gather, wait_for, asyncio.timeout and asyncio.TaskGroup.
#include "asyncuv/helpers.hpp"

#include <algorithm>
#include <cstdio>
#include <new>

#include "asyncuv/taskgroups.hpp"
#include "asyncuv/timeouts.hpp"
#include "internal.hpp"

namespace asyncuv {

namespace {

bool is_cancelled_error(const std::exception_ptr& e) {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

/// Python's SystemExit / KeyboardInterrupt: here FatalError and std::bad_alloc.
bool is_base_error(const std::exception_ptr& e) {
  return e && detail::is_fatal(e);
}

const char* state_value(Timeout::State s) {
  switch (s) {
    case Timeout::State::created:
      return "created";
    case Timeout::State::active:
      return "active";
    case Timeout::State::expiring:
      return "expiring";
    case Timeout::State::expired:
      return "expired";
    case Timeout::State::finished:
      break;
  }
  return "finished";
}

}  // namespace

// ---- gather ----------------------------------------------------------------------------------

namespace detail {

bool GatherCore::cancel_children(const std::string& message) {
  bool any = false;
  for (const auto& child : children_) {
    if (child->cancel(message)) any = true;
  }
  // Only a cancellation that reached a child turns the result into CancelledError.
  if (any) cancel_requested_ = true;
  return any;
}

void GatherCore::start(FutureCore& self) {
  if (children_.empty()) {
    set_collected_result();
    return;
  }
  std::weak_ptr<FutureCore> weak = self.weak_from_this();
  std::vector<FutureCore*> done_now;
  for (const auto& child : children_) {
    if (child->done()) {
      done_now.push_back(child.get());
    } else {
      // A weak reference: the children never keep the gathering future alive.
      child->add_callback([weak, this](const std::shared_ptr<FutureCore>& c) {
        if (std::shared_ptr<FutureCore> outer = weak.lock()) {
          c->discard_awaited_by(outer.get());
          child_done(*outer, *c);
        }
      });
      child->add_awaited_by(self.shared_from_this());  // the call graph: outer waits for it
    }
  }
  for (FutureCore* child : done_now)
    child_done(self, *child);
}

void GatherCore::child_done(FutureCore& self, FutureCore& child) {
  ++finished_;
  if (self.done()) {
    if (!child.cancelled()) child.exception();  // retrieved: the gather already ended
    return;
  }
  if (!return_exceptions_) {
    if (child.cancelled()) {
      self.set_exception(std::make_exception_ptr(CancelledError(child.cancel_message())));
      return;
    }
    if (std::exception_ptr e = child.exception()) {
      self.set_exception(std::move(e));
      return;
    }
  }
  if (finished_ == children_.size()) {
    if (cancel_requested_) {
      self.set_exception(std::make_exception_ptr(CancelledError(child.cancel_message())));
    } else {
      set_collected_result();
    }
  }
}

Task<void> cancel_and_wait(std::shared_ptr<FutureCore> fut) {
  EventLoop& loop = get_running_loop();
  Future<void> waiter = loop.create_future<void>();
  std::uint64_t id = fut->add_callback([waiter](const std::shared_ptr<FutureCore>&) {
    if (!waiter.done()) waiter.set_result();
  });
  std::exception_ptr error;
  try {
    fut->cancel("");
    co_await waiter;
  } catch (...) {
    error = std::current_exception();
  }
  fut->remove_callback(id);
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

// ---- Timeout ---------------------------------------------------------------------------------

Timeout::Timeout(std::optional<LoopTime> when) {
  if (when) when_ = when->value;
}

Timeout::~Timeout() {
  handler_.cancel();
}

void Timeout::reschedule(std::optional<LoopTime> when) {
  if (state_ == State::created) throw RuntimeError("Timeout has not been entered");
  if (state_ != State::active) {
    throw RuntimeError(std::string("Cannot change state of ") + state_value(state_) + " Timeout");
  }
  when_.reset();
  if (when) when_ = when->value;
  handler_.cancel();
  handler_ = Handle();
  if (!when_) return;
  EventLoop& loop = get_running_loop();
  if (*when_ <= loop.time()) {
    handler_ = loop.call_soon([this] { on_timeout(); });
  } else {
    handler_ = loop.call_at(*when_, [this] { on_timeout(); });
  }
}

std::string Timeout::repr() const {
  std::string text = std::string("<Timeout [") + state_value(state_) + "]";
  if (state_ == State::active) {
    if (when_) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " when=%.3f", *when_);
      text += buf;
    } else {
      text += " when=None";
    }
  }
  return text + ">";
}

void Timeout::enter() {
  if (state_ != State::created) throw RuntimeError("Timeout has already been entered");
  detail::TaskStateBase* task = detail::current_task_state();
  if (task == nullptr) throw RuntimeError("Timeout should be used inside a task");
  state_ = State::active;
  task_ = std::static_pointer_cast<detail::TaskStateBase>(task->shared_from_this());
  cancelling_ = task->cancelling();
  reschedule(when_ ? std::optional<LoopTime>(*when_) : std::nullopt);
}

std::exception_ptr Timeout::exit(std::exception_ptr error) {
  if (state_ != State::active && state_ != State::expiring) {
    throw RuntimeError(std::string("Cannot exit a ") + state_value(state_) + " Timeout");
  }
  handler_.cancel();
  handler_ = Handle();
  if (state_ == State::expiring) {
    state_ = State::expired;
    std::shared_ptr<detail::TaskStateBase> task = task_.lock();
    // Our cancel() is the only one left since entry: the CancelledError is ours.
    if (task && task->uncancel() <= cancelling_ && is_cancelled_error(error)) {
      return std::make_exception_ptr(TimeoutError(std::string()));
    }
  } else {
    state_ = State::finished;
  }
  return error;
}

void Timeout::on_timeout() {
  if (state_ != State::active) return;
  if (std::shared_ptr<detail::TaskStateBase> task = task_.lock()) task->cancel("");
  state_ = State::expiring;
  handler_ = Handle();
}

// ---- TaskGroup -------------------------------------------------------------------------------

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions)
    : Exception(message + " (" + std::to_string(exceptions.size()) +
                (exceptions.size() == 1 ? " sub-exception)" : " sub-exceptions)")),
      message_(std::move(message)),
      exceptions_(std::move(exceptions)) {}

namespace detail {

struct TaskGroupState {
  bool entered = false;
  bool exiting = false;
  bool aborting = false;
  bool parent_cancel_requested = false;
  bool cancel_on_enter = false;  // cancel() came before enter()
  EventLoop* loop = nullptr;
  std::weak_ptr<TaskStateBase> parent;
  std::vector<AnyTask> tasks;
  std::vector<std::exception_ptr> errors;
  std::exception_ptr base_error;
  Future<void> on_completed;

  std::string repr() const {
    std::string text = "<TaskGroup";
    if (!tasks.empty()) text += " tasks=" + std::to_string(tasks.size());
    if (!errors.empty()) text += " errors=" + std::to_string(errors.size());
    if (aborting) {
      text += " cancelling";
    } else if (entered) {
      text += " entered";
    }
    return text + ">";
  }

  void abort() {
    aborting = true;
    for (const AnyTask& t : tasks) {
      if (!t.done()) t.cancel();
    }
  }

  /// TaskGroup.cancel(): an abort whose cancellation of the parent exit() takes back.
  void cancel() {
    if (!entered) {
      cancel_on_enter = true;
      return;
    }
    if (exiting && tasks.empty()) return;  // exited, or nothing left to stop
    if (!aborting) abort();
    std::shared_ptr<TaskStateBase> p = parent.lock();
    if (p && !p->done() && !parent_cancel_requested) {
      parent_cancel_requested = true;
      p->cancel("");
    }
  }

  void on_task_done(const std::shared_ptr<FutureCore>& task) {
    auto it = std::find_if(tasks.begin(), tasks.end(),
                           [&task](const AnyTask& t) { return t.state() == task; });
    if (it != tasks.end()) tasks.erase(it);
    if (on_completed && tasks.empty() && !on_completed.done()) on_completed.set_result();
    if (task->cancelled()) return;
    std::exception_ptr exc = task->exception();
    if (!exc) return;
    errors.push_back(exc);
    if (is_base_error(exc) && !base_error) base_error = exc;
    std::shared_ptr<TaskStateBase> p = parent.lock();
    if (!p || p->done()) {
      std::string parent_text = p ? p->repr() : std::string("<Task finished>");
      ExceptionContext context("Task " + task->repr() + " has errored out but its parent task " +
                                   parent_text + " is already completed",
                               exc);
      context.set("task", task->repr());
      if (auto* t = dynamic_cast<TaskStateBase*>(task.get())) {
        context.set_run_context(t->get_context());
      }
      loop->call_exception_handler(context);
      return;
    }
    if (!aborting && !parent_cancel_requested) {
      // Cancel whatever the body awaits; exit() takes this cancellation back (uncancel).
      abort();
      parent_cancel_requested = true;
      p->cancel("");
    }
  }

  void clear() {
    parent.reset();
    errors.clear();
    base_error = nullptr;
  }
};

namespace {

Task<void> task_group_exit(std::shared_ptr<TaskGroupState> s, std::exception_ptr exc) {
  s->exiting = true;
  bool exc_cancelled = is_cancelled_error(exc);
  if (exc && is_base_error(exc) && !s->base_error) s->base_error = exc;
  std::exception_ptr propagate_cancel = exc_cancelled ? exc : nullptr;
  // The parent is being cancelled, or the body failed: cancel the children.
  if (exc && !s->aborting) s->abort();

  // A loop: the parent may be cancelled again (repeatedly) while it waits.
  std::exception_ptr pending_cancel;
  while (!s->tasks.empty()) {
    if (!s->on_completed) s->on_completed = s->loop->create_future<void>();
    try {
      co_await s->on_completed;
    } catch (const CancelledError&) {
      pending_cancel = std::current_exception();
      if (!s->aborting) {
        // The parent is cancelled while the children still run.
        propagate_cancel = pending_cancel;
        s->abort();
      }
    }
    s->on_completed = Future<void>();
  }

  std::shared_ptr<TaskStateBase> parent = s->parent.lock();

  if (s->base_error) {
    std::exception_ptr base = s->base_error;
    for (const std::exception_ptr& e : s->errors) {
      if (e == base) continue;
      ExceptionContext context(
          "TaskGroup task exception was not propagated because the TaskGroup body is being "
          "closed with a BaseException",
          e);
      context.set("task_group", s->repr());
      s->loop->call_exception_handler(context);
    }
    s->clear();
    std::rethrow_exception(base);
  }

  if (s->parent_cancel_requested && parent) {
    // The group cancelled its parent: take that cancellation back.
    if (parent->uncancel() == 0) {
      propagate_cancel = nullptr;  // nobody else asked: do not propagate CancelledError
    } else if (!propagate_cancel) {
      propagate_cancel = pending_cancel;  // the remaining cancellation is not ours
    }
  }

  // CancelledError propagates unless there are errors: those have priority.
  if (propagate_cancel && s->errors.empty()) {
    s->clear();
    std::rethrow_exception(propagate_cancel);
  }

  if (exc && !exc_cancelled) s->errors.push_back(exc);

  if (!s->errors.empty()) {
    // A cancellation from outside stays requested: uncancel and cancel again keeps the count.
    if (parent && parent->cancelling() > 0) {
      parent->uncancel();
      parent->cancel("");
    }
    std::vector<std::exception_ptr> errors = std::move(s->errors);
    s->clear();
    throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
  }
  s->clear();
}

}  // namespace
}  // namespace detail

TaskGroup::TaskGroup() : state_(std::make_shared<detail::TaskGroupState>()) {}

void TaskGroup::enter() {
  detail::TaskGroupState& s = *state_;
  if (s.entered) throw RuntimeError("TaskGroup " + s.repr() + " has already been entered");
  if (s.loop == nullptr) s.loop = &get_running_loop();
  detail::TaskStateBase* task = detail::current_task_state();
  if (task == nullptr) {
    throw RuntimeError("TaskGroup " + s.repr() + " cannot determine the parent task");
  }
  s.parent = std::static_pointer_cast<detail::TaskStateBase>(task->shared_from_this());
  s.entered = true;
  if (s.cancel_on_enter) s.cancel();
}

void TaskGroup::cancel() {
  state_->cancel();
}

Task<void> TaskGroup::exit(std::exception_ptr error) {
  if (!state_->entered) throw RuntimeError("TaskGroup " + state_->repr() + " has not been entered");
  return detail::task_group_exit(state_, std::move(error));
}

EventLoop& TaskGroup::check_can_create() const {
  const detail::TaskGroupState& s = *state_;
  if (!s.entered) throw RuntimeError("TaskGroup " + s.repr() + " has not been entered");
  if (s.exiting && s.tasks.empty()) throw RuntimeError("TaskGroup " + s.repr() + " is finished");
  if (s.aborting) throw RuntimeError("TaskGroup " + s.repr() + " is shutting down");
  return *s.loop;
}

void TaskGroup::adopt(AnyTask task) {
  state_->tasks.push_back(task);
  std::weak_ptr<detail::TaskGroupState> weak = state_;
  // A weak reference: the children never keep the group alive.
  task.state()->add_callback([weak](const std::shared_ptr<detail::FutureCore>& core) {
    if (std::shared_ptr<detail::TaskGroupState> s = weak.lock()) {
      core->discard_awaited_by(s->parent.lock().get());
      s->on_task_done(core);
    }
  });
  // The call graph: the group's parent task waits for every child (asyncio 3.14).
  if (std::shared_ptr<detail::TaskStateBase> parent = state_->parent.lock()) {
    task.state()->add_awaited_by(parent);
  }
  if (state_->aborting && !task.done()) task.cancel();
}

std::size_t TaskGroup::pending() const noexcept {
  return state_->tasks.size();
}

std::string TaskGroup::repr() const {
  return state_->repr();
}

}  // namespace asyncuv
